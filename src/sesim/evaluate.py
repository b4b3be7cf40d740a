"""``sesim eval``: score a run's checkpoints, or any two image folders, with the metrics.

Two modes:

``sesim eval --run RUN_DIR``
    Each saved checkpoint (all of them, every K-th, or chosen steps) translates the run's test
    inputs (``testA/``, or ``testB/`` for a ``BtoA`` run) at their own size, and the
    translations are scored against the real target-domain test images (``testB/`` or
    ``testA/``):

    - ``fid``, ``kid`` (lower is better) and ``dc`` (density and coverage, higher is better) on
      the features of one extractor: the FID Inception-v3, or a fixed random conv net that is
      only good for smoke tests;
    - ``lpips`` (lower is better): the mean LPIPS distance between each translation and its
      paired real target. Only paired test sets have one (the synthetic datasets, whose
      ``testA/x.png`` and ``testB/x.png`` show one scene); other runs skip it with a notice;
    - ``seg`` (higher is better): a segmenter labels the translations and its maps are compared
      with the label maps of the *inputs* (pixel accuracy, mean class accuracy, mean IoU). On
      the synthetic datasets a :class:`~sesim.metrics.SmallSegmenter` is trained on the real
      target-domain training images (cached as ``OUT/segmenter.pt``); its score on the real
      target test images is reported as the yardstick. With ``--seg-weights`` the Cityscapes
      DRN-D-22 is used instead.

    Written to ``OUT`` (default ``RUN/eval``): ``metrics.json``, ``metrics.csv`` and one PNG
    per metric over training steps. A table of the last checkpoint and the best one per score is
    printed, with the run's training peak memory and median step time. The best checkpoint is
    chosen on the test set itself unless ``--select-on DIR`` names a held-out split; the table
    says which.

``sesim eval --real DIR --fake DIR``
    FID, KID and density/coverage between two folders (and LPIPS when every fake image has a
    real one with the same file stem), so outputs of other tools are scored the same way.

Sizes are never matched silently. The feature extractor resizes every image to its own input
(299x299 for Inception, 64x64 for the random extractor; anti-aliased bilinear), so sets of
different sizes are compared after that resize. For LPIPS a translation is resized to its
target's size (anti-aliased bilinear); for ``seg`` the segmenter's logits are resized to the
label map's size (bilinear). Each of these prints one line when it happens.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from sesim.data.images import filter_images, list_images, load_rgb, to_tensor
from sesim.devices import resolve_device
from sesim.errors import UserError
from sesim.metrics import (
    METRICS,
    ConfusionMatrix,
    SmallSegmenter,
    density_coverage,
    extract_features,
    fid_from_features,
    inception_extractor,
    kid_from_features,
    load_drn_d_22,
    lpips_distance,
    lpips_model,
    random_conv_extractor,
    train_segmenter,
)
from sesim.metrics.prdc import DEFAULT_NEAREST_K
from sesim.multimodal_eval import (
    MULTIMODAL_COLUMNS,
    MULTIMODAL_SCORES,
    MultimodalSettings,
    make_diversity_lpips,
    multimodal_scores,
)
from sesim.runs import (
    atomic_path,
    atomic_write,
    config_of,
    list_checkpoints,
    load_checkpoint,
    load_generator,
    write_json,
)
from sesim.translate import translate_batch

#: The metrics in the order of the stored columns and of the table's rows.
_COLUMN_ORDER: tuple[str, ...] = ("fid", "kid", "dc", "lpips", "seg")
# Ranked scores: the metric (the ``--metrics`` name) each belongs to, and whether higher is better.
SCORES: dict[str, tuple[str, bool]] = {
    **{
        column: (name, METRICS[name].higher_is_better)
        for name in _COLUMN_ORDER
        for column in METRICS[name].ranked
    },
    **MULTIMODAL_SCORES,
}
# Every stored column, in file order (kid_std, precision and recall are stored, not ranked).
COLUMNS: tuple[str, ...] = (
    *(column for name in _COLUMN_ORDER for column in METRICS[name].columns),
    *MULTIMODAL_COLUMNS,
)
SEG_KEYS: tuple[str, ...] = ("pixel_acc", "mean_class_acc", "miou")
# Metrics computed on the features of the extractor.
FEATURE_METRICS: tuple[str, ...] = ("fid", "kid", "dc")
DEFAULT_SEG_STEPS = 300
SEG_WIDTH = 32
SEG_SEED = 0
IGNORE_INDEX = 255
_NOTHING_LEFT = (
    "none of the requested metrics can be computed here (see the notices above); choose "
    "others with --metrics"
)
TEST_SET = "test set"
HELD_OUT = "held-out split"

Values = dict[str, float | None]


# ---------------------------------------------------------------------------------------------
# Options.


@dataclass(frozen=True)
class EvalOptions:
    """What ``sesim eval`` scores and how (one field per flag; see the module docstring).

    Attributes:
        run: a training run whose checkpoints are scored (or None with ``real``/``fake``).
        real: folder of real target-domain images (with ``fake``).
        fake: folder of translated images scored against ``real``.
        every: score every K-th checkpoint (always with the last).
        checkpoints: comma-separated training steps to score.
        select_on: a held-out dataset used only to choose the best checkpoint.
        data: the run's dataset folder, when it has moved.
        metrics: comma-separated metric names (None: the defaults of the mode).
        extractor: ``inception`` or ``random`` (smoke tests only).
        inception_weights: the FID Inception weights file.
        lpips_weights: torchvision's AlexNet weights for LPIPS.
        seg_weights: the Cityscapes DRN-D-22 weights (instead of a small segmenter).
        seg_labels: label maps of the test inputs.
        seg_steps: training steps of the small segmenter.
        nearest_k: k of density/coverage.
        max_images: use only the first N images of each folder.
        batch_size: images per generator / extractor call.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        out: the output folder (default ``RUN/eval`` or ``./eval_<fake folder>``).
        quiet: no progress bars.
    """

    run: Path | None = None
    real: Path | None = None
    fake: Path | None = None
    every: int | None = None
    checkpoints: str | None = None
    select_on: Path | None = None
    data: Path | None = None
    metrics: str | None = None
    extractor: str = "inception"
    inception_weights: Path | None = None
    lpips_weights: Path | None = None
    seg_weights: Path | None = None
    seg_labels: Path | None = None
    seg_steps: int = DEFAULT_SEG_STEPS
    nearest_k: int = DEFAULT_NEAREST_K
    max_images: int | None = None
    batch_size: int = 16
    device: str = "auto"
    out: Path | None = None
    quiet: bool = False


def _check_mode(opts: EvalOptions) -> None:
    """Refuse mixed or incomplete modes, and flags that do not apply to the chosen mode."""
    folders = opts.real is not None or opts.fake is not None
    if opts.run is not None and folders:
        raise UserError(
            "--run scores a run's checkpoints and --real/--fake two image folders: give one "
            "of the two"
        )
    if opts.run is None and not folders:
        raise UserError("nothing to score: give --run RUN_DIR, or --real DIR --fake DIR")
    if folders and (opts.real is None or opts.fake is None):
        given, missing = ("--real", "--fake") if opts.fake is None else ("--fake", "--real")
        raise UserError(f"{given} needs {missing} too: give --real DIR --fake DIR")
    if folders:
        run_only = [
            flag
            for flag, value in (
                ("--every", opts.every),
                ("--checkpoints", opts.checkpoints),
                ("--select-on", opts.select_on),
                ("--data", opts.data),
                ("--seg-weights", opts.seg_weights),
                ("--seg-labels", opts.seg_labels),
            )
            if value is not None
        ]
        if run_only:
            verb = "applies" if len(run_only) == 1 else "apply"
            raise UserError(
                f"{', '.join(run_only)} only {verb} to --run; drop it with --real/--fake"
            )
    if opts.every is not None and opts.checkpoints is not None:
        raise UserError("give --every K or --checkpoints STEP,STEP, not both")


def parse_metrics(text: str) -> list[str]:
    """Metric names of a ``--metrics`` value, checked against :data:`sesim.metrics.METRICS`.

    Args:
        text: comma-separated names, e.g. ``"fid,kid"``.
    Returns:
        The names in the order given, without duplicates.
    Raises:
        UserError: an unknown name, or none at all.
    """
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        if name not in METRICS:
            raise UserError(f"unknown metric {raw.strip()!r}; choose from {', '.join(METRICS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise UserError(f"--metrics names no metric; choose from {', '.join(METRICS)}")
    return names


# ---------------------------------------------------------------------------------------------
# Messages.


class _Notices:
    """One-line notices on stderr, each printed once, without breaking progress bars."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, message: str) -> None:
        if message in self.seen:
            return
        self.seen.add(message)
        from tqdm import tqdm

        tqdm.write(f"notice: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Images and label maps.


@dataclass
class ImageSet:
    """The images of one folder, loaded at their own size.

    Attributes:
        folder: where they come from.
        names: file paths relative to ``folder`` (posix), sorted.
        images: (3, H, W) float32 images in [-1, 1], one per name.
    """

    folder: Path
    names: list[str]
    images: list[Tensor]

    def sizes(self) -> set[tuple[int, int]]:
        """The distinct (H, W) sizes."""
        return {(int(x.shape[1]), int(x.shape[2])) for x in self.images}


def load_image_set(folder: Path, what: str, max_images: int | None = None) -> ImageSet:
    """Read every image of a folder (recursively, sorted by name) as (3, H, W) tensors.

    Args:
        folder: the folder.
        what: what it should hold, for error messages.
        max_images: keep only the first N files.
    Raises:
        UserError: the folder is missing, empty or unreadable.
    """
    paths = filter_images(list_images(folder, what), str(folder))
    if max_images is not None:
        paths = paths[:max_images]
    names = [p.relative_to(folder).as_posix() for p in paths]
    return ImageSet(folder, names, [to_tensor(load_rgb(p)) for p in paths])


def load_label_maps(folder: Path, names: Sequence[str]) -> list[Tensor]:
    """Read the label map of each named image: ``folder/<name>`` or ``folder/<stem>.png``.

    Args:
        folder: label maps, single-channel PNGs of class ids (255 = ignore).
        names: image names relative to their folder.
    Returns:
        (H, W) int64 class ids, one per name.
    Raises:
        UserError: a label map is missing or has several channels.
    """
    labels = []
    for name in names:
        path = folder / name
        if not path.is_file():
            path = path.with_suffix(".png")
        if not path.is_file():
            raise UserError(
                f"label map {folder / name} is missing: {folder} needs one single-channel PNG "
                "of class ids per image, with the image's name"
            )
        with Image.open(path) as img:
            arr = np.asarray(img)
        if arr.ndim != 2:
            raise UserError(
                f"label map {path} has shape {arr.shape}: expected one channel of class ids "
                "(uint8 PNG, mode L or P)"
            )
        labels.append(torch.from_numpy(arr.astype(np.int64)))
    return labels


def _size_text(sizes: set[tuple[int, int]]) -> str:
    ordered = sorted(sizes)
    text = ", ".join(f"{w}x{h}" for h, w in ordered[:3])
    return text + (f" (+{len(ordered) - 3} more)" if len(ordered) > 3 else "")


def _batches(keys: Sequence[object], batch_size: int) -> list[list[int]]:
    """Indices grouped by key (first-seen order), in chunks of at most ``batch_size``."""
    groups: dict[object, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return [
        idx[start : start + batch_size]
        for idx in groups.values()
        for start in range(0, len(idx), batch_size)
    ]


def _resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    """(N, 3, H, W) -> (N, 3, *size), anti-aliased bilinear; unchanged when the size matches."""
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


# ---------------------------------------------------------------------------------------------
# Scores.


class _SegCounter:
    """Accumulates a segmenter's confusion matrix over batches of images and label maps."""

    def __init__(self, model: nn.Module, num_classes: int) -> None:
        self.model = model
        self.matrix = ConfusionMatrix(num_classes, IGNORE_INDEX)
        self.resized = False

    @torch.no_grad()
    def update(self, images: Tensor, labels: Tensor) -> None:
        """Add (B, 3, H, W) images in [-1, 1] (on the model's device) and (B, H', W') labels."""
        logits = self.model(images)
        if tuple(logits.shape[-2:]) != tuple(labels.shape[-2:]):
            self.resized = True
            logits = F.interpolate(
                logits, size=labels.shape[-2:], mode="bilinear", align_corners=False
            )
        self.matrix.update(logits.argmax(1).cpu(), labels)

    def scores(self) -> dict[str, float]:
        """``seg_pixel_acc``, ``seg_mean_class_acc``, ``seg_miou``."""
        return {f"seg_{k}": v for k, v in self.matrix.scores().items()}


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
    """

    metrics: list[str]
    extractor: nn.Module | None
    device: torch.device
    batch_size: int
    nearest_k: int
    lpips: nn.Module | None = None
    segmenter: nn.Module | None = None
    num_classes: int = 0

    def features(self, images: ImageSet) -> Tensor | None:
        """(N, D) float64 features of a set of images; ``None`` without an extractor."""
        if self.extractor is None:
            return None
        return extract_features(self.extractor, images.images, self.batch_size, self.device)


@dataclass
class Split:
    """Test inputs and what their translations are compared with.

    Attributes:
        name: :data:`TEST_SET` or :data:`HELD_OUT`.
        root: the dataset folder.
        inputs: source-domain images, translated by each checkpoint.
        reals: real target-domain images.
        targets: for paired sets, the real target of each input (same order), else ``None``.
        labels: (H, W) int64 class ids of each input, else ``None``.
        real_labels: (H, W) class ids of each real image, for the segmenter's yardstick.
        real_features: (N, D) features of ``reals``, filled in once.
    """

    name: str
    root: Path
    inputs: ImageSet
    reals: ImageSet
    targets: list[Tensor] | None = None
    labels: list[Tensor] | None = None
    real_labels: list[Tensor] | None = None
    real_features: Tensor | None = field(default=None, repr=False)


def score_generator(
    G: nn.Module, split: Split, scorer: Scorer, notice: _Notices
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
        counter = _SegCounter(scorer.segmenter, scorer.num_classes)
    fake_sizes: set[tuple[int, int]] = set()
    lpips_resized = False
    with torch.no_grad():
        for idx in _batches(keys, scorer.batch_size):
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
                dist = lpips_distance(scorer.lpips, _resize(fake, size).clamp(-1, 1), target)
                distances.append(dist.to("cpu", torch.float64))
            if counter is not None and split.labels is not None:
                counter.update(fake, torch.stack([split.labels[i] for i in idx]))
    real_sizes = split.reals.sizes()
    if feats and fake_sizes != real_sizes:
        side = getattr(scorer.extractor, "input_size", None)
        into = f"{side}x{side}" if side else "its input size"
        notice(
            f"{split.name}: translations are {_size_text(fake_sizes)} but the real targets are "
            f"{_size_text(real_sizes)} (WxH); the feature extractor resizes both to {into} "
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
    notice: _Notices,
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
        "seed": SEG_SEED,
    }
    model = SmallSegmenter(num_classes, width=SEG_WIDTH)
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
            f"the images in {root / train_split} differ in size ({_size_text(images.sizes())}); "
            "the segmenter is trained on images of one size"
        )
    notice(f"training a segmenter on {len(images.names)} images of {root / train_split}")
    model = train_segmenter(
        torch.stack(images.images),
        torch.stack(labels),
        num_classes,
        steps=steps,
        width=SEG_WIDTH,
        seed=SEG_SEED,
        ignore_index=IGNORE_INDEX,
        device=device,
        progress=not quiet,
    )
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(cache) as tmp:
        torch.save({"key": key, "state_dict": state}, tmp)
    return model


def segmentation_yardstick(split: Split, scorer: Scorer) -> dict[str, float] | None:
    """The segmenter's scores on the real target images (what a perfect translation reaches)."""
    if scorer.segmenter is None or split.real_labels is None:
        return None
    counter = _SegCounter(scorer.segmenter, scorer.num_classes)
    reals = split.reals.images
    keys = [(tuple(x.shape), tuple(y.shape)) for x, y in zip(reals, split.real_labels)]
    for idx in _batches(keys, scorer.batch_size):
        images = torch.stack([reals[i] for i in idx]).to(scorer.device)
        counter.update(images, torch.stack([split.real_labels[i] for i in idx]))
    return counter.scores()


# ---------------------------------------------------------------------------------------------
# Datasets of a run.


def _splits(direction: str) -> tuple[str, str]:
    """(input split, target split) of the test set."""
    return ("testA", "testB") if direction == "AtoB" else ("testB", "testA")


def _read_meta(root: Path) -> dict[str, Any]:
    path = root / "meta.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def load_split(
    root: Path,
    direction: str,
    name: str,
    max_images: int | None,
    labels_dir: Path | None,
    with_targets: bool,
) -> Split:
    """The test inputs, real targets and (when present) label maps of a CycleGAN-layout folder.

    Args:
        root: the dataset folder.
        direction: ``AtoB`` (inputs from ``testA/``) or ``BtoA`` (inputs from ``testB/``).
        name: :data:`TEST_SET` or :data:`HELD_OUT`, for messages.
        max_images: keep only the first N inputs and the first N real images.
        labels_dir: label maps of the inputs; ``None`` or a missing folder: none. With a
            folder, the real images' label maps (``root/labels/<target split>/``) are read too,
            when present, for the segmenter's yardstick.
        with_targets: pair inputs with real targets by name, when ``meta.json`` says the test
            set is paired (the synthetic datasets).
    """
    src, dst = _splits(direction)
    layout = "(the CycleGAN layout trainA/ trainB/ testA/ testB/)"
    inputs = load_image_set(root / src, f"test inputs of the {name} {layout}", max_images)
    reals = load_image_set(root / dst, f"real test images of the {name} {layout}", max_images)
    split = Split(name, root, inputs, reals)
    if with_targets and "pairing" in _read_meta(root):
        index = {n: i for i, n in enumerate(reals.names)}
        if all(n in index for n in inputs.names):
            split.targets = [reals.images[index[n]] for n in inputs.names]
    if labels_dir is not None and labels_dir.is_dir():
        split.labels = load_label_maps(labels_dir, inputs.names)
        if (root / "labels" / dst).is_dir():
            split.real_labels = load_label_maps(root / "labels" / dst, reals.names)
    return split


def _select_checkpoints(
    run: Path, ckpts: list[Path], every: int | None, chosen: str | None
) -> list[Path]:
    """All checkpoints, every K-th (with the last), or those of the chosen steps."""
    steps = {int(p.stem.removeprefix("step_")): p for p in ckpts}
    if chosen is not None:
        wanted: list[int] = []
        for raw in chosen.split(","):
            text = raw.strip().removeprefix("step_").removesuffix(".pt")
            if not text:
                continue
            try:
                wanted.append(int(text))
            except ValueError:
                raise UserError(
                    f"--checkpoints takes training steps such as 500,1000; got {raw.strip()!r}"
                ) from None
        if not wanted:
            raise UserError("--checkpoints names no step; give e.g. --checkpoints 500,1000")
        absent = [s for s in wanted if s not in steps]
        if absent:
            have = ", ".join(str(s) for s in sorted(steps))
            raise UserError(
                f"no checkpoint of step {absent[0]} in {run / 'checkpoints'} (saved: {have})"
            )
        return [steps[s] for s in sorted(set(wanted))]
    if every is not None:
        picked = ckpts[every - 1 :: every]
        if ckpts[-1] not in picked:
            picked.append(ckpts[-1])
        return picked
    return ckpts


def training_stats(run: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Peak memory and median step time of a run's training.

    From ``RUN/train_summary.json`` (written when a run finishes), else from the step times and
    peak memory kept in the newest checkpoint's history.

    Args:
        run: the run folder.
        state: its newest checkpoint.
    Returns:
        ``{"peak_memory_bytes", "median_step_ms", "device", "source"}``; unknown values are
        ``None``. A peak of 0 bytes means no CUDA memory was recorded (a CPU run).
    """
    summary = run / "train_summary.json"
    if summary.is_file():
        try:
            data = json.loads(summary.read_text())
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            return {
                "peak_memory_bytes": _bytes(data.get("peak_memory_bytes")),
                "median_step_ms": _finite(data.get("median_step_ms")),
                "device": data.get("device"),
                "source": summary.name,
            }
    history = state.get("history") or {}
    times = [float(t) for t in history.get("step_times") or []]
    return {
        "peak_memory_bytes": _bytes(history.get("peak_memory")),
        "median_step_ms": 1000 * statistics.median(times) if times else None,
        "device": None,
        "source": f"history in checkpoint step {int(state['step'])} (the run has no "
        "train_summary.json yet)",
    }


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _bytes(value: Any) -> int | None:
    number = _finite(value)
    return None if number is None else int(number)


def _training_line(stats: dict[str, Any]) -> str:
    peak = stats["peak_memory_bytes"]
    if peak is None:
        memory = "peak memory unknown"
    elif peak == 0:
        memory = "peak GPU memory n/a (no CUDA memory recorded: a CPU run)"
    else:
        memory = f"peak GPU memory {peak / 2**30:.2f} GiB"
    ms = stats["median_step_ms"]
    step = "median step time unknown" if ms is None else f"median step {ms:.1f} ms"
    device = f" on {stats['device']}" if stats.get("device") else ""
    return f"training{device}: {memory}, {step} (from {stats['source']})"


# ---------------------------------------------------------------------------------------------
# Best checkpoints, tables, files.


def _fmt(column: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if column == "fid":
        return f"{value:.2f}"
    if column.startswith("kid"):
        return f"{value:.4f}"
    return f"{value:.3f}"


def _label(column: str) -> str:
    return f"{column} ({'higher' if SCORES[column][1] else 'lower'})"


def _present(values: dict[int, Values], column: str) -> dict[int, float]:
    """Steps where ``column`` has a value, with that value."""
    found: dict[int, float] = {}
    for step, row in values.items():
        value = row.get(column)
        if value is not None:
            found[step] = value
    return found


def best_checkpoints(
    results: dict[int, Values], selection: dict[int, Values], selected_on: str
) -> dict[str, dict[str, Any]]:
    """The best step per ranked score, chosen on ``selection``, reported from ``results``.

    Args:
        results: test-set values by step.
        selection: the values the choice is made on (the test set or a held-out split).
        selected_on: what ``selection`` is, stored with each choice.
    Returns:
        ``{score: {"step", "value", "selected_on"[, "selection_value"]}}`` for every ranked score
        with a value at some step. Ties go to the later step.
    """
    best: dict[str, dict[str, Any]] = {}
    columns = {c for values in results.values() for c in values if c in SCORES}
    for column in [c for c in SCORES if c in columns]:
        higher = SCORES[column][1]
        where = selected_on
        candidates = _present(selection, column)
        if not candidates and selection is not results:
            # Not computable on the held-out split (no labels or no pairs): the test set decides.
            candidates = _present(results, column)
            where = TEST_SET
        if not candidates:
            continue
        sign = 1.0 if higher else -1.0
        step = max(candidates, key=lambda s: (sign * candidates[s], s))
        entry: dict[str, Any] = {"step": step, "value": results[step].get(column)}
        entry["selected_on"] = where
        if where != TEST_SET:
            entry["selection_value"] = candidates[step]
        best[column] = entry
    return best


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; a rule under the first row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_table(
    last_step: int,
    last: Values,
    best: dict[str, dict[str, Any]],
    missing: dict[str, Unavailable],
    held_out: bool,
) -> str:
    """Rows = ranked scores; columns = the last checkpoint and the best one per score."""
    chosen = "(chosen on held-out split)" if held_out else "(chosen on the test set)"
    rows = [["metric", f"last (step {last_step})", f"best {chosen}"]]
    for column in SCORES:
        if column not in last:
            continue
        if last[column] is None and column in missing:
            na = f"n/a ({missing[column].short})"
            rows.append([_label(column), na, na])
            continue
        value = _fmt(column, last[column])
        if column == "kid" and last.get("kid_std") is not None:
            value += f" +/- {_fmt('kid', last['kid_std'])}"
        entry = best.get(column)
        if entry is None:
            cell = "n/a"
        else:
            cell = f"{_fmt(column, entry['value'])} (step {entry['step']})"
            if held_out and entry["selected_on"] == TEST_SET:
                cell += " (chosen on the test set: not computable on the held-out split)"
        rows.append([_label(column), value, cell])
    return format_table(rows)


def write_csv(header: Sequence[str], rows: Sequence[Sequence[Any]], path: Path) -> None:
    """Write a CSV file atomically; ``None`` cells are left empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    atomic_write(path, buffer.getvalue())


def plot_metric(
    metric: str,
    results: dict[int, Values],
    heldout: dict[int, Values] | None,
    best: dict[str, dict[str, Any]],
    yardstick: dict[str, float] | None,
    path: Path,
) -> bool:
    """Draw one metric's scores over training steps as a PNG (matplotlib, no GUI backend).

    Held-out values are dashed, the best checkpoint of each score is a star, and the
    segmenter's yardstick (its scores on real images) a dotted line.

    Returns:
        Whether a figure was written (False when no step has a value).
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    columns = [c for c in COLUMNS if c in SCORES and SCORES[c][0] == metric]
    fig = Figure(figsize=(8.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    drawn = False
    for column in columns:
        present = _present(results, column)
        if not present:
            continue
        drawn = True
        xs = sorted(present)
        ys = [present[s] for s in xs]
        (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=column)
        color = line.get_color()
        if column == "kid":
            std = [float(results[s].get("kid_std") or 0.0) for s in xs]
            low = [y - d for y, d in zip(ys, std)]
            high = [y + d for y, d in zip(ys, std)]
            ax.fill_between(xs, low, high, color=color, alpha=0.2, linewidth=0)
        if heldout is not None:
            held = _present(heldout, column)
            if held:
                hx = sorted(held)
                hy = [held[s] for s in hx]
                ax.plot(hx, hy, linestyle="--", color=color, label=f"{column} (held-out)")
        entry = best.get(column)
        if entry is not None and entry["value"] is not None:
            ax.plot([entry["step"]], [entry["value"]], marker="*", markersize=12, color=color)
        if yardstick is not None and column in yardstick:
            ax.axhline(
                yardstick[column], linestyle=":", color=color, label=f"{column} of real images"
            )
    if not drawn:
        return False
    better = "higher" if SCORES[columns[0]][1] else "lower"
    ax.set_title(f"{metric}: {better} is better; star = best checkpoint")
    ax.set_xlabel("training step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return True


# ---------------------------------------------------------------------------------------------
# The command.


def evaluate(opts: EvalOptions) -> int:
    """Run ``sesim eval`` (see the module docstring); returns the exit status."""
    _check_mode(opts)
    if opts.metrics is not None:
        parse_metrics(opts.metrics)  # a typo fails before any work
    if opts.run is not None:
        return evaluate_run(opts)
    return evaluate_folders(opts)


def evaluate_run(opts: EvalOptions) -> int:
    """``sesim eval --run RUN_DIR``: score checkpoints, write OUT, print the table."""
    from tqdm import tqdm

    notice = _Notices()
    run = opts.run
    if run is None:
        raise UserError("nothing to score: give --run RUN_DIR")
    if not run.is_dir():
        raise UserError(f"run folder {run} does not exist; give the --out folder of a training run")
    ckpts = list_checkpoints(run)
    if not ckpts:
        raise UserError(f"{run} holds no checkpoint yet (looked in {run / 'checkpoints'})")
    chosen = _select_checkpoints(run, ckpts, opts.every, opts.checkpoints)
    newest = load_checkpoint(ckpts[-1])
    cfg = config_of(newest)
    root = opts.data if opts.data is not None else Path(cfg.data.root)
    if not root.is_dir():
        raise UserError(
            f"the run's dataset {root} does not exist (moved?); pass its folder with --data DIR"
        )
    direction = cfg.data.direction
    src, dst = _splits(direction)
    labels_dir = opts.seg_labels if opts.seg_labels is not None else root / "labels" / src
    if opts.metrics is not None:
        metrics = parse_metrics(opts.metrics)
    else:
        metrics = ["fid", "kid", "dc"] + (["seg"] if labels_dir.is_dir() else [])
    out: Path = opts.out if opts.out is not None else run / "eval"
    device = resolve_device(opts.device)

    # Networks of the metrics first: a missing weights file fails before any work is done.
    extractor = make_extractor(opts.extractor, opts.inception_weights, device, metrics)
    scorer = Scorer(metrics, extractor, device, opts.batch_size, opts.nearest_k)
    seg_labels = labels_dir if "seg" in metrics else None
    test = load_split(root, direction, TEST_SET, opts.max_images, seg_labels, "lpips" in metrics)
    if "lpips" in metrics:
        if test.targets is None:
            notice(
                f"lpips skipped: the test set of {root} is not paired (no meta.json pairing "
                "testA/ and testB/ by name); lpips compares each translation with its real "
                "counterpart"
            )
            metrics.remove("lpips")
        else:
            scorer.lpips = make_lpips(opts.extractor, opts.lpips_weights, device)
    yardstick = None
    if "seg" in metrics:
        _setup_segmentation(opts, scorer, root, direction, labels_dir, test, out, notice)
        if scorer.segmenter is None:
            metrics.remove("seg")
        else:
            yardstick = segmentation_yardstick(test, scorer)
            if yardstick is None:
                notice(
                    f"no segmenter yardstick: {root / 'labels' / dst} (label maps of the real "
                    "target images) does not exist"
                )

    if not metrics:
        raise UserError(_NOTHING_LEFT)

    held: Split | None = None
    if opts.select_on is not None:
        held_labels = opts.select_on / "labels" / src
        held = load_split(
            opts.select_on,
            direction,
            HELD_OUT,
            opts.max_images,
            held_labels if "seg" in metrics else None,
            "lpips" in metrics,
        )
        held.real_features = scorer.features(held.reals)
        if "seg" in metrics and held.labels is None:
            notice(f"seg on the held-out split needs {held_labels}; seg is chosen on the test set")
        if "lpips" in metrics and held.targets is None:
            notice("the held-out split is not paired; lpips is chosen on the test set")
    test.real_features = scorer.features(test.reals)
    mm_lpips = None
    if cfg.mode == "multimodal":
        mm_lpips, backbone = make_diversity_lpips(
            opts.lpips_weights, opts.extractor == "random", device
        )
        if mm_lpips is None:
            notice(backbone)

    print(
        f"scoring {len(chosen)} checkpoint(s) of {run} on {len(test.inputs.names)} test inputs "
        f"({root / src}) against {len(test.reals.names)} real images ({root / dst}); "
        f"metrics: {', '.join(metrics)}; extractor: {opts.extractor}"
    )
    if opts.extractor == "random":
        notice("--extractor random: the numbers are for smoke tests only, not comparable")
    if yardstick is not None:
        parts = ", ".join(f"{k} {v:.3f}" for k, v in yardstick.items())
        print(f"segmenter yardstick on the real {dst} images: {parts}")

    results: dict[int, Values] = {}
    heldout: dict[int, Values] = {}
    missing: dict[str, Unavailable] = {}
    bar = tqdm(chosen, desc="eval", unit="ckpt", disable=opts.quiet, dynamic_ncols=True)
    for path in bar:
        G, _, step = load_generator(None, path, device)
        values, why = score_generator(G, test, scorer, notice)
        if cfg.mode == "multimodal":
            mm_values, mm_why = multimodal_scores(G, test, scorer, mm_lpips, MultimodalSettings())
            values.update(mm_values)
            why.update(mm_why)
        results[step] = values
        if held is not None:
            heldout[step], held_why = score_generator(G, held, scorer, notice)
            why = {**held_why, **why}
        for column, reason in why.items():
            missing.setdefault(column, reason)
            notice(f"n/a: {reason.reason}")
        shown = {k: _fmt(k, v) for k, v in values.items() if k in ("fid", "kid")}
        bar.set_postfix({"step": step, **shown}, refresh=False)
        del G
    bar.close()

    selected_on = TEST_SET if held is None else f"{HELD_OUT} ({opts.select_on})"
    best = best_checkpoints(results, heldout if held is not None else results, selected_on)
    last_step = max(results)
    stats = training_stats(run, newest)

    # Files.
    columns = [c for c in COLUMNS if any(c in v for v in results.values())]
    report: dict[str, Any] = {
        "mode": "run",
        "run": str(run),
        "dataset": str(root),
        "direction": direction,
        "inputs": str(root / src),
        "reals": str(root / dst),
        "num_inputs": len(test.inputs.names),
        "num_reals": len(test.reals.names),
        "extractor": opts.extractor,
        "nearest_k": opts.nearest_k,
        "metrics": metrics,
        "selected_on": selected_on,
        "steps": {str(s): results[s] for s in sorted(results)},
        "last": {"step": last_step, "values": results[last_step]},
        "best": best,
        "unavailable": {k: v.reason for k, v in missing.items()},
        "training": stats,
    }
    if held is not None:
        report["held_out"] = {
            "dataset": str(opts.select_on),
            "num_inputs": len(held.inputs.names),
            "num_reals": len(held.reals.names),
            "steps": {str(s): heldout[s] for s in sorted(heldout)},
        }
    if yardstick is not None:
        report["segmenter_yardstick"] = {"images": str(root / dst), **yardstick}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", report)
    header = ["step", *columns]
    if held is not None:
        header += [f"heldout_{c}" for c in columns]
    rows = []
    for s in sorted(results):
        row: list[Any] = [s, *(results[s].get(c) for c in columns)]
        if held is not None:
            row += [heldout[s].get(c) for c in columns]
        rows.append(row)
    write_csv(header, rows, out / "metrics.csv")
    plots = []
    for metric in METRICS:
        path = out / f"{metric}.png"
        heldout_values = heldout if held is not None else None
        seg_yardstick = yardstick if metric == "seg" else None
        if metric in metrics and plot_metric(
            metric, results, heldout_values, best, seg_yardstick, path
        ):
            plots.append(path)
        else:
            path.unlink(missing_ok=True)  # a figure of an earlier evaluation would mislead

    # Table.
    print()
    print(run_table(last_step, results[last_step], best, missing, held is not None))
    print()
    print(_training_line(stats))
    written = ", ".join(p.name for p in [out / "metrics.json", out / "metrics.csv", *plots])
    print(f"wrote {written} to {out}")
    return 0


def _setup_segmentation(
    opts: EvalOptions,
    scorer: Scorer,
    root: Path,
    direction: str,
    labels_dir: Path,
    test: Split,
    out: Path,
    notice: _Notices,
) -> None:
    """Put the segmenter of ``seg`` into ``scorer``, or leave it ``None`` with a notice."""
    _, dst = _splits(direction)
    if opts.seg_weights is not None:
        if test.labels is None:
            raise UserError(
                f"seg with DRN-D-22 needs the Cityscapes label maps (train ids, 255 = ignore) "
                f"of the test inputs as single-channel PNGs named like them in {labels_dir}, "
                "or another folder given with --seg-labels"
            )
        drn = load_drn_d_22(opts.seg_weights)
        scorer.segmenter = drn.to(scorer.device)
        scorer.num_classes = drn.num_classes
        return
    if test.labels is None:
        notice(
            f"seg skipped: no label maps of the test inputs in {labels_dir} (the synthetic "
            "datasets have them; for Cityscapes give --seg-weights and --seg-labels)"
        )
        return
    num_classes = _read_meta(root).get("num_classes")
    if not isinstance(num_classes, int) or num_classes < 1:
        notice(
            f"seg skipped: {root / 'meta.json'} with num_classes is needed to train a "
            "segmenter (or give --seg-weights for Cityscapes)"
        )
        return
    train_split = "trainB" if dst == "testB" else "trainA"
    if not (root / "labels" / train_split).is_dir():
        notice(
            f"seg skipped: the segmenter is trained on {root / train_split} and needs its "
            f"label maps in {root / 'labels' / train_split}"
        )
        return
    scorer.num_classes = num_classes
    scorer.segmenter = small_segmenter(
        root, train_split, num_classes, opts.seg_steps, out, scorer.device, opts.quiet, notice
    )


def _pairs_by_stem(reals: ImageSet, fakes: ImageSet) -> list[tuple[int, int]] | None:
    """(fake index, real index) for every fake, matched by file stem; None if any has no real."""
    index: dict[str, int] = {}
    for i, name in enumerate(reals.names):
        index.setdefault(Path(name).with_suffix("").as_posix(), i)
    pairs = []
    for j, name in enumerate(fakes.names):
        match = index.get(Path(name).with_suffix("").as_posix())
        if match is None:
            return None
        pairs.append((j, match))
    return pairs


def evaluate_folders(opts: EvalOptions) -> int:
    """``sesim eval --real DIR --fake DIR``: score two folders, write OUT, print the table."""
    if opts.real is None or opts.fake is None:
        raise UserError("nothing to score: give --real DIR --fake DIR")
    notice = _Notices()
    explicit = opts.metrics is not None
    metrics = (
        parse_metrics(opts.metrics) if opts.metrics is not None else ["fid", "kid", "dc", "lpips"]
    )
    if "seg" in metrics:
        raise UserError(
            "seg needs the label maps of the inputs and a segmenter for the target domain: "
            "use it with --run RUN_DIR"
        )
    device = resolve_device(opts.device)
    extractor = make_extractor(opts.extractor, opts.inception_weights, device, metrics)
    reals = load_image_set(opts.real, "real images", opts.max_images)
    fakes = load_image_set(opts.fake, "translated (fake) images", opts.max_images)
    out: Path = opts.out if opts.out is not None else Path(f"eval_{opts.fake.resolve().name}")
    scorer = Scorer(metrics, extractor, device, opts.batch_size, opts.nearest_k)

    pairs = _pairs_by_stem(reals, fakes) if "lpips" in metrics else None
    if "lpips" in metrics:
        if pairs is None:
            if explicit:
                notice(
                    f"lpips skipped: not every image of {opts.fake} has a real image with the "
                    f"same file name (stem) in {opts.real}"
                )
            metrics.remove("lpips")
        else:
            try:
                scorer.lpips = make_lpips(opts.extractor, opts.lpips_weights, device)
            except UserError as exc:
                if explicit:
                    raise
                notice(f"lpips skipped: {exc}")
                metrics.remove("lpips")

    if not metrics:
        raise UserError(_NOTHING_LEFT)
    if extractor is not None and fakes.sizes() != reals.sizes():
        side = getattr(extractor, "input_size", None)
        notice(
            f"the fake images are {_size_text(fakes.sizes())} but the real ones are "
            f"{_size_text(reals.sizes())} (WxH); the feature extractor resizes both to "
            f"{side}x{side} (anti-aliased bilinear) before comparing them"
        )
    if opts.extractor == "random":
        notice("--extractor random: the numbers are for smoke tests only, not comparable")
    print(
        f"scoring {len(fakes.names)} images of {opts.fake} against {len(reals.names)} real "
        f"images of {opts.real}; metrics: {', '.join(metrics)}; extractor: {opts.extractor}"
    )
    values: Values = {}
    missing: dict[str, Unavailable] = {}
    real_feats, fake_feats = scorer.features(reals), scorer.features(fakes)
    if real_feats is not None and fake_feats is not None:
        values, missing = feature_scores(real_feats, fake_feats, metrics, opts.nearest_k)
    for reason in missing.values():
        notice(f"n/a: {reason.reason}")
    if scorer.lpips is not None and pairs is not None:
        keys = [(tuple(fakes.images[j].shape), tuple(reals.images[i].shape)) for j, i in pairs]
        distances = []
        resized = False
        with torch.no_grad():
            for idx in _batches(keys, opts.batch_size):
                fake = torch.stack([fakes.images[pairs[k][0]] for k in idx]).to(device)
                real = torch.stack([reals.images[pairs[k][1]] for k in idx]).to(device)
                size = (int(real.shape[2]), int(real.shape[3]))
                resized |= tuple(fake.shape[-2:]) != size
                fake = _resize(fake, size).clamp(-1, 1)
                distances.append(lpips_distance(scorer.lpips, fake, real).to("cpu", torch.float64))
        if resized:
            notice("some fakes differ in size from their real image; resized to it for lpips")
        values["lpips"] = float(torch.cat(distances).mean())

    columns = [c for c in COLUMNS if c in values]
    report = {
        "mode": "folders",
        "real": str(opts.real),
        "fake": str(opts.fake),
        "num_real": len(reals.names),
        "num_fake": len(fakes.names),
        "lpips_pairs": len(pairs) if pairs is not None and "lpips" in values else None,
        "extractor": opts.extractor,
        "nearest_k": opts.nearest_k,
        "metrics": metrics,
        "values": values,
        "unavailable": {k: v.reason for k, v in missing.items()},
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", report)
    write_csv(
        ["real", "fake", *columns],
        [[str(opts.real), str(opts.fake), *(values[c] for c in columns)]],
        out / "metrics.csv",
    )
    rows = [["metric", f"{opts.fake} vs {opts.real}"]]
    for column in SCORES:
        if column not in values:
            continue
        if values[column] is None:
            cell = f"n/a ({missing[column].short})" if column in missing else "n/a"
        else:
            cell = _fmt(column, values[column])
            if column == "kid" and values.get("kid_std") is not None:
                cell += f" +/- {_fmt('kid', values['kid_std'])}"
        rows.append([_label(column), cell])
    print()
    print(format_table(rows))
    print()
    print(f"wrote metrics.json, metrics.csv to {out}")
    return 0
