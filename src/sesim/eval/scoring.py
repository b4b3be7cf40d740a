"""Scoring translations: feature scores (FID, KID, density/coverage), LPIPS against paired
targets, segmentation against the inputs' label maps, and the networks these need."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from sesim.errors import UserError
from sesim.eval.sets import (
    ImageSet,
    Split,
    batches,
    load_image_set,
    load_label_maps,
    resize,
    size_text,
)
from sesim.metrics import (
    ConfusionMatrix,
    SmallSegmenter,
    class_iou_values,
    density_coverage,
    extract_features,
    fid_from_features,
    inception_extractor,
    kid_from_features,
    lpips_distance,
    lpips_model,
    random_conv_extractor,
    train_segmenter,
)
from sesim.runs import atomic_path
from sesim.translate import translate_batch

SEG_KEYS: tuple[str, ...] = ("pixel_acc", "mean_class_acc", "miou")

#: The IoU of class id k is stored as ``f"{SEG_CLASS_PREFIX}{k}"`` beside ``seg_miou``.
SEG_CLASS_PREFIX = "seg_iou_"

# Metrics computed on the features of the extractor.
FEATURE_METRICS: tuple[str, ...] = ("fid", "kid", "dc")

DEFAULT_SEG_STEPS = 300

SEG_WIDTH = 32

SEG_LEVELS = 2

SEG_SEED = 0

IGNORE_INDEX = 255

Values = dict[str, float | None]

# ---------------------------------------------------------------------------------------------
# Messages.


class Notices:
    """One-line notices on stderr, each printed once, without breaking progress bars."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, message: str) -> None:
        if message in self.seen:
            return
        self.seen.add(message)

        tqdm.write(f"notice: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Scores.


class _SegCounter:
    """Accumulates a segmenter's confusion matrix over batches of images and label maps."""

    def __init__(
        self, model: nn.Module, num_classes: int, size: tuple[int, int] | None = None
    ) -> None:
        self.model = model
        self.matrix = ConfusionMatrix(num_classes, IGNORE_INDEX)
        self.resized = False
        self.size = size

    @torch.no_grad()
    def update(self, images: Tensor, labels: Tensor) -> None:
        """Add (B, 3, H, W) images in [-1, 1] (on the model's device) and (B, H', W') labels.

        With a ``size`` (CUT's Cityscapes protocol: 128x256), images are resized to it
        (bilinear, anti-aliased) before the segmenter and labels to it (nearest) before
        counting."""
        if self.size is not None:
            if tuple(images.shape[-2:]) != self.size:
                images = F.interpolate(
                    images, size=self.size, mode="bilinear", antialias=True, align_corners=False
                )
            if tuple(labels.shape[-2:]) != self.size:
                labels = (
                    F.interpolate(labels[:, None].float(), size=self.size, mode="nearest")[:, 0]
                    .round()
                    .long()
                )
        logits = self.model(images)
        if tuple(logits.shape[-2:]) != tuple(labels.shape[-2:]):
            self.resized = True
            logits = F.interpolate(
                logits, size=labels.shape[-2:], mode="bilinear", align_corners=False
            )
        self.matrix.update(logits.argmax(1).cpu(), labels)

    def scores(self) -> Values:
        """``seg_pixel_acc``, ``seg_mean_class_acc``, ``seg_miou`` and the IoU of each class,
        ``seg_iou_<k>`` for class id k (None for a class neither labelled nor predicted, which
        ``seg_miou`` leaves out of its mean)."""
        values: Values = {f"seg_{k}": v for k, v in self.matrix.scores().items()}
        for k, iou in enumerate(class_iou_values(self.matrix.matrix)):
            values[f"{SEG_CLASS_PREFIX}{k}"] = iou
        return values


@dataclass
class Unavailable:
    """Why a score could not be computed.

    Attributes:
        short: what the table shows after ``n/a``, e.g. ``"needs 97 images"``.
        reason: the full one-line explanation, printed once.
    """

    short: str
    reason: str


def feature_scores(
    real: Tensor, fake: Tensor, metrics: Sequence[str], nearest_k: int
) -> tuple[Values, dict[str, Unavailable]]:
    """FID, KID and density/coverage of two feature sets; too small sets give ``None``.

    Args:
        real: (N, D) features of real images.
        fake: (M, D) features of translated images.
        metrics: which of ``fid``, ``kid``, ``dc`` to compute (others are ignored).
        nearest_k: k of density/coverage.
    Returns:
        ``(values, unavailable)``: values by column name (``None`` when not computable) and,
        for those, why.
    """
    values: Values = {}
    missing: dict[str, Unavailable] = {}

    def mark(columns: Sequence[str], needed: int, exc: UserError) -> None:
        for column in columns:
            values[column] = None
            missing[column] = Unavailable(f"needs {needed} images", str(exc))

    if "fid" in metrics:
        try:
            values["fid"] = fid_from_features(real, fake)
        except UserError as exc:
            mark(["fid"], 2, exc)
    if "kid" in metrics:
        try:
            values["kid"], values["kid_std"] = kid_from_features(real, fake)
        except UserError as exc:
            mark(["kid", "kid_std"], 2, exc)
    if "dc" in metrics:
        try:
            values.update(density_coverage(real, fake, nearest_k=nearest_k))
        except UserError as exc:
            mark(["density", "coverage", "precision", "recall"], nearest_k + 2, exc)
    return values, missing


@dataclass
class Scorer:
    """Everything that turns translations into scores, built once per evaluation.

    Attributes:
        metrics: the ``--metrics`` names in use.
        extractor: maps (B, 3, H, W) in [-1, 1] to (B, D) features, on ``device``; ``None``
            when no metric needs features.
        device: where networks run.
        batch_size: images per call.
        nearest_k: k of density/coverage.
        lpips: the LPIPS model, when ``lpips`` is in use.
        segmenter: maps images to (B, C, H, W) logits, when ``seg`` is in use.
        num_classes: C.
        seg_size: (H, W) that translations and label maps are resized to before the
            segmenter (CUT's Cityscapes protocol: (128, 256)); None keeps their size.
    """

    metrics: list[str]
    extractor: nn.Module | None
    device: torch.device
    batch_size: int
    nearest_k: int
    lpips: nn.Module | None = None
    segmenter: nn.Module | None = None
    num_classes: int = 0
    seg_size: tuple[int, int] | None = None

    def features(self, images: ImageSet) -> Tensor | None:
        """(N, D) float64 features of a set of images; ``None`` without an extractor."""
        if self.extractor is None:
            return None
        return extract_features(self.extractor, images.images, self.batch_size, self.device)


def score_generator(
    G: nn.Module, split: Split, scorer: Scorer, notice: Notices
) -> tuple[Values, dict[str, Unavailable]]:
    """Translate a split's inputs with ``G`` and score the translations.

    Inputs are batched by size (and by the sizes of their paired targets and label maps) and
    translated whole (padded to the generator's multiple and cropped back).

    Args:
        G: the generator, in eval mode on ``scorer.device``.
        split: the inputs and references; ``split.real_features`` must be set.
        scorer: metrics and networks.
        notice: prints resize notices once.
    Returns:
        ``(values, unavailable)`` as :func:`feature_scores`, with ``lpips`` and ``seg_*``.
    """
    use_lpips = scorer.lpips is not None and split.targets is not None
    use_seg = scorer.segmenter is not None and split.labels is not None
    inputs = split.inputs.images
    keys = [
        (
            tuple(x.shape),
            tuple(split.targets[i].shape) if use_lpips and split.targets else None,
            tuple(split.labels[i].shape) if use_seg and split.labels else None,
        )
        for i, x in enumerate(inputs)
    ]
    feats: list[Tensor] = []
    distances: list[Tensor] = []
    counter = None
    if use_seg and scorer.segmenter is not None:
        counter = _SegCounter(scorer.segmenter, scorer.num_classes, scorer.seg_size)
    fake_sizes: set[tuple[int, int]] = set()
    lpips_resized = False
    with torch.no_grad():
        for idx in batches(keys, scorer.batch_size):
            x = torch.stack([inputs[i] for i in idx]).to(scorer.device)
            fake = translate_batch(G, x).float().clamp(-1.0, 1.0)
            fake_sizes.add((int(fake.shape[2]), int(fake.shape[3])))
            if scorer.extractor is not None:
                feats.append(
                    extract_features(scorer.extractor, fake, scorer.batch_size, scorer.device)
                )
            if use_lpips and scorer.lpips is not None and split.targets is not None:
                target = torch.stack([split.targets[i] for i in idx]).to(scorer.device)
                size = (int(target.shape[2]), int(target.shape[3]))
                lpips_resized |= tuple(fake.shape[-2:]) != size
                dist = lpips_distance(scorer.lpips, resize(fake, size).clamp(-1, 1), target)
                distances.append(dist.to("cpu", torch.float64))
            if counter is not None and split.labels is not None:
                counter.update(fake, torch.stack([split.labels[i] for i in idx]))
    real_sizes = split.reals.sizes()
    if feats and fake_sizes != real_sizes:
        side = getattr(scorer.extractor, "input_size", None)
        into = f"{side}x{side}" if side else "its input size"
        notice(
            f"{split.name}: translations are {size_text(fake_sizes)} but the real targets are "
            f"{size_text(real_sizes)} (WxH); the feature extractor resizes both to {into} "
            "(anti-aliased bilinear) before comparing them"
        )
    if lpips_resized:
        notice(
            f"{split.name}: translations differ in size from their paired targets; each is "
            "resized to its target's size (anti-aliased bilinear) for lpips"
        )
    if counter is not None and counter.resized:
        notice(
            f"{split.name}: translations differ in size from the input label maps; the "
            "segmenter's logits are resized to the label size (bilinear) for seg"
        )

    values: Values = {}
    missing: dict[str, Unavailable] = {}
    if feats and split.real_features is not None:
        values, missing = feature_scores(
            split.real_features, torch.cat(feats), scorer.metrics, scorer.nearest_k
        )
    if distances:
        values["lpips"] = float(torch.cat(distances).mean())
    if counter is not None:
        values.update(counter.scores())
    return values, missing


# ---------------------------------------------------------------------------------------------
# Networks of the metrics.


def make_extractor(
    kind: str, weights: Path | None, device: torch.device, metrics: Sequence[str]
) -> nn.Module | None:
    """The feature extractor of fid/kid/dc, on ``device``; ``None`` when none of them is used.

    Raises:
        UserError: ``inception`` without its weights file (one line naming it).
    """
    if not any(m in FEATURE_METRICS for m in metrics):
        return None
    if kind == "random":
        return random_conv_extractor(seed=0, dim=64).to(device)
    return inception_extractor(weights).to(device)


def make_lpips(extractor: str, weights: Path | None, device: torch.device) -> nn.Module:
    """LPIPS (AlexNet), with a random backbone only for ``--extractor random`` smoke tests."""
    random_backbone = extractor == "random" and weights is None
    # A random backbone is seeded so that smoke-test numbers repeat (global RNG untouched).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = lpips_model(weights, random_backbone=random_backbone)
    return model.to(device)


def small_segmenter(
    root: Path,
    train_split: str,
    num_classes: int,
    steps: int,
    out: Path,
    device: torch.device,
    quiet: bool,
    notice: Notices,
) -> nn.Module:
    """A :class:`SmallSegmenter` fitted to ``root/train_split`` and its label maps, cached.

    The cache ``out/segmenter.pt`` holds the weights and a key (the dataset's resolved path,
    the split, the class count and the training settings); it is reused while the key matches.

    Args:
        root: the dataset folder (with ``labels/<train_split>/``).
        train_split: the real target-domain training images, ``trainB`` or ``trainA``.
        num_classes: C, from ``meta.json``.
        steps: optimiser steps.
        out: the evaluation folder.
        device: where to train and run it.
        quiet: no progress bar.
        notice: prints whether the cache was used.
    Returns:
        The segmenter, in eval mode on ``device``.
    """
    cache = out / "segmenter.pt"
    key = {
        "dataset": str(root.resolve()),
        "split": train_split,
        "num_classes": num_classes,
        "steps": steps,
        "width": SEG_WIDTH,
        "levels": SEG_LEVELS,
        "seed": SEG_SEED,
    }
    model = SmallSegmenter(num_classes, width=SEG_WIDTH, levels=SEG_LEVELS)
    if cache.is_file():
        try:
            saved = torch.load(cache, map_location="cpu", weights_only=True)
        except Exception:  # a corrupt or foreign file is replaced below
            saved = None
        if isinstance(saved, dict) and saved.get("key") == key:
            model.load_state_dict(saved["state_dict"])
            notice(f"reusing the segmenter trained on {root / train_split} from {cache}")
            return model.to(device).eval()
    images = load_image_set(
        root / train_split, f"real target-domain training images ({train_split}/)"
    )
    labels = load_label_maps(root / "labels" / train_split, images.names)
    if len(images.sizes()) > 1:
        raise UserError(
            f"the images in {root / train_split} differ in size ({size_text(images.sizes())}); "
            "the segmenter is trained on images of one size"
        )
    notice(f"training a segmenter on {len(images.names)} images of {root / train_split}")
    model = train_segmenter(
        torch.stack(images.images),
        torch.stack(labels),
        num_classes,
        steps=steps,
        width=SEG_WIDTH,
        levels=SEG_LEVELS,
        seed=SEG_SEED,
        ignore_index=IGNORE_INDEX,
        device=device,
        progress=not quiet,
    )
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(cache) as tmp:
        torch.save({"key": key, "state_dict": state}, tmp)
    return model


def segmentation_yardstick(split: Split, scorer: Scorer) -> Values | None:
    """The segmenter's scores on the real target images (what a perfect translation reaches),
    with the IoU of each class as :meth:`_SegCounter.scores` gives them."""
    if scorer.segmenter is None or split.real_labels is None:
        return None
    counter = _SegCounter(scorer.segmenter, scorer.num_classes, scorer.seg_size)
    reals = split.reals.images
    keys = [(tuple(x.shape), tuple(y.shape)) for x, y in zip(reals, split.real_labels)]
    for idx in batches(keys, scorer.batch_size):
        images = torch.stack([reals[i] for i in idx]).to(scorer.device)
        counter.update(images, torch.stack([split.real_labels[i] for i in idx]))
    return counter.scores()
