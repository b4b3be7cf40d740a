"""Semantic-segmentation scores of translated images ("FCN score" style evaluation).

A segmenter trained on real target-domain images labels the translated images; agreement with
the source label maps measures how well the translation preserved the scene layout.

Scores follow the usual Cityscapes / FCN scoring (``label_accuracy_score`` of the FCN code, as
used by pix2pix, CycleGAN and the DRN evaluation), from a confusion matrix with rows = true class
and columns = predicted class, over pixels whose label is not ``ignore_index``:

- ``pixel_acc``: correct pixels / labelled pixels;
- ``mean_class_acc``: mean over classes of correct / labelled pixels of that class; classes absent
  from the labels are left out of the mean;
- ``miou``: mean over classes of intersection / union; classes absent from both the labels and the
  predictions (union 0) are left out. A class predicted but never labelled counts with IoU 0.

A segmentation model is any ``nn.Module`` mapping (N, 3, H, W) images in [-1, 1] to
(N, num_classes, H, W) logits. Two are provided: :class:`SmallSegmenter`, a compact U-Net that
:func:`train_segmenter` fits in seconds to the 32-128 px synthetic datasets, and :class:`DRNSeg`
(DRN-D-22, the Cityscapes segmenter the paper reports; architecture of Yu et al.'s ``drn`` code)
loaded from its weights file ``drn_d_22_cityscapes.pth``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from sesim.errors import UserError
from sesim.metrics._common import check_images, find_weights, load_state_dict_file

DRN_WEIGHTS_FILE = "drn_d_22_cityscapes.pth"
DRN_WEIGHTS_URL = "http://go.yf.io/drn-cityscapes-models"
CITYSCAPES_CLASSES = 19
# Mean and std of the Cityscapes training images in [0, 1] (drn's datasets/cityscapes/info.json).
CITYSCAPES_MEAN = (0.29010095242892997, 0.32808144844279574, 0.28696394422942517)
CITYSCAPES_STD = (0.1829540508368939, 0.18656561047509476, 0.18447508988480435)


# --- Scores ----------------------------------------------------------------------------------


def _check_labels(labels: Tensor, num_classes: int, ignore_index: int | None, name: str) -> None:
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor of class ids, got {labels.dtype}")
    bad = (labels < 0) | (labels >= num_classes)
    if ignore_index is not None:
        bad &= labels != ignore_index
    if bad.any():
        value = int(labels[bad][0])
        allowed = f"0..{num_classes - 1}" + ("" if ignore_index is None else f" or {ignore_index}")
        raise ValueError(f"{name} holds {value}, outside the class ids {allowed}")


def confusion_matrix(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255
) -> Tensor:
    """Count (true class, predicted class) pairs over the labelled pixels.

    Args:
        pred: (N, H, W) predicted class ids in [0, num_classes).
        target: (N, H, W) true class ids in [0, num_classes), or ``ignore_index``.
        num_classes: C.
        ignore_index: label of pixels left out (255 in Cityscapes train ids).
    Returns:
        (C, C) int64 counts; entry [t, p] counts pixels of class t predicted as p.
    Raises:
        ValueError: shapes differ, or ids fall outside [0, C) (other than ignored labels).
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    _check_labels(target, num_classes, ignore_index, "target")
    keep = target != ignore_index
    pred_kept = pred[keep].to(torch.int64)
    _check_labels(pred_kept, num_classes, None, "pred")
    pairs = target[keep].to(torch.int64) * num_classes + pred_kept
    counts = torch.bincount(pairs.cpu(), minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def per_class_iou(matrix: Tensor) -> Tensor:
    """(C,) float64 IoU per class from a confusion matrix; NaN for classes with no pixels at all."""
    matrix = matrix.to(torch.float64)
    diag = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - diag
    return torch.where(union > 0, diag / union.clamp(min=1), torch.full_like(diag, math.nan))


def class_iou_values(matrix: Tensor) -> list[float | None]:
    """The IoU of each class from a (C, C) confusion matrix, as plain values for reports.

    Returns:
        C floats; None for a class neither labelled nor predicted (NaN in
        :func:`per_class_iou`), which ``miou`` leaves out of its mean.
    """
    return [None if math.isnan(v) else float(v) for v in per_class_iou(matrix).tolist()]


def scores_from_confusion(matrix: Tensor) -> dict[str, float]:
    """``pixel_acc``, ``mean_class_acc`` and ``miou`` from a (C, C) confusion matrix.

    Classes absent from the labels are left out of ``mean_class_acc``; classes absent from both
    labels and predictions are left out of ``miou`` (see the module docstring).

    Raises:
        ValueError: the matrix counts no pixels (every label was ``ignore_index``).
    """
    matrix = matrix.to(torch.float64)
    total = matrix.sum()
    if total == 0:
        raise ValueError("no labelled pixels to score: every label equals the ignore index")
    diag = matrix.diagonal()
    per_class_total = matrix.sum(1)
    present = per_class_total > 0
    class_acc = diag[present] / per_class_total[present]
    return {
        "pixel_acc": float(diag.sum() / total),
        "mean_class_acc": float(class_acc.mean()),
        "miou": float(per_class_iou(matrix).nanmean()),
    }


def segmentation_scores(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255
) -> dict[str, float]:
    """Pixel accuracy, mean class accuracy and mean IoU of predicted label maps.

    Args:
        pred: (N, H, W) predicted class ids.
        target: (N, H, W) true class ids, or ``ignore_index``.
        num_classes: C.
        ignore_index: label of pixels left out.
    Returns:
        ``{"pixel_acc", "mean_class_acc", "miou"}``, each in [0, 1].
    """
    return scores_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))


