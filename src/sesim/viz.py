"""Pictures of self-similarity: per-query error maps (the idea of the paper's Fig. 5) and heat
maps of chosen query points (Figs. 1, 3 and 10), drawn by ``sesim viz selfsim``.

For every position of a feature map, the self-similarity map of that position in the input is
compared with the map of the same position in a candidate output. An output with the input's
structure but another appearance should give a dark error map; an output whose layout moved
should light up.
"""

from __future__ import annotations

import io
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from sesim.data.images import load_rgb, to_tensor
from sesim.devices import resolve_device
from sesim.errors import UserError
from sesim.features.vgg import (
    VGG16_LAYERS,
    VGG16Features,
    WeightsSpec,
    imagenet_weights_available,
    missing_weights_message,
)
from sesim.losses.selfsim import SimKind, self_similarity, window_key_indices
from sesim.losses.spatial import SpatialCorrelativeLoss
from sesim.runs import (
    atomic_path,
    load_checkpoint,
    load_generator,
    newest_readable_checkpoint,
)
from sesim.translate import translate_batch

if TYPE_CHECKING:
    from sesim.config import TrainConfig


def per_query_error(
    feat_x: Tensor, feat_y: Tensor, window: int | None = None, kind: SimKind = "cosine"
) -> Tensor:
    """1 - cosine similarity between the self-similarity maps of every position.

    Args:
        feat_x: (B, C, H, W) features of the input.
        feat_y: (B, C, H, W) features of the candidate output.
        window: local key window side; None compares with the whole map.
        kind: similarity kind.

    Returns:
        (B, H, W) error per query position, in [0, 2].
    """
    B, _, H, W = feat_x.shape
    idx = torch.arange(H * W, device=feat_x.device)
    sx = self_similarity(feat_x, idx, window, kind)
    sy = self_similarity(feat_y, idx, window, kind)
    return (1 - F.cosine_similarity(sx, sy, dim=-1)).reshape(B, H, W)


