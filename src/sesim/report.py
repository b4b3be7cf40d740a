"""Run reports: sample grids over training and the run folder's ``index.html``."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from sesim.runs import atomic_path, atomic_write


def _to_uint8(images: Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(
    rows: Sequence[Tensor], labels: Sequence[str] | None = None, pad: int = 2
) -> Image.Image:
    """Stack image batches as rows of a grid, one column per image.

    Args:
        rows: each (N, 3, H, W) in [-1, 1]; every row has the same N, H and W.
        labels: an optional caption per row, drawn at the left.
        pad: gap in pixels.

    Returns:
        The grid as an RGB image.
    """
    arrays = [_to_uint8(r) for r in rows]
    n, h, w = arrays[0].shape[:3]
    label_w = 64 if labels else 0
    grid = np.full(
        (len(arrays) * (h + pad) + pad, label_w + n * (w + pad) + pad, 3), 255, dtype=np.uint8
    )
    for r, arr in enumerate(arrays):
        for c in range(n):
            y, x = pad + r * (h + pad), label_w + pad + c * (w + pad)
            grid[y : y + h, x : x + w] = arr[c]
    img = Image.fromarray(grid)
    if labels:
        draw = ImageDraw.Draw(img)
        for r, text in enumerate(labels):
            draw.text((3, pad + r * (h + pad) + h // 2 - 5), text, fill=(0, 0, 0))
    return img


def write_sample_grid(
    inputs: Tensor, outputs: Sequence[Tensor], path: Path, labels: Sequence[str] | None = None
) -> Path:
    """Save inputs (first row) and one or more output rows as a PNG, atomically."""
    img = image_grid([inputs, *outputs], labels)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def write_index(run_dir: Path, extra: dict[str, str] | None = None) -> Path:
    """(Re)write ``run_dir/index.html``: final results first, then sample grids, newest first.

    Args:
        run_dir: the run folder.
        extra: optional title -> relative image path shown at the top (e.g. test results).
    """
    samples = sorted((run_dir / "samples").glob("step_*.png"), reverse=True)
    results = sorted((run_dir / "results").glob("*.png")) if (run_dir / "results").is_dir() else []
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    summary_path = run_dir / "train_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>sesim run {html.escape(run_dir.name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}"
        "img{max-width:100%;image-rendering:pixelated;border:1px solid #ccc}"
        "pre{background:#f4f4f4;padding:1em;font-size:12px}</style></head><body>",
        f"<h1>sesim run: {html.escape(run_dir.name)}</h1>",
    ]
    if summary:
        parts.append(
            "<p>"
            + ", ".join(f"{html.escape(k)}: {html.escape(str(v))}" for k, v in summary.items())
            + "</p>"
        )
    for title, rel in (extra or {}).items():
        parts.append(f"<h2>{html.escape(title)}</h2><img src='{html.escape(rel)}'>")
    if results:
        parts.append("<h2>Test set: input (top) and translation (bottom)</h2>")
        parts += [f"<img src='results/{html.escape(p.name)}'><br>" for p in results]
    if samples:
        parts.append("<h2>Samples over training (input above, output below), newest first</h2>")
        for p in samples:
            step = int(p.stem.split("_")[1])
            parts.append(f"<h3>step {step}</h3><img src='samples/{html.escape(p.name)}'>")
    if config:
        parts.append(f"<h2>Resolved config</h2><pre>{html.escape(config)}</pre>")
    parts.append("</body></html>")
    return atomic_write(run_dir / "index.html", "\n".join(parts))
