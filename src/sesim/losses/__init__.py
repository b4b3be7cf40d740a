"""Losses: the spatially-correlative loss (functional core and module) and its companions.

The public API of the loss library:

* :func:`self_similarity`, :func:`compare_similarity`, :func:`sample_queries` and
  :func:`pairwise_similarity`: pure tensor functions (eqs. 1-3 of the paper).
* :class:`SpatialCorrelativeLoss` with :class:`SpatialLossConfig`: FSeSim/LSeSim over the feature
  lists of an extractor such as :class:`sesim.features.VGG16Features`.
"""

from sesim.losses.selfsim import (
    compare_similarity,
    normalize_features,
    pairwise_similarity,
    sample_queries,
    self_similarity,
    window_key_indices,
)
from sesim.losses.spatial import ProjectionHead, SpatialCorrelativeLoss, SpatialLossConfig

__all__ = [
    "ProjectionHead",
    "SpatialCorrelativeLoss",
    "SpatialLossConfig",
    "compare_similarity",
    "normalize_features",
    "pairwise_similarity",
    "sample_queries",
    "self_similarity",
    "window_key_indices",
]
