"""Training crops for single-image translation: CUT's "zoom and patch" sampling.

One source image (domain A) and one target image (domain B) are loaded once. Each call of
`SingleImagePair.sample` draws a batch of crops from each, following CUT's ``singleimage``
dataset with ``--preprocess zoom_and_patch`` (``data/singleimage_dataset.py`` and
``data/base_dataset.py``; the public F-LSeSim ``sinsc`` model uses it unchanged):

1. Zoom: the image is resized by scale factors drawn uniformly from [1 / max_zoom, 1], one for
   the width and one for the height, never below the crop size (so it is zoomed *out* by 1 to
   ``max_zoom``, CUT's ``--random_scale_max``, default 3). As in CUT, one zoom is shared by all
   crops of a batch (A and B draw their own), bilinear resampling.
2. Patch: the zoomed image is tiled by a grid of crop-sized cells shifted by a random offset
   (anywhere in the leftover margin, drawn per crop); each crop takes one cell, the cells of a
   batch drawn without repetition while there are enough of them (CUT keeps the crops of a batch
   apart so that contrastive negatives come from different places). Every crop lies inside the
   image.
3. Flip: each crop is mirrored left-right with probability 1/2.

Unlike CUT, which leaves the images at their file size in this mode, images whose longer side
exceeds ``load_size`` are first shrunk (keeping the aspect ratio, bicubic).

All randomness comes from the ``torch.Generator`` passed to `SingleImagePair.sample`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from sesim.data.images import load_rgb
from sesim.errors import UserError


def _load(path: Path, what: str, load_size: int, crop_size: int) -> Image.Image:
    """Load one image as RGB, shrunk to ``load_size``, and check that a crop fits in it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} image {path} does not exist: check the path")
    if not path.is_file():
        raise UserError(f"{what} image {path} is not a file: give the path of an image file")
    img = load_rgb(path)
    w, h = img.size
    if max(w, h) > load_size:
        scale = load_size / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = img.resize(size, Image.Resampling.BICUBIC)
    w2, h2 = img.size
    if min(w2, h2) < crop_size:
        shrunk = f" after shrinking to --load-size {load_size}" if (w2, h2) != (w, h) else ""
        raise UserError(
            f"{what} image {path} is {w2}x{h2}{shrunk}, smaller than the crop size: it must be at "
            f"least {crop_size}x{crop_size}; use a larger image or a smaller --crop-size"
        )
    return img


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    """One float drawn uniformly from [low, high]."""
    return low + (high - low) * float(torch.rand((), generator=generator))


def _randint(high: int, generator: torch.Generator) -> int:
    """One integer drawn uniformly from 0 .. high - 1."""
    return int(torch.randint(high, (), generator=generator))


class SingleImagePair:
    """A source and a target image, sampled as batches of zoomed, flipped crops.

    Args:
        source: the image to translate (domain A).
        target: the image whose style is learned (domain B).
        load_size: longest side kept when loading; larger images are shrunk to it.
        crop_size: side of the square crops (F-LSeSim ``sinsc``: 128; SinCUT: 64).
        max_zoom: largest zoom-out factor (CUT's ``--random_scale_max``); 1 disables zooming.
        flip: mirror crops left-right at random.

    Raises:
        UserError: a file is missing, unreadable or not an image, an image is smaller than
            the crop, or a setting is out of range.
    """

    def __init__(
        self,
        source: Path,
        target: Path,
        load_size: int = 1024,
        crop_size: int = 128,
        max_zoom: float = 3.0,
        flip: bool = True,
    ) -> None:
        if crop_size < 1:
            raise UserError(f"--crop-size must be positive, got {crop_size}")
        if load_size < crop_size:
            raise UserError(f"--load-size ({load_size}) must be at least --crop-size ({crop_size})")
        if not max_zoom >= 1.0:
            raise UserError(f"--max-zoom must be at least 1 (no zoom), got {max_zoom}")
        self.load_size = load_size
        self.crop_size = crop_size
        self.max_zoom = float(max_zoom)
        self.flip = flip
        self.source: Image.Image = _load(Path(source), "source", load_size, crop_size)
        self.target: Image.Image = _load(Path(target), "target", load_size, crop_size)

    def sample(self, batch: int, generator: torch.Generator) -> dict[str, Tensor]:
        """Draw a batch of crops from each image.

        Args:
            batch: number of crops per image.
            generator: the source of all randomness (a CPU generator).
        Returns:
            ``{"A": (batch, 3, crop, crop), "B": (batch, 3, crop, crop)}`` float32 in [-1, 1],
            crops of the source and target image.
        """
        if batch < 1:
            raise ValueError(f"batch must be positive, got {batch}")
        return {
            "A": self._crops(self.source, batch, generator),
            "B": self._crops(self.target, batch, generator),
        }

    def _zoomed(self, img: Image.Image, generator: torch.Generator) -> Tensor:
        """The image resized by a random zoom, as a (H', W', 3) uint8 tensor."""
        low = 1.0 / self.max_zoom
        sw, sh = _uniform(low, 1.0, generator), _uniform(low, 1.0, generator)
        w, h = img.size
        size = (max(self.crop_size, round(w * sw)), max(self.crop_size, round(h * sh)))
        if size != img.size:
            img = img.resize(size, Image.Resampling.BILINEAR)
        return torch.from_numpy(np.array(img, dtype=np.uint8))

    def _crops(self, img: Image.Image, batch: int, generator: torch.Generator) -> Tensor:
        """(batch, 3, crop, crop) crops of one image, sharing one zoom."""
        pixels = self._zoomed(img, generator)
        height, width = pixels.shape[:2]
        size = self.crop_size
        cols, rows = width // size, height // size
        room_x, room_y = width - cols * size, height - rows * size
        cells = torch.cat(
            [
                torch.randperm(cols * rows, generator=generator)
                for _ in range(-(-batch // (cols * rows)))
            ]
        )[:batch]
        crops = []
        for cell in cells.tolist():
            x0 = _randint(room_x + 1, generator) + (cell % cols) * size
            y0 = _randint(room_y + 1, generator) + (cell // cols) * size
            crop = pixels[y0 : y0 + size, x0 : x0 + size]
            if self.flip and _randint(2, generator):
                crop = crop.flip(1)
            crops.append(crop)
        out = torch.stack(crops).permute(0, 3, 1, 2).to(torch.float32)
        return (out / 127.5 - 1.0).contiguous()
