"""Density and coverage (and precision and recall) of generated images, via the ``prdc`` package.

Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative Models" (ICML 2020). Each
real sample gets a ball reaching its k-th nearest real neighbour. *Density* counts how many real
balls contain each fake sample (divided by k, averaged; ~1 when fakes follow the real
distribution, can exceed 1); *coverage* is the fraction of real balls that hold at least one fake.
The public F-LSeSim evaluation uses k = 95 on 2048-d Inception features
(:func:`sesim.metrics.fid.inception_extractor` with :func:`sesim.metrics.fid.extract_features`).
"""

from __future__ import annotations

import contextlib
import io

from torch import Tensor

from sesim.errors import UserError
from sesim.metrics._common import require

DEFAULT_NEAREST_K = 95


def density_coverage(
    real_feats: Tensor, fake_feats: Tensor, nearest_k: int = DEFAULT_NEAREST_K
) -> dict[str, float]:
    """Precision, recall, density and coverage of fake features against real ones.

    Args:
        real_feats: (N, D) features of real images.
        fake_feats: (M, D) features of generated images.
        nearest_k: k of the k-nearest-neighbour balls (95 as in the public F-LSeSim script).
    Returns:
        ``{"precision", "recall", "density", "coverage"}`` as floats; precision, recall and
        coverage lie in [0, 1], density in [0, N/k].
    Raises:
        UserError: a set has fewer than k + 2 samples. (A sample's k-th neighbour needs k other
            samples; prdc's partial sort needs one more. Recall uses balls around the fakes,
            so the fake set needs them too.)
        ValueError: the sets are not (N, D) with the same D.
    """
    if nearest_k < 1:
        raise ValueError(f"nearest_k must be positive, got {nearest_k}")
    for name, feats in (("real", real_feats), ("fake", fake_feats)):
        if feats.dim() != 2:
            raise ValueError(f"{name} features must be (N, D), got shape {tuple(feats.shape)}")
    if real_feats.shape[1] != fake_feats.shape[1]:
        raise ValueError(
            f"real and fake features differ in size: {real_feats.shape[1]} vs "
            f"{fake_feats.shape[1]}; use the same extractor for both"
        )
    needed = nearest_k + 2
    if real_feats.shape[0] < needed or fake_feats.shape[0] < needed:
        raise UserError(
            f"density/coverage with k={nearest_k} needs at least {needed} real and {needed} fake "
            f"images, got {real_feats.shape[0]} real and {fake_feats.shape[0]} fake; "
            "use more images or a smaller k"
        )
    prdc = require("prdc")
    real_np = real_feats.detach().cpu().float().numpy()
    fake_np = fake_feats.detach().cpu().float().numpy()
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        scores = prdc.compute_prdc(real_np, fake_np, nearest_k=nearest_k)
    return {name: float(scores[name]) for name in ("precision", "recall", "density", "coverage")}