class ConfusionMatrix:
    """Accumulates a confusion matrix over batches; :meth:`scores` gives the dataset scores.

    Example:
        >>> cm = ConfusionMatrix(num_classes=19)
        >>> for pred, target in batches:  # (B, H, W) each
        ...     cm.update(pred, target)
        >>> cm.scores()["miou"]
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add (N, H, W) predictions and labels."""
        self.matrix += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.matrix.zero_()

    def scores(self) -> dict[str, float]:
        """``{"pixel_acc", "mean_class_acc", "miou"}`` of everything counted so far."""
        return scores_from_confusion(self.matrix)

    def per_class_iou(self) -> Tensor:
        """(C,) IoU per class, NaN for classes never labelled nor predicted."""
        return per_class_iou(self.matrix)


# --- A small segmenter for the synthetic datasets --------------------------------------------


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.GroupNorm(math.gcd(8, c_out), c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.GroupNorm(math.gcd(8, c_out), c_out),
        nn.ReLU(inplace=True),
    )


class SmallSegmenter(nn.Module):
    """A compact U-Net for 32-128 px images.

    Any input size works: skip connections are matched by resizing. Group normalisation keeps
    training and evaluation behaviour identical for small batches.

    Args:
        num_classes: C, the number of output channels.
        width: channels at full resolution (doubled at each level).
        levels: down-sampling levels (max-pool by 2 each). Classes told apart by a whole
            object's outline need depth: on the bench's 64 px ``shapes`` task (shapes of 20-40
            px) two levels scored rectangles at IoU 0.00 on real images, three at 0.62.
    """

    def __init__(self, num_classes: int, width: int = 32, levels: int = 2) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.num_classes = num_classes
        widths = [width * 2**i for i in range(levels + 1)]
        self.encoders = nn.ModuleList(
            _conv_block(c_in, c_out) for c_in, c_out in zip([3, *widths[:-2]], widths[:-1])
        )
        self.mid = _conv_block(widths[-2], widths[-1])
        self.decoders = nn.ModuleList(
            _conv_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels))
        )
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, images: Tensor) -> Tensor:
        """Map (N, 3, H, W) images in [-1, 1] to (N, C, H, W) logits."""
        skips = []
        h = images
        for encoder in self.encoders:
            h = encoder(h)
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = self.mid(h)
        for decoder, skip in zip(self.decoders, reversed(skips), strict=True):
            up = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = decoder(torch.cat([up, skip], dim=1))
        return self.head(h)