def _show(img: Tensor) -> Tensor:
    return ((img.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0)


def error_map_figure(
    source: Tensor,
    candidates: Sequence[tuple[str, Tensor]],
    errors: Sequence[Tensor],
    losses: Sequence[float],
    path: Path,
    title: str = "",
) -> Path:
    """Write a PNG: the input, each candidate, and its per-query error map with its loss.

    Args:
        source: (3, H, W) input image in [-1, 1].
        candidates: (name, (3, H, W) image) pairs.
        errors: per candidate, an (h, w) error map.
        losses: per candidate, the scalar structure loss.
        path: output PNG file (written atomically).
        title: figure title.

    Returns:
        The written path.
    """
    n = len(candidates)
    fig, axes = plt.subplots(2, n + 1, figsize=(3.0 * (n + 1), 6.2))
    axes[0, 0].imshow(_show(source))
    axes[0, 0].set_title("input x")
    axes[1, 0].axis("off")
    axes[1, 0].text(
        0.0,
        0.5,
        "error map: 1 - cos between\nthe self-similarity maps of\neach position in x and in y\n"
        "(dark = structure kept)",
        fontsize=9,
        va="center",
    )
    vmax = max(float(e.max()) for e in errors) if errors else 1.0
    for j, ((name, img), err, loss) in enumerate(zip(candidates, errors, losses), start=1):
        axes[0, j].imshow(_show(img))
        axes[0, j].set_title(name, fontsize=10)
        im = axes[1, j].imshow(err.detach().float().cpu(), cmap="inferno", vmin=0, vmax=vmax)
        axes[1, j].set_title(f"loss {loss:.4f}", fontsize=10)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if errors:
        fig.colorbar(im, ax=axes[1, 1:].tolist(), shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=11)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------
# Heat maps of chosen query points (the idea of the paper's Figs. 1, 3 and 10).

Point = tuple[int, int]
"""A pixel position ``(x, y)``: column then row, from the top-left corner of the image."""

PANEL_PX = 250
"""Side of one panel of the figures, in pixels (at ``FIGURE_DPI``)."""

FIGURE_DPI = 100
SELFSIM_COLUMNS = 6
POINT_COLORS: tuple[str, ...] = ("#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500")
DEFAULT_LAYER = "relu3_1"
DEFAULT_MAX_SIDE = 256


def parse_point(text: str) -> Point:
    """Read ``"x,y"`` (whole pixel coordinates, column then row).

    Args:
        text: e.g. ``"12,30"``.

    Returns:
        ``(x, y)``.

    Raises:
        ValueError: the text is not two whole numbers separated by a comma.
    """
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2:
        raise ValueError(f"expected a point as x,y (e.g. 12,30); got {text!r}")
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise ValueError(
            f"expected whole pixel coordinates x,y (e.g. 12,30); got {text!r}"
        ) from None


def default_points(height: int, width: int, n: int = 3) -> list[Point]:
    """``n`` query points spread over an image (on a slanted line through its middle).

    Args:
        height: image height H.
        width: image width W.
        n: number of points.

    Returns:
        ``n`` points ``(x, y)`` inside the image.
    """
    points = []
    for i in range(n):
        fx = (i + 1) / (n + 1)
        fy = 0.3 + 0.4 * ((i * 2) % n) / max(n - 1, 1) if n > 1 else 0.5
        points.append((min(width - 1, int(fx * width)), min(height - 1, int(fy * height))))
    return points


def check_points(points: Sequence[Point], height: int, width: int) -> None:
    """Refuse points outside an image.

    Args:
        points: ``(x, y)`` pixel positions.
        height: image height H.
        width: image width W.

    Raises:
        UserError: a point lies outside ``[0, W-1] x [0, H-1]``, or there is none.
    """
    if not points:
        raise UserError("give at least one query point x,y")
    for x, y in points:
        if not (0 <= x < width and 0 <= y < height):
            raise UserError(
                f"point {x},{y} lies outside the {width}x{height} image: use 0 <= x <= "
                f"{width - 1} and 0 <= y <= {height - 1} (pixels of the input image)"
            )


def scale_points(
    points: Sequence[Point], src_hw: tuple[int, int], dst_hw: tuple[int, int]
) -> list[Point]:
    """Move pixel positions from one image size to a resized copy of the image.

    Args:
        points: ``(x, y)`` positions in an image of size ``src_hw`` (H, W).
        src_hw: (H, W) of the original image.
        dst_hw: (H, W) of the resized image.

    Returns:
        The positions in the resized image (pixel centres map to pixel centres).
    """
    (sh, sw), (dh, dw) = src_hw, dst_hw
    return [
        (
            min(dw - 1, max(0, int((x + 0.5) * dw / sw))),
            min(dh - 1, max(0, int((y + 0.5) * dh / sh))),
        )
        for x, y in points
    ]


def feature_indices(
    points: Sequence[Point], image_hw: tuple[int, int], feat_hw: tuple[int, int]
) -> Tensor:
    """Flat indices of the feature-map positions under image pixels.

    Args:
        points: ``(x, y)`` pixel positions in an image of size ``image_hw``.
        image_hw: (H, W) of the image.
        feat_hw: (h, w) of its feature map.

    Returns:
        (N,) int64 flat row-major indices into h*w.
    """
    (H, W), (h, w) = image_hw, feat_hw
    idx = [min(h - 1, y * h // H) * w + min(w - 1, x * w // W) for x, y in points]
    return torch.tensor(idx, dtype=torch.long)


def query_maps(
    feat: Tensor, query_idx: Tensor, window: int | None = None, kind: SimKind = "cosine"
) -> Tensor:
    """Self-similarity maps (eq. 1) of chosen queries laid out on the feature grid.

    With a local window the keys outside the window of a query are NaN (they do not enter the
    loss), so the map shows exactly what the structure loss compares.

    Args:
        feat: (B, C, h, w) features (raw; normalised inside according to ``kind``).
        query_idx: (N,) flat indices into h*w.
        window: side of the local key window; None uses the whole map.
        kind: ``"cosine"`` (the query's own position is 1, the maximum) or ``"tanh"``.

    Returns:
        (B, N, h, w) maps.
    """
    B, _, h, w = feat.shape
    query_idx = query_idx.to(feat.device)
    sim = self_similarity(feat, query_idx, window, kind)
    if sim.shape[-1] == h * w:
        return sim.reshape(B, -1, h, w)
    assert window is not None
    keys = window_key_indices(query_idx, h, w, window)  # (N, K)
    out = sim.new_full((B, sim.shape[1], h * w), float("nan"))
    out.scatter_(2, keys.unsqueeze(0).expand(B, -1, -1), sim)
    return out.reshape(B, -1, h, w)


def query_error(
    feat_x: Tensor,
    feat_y: Tensor,
    window: int | None = None,
    kind: SimKind = "cosine",
    chunk: int = 1024,
) -> Tensor:
    """:func:`per_query_error` computed a chunk of queries at a time (bounded memory).

    Args:
        feat_x: (B, C, h, w) features of the input.
        feat_y: (B, C, h, w) features of the candidate output.
        window: local key window side; None compares with the whole map.
        kind: similarity kind.
        chunk: queries per step; memory is about ``B * chunk * h * w`` floats.

    Returns:
        (B, h, w) error ``1 - cos(S_x, S_y)`` per query position, in [0, 2].
    """
    if feat_x.shape != feat_y.shape:
        raise ValueError(f"feature shapes differ: {tuple(feat_x.shape)} vs {tuple(feat_y.shape)}")
    B, _, h, w = feat_x.shape
    parts = []
    for start in range(0, h * w, chunk):
        idx = torch.arange(start, min(start + chunk, h * w), device=feat_x.device)
        sx = self_similarity(feat_x, idx, window, kind)
        sy = self_similarity(feat_y, idx, window, kind)
        parts.append(1 - F.cosine_similarity(sx, sy, dim=-1))
    return torch.cat(parts, dim=1).reshape(B, h, w)


class MapExtractor(nn.Module):
    """The features self-similarity maps are computed on: one VGG16 layer, and the run's learned
    LSeSim head on it when there is one.

    Args:
        layer: VGG16 layer name, e.g. ``"relu3_1"``.
        weights: VGG16 weights (see :class:`sesim.features.vgg.VGG16Features`).
        head: the learned 1x1-conv head of this layer, or None (fixed maps only).
        seed: seed of VGG16's random initialisation when no weights are loaded; the training
            recipe uses ``cfg.seed + 2``, which keeps a run's learned heads matched to it.
    """

    def __init__(
        self, layer: str, weights: WeightsSpec, head: nn.Module | None = None, seed: int = 0
    ) -> None:
        super().__init__()
        self.layer = layer
        self.vgg = VGG16Features((layer,), weights=weights, seed=seed)
        self.head = head
        if head is not None:
            head.requires_grad_(False)
            head.eval()

    @property
    def learned(self) -> bool:
        """Whether learned (LSeSim) maps are available."""
        return self.head is not None

    @torch.no_grad()
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Features of images.

        Args:
            x: (B, 3, H, W) images in [-1, 1].

        Returns:
            (B, C, h, w) VGG features and (B, C', h, w) learned features (None without a head).
        """
        feat = self.vgg(x)[0]
        return feat, (self.head(feat) if self.head is not None else None)


def run_heads(cfg: TrainConfig, state: dict[str, Any], layer: str) -> nn.Module | None:
    """The learned head of ``layer`` from an LSeSim checkpoint, or None.

    Args:
        cfg: the run's config.
        state: the loaded checkpoint (``load_checkpoint``).
        layer: VGG16 layer name.

    Returns:
        The head (an ``nn.Module``) or None when the run has no learned maps or none on ``layer``.

    Raises:
        UserError: the checkpoint's heads do not match its config.
    """
    heads_state = state.get("nets", {}).get("heads")
    layers = tuple(cfg.structure.layers)
    if not cfg.structure.loss.learned or heads_state is None or layer not in layers:
        return None
    try:
        channels = [int(heads_state[f"{i}.0.weight"].shape[1]) for i in range(len(layers))]
        crit = SpatialCorrelativeLoss(channels, cfg.structure.loss)
        assert crit.heads is not None
        crit.heads.load_state_dict(heads_state)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise UserError(
            f"the checkpoint's learned heads do not match its config: {str(exc)[:120]}"
        ) from None
    head: nn.Module = crit.heads[layers.index(layer)]
    return head


def resolve_viz_weights(spec: str | None, from_run: bool) -> tuple[str, str | None]:
    """VGG16 weights for pictures, falling back to random weights where that is convenient.

    Args:
        spec: ``"imagenet"``, ``"auto"``, ``"random"`` or a file path; None means ``"auto"``.
        from_run: the spec is the run's setting, not the user's explicit choice; a run's
            ``"imagenet"`` then also falls back to random weights when they are not cached.

    Returns:
        The weights to use and a one-line notice to print (None when nothing changed).
    """
    spec = spec or "auto"
    if spec == "auto" or (spec == "imagenet" and from_run):
        if imagenet_weights_available():
            return "imagenet", None
        return "random", (
            "ImageNet VGG16 weights are not cached, so the maps use RANDOM VGG16 features "
            f"(structure still shows, less semantically). {missing_weights_message()}"
        )
    return spec, None


@dataclass
class SelfSimMaps:
    """Everything the self-similarity pictures show, on the CPU.

    Attributes:
        image: (3, H, W) input x in [-1, 1].
        translation: (3, H, W) translation y (or the second image) in [-1, 1].
        points: query points ``(x, y)`` in pixels of ``image``.
        layer: VGG16 layer name.
        window: local window side used for the local maps and the error map (None: whole map).
        kind: similarity kind.
        global_x: (N, h, w) maps of the queries in x over the whole feature map.
        global_y: (N, h, w) the same in y.
        local_x: (N, h, w) maps restricted to the local window (NaN outside).
        local_y: (N, h, w) the same in y.
        learned_x: (N, h, w) maps of the learned features over the whole map, or None.
        learned_y: (N, h, w) the same in y, or None.
        error: (h, w) per-query error between x and y (fixed maps, local window), or None.
        learned_error: (h, w) the same with learned maps, or None.
    """

    image: Tensor
    translation: Tensor
    points: list[Point]
    layer: str
    window: int | None
    kind: SimKind
    global_x: Tensor
    global_y: Tensor
    local_x: Tensor
    local_y: Tensor
    learned_x: Tensor | None = None
    learned_y: Tensor | None = None
    error: Tensor | None = None
    learned_error: Tensor | None = None


@torch.no_grad()
def compute_selfsim_maps(
    extractor: MapExtractor,
    image: Tensor,
    translation: Tensor,
    points: Sequence[Point],
    window: int | None = None,
    kind: SimKind = "cosine",
    with_error: bool = True,
) -> SelfSimMaps:
    """Self-similarity maps of query points in an image and its translation.

    Args:
        extractor: features (VGG16 layer, optional learned head), on the images' device.
        image: (3, H, W) input in [-1, 1].
        translation: (3, H, W) translation of the same size.
        points: query points ``(x, y)`` in pixels.
        window: local key window side (None: the local maps equal the global ones).
        kind: similarity kind.
        with_error: also compute the per-query error maps (costs ``(h*w)^2`` work).

    Returns:
        The maps, on the CPU.

    Raises:
        UserError: a point lies outside the image.
        ValueError: the two images differ in shape.
    """
    if image.shape != translation.shape:
        raise ValueError(f"image shapes differ: {tuple(image.shape)} vs {tuple(translation.shape)}")
    H, W = image.shape[1:]
    check_points(points, H, W)
    fx, lx = extractor(image[None])
    fy, ly = extractor(translation[None])
    idx = feature_indices(points, (H, W), (fx.shape[2], fx.shape[3]))
    maps = SelfSimMaps(
        image=image.detach().cpu(),
        translation=translation.detach().cpu(),
        points=list(points),
        layer=extractor.layer,
        window=window,
        kind=kind,
        global_x=query_maps(fx, idx, None, kind)[0].cpu(),
        global_y=query_maps(fy, idx, None, kind)[0].cpu(),
        local_x=query_maps(fx, idx, window, kind)[0].cpu(),
        local_y=query_maps(fy, idx, window, kind)[0].cpu(),
    )
    if lx is not None and ly is not None:
        maps.learned_x = query_maps(lx, idx, None, kind)[0].cpu()
        maps.learned_y = query_maps(ly, idx, None, kind)[0].cpu()
    if with_error:
        maps.error = query_error(fx, fy, window, kind)[0].cpu()
        if lx is not None and ly is not None:
            maps.learned_error = query_error(lx, ly, window, kind)[0].cpu()
    return maps


def _gray(img: Tensor) -> Tensor:
    """(3, H, W) in [-1, 1] -> (H, W) luminance in [0, 1]."""
    rgb = (img.float().clamp(-1, 1) + 1) / 2
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _plain(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _mark(ax: Any, points: Sequence[Point], numbers: Sequence[int], size: float = 90) -> None:
    for (x, y), k in zip(points, numbers):
        color = POINT_COLORS[k % len(POINT_COLORS)]
        ax.scatter([x], [y], s=size, marker="o", c=color, edgecolors="white", linewidths=1.5)


def _heat(
    ax: Any,
    img: Tensor,
    heat: Tensor,
    vmin: float,
    vmax: float,
    cmap: str = "jet",
) -> Any:
    """A heat map laid over the gray image (NaN entries leave the image visible)."""
    H, W = img.shape[1:]
    ax.imshow(_gray(img).numpy(), cmap="gray", vmin=0, vmax=1)
    extent = (-0.5, W - 0.5, H - 0.5, -0.5)
    return ax.imshow(
        heat.float().numpy(),
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        alpha=0.6,
        extent=extent,
        interpolation="nearest",
    )


def _joint_range(*maps: Tensor) -> tuple[float, float]:
    values = torch.cat([m.flatten() for m in maps])
    values = values[~torch.isnan(values)]
    if values.numel() == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    return (lo, hi) if hi > lo else (lo - 1e-3, hi + 1e-3)


def _note(ax: Any, text: str) -> None:
    ax.axis("off")
    ax.text(0.02, 0.5, text, fontsize=8, va="center", ha="left")


def _save_png(fig: Any, path: Path | None) -> bytes | Path:
    if path is None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=FIGURE_DPI)
        plt.close(fig)
        return buf.getvalue()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=FIGURE_DPI)
    finally:
        plt.close(fig)
    return path


def selfsim_figure_size(n_points: int) -> tuple[int, int]:
    """Pixel size ``(width, height)`` of :func:`selfsim_figure` for ``n_points`` points."""
    return SELFSIM_COLUMNS * PANEL_PX, (1 + n_points) * PANEL_PX


def _window_text(window: int | None) -> str:
    return "whole map" if window is None else f"{window}x{window} window"


def selfsim_figure(maps: SelfSimMaps, path: Path, title: str = "") -> Path:
    """Write the self-similarity figure as a PNG of :func:`selfsim_figure_size` pixels.

    The first row shows the input and the translation with the query points, and the per-query
    error maps (fixed and learned). Each further row belongs to one query point: its map over the
    whole feature map (global), inside the local window (local), and on the learned features, in
    the input and in the translation, each pair on one colour scale.

    Args:
        maps: from :func:`compute_selfsim_maps`.
        path: output PNG (written atomically).
        title: figure title.

    Returns:
        The written path.
    """
    n = len(maps.points)
    width, height = selfsim_figure_size(n)
    fig, axes = plt.subplots(
        1 + n,
        SELFSIM_COLUMNS,
        figsize=(width / FIGURE_DPI, height / FIGURE_DPI),
        squeeze=False,
    )
    numbers = list(range(n))
    ax = axes[0]
    ax[0].imshow(_show(maps.image).numpy())
    _mark(ax[0], maps.points, numbers)
    ax[0].set_title("input x", fontsize=9)
    ax[1].imshow(_show(maps.translation).numpy())
    _mark(ax[1], maps.points, numbers)
    ax[1].set_title("translation y", fontsize=9)
    for j, (name, err) in enumerate(
        (("error, fixed maps", maps.error), ("error, learned maps", maps.learned_error)), start=2
    ):
        if err is None:
            _note(ax[j], f"{name}:\nnot available" + ("\n(no learned heads)" if j == 3 else ""))
            continue
        im = ax[j].imshow(err.numpy(), cmap="inferno", vmin=0, vmax=max(float(err.max()), 1e-6))
        ax[j].set_title(f"{name} (mean {float(err.mean()):.3f})", fontsize=8)
        fig.colorbar(im, ax=ax[j], fraction=0.046, pad=0.02)
    _note(
        ax[4],
        f"layer {maps.layer}\n{maps.kind} similarity\nlocal: {_window_text(maps.window)}\n\n"
        "error: 1 - cos between\nthe maps of a position\nin x and in y\n(dark = structure kept)",
    )
    _note(
        ax[5],
        "rows: one query point each\n\nglobal: whole feature map\nlocal: inside the window\n"
        "learned: LSeSim heads\n\nred: similar to the query",
    )
    variants = (
        ("global", maps.global_x, maps.global_y),
        ("local", maps.local_x, maps.local_y),
        ("learned", maps.learned_x, maps.learned_y),
    )
    for i, point in enumerate(maps.points):
        row = axes[1 + i]
        for v, (name, mx, my) in enumerate(variants):
            if mx is None or my is None:
                _note(row[2 * v], "learned maps:\nnot available\n(FSeSim run or no run)")
                _note(row[2 * v + 1], "")
                continue
            lo, hi = _joint_range(mx[i], my[i])
            for k, (img, m, tag) in enumerate(
                ((maps.image, mx[i], "x"), (maps.translation, my[i], "y"))
            ):
                a = row[2 * v + k]
                _heat(a, img, m, lo, hi)
                _mark(a, [point], [i], size=60)
                a.set_title(f"p{i} ({point[0]},{point[1]}) {name} {tag}", fontsize=8)
    for a in axes.flat:
        _plain(a)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.97, bottom=0.01, top=0.93 if title else 0.96)
    out = _save_png(fig, path)
    assert isinstance(out, Path)
    return out


def point_figure_png(maps: SelfSimMaps, index: int = 0) -> bytes:
    """A PNG (3 x 2 panels) of one query point's maps: global, local and learned, in x and y.

    Args:
        maps: from :func:`compute_selfsim_maps`.
        index: which of ``maps.points``.

    Returns:
        The PNG bytes, ``3 * PANEL_PX`` wide and ``2 * PANEL_PX`` high.
    """
    point = maps.points[index]
    fig, axes = plt.subplots(
        2, 3, figsize=(3 * PANEL_PX / FIGURE_DPI, 2 * PANEL_PX / FIGURE_DPI), squeeze=False
    )
    variants = (
        (f"global ({maps.layer})", maps.global_x, maps.global_y),
        (f"local ({_window_text(maps.window)})", maps.local_x, maps.local_y),
        ("learned (LSeSim heads)", maps.learned_x, maps.learned_y),
    )
    for v, (name, mx, my) in enumerate(variants):
        if mx is None or my is None:
            _note(axes[0, v], "learned maps:\nnot available\n(FSeSim run)")
            _note(axes[1, v], "")
            continue
        lo, hi = _joint_range(mx[index], my[index])
        for r, (img, m, tag) in enumerate(
            ((maps.image, mx[index], "input"), (maps.translation, my[index], "output"))
        ):
            _heat(axes[r, v], img, m, lo, hi)
            _mark(axes[r, v], [point], [0], size=60)
            axes[r, v].set_title(f"{name}, {tag}", fontsize=8)
    for a in axes.flat:
        _plain(a)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93, wspace=0.05, hspace=0.15)
    out = _save_png(fig, None)
    assert isinstance(out, bytes)
    return out


# ---------------------------------------------------------------------------------------------
# Loading images and runs for the pictures.


def fit_max_side(img: Image.Image, max_side: int) -> Image.Image:
    """Shrink an image (keeping its aspect) so that its longer side is at most ``max_side``.

    Args:
        img: an RGB image.
        max_side: the largest allowed side in pixels (0 = no limit).

    Returns:
        The image itself when small enough, else a resized copy.
    """
    w, h = img.size
    if max_side <= 0 or max(w, h) <= max_side:
        return img
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, Image.Resampling.BICUBIC)


@dataclass
class LoadedRun:
    """A run's generator and what its pictures need.

    Attributes:
        G: the generator, in eval mode on the chosen device.
        cfg: the run's config.
        step: the checkpoint's step.
        checkpoint: the checkpoint file.
        state: the loaded checkpoint.
    """

    G: nn.Module
    cfg: TrainConfig
    step: int
    checkpoint: Path
    state: dict[str, Any]


def load_run(run: Path | None, checkpoint: Path | None, device: torch.device) -> LoadedRun:
    """Load a run's newest (or a given) checkpoint and rebuild its generator.

    Args:
        run: run folder (its newest checkpoint is used), or None.
        checkpoint: a checkpoint file, used when ``run`` is None.
        device: where the generator goes.

    Returns:
        The loaded run.

    Raises:
        UserError: no such run or checkpoint, or a foreign file.
    """
    if run is not None:
        checkpoint, state = newest_readable_checkpoint(run)
    elif checkpoint is None:
        raise UserError("give --run RUN_DIR or --checkpoint FILE")
    else:
        state = load_checkpoint(checkpoint)
    G, cfg, step = load_generator(None, checkpoint, device)
    return LoadedRun(G, cfg, step, checkpoint, state)


def build_extractor(
    loaded: LoadedRun | None,
    layer: str | None,
    vgg_weights: str | None,
    device: torch.device,
    notice: Callable[[str], None] | None = None,
) -> MapExtractor:
    """The feature extractor of the pictures: the run's VGG16 weights and learned head.

    Args:
        loaded: the run, or None (fixed maps only).
        layer: VGG16 layer; None takes ``relu3_1`` (or the run's first layer when it has no
            ``relu3_1``).
        vgg_weights: explicit weights; None uses the run's ``structure.vgg_weights`` (or
            ``"auto"`` without a run), falling back to random weights when ImageNet's are missing.
        device: where the extractor goes.
        notice: prints one-line notices (default: to stderr).

    Returns:
        The extractor, on ``device``.

    Raises:
        UserError: unknown layer, or explicit weights that cannot be found.
    """
    say = notice or (lambda msg: print(f"notice: {msg}", file=sys.stderr))
    run_layers = tuple(loaded.cfg.structure.layers) if loaded is not None else ()
    if layer is None:
        layer = DEFAULT_LAYER if (not run_layers or DEFAULT_LAYER in run_layers) else run_layers[0]
    if layer not in VGG16_LAYERS:
        raise UserError(f"unknown VGG16 layer {layer!r}; choose e.g. relu3_1, relu4_1, relu4_3")
    spec = (
        vgg_weights
        if vgg_weights is not None
        else (loaded.cfg.structure.vgg_weights if loaded is not None else None)
    )
    weights, message = resolve_viz_weights(spec, from_run=vgg_weights is None)
    if message:
        say(message)
    head = None
    seed = 0
    if loaded is not None:
        seed = loaded.cfg.seed + 2  # the training recipe's VGG seed (see sesim.methods.sesim)
        head = run_heads(loaded.cfg, loaded.state, layer)
        if loaded.cfg.structure.loss.learned and head is None:
            say(f"layer {layer} is not among the run's layers {run_layers}: no learned maps")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        extractor = MapExtractor(layer, weights, head, seed=seed)
    return extractor.to(device).eval()


# ---------------------------------------------------------------------------------------------
# ``sesim viz selfsim``.


def draw_selfsim(
    output: Path,
    *,
    run: Path | None = None,
    checkpoint: Path | None = None,
    image: Path | None = None,
    pair: Sequence[Path] | None = None,
    points: Sequence[Point] | None = None,
    layer: str | None = None,
    window: int | None = None,
    kind: SimKind = "cosine",
    vgg_weights: str | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    device: str = "auto",
) -> tuple[int, str]:
    """Write the self-similarity picture of an input and its translation (or of two images).

    Args:
        output: the PNG file to write.
        run: a run folder (its newest checkpoint) that translates ``image``.
        checkpoint: a checkpoint file instead of ``run``.
        image: the input image, translated with the run.
        pair: two images compared directly (the second plays the translation; resized to the
            first's size); no run needed.
        points: query points in pixels of the input image; None spreads three.
        layer: VGG16 layer; None takes ``relu3_1`` (see :func:`build_extractor`).
        window: local window side in feature positions, 0 for the whole map; None takes the
            run's window (16 without a run).
        kind: the similarity shown, ``cosine`` or ``tanh``.
        vgg_weights: VGG16 weights; None takes the run's (see :func:`build_extractor`).
        max_side: images are shrunk to this longer side first (0: not at all).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    Returns:
        ``(number of points, layer)`` of the picture.
    Raises:
        UserError: a bad output name, a missing run or image, points outside the image.
    """
    dev = resolve_device(device)
    if output.suffix.lower() != ".png":
        raise UserError(f"--output {output} must end in .png")
    loaded = None
    if run is not None or checkpoint is not None:
        loaded = load_run(run, checkpoint, dev)
    elif image is not None:
        raise UserError("--image needs a trained run: give --run RUN_DIR (or use --pair A B)")
    source = image if image is not None else (pair[0] if pair is not None else None)
    if source is None:
        raise UserError("give --image FILE (with --run) or --pair A B")

    first = load_rgb(source)
    chosen = list(points) if points else None
    if chosen is not None:
        check_points(chosen, first.height, first.width)
    small = fit_max_side(first, max_side)
    if chosen is None:
        chosen = default_points(small.height, small.width)
    else:
        chosen = scale_points(chosen, (first.height, first.width), (small.height, small.width))
    x = to_tensor(small).to(dev)
    if pair is not None:
        second = load_rgb(pair[1])
        if second.size != small.size:
            second = second.resize(small.size, Image.Resampling.BICUBIC)
        y = to_tensor(second).to(dev)
        what = f"{pair[0].name} vs {pair[1].name}"
    else:
        assert loaded is not None
        y = translate_batch(loaded.G, x[None])[0]
        what = f"{source.name} translated by step {loaded.step}"

    if window is not None:
        side = window or None
    elif loaded is not None:
        side = loaded.cfg.structure.loss.window
    else:
        side = 16
    extractor = build_extractor(loaded, layer, vgg_weights, dev)
    maps = compute_selfsim_maps(extractor, x, y, chosen, side, kind)
    title = f"{what} | {extractor.layer}, VGG16 weights: {extractor.vgg.weights_source}"
    selfsim_figure(maps, output, title)
    return len(chosen), extractor.layer
