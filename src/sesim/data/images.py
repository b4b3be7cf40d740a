"""Image files: finding them, reading any mode as 8-bit RGB, checking them, saving atomically.

Tensors use the convention of the whole package: ``(3, H, W)`` float32 in ``[-1, 1]``.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from sesim.errors import UserError

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)
"""File name endings (lower case, matched case-insensitively) that count as images."""

_HIGH_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N", "I;16S"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


DEFAULT_MAX_PIXELS = 89_478_485
"""Largest pixel count sesim decodes (Pillow's own decompression-bomb limit, about 89.5 MP);
the environment variable ``SESIM_MAX_PIXELS`` changes it."""

_UNCHECKED_OPEN = threading.Lock()


class ImageTooLargeError(UserError):
    """An image declares more pixels than the limit (a decompression bomb, or just too big).

    Attributes:
        size: the declared ``(width, height)``.
        limit: the pixel limit in force.
    """

    def __init__(self, name: str, size: tuple[int, int], limit: int) -> None:
        self.size = size
        self.limit = limit
        w, h = size
        super().__init__(
            f"{name} declares {w}x{h} pixels ({w * h / 1e6:,.1f} megapixels); the limit is "
            f"{limit / 1e6:,.1f} megapixels, so it is refused before decoding: shrink the image, "
            "or if you trust the file raise the limit with SESIM_MAX_PIXELS=N"
        )


def max_pixels() -> int:
    """The pixel limit: ``SESIM_MAX_PIXELS`` when set to a positive integer, else the default."""
    raw = os.environ.get("SESIM_MAX_PIXELS", "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"SESIM_MAX_PIXELS={raw!r} is not a whole number of pixels") from None
    if value <= 0:
        raise UserError(f"SESIM_MAX_PIXELS={raw!r} must be positive")
    return value


def _open_unchecked(source: Path | BinaryIO, formats: list[str] | None) -> Image.Image:
    """``Image.open`` with Pillow's own bomb check off (the caller checks the size itself)."""
    if not isinstance(source, Path):
        source.seek(0)
    with _UNCHECKED_OPEN:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            img: Image.Image = Image.open(source, formats=formats)
            return img
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def open_image(
    source: Path | BinaryIO, name: str | None = None, formats: list[str] | None = None
) -> Image.Image:
    """Open an image lazily (header only), refusing one that declares too many pixels.

    The declared size is checked against :func:`max_pixels` before any pixel is decoded, so a
    small file that declares a huge image (a decompression bomb) costs nothing and is refused
    with its real reason.

    Args:
        source: a file path or a binary file object.
        name: how to name the image in messages (default: the path, or ``the image``).
        formats: the Pillow formats to try (None: all).
    Returns:
        The opened, not yet loaded image (close it, or use it in a ``with`` block).
    Raises:
        ImageTooLargeError: the declared pixel count is above the limit.
        Exception: whatever Pillow raises for a file it cannot read.
    """
    label = name if name is not None else (str(source) if isinstance(source, Path) else "the image")
    limit = max_pixels()
    try:
        img: Image.Image = Image.open(source, formats=formats)
    except Image.DecompressionBombError:
        img = _open_unchecked(source, formats)  # only to read the declared size
    w, h = img.size
    if w * h > limit:
        img.close()
        raise ImageTooLargeError(label, (w, h), limit)
    return img


class UnreadableImageWarning(UserWarning):
    """Some image files could not be read and were skipped."""


def list_images(folder: Path, what: str) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted by their path relative to it.

    Files and folders whose names start with a dot (``.DS_Store``, macOS ``._x.png`` forks,
    hidden caches) are ignored.

    Args:
        folder: the folder to search.
        what: what the folder is expected to hold, for the error message, e.g.
            ``"training images of domain A (the CycleGAN layout trainA/ trainB/ testA/ testB/)"``.
    Returns:
        Sorted paths of every file whose extension is in ``IMAGE_EXTENSIONS``.
    Raises:
        UserError: the folder does not exist, is not a folder, or holds no image files.
    """
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"folder {folder} does not exist: expected {what}")
    if not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder: expected {what}")
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            found.append((rel.as_posix(), path))
    if not found:
        exts = " ".join(IMAGE_EXTENSIONS)
        raise UserError(f"folder {folder} contains no image files ({exts}): expected {what}")
    found.sort()
    return [path for _, path in found]


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert an image of any Pillow mode to 8-bit RGB.

    - grayscale (``1``, ``L``) and palette (``P``) images become gray or their palette colours;
    - images with transparency (``RGBA``, ``LA``, ``PA``, ``P`` or ``RGB`` with a transparent
      colour) are composited on white;
    - ``CMYK``, ``YCbCr``, ``HSV`` use Pillow's conversion;
    - 16-bit and 32-bit integer or float images (``I;16``, ``I;16B``, ``I``, ``F``) are scaled
      linearly from their actual minimum..maximum to 0..255 (a constant image becomes black;
      NaN and infinite values count as the minimum).

    Args:
        img: any Pillow image (it is not modified).
    Returns:
        A new ``RGB`` image of the same size.
    Raises:
        ValueError: Pillow cannot convert this mode.
    """
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img.copy()
    if mode in _HIGH_DEPTH_MODES:
        arr = np.asarray(img).astype(np.float64)
        finite = np.isfinite(arr)
        if not finite.any():
            gray = np.zeros(arr.shape, dtype=np.uint8)
        else:
            lo, hi = float(arr[finite].min()), float(arr[finite].max())
            arr = np.where(finite, arr, lo)
            if hi > lo:
                gray = np.rint((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)
            else:
                gray = np.zeros(arr.shape, dtype=np.uint8)
        return Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2), mode="RGB")
    if mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def load_rgb(path: Path) -> Image.Image:
    """Read an image file fully and return it as 8-bit RGB (see `to_rgb` for the conversions).

    The EXIF orientation tag, when present, is applied. Multi-frame files give their first frame.

    Args:
        path: the image file.
    Returns:
        A loaded ``RGB`` image, detached from the file.
    Raises:
        UserError: the file is missing, empty, truncated, corrupt or in an unsupported mode.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UserError(f"cannot read image {path}: the file is empty; remove or replace it")
        with open_image(path) as img:
            img.load()
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception:  # a broken EXIF block must not make the pixels unusable
                oriented = img
            return to_rgb(oriented)
    except UserError:
        raise
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError...)
        reason = str(exc) or type(exc).__name__
        raise UserError(f"cannot read image {path}: {reason}; remove or replace the file") from exc


def _check_one(path: Path) -> str | None:
    """None when ``path`` loads, else the reason it does not."""
    try:
        load_rgb(path)
    except UserError as exc:
        return str(exc)
    return None


def check_images(
    paths: Iterable[Path], workers: int | None = None
) -> tuple[list[Path], list[Path]]:
    """Split image files into usable and unreadable ones.

    Every file is decoded fully (a header check misses truncated files), in a thread pool since
    Pillow releases the GIL while decoding. That costs about 1 ms per 256-px JPEG and core, so a
    few thousand images take seconds; for far larger datasets skip the check and rely on the
    load-time fallback of the datasets.

    Args:
        paths: image files.
        workers: decoding threads; None uses ``min(8, os.cpu_count())``.
    Returns:
        ``(usable, bad)``, each in the input order.
    """
    paths = [Path(p) for p in paths]
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    if workers <= 1 or len(paths) < 2:
        reasons = [_check_one(p) for p in paths]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            reasons = list(pool.map(_check_one, paths))
    good = [p for p, r in zip(paths, reasons) if r is None]
    bad = [p for p, r in zip(paths, reasons) if r is not None]
    return good, bad


def filter_images(paths: Sequence[Path], what: str) -> list[Path]:
    """Keep the readable images, warning once when some are skipped.

    Args:
        paths: image files, e.g. from `list_images`.
        what: where they come from, for messages (typically the folder).
    Returns:
        The readable files, in order.
    Raises:
        UserError: ``paths`` is empty or none of the files can be read.
    """
    if not paths:
        raise UserError(f"no image files in {what}: add images or choose another folder")
    good, bad = check_images(paths)
    if not good:
        reason = _check_one(bad[0])
        raise UserError(
            f"none of the {len(bad)} image files in {what} can be read "
            f"(first: {reason}); replace them or choose another folder"
        )
    if bad:
        warnings.warn(
            f"skipped {len(bad)} unreadable files in {what} (first: {bad[0].name})",
            UnreadableImageWarning,
            stacklevel=2,
        )
    return good


def to_tensor(img: Image.Image) -> Tensor:
    """Image to tensor.

    Args:
        img: a Pillow image of any mode (converted with `to_rgb` when not RGB).
    Returns:
        (3, H, W) float32 in [-1, 1].
    """
    if img.mode != "RGB" or "transparency" in img.info:
        img = to_rgb(img)
    arr = np.asarray(img, dtype=np.uint8)
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).to(torch.float32)
    return t / 127.5 - 1.0


def to_pil(t: Tensor) -> Image.Image:
    """Tensor to image, the inverse of `to_tensor`; values outside [-1, 1] are clamped.

    Args:
        t: (3, H, W) or (1, 3, H, W) in [-1, 1], any device and float dtype.
    Returns:
        An ``RGB`` image of size (W, H).
    """
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image tensor, got shape {tuple(t.shape)}")
    t = t.detach().to("cpu", torch.float32).clamp(-1.0, 1.0)
    arr = ((t + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(arr, mode="RGB")