def _check_dataset(images: Tensor, labels: Tensor, num_classes: int, ignore_index: int) -> None:
    check_images(images)
    if labels.dim() != 3 or labels.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(
            f"labels must be (N, H, W) matching images {tuple(images.shape)}, "
            f"got {tuple(labels.shape)}"
        )
    _check_labels(labels, num_classes, ignore_index, "labels")


def train_segmenter(
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    steps: int = 300,
    batch_size: int = 16,
    lr: float = 2e-3,
    width: int = 32,
    seed: int = 0,
    ignore_index: int = 255,
    device: str | torch.device = "cpu",
    progress: bool = False,
    levels: int = 2,
) -> SmallSegmenter:
    """Fit a :class:`SmallSegmenter` to labelled images (Adam, cross-entropy, random h-flips).

    Args:
        images: (N, 3, H, W) float images in [-1, 1] (real target-domain images).
        labels: (N, H, W) integer class ids, or ``ignore_index``.
        num_classes: C.
        steps: optimiser steps.
        batch_size: images per step, drawn uniformly with replacement.
        lr: Adam learning rate.
        width: the segmenter's base width.
        seed: seeds the initial weights and the batch/flip draws (global RNG state is untouched).
        ignore_index: label left out of the loss.
        device: where to train.
        progress: show a progress bar.
        levels: the segmenter's down-sampling levels (see :class:`SmallSegmenter`).
    Returns:
        The trained segmenter, in eval mode on ``device``.
    """
    _check_dataset(images, labels, num_classes, ignore_index)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallSegmenter(num_classes, width=width, levels=levels)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    labels = labels.to(torch.int64)

    step_iter: range = range(steps)
    if progress:
        step_iter = tqdm(step_iter, desc="train segmenter")  # type: ignore[assignment]
    for _ in step_iter:
        # Draw a batch and flip half of it horizontally.
        idx = torch.randint(images.shape[0], (batch_size,), generator=generator)
        flip = torch.rand(batch_size, generator=generator) < 0.5
        x, y = images[idx].clone(), labels[idx].clone()
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        x, y = x.to(device), y.to(device)

        # Update weights.
        loss = F.cross_entropy(model(x), y, ignore_index=ignore_index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


def segmenter_confusion(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    batch_size: int = 16,
    ignore_index: int = 255,
    device: str | torch.device = "cpu",
) -> Tensor:
    """Segment images with ``model`` and count predictions against ``labels``.

    Args:
        model: maps (B, 3, H, W) in [-1, 1] to (B, C, H', W') logits; already on ``device``.
            Logits of another size than the labels are resized bilinearly to the label size.
        images: (N, 3, H, W) float images in [-1, 1], e.g. translated images.
        labels: (N, H, W) class ids of the source images, or ``ignore_index``.
        num_classes: C.
        batch_size: images per forward pass.
        ignore_index: label of pixels left out.
        device: where the batches are sent.
    Returns:
        (C, C) int64 confusion matrix, rows = true class, columns = predicted class; read it
        with :func:`scores_from_confusion` and :func:`per_class_iou`.
    """
    _check_dataset(images, labels, num_classes, ignore_index)
    was_training = model.training
    model.eval()
    matrix = ConfusionMatrix(num_classes, ignore_index)
    try:
        with torch.no_grad():
            for x, y in zip(images.split(batch_size), labels.split(batch_size)):
                logits = model(x.to(device))
                if logits.dim() != 4 or logits.shape[1] != num_classes:
                    raise ValueError(
                        f"the segmenter must return (B, {num_classes}, H, W) logits, "
                        f"got {tuple(logits.shape)}"
                    )
                if logits.shape[-2:] != y.shape[-2:]:
                    logits = F.interpolate(
                        logits, size=y.shape[-2:], mode="bilinear", align_corners=False
                    )
                matrix.update(logits.argmax(1).cpu(), y)
    finally:
        model.train(was_training)
    return matrix.matrix


def evaluate_segmenter(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    batch_size: int = 16,
    ignore_index: int = 255,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Segment images with ``model`` and score the predictions against ``labels``.

    Args:
        model, images, labels, num_classes, batch_size, ignore_index, device: as in
            :func:`segmenter_confusion`.
    Returns:
        ``{"pixel_acc", "mean_class_acc", "miou"}`` (see :func:`scores_from_confusion`).
    """
    return scores_from_confusion(
        segmenter_confusion(model, images, labels, num_classes, batch_size, ignore_index, device)
    )


# --- DRN-D-22, the Cityscapes segmenter ------------------------------------------------------


def _conv3x3(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


class _BasicBlock(nn.Module):
    """Residual block of two dilated 3x3 convolutions (DRN's ``BasicBlock``)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride, dilation)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(c_out, c_out, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


def _conv_stage(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """One conv-BN-ReLU (DRN-D's ``_make_conv_layers`` with one convolution)."""
    return nn.Sequential(
        _conv3x3(c_in, c_out, stride, dilation), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


def _residual_stage(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Two basic blocks (DRN-D-22 has two per residual stage)."""
    return nn.Sequential(
        _BasicBlock(c_in, c_out, stride, dilation), _BasicBlock(c_out, c_out, dilation=dilation)
    )


def _bilinear_kernel(up: nn.ConvTranspose2d) -> None:
    """Fill a depthwise transposed convolution with a bilinear interpolation kernel."""
    size = up.weight.shape[-1]
    f = math.ceil(size / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    ramp = 1 - (torch.arange(size, dtype=torch.float64) / f - c).abs()
    kernel = (ramp[:, None] * ramp[None, :]).to(up.weight.dtype)
    with torch.no_grad():
        up.weight.copy_(kernel.expand_as(up.weight))


class DRNSeg(nn.Module):
    """DRN-D-22 with a 1x1 classifier and 8x upsampling: the paper's Cityscapes segmenter.

    Same module names as the ``DRNSeg`` of Yu et al.'s ``drn`` code (``base.0`` ... ``base.8``,
    ``seg``, ``up``) so its state dicts load unchanged. The backbone has output stride 8:
    ``base`` = layer0 (7x7 conv, 16 ch), layer1 (conv, 16), layer2 (conv, 32, stride 2),
    layer3-4 (2 residual blocks each, 64 / 128 ch, stride 2), layer5-6 (2 residual blocks, 256 /
    512 ch, dilation 2 / 4), layer7-8 (conv, 512 ch, dilation 2 / 1).

    Images in [-1, 1] are mapped to [0, 1] and normalised with the Cityscapes mean and std, as in
    the ``drn`` training code. Outputs are logits (the ``drn`` code returns their log-softmax;
    the arg-max is the same).

    Args:
        num_classes: output classes (19 Cityscapes train ids).
        upsample: ``"deconv"``: the fixed bilinear transposed convolution (kernel 16, stride 8) of
            ``segment.py``; ``"bilinear"``: ``align_corners=True`` bilinear resizing
            (``use_torch_up``). Either way the logits are resized to the input size when it is
            not a multiple of 8.
        seed: seeds the random initial weights (He-normal convolutions, as in ``drn``).
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        num_classes: int = CITYSCAPES_CLASSES,
        upsample: Literal["deconv", "bilinear"] = "deconv",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.upsample = upsample
        self.base = nn.Sequential(
            nn.Sequential(
                nn.Conv2d(3, 16, 7, padding=3, bias=False),
                nn.BatchNorm2d(16),
                nn.ReLU(inplace=True),
            ),
            _conv_stage(16, 16),
            _conv_stage(16, 32, stride=2),
            _residual_stage(32, 64, stride=2),
            _residual_stage(64, 128, stride=2),
            _residual_stage(128, 256, dilation=2),
            _residual_stage(256, 512, dilation=4),
            _conv_stage(512, 512, dilation=2),
            _conv_stage(512, 512),
        )
        self.seg = nn.Conv2d(512, num_classes, 1, bias=True)
        self.up: nn.ConvTranspose2d | None = None
        if upsample == "deconv":
            self.up = nn.ConvTranspose2d(
                num_classes, num_classes, 16, stride=8, padding=4, groups=num_classes, bias=False
            )
            _bilinear_kernel(self.up)
            self.up.weight.requires_grad_(False)
        elif upsample != "bilinear":
            raise ValueError(f"upsample must be 'deconv' or 'bilinear', got {upsample!r}")
        self.register_buffer("mean", torch.tensor(CITYSCAPES_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(CITYSCAPES_STD).view(1, 3, 1, 1), False)
        self._init_weights(seed)

    def _init_weights(self, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in [*self.base.modules(), self.seg]:
                if isinstance(m, nn.Conv2d):
                    n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                    m.weight.normal_(0.0, math.sqrt(2.0 / n), generator=generator)
                    if m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, nn.BatchNorm2d):
                    m.weight.fill_(1.0)
                    m.bias.zero_()

    def forward(self, images: Tensor) -> Tensor:
        """Map (N, 3, H, W) images in [-1, 1] to (N, num_classes, H, W) logits."""
        x = ((images + 1) / 2 - self.mean) / self.std
        logits = self.seg(self.base(x))
        size = images.shape[-2:]
        if self.up is not None:
            logits = self.up(logits)
            if logits.shape[-2:] != size:
                logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
            return logits
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)


def drn_weights_path(weights_path: str | Path | None = None) -> Path:
    """Locate ``drn_d_22_cityscapes.pth`` (explicit path, else the torch hub cache); no download.

    Raises:
        UserError: one line naming the file and where to put it, when it is missing.
    """
    return find_weights(
        "DRN-D-22 Cityscapes segmenter weights", DRN_WEIGHTS_FILE, DRN_WEIGHTS_URL, weights_path
    )


def load_drn_d_22(
    weights_path: str | Path | None = None,
    upsample: Literal["deconv", "bilinear"] = "deconv",
) -> DRNSeg:
    """DRN-D-22 trained on Cityscapes (19 classes), frozen and in eval mode, on the CPU.

    Args:
        weights_path: ``drn_d_22_cityscapes.pth`` from the ``drn`` release
            (http://go.yf.io/drn-cityscapes-models); ``None`` looks in the torch hub cache
            (``$TORCH_HOME/hub/checkpoints/``). A training checkpoint (``{"state_dict": ...}``,
            keys prefixed with ``module.``) works too.
        upsample: see :class:`DRNSeg`.
    Raises:
        UserError: the file is missing, unreadable or not a DRN-D-22 segmenter (one line).
    """
    path = drn_weights_path(weights_path)
    state = load_state_dict_file("DRN-D-22 weights", path)
    if isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # type: ignore[assignment]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if upsample == "bilinear":
        state.pop("up.weight", None)
    model = DRNSeg(CITYSCAPES_CLASSES, upsample=upsample)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise UserError(
            f"{path} does not fit DRN-D-22 with {CITYSCAPES_CLASSES} classes: {exc}".replace(
                "\n", " "
            )
        ) from exc
    # Checkpoints from before PyTorch 0.4 have no BatchNorm step counters.
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise UserError(
            f"{path} is not a DRN-D-22 segmenter state dict: missing {missing[:3]}, "
            f"unexpected {result.unexpected_keys[:3]}"
        )
    return model.eval().requires_grad_(False)
