"""Evaluation metrics: FID/KID, LPIPS diversity, density/coverage and segmentation scores.

Images follow sesim's convention throughout: (N, 3, H, W) float in [-1, 1]. Pretrained weights
(Inception for FID/KID/density-coverage, AlexNet for LPIPS, DRN-D-22 for Cityscapes) are read
from the torch hub cache (``$TORCH_HOME/hub/checkpoints/``) or from explicit paths and are never
downloaded; a missing file is a one-line :class:`sesim.errors.UserError` saying where to put it.
The third-party metric packages (torchmetrics, torch-fidelity, lpips, prdc) are imported only
when a metric runs.
"""

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
    evaluate_segmenter,
    load_drn_d_22,
    segmentation_scores,
    train_segmenter,
)

# Metric names users type (``--metrics fid,kid``), with what each one reports.
METRICS: dict[str, str] = {
    "fid": "Fréchet Inception Distance between real and translated images (lower is better)",
    "kid": "Kernel Inception Distance, mean and std over random subsets (lower is better)",
    "lpips": "LPIPS diversity of multimodal outputs: mean/std distance over pairs of style "
    "samples of one input, 19 pairs per input (higher is more diverse)",
    "dc": "density and coverage (with precision and recall) of translated images on "
    "Inception features, k=95 (higher is better)",
    "seg": "segmentation scores of translated images against the source label maps: pixel "
    "accuracy, mean class accuracy, mean IoU (higher is better)",
}

__all__ = [
    "METRICS",
    "ConfusionMatrix",
    "DRNSeg",
    "FeatureExtractor",
    "SmallSegmenter",
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
    "random_conv_extractor",
    "segmentation_scores",
    "train_segmenter",
]
