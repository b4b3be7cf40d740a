"""Pictures of self-similarity: per-query error maps (the idea of the paper's Fig. 5).

For every position of a feature map, the self-similarity map of that position in the input is
compared with the map of the same position in a candidate output. An output with the input's
structure but another appearance should give a dark error map; an output whose layout moved
should light up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor

from sesim.losses.selfsim import SimKind, self_similarity


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
