"""Evaluation metrics: FID/KID, LPIPS diversity, density/coverage and segmentation scores.

Images follow sesim's convention throughout: (N, 3, H, W) float in [-1, 1]. Pretrained weights
(Inception for FID/KID/density-coverage, AlexNet for LPIPS, DRN-D-22 for Cityscapes) are read
from the torch hub cache (``$TORCH_HOME/hub/checkpoints/``) or from explicit paths and are never
downloaded; a missing file is a one-line :class:`sesim.errors.UserError` saying where to put it.
The third-party metric packages (torchmetrics, torch-fidelity, lpips, prdc) are imported only
when a metric runs.

:data:`METRICS` is the registry of the names users type: each :class:`Metric` names its function,
the columns it stores, the ones ranked and their direction, and its help line. A new metric is a
module here and one entry there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sesim.metrics.fid import (
    FeatureExtractor,
    extract_features,
    fid_from_features,
    inception_extractor,
    kid_from_features,
    random_conv_extractor,
)
from sesim.metrics.lpips import lpips_distance, lpips_diversity, lpips_model
from sesim.metrics.prdc import density_coverage
from sesim.metrics.segmentation import (
    ConfusionMatrix,
    DRNSeg,
    SmallSegmenter,
    class_iou_values,
    evaluate_segmenter,
    load_drn_d_22,
    per_class_iou,
    scores_from_confusion,
    segmentation_scores,
    segmenter_confusion,
    train_segmenter,
)


@dataclass(frozen=True)
class Metric:
    """A metric users pick by name (``sesim eval --metrics NAME``).

    Attributes:
        function: the function that computes it (from features, images or label maps).
        columns: the values it stores, in file order (``kid`` also stores ``kid_std``).
        ranked: the columns a best checkpoint is chosen on.
        higher_is_better: the direction of the ranked columns.
        help: what it reports, one line for ``--help``.
    """

    function: Callable[..., Any]
    columns: tuple[str, ...]
    ranked: tuple[str, ...]
    higher_is_better: bool
    help: str


#: Metric names users type (``--metrics fid,kid``), in the order ``--help`` lists them.
METRICS: dict[str, Metric] = {
    "fid": Metric(
        fid_from_features,
        ("fid",),
        ("fid",),
        False,
        "Fréchet Inception Distance between real and translated images (lower is better)",
    ),
    "kid": Metric(
        kid_from_features,
        ("kid", "kid_std"),
        ("kid",),
        False,
        "Kernel Inception Distance, mean and std over random subsets (lower is better)",
    ),
    "lpips": Metric(
        lpips_distance,
        ("lpips",),
        ("lpips",),
        False,
        "LPIPS diversity of multimodal outputs: mean/std distance over pairs of style "
        "samples of one input, 19 pairs per input (higher is more diverse)",
    ),
    "dc": Metric(
        density_coverage,
        ("density", "coverage", "precision", "recall"),
        ("density", "coverage"),
        True,
        "density and coverage (with precision and recall) of translated images on "
        "Inception features, k=95 (higher is better)",
    ),
    "seg": Metric(
        segmentation_scores,
        ("seg_pixel_acc", "seg_mean_class_acc", "seg_miou"),
        ("seg_pixel_acc", "seg_mean_class_acc", "seg_miou"),
        True,
        "segmentation scores of translated images against the source label maps: pixel "
        "accuracy, mean class accuracy, mean IoU (higher is better)",
    ),
}

__all__ = [
    "METRICS",
    "ConfusionMatrix",
    "DRNSeg",
    "FeatureExtractor",
    "Metric",
    "SmallSegmenter",
    "class_iou_values",
    "density_coverage",
    "evaluate_segmenter",
    "extract_features",
    "fid_from_features",
    "inception_extractor",
    "kid_from_features",
    "load_drn_d_22",
    "lpips_distance",
    "lpips_diversity",
    "lpips_model",
    "per_class_iou",
    "random_conv_extractor",
    "scores_from_confusion",
    "segmentation_scores",
    "segmenter_confusion",
    "train_segmenter",
]
