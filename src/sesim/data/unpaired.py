"""Unpaired two-domain datasets in the CycleGAN folder layout, with explicit randomness.

A sample is addressed by a key ``(index_a, index_b, seed)``: which image of each domain, and the
seed of everything random about it (crops, flips, colour jitter). The same key always gives the
same tensors, so a run resumes exactly from a step counter; `UnpairedSampler` makes such keys
from ``(seed, position)`` alone.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from sesim.data.images import (
    UnreadableImageWarning,
    filter_images,
    list_images,
    load_rgb,
    to_tensor,
)
from sesim.errors import UserError

Direction = Literal["AtoB", "BtoA"]
Preprocess = Literal["resize_and_crop", "crop", "scale_width_and_crop", "none"]
Key = tuple[int, int, int]

DIRECTIONS: tuple[str, ...] = ("AtoB", "BtoA")
PREPROCESS_MODES: tuple[str, ...] = ("resize_and_crop", "crop", "scale_width_and_crop", "none")

# torchvision's ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.3).
JITTER_STRENGTH = 0.5
JITTER_HUE = 0.3


@dataclass(frozen=True)
class Draw:
    """The random choices for one image of a sample.

    Attributes:
        crop_y, crop_x: crop position as fractions in [0, 1) of the free range.
        flip: horizontal flip coin, in [0, 1) (flipped below 0.5).
        order: (4,) order of the jitter operations (0 brightness, 1 contrast, 2 saturation, 3 hue).
        brightness, contrast, saturation: jitter factors in [0.5, 1.5].
        hue: hue shift in [-0.3, 0.3].
    """

    crop_y: float
    crop_x: float
    flip: float
    order: tuple[int, ...]
    brightness: float
    contrast: float
    saturation: float
    hue: float


def draw(g: torch.Generator) -> Draw:
    """Draw every random choice of one image, always the same amount of randomness.

    Args:
        g: the sample's generator (a sample draws for A first, then for B).
    Returns:
        The crop position, flip coin and colour-jitter parameters (drawn even when unused, so
        switching ``flip`` or ``augment`` never moves a crop).
    """
    u = torch.rand(3, generator=g, dtype=torch.float64).tolist()
    order = tuple(torch.randperm(4, generator=g).tolist())
    j = torch.rand(4, generator=g, dtype=torch.float64).tolist()
    return Draw(
        crop_y=u[0],
        crop_x=u[1],
        flip=u[2],
        order=order,
        brightness=1.0 + JITTER_STRENGTH * (2.0 * j[0] - 1.0),
        contrast=1.0 + JITTER_STRENGTH * (2.0 * j[1] - 1.0),
        saturation=1.0 + JITTER_STRENGTH * (2.0 * j[2] - 1.0),
        hue=JITTER_HUE * (2.0 * j[3] - 1.0),
    )


def color_jitter(img: Tensor, d: Draw) -> Tensor:
    """Apply the drawn brightness, contrast, saturation and hue changes in the drawn order.

    Args:
        img: (3, H, W) float in [0, 1].
        d: the draw.
    Returns:
        (3, H, W) float in [0, 1]. Every change is a global per-pixel colour map, so pixels of
        equal colour stay equal: the structure is untouched.
    """
    for op in d.order:
        if op == 0:
            img = TF.adjust_brightness(img, d.brightness)
        elif op == 1:
            img = TF.adjust_contrast(img, d.contrast)
        elif op == 2:
            img = TF.adjust_saturation(img, d.saturation)
        else:
            img = TF.adjust_hue(img, d.hue)
    return img


def _resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Bicubic resize to (W, H) ``size``; a no-op when the size already matches."""
    return img if img.size == size else img.resize(size, Image.Resampling.BICUBIC)


def preprocess_size(
    w: int, h: int, preprocess: Preprocess, load_size: int, crop_size: int
) -> tuple[int, int]:
    """Size (W, H) an image of size (w, h) is resized to before cropping.

    - ``resize_and_crop``: a ``load_size`` square;
    - ``crop``: unchanged;
    - ``scale_width_and_crop``: width ``load_size``, aspect ratio kept;
    - ``none``: each side rounded to a multiple of 4 (the generators downsample twice).

    For the cropping modes, an image still smaller than ``crop_size`` on a side is then scaled
    up, keeping its aspect ratio, until the crop fits.
    """
    if preprocess == "none":
        return max(4, round(w / 4) * 4), max(4, round(h / 4) * 4)
    if preprocess == "resize_and_crop":
        w, h = load_size, load_size
    elif preprocess == "scale_width_and_crop":
        w, h = load_size, max(1, round(load_size * h / w))
    if w < crop_size or h < crop_size:
        scale = crop_size / min(w, h)
        w, h = max(crop_size, math.ceil(w * scale)), max(crop_size, math.ceil(h * scale))
    return w, h


def transform(
    img: Image.Image,
    d: Draw,
    preprocess: Preprocess,
    load_size: int,
    crop_size: int,
    flip: bool,
) -> Image.Image:
    """Resize, crop and flip one image as drawn.

    Args:
        img: RGB image.
        d: the random choices (crop position, flip).
        preprocess: see `preprocess_size`.
        load_size: resize target.
        crop_size: crop side (ignored for ``"none"``).
        flip: allow horizontal flips.
    Returns:
        A (crop_size, crop_size) image, or the whole resized image for ``"none"``.
    """
    img = _resize(img, preprocess_size(*img.size, preprocess, load_size, crop_size))
    if preprocess != "none":
        w, h = img.size
        x = min(int(d.crop_x * (w - crop_size + 1)), w - crop_size)
        y = min(int(d.crop_y * (h - crop_size + 1)), h - crop_size)
        img = img.crop((x, y, x + crop_size, y + crop_size))
    if flip and d.flip < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img


class UnpairedDataset(Dataset[dict[str, Any]]):
    """Images of two domains, ``root/{phase}A`` and ``root/{phase}B``, drawn independently.

    Index it with a key ``(index_a, index_b, seed)`` (see `UnpairedSampler`); everything random
    about the sample comes from ``torch.Generator().manual_seed(seed)``, never from global state.
    A and B get independent crops, flips and jitters. Images smaller than the crop after the
    chosen preprocessing are scaled up (aspect ratio kept) until the crop fits.

    A file that cannot be read when loaded is replaced by the next readable file of its domain
    (deterministically), with one warning per file.
    """

    def __init__(
        self,
        root: Path,
        phase: str = "train",
        direction: Direction = "AtoB",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        augment: bool = False,
        preprocess: Preprocess = "resize_and_crop",
        verify: bool = True,
    ) -> None:
        """Find and check the image files.

        Args:
            root: dataset folder holding ``trainA/ trainB/ testA/ testB/``.
            phase: split prefix, usually ``"train"`` or ``"test"``.
            direction: ``"BtoA"`` swaps the domains: then ``"A"`` comes from ``{phase}B``.
            load_size: resize target of the preprocessing (see `preprocess_size`).
            crop_size: side of the square random crop.
            flip: random horizontal flips.
            augment: also return ``"A_aug"``/``"B_aug"``, colour-jittered copies of the same
                crops (the structure-preserving positives of LSeSim).
            preprocess: ``"resize_and_crop"``, ``"crop"``, ``"scale_width_and_crop"`` or
                ``"none"`` (whole images, sides rounded to multiples of 4; batches then need
                equal sizes).
            verify: decode every file once now and skip unreadable ones with a warning (see
                `sesim.data.images.check_images`); False only lists the files.
        Raises:
            UserError: bad settings, missing folders, or no readable image in a domain.
        """
        if direction not in DIRECTIONS:
            raise UserError(f"direction {direction!r} is unknown: use 'AtoB' or 'BtoA'")
        if preprocess not in PREPROCESS_MODES:
            raise UserError(
                f"preprocess {preprocess!r} is unknown: use one of {', '.join(PREPROCESS_MODES)}"
            )
        if load_size < 1 or crop_size < 1:
            raise UserError(
                f"load_size={load_size}, crop_size={crop_size}: both must be positive pixel counts"
            )
        if not phase:
            raise UserError("phase is empty: use 'train' or 'test'")
        root = Path(root)
        if not root.is_dir():
            raise UserError(
                f"dataset folder {root} does not exist: expected a folder with the CycleGAN "
                "layout trainA/ trainB/ testA/ testB/"
            )
        self.root = root
        self.phase = phase
        self.direction: Direction = direction
        self.load_size = load_size
        self.crop_size = crop_size
        self.flip = flip
        self.augment = augment
        self.preprocess: Preprocess = preprocess

        source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
        self.dir_a = root / f"{phase}{source}"
        self.dir_b = root / f"{phase}{target}"
        self.paths_a = self._find(self.dir_a, source, verify)
        self.paths_b = self._find(self.dir_b, target, verify)
        self._bad: set[Path] = set()  # files found unreadable at load time (warned once)

    def _find(self, folder: Path, domain: str, verify: bool) -> list[Path]:
        what = (
            f"the CycleGAN layout trainA/ trainB/ testA/ testB/ under {self.root} "
            f"(images of domain {domain} for phase {self.phase!r})"
        )
        paths = list_images(folder, what)
        return filter_images(paths, str(folder)) if verify else paths

    @property
    def len_a(self) -> int:
        """Number of source-domain images (``"A"`` in the returned samples)."""
        return len(self.paths_a)

    @property
    def len_b(self) -> int:
        """Number of target-domain images (``"B"`` in the returned samples)."""
        return len(self.paths_b)

    def __len__(self) -> int:
        """``len_a``: one pass over the source domain."""
        return self.len_a

    def __getitem__(self, key: Key) -> dict[str, Any]:
        """One training sample.

        Args:
            key: ``(index_a, index_b, seed)``.
        Returns:
            ``{"A": (3, crop, crop), "B": (3, crop, crop), "A_path": str, "B_path": str}``,
            tensors float32 in [-1, 1]; with ``augment`` also ``"A_aug"`` and ``"B_aug"`` of the
            same shapes. With ``preprocess="none"`` the tensors are whole images.
        """
        if isinstance(key, int) or not isinstance(key, Sequence) or len(key) != 3:
            raise TypeError(
                "UnpairedDataset is indexed by keys (index_a, index_b, seed), "
                f"got {key!r}: use UnpairedSampler (or a sampler yielding such tuples)"
            )
        index_a, index_b, seed = (int(k) for k in key)
        if not (0 <= index_a < self.len_a and 0 <= index_b < self.len_b):
            raise IndexError(
                f"key ({index_a}, {index_b}, ...) outside {self.len_a} A and {self.len_b} B images"
            )
        g = torch.Generator().manual_seed(seed)
        draw_a, draw_b = draw(g), draw(g)  # A first, then B
        img_a, path_a = self._load(self.paths_a, index_a)
        img_b, path_b = self._load(self.paths_b, index_b)
        out: dict[str, Any] = {"A_path": str(path_a), "B_path": str(path_b)}
        for name, img, d in (("A", img_a, draw_a), ("B", img_b, draw_b)):
            img = transform(img, d, self.preprocess, self.load_size, self.crop_size, self.flip)
            t = to_tensor(img)  # [-1, 1]
            out[name] = t
            if self.augment:
                jittered = color_jitter((t + 1.0) * 0.5, d)
                out[f"{name}_aug"] = jittered * 2.0 - 1.0
        return out

    def _load(self, paths: list[Path], index: int) -> tuple[Image.Image, Path]:
        """Load ``paths[index]``, or the next readable file after it (wrapping around)."""
        for step in range(len(paths)):
            path = paths[(index + step) % len(paths)]
            if path in self._bad:
                continue
            try:
                return load_rgb(path), path
            except UserError as exc:
                self._bad.add(path)
                warnings.warn(
                    f"{exc}; using the next file of {path.parent} instead",
                    UnreadableImageWarning,
                    stacklevel=3,
                )
        raise UserError(
            f"no image in {paths[0].parent} can be read any more: replace the files and restart"
        )


def _splitmix64(x: int) -> int:
    """One step of the SplitMix64 mixer (a bijection of 64-bit integers)."""
    mask = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return x ^ (x >> 31)


def derive_seed(*values: int) -> int:
    """A well-mixed seed in [0, 2**63) from integers (e.g. a run seed and a position)."""
    h = 0
    for v in values:
        h = _splitmix64(h ^ (v & ((1 << 64) - 1)))
    return h >> 1


class UnpairedSampler(Sampler[Key]):
    """Endless keys ``(index_a, index_b, seed)`` for `UnpairedDataset`, a pure function of position.

    Position ``k`` belongs to epoch ``k // len_a``; each epoch visits every A image once in an
    order shuffled by ``(seed, epoch)``; the B image and the sample seed are drawn from
    ``(seed, k)``. Resuming after ``k`` samples is ``UnpairedSampler(..., start=k)``.
    """

    def __init__(
        self, len_a: int, len_b: int, seed: int = 0, start: int = 0, shuffle: bool = True
    ) -> None:
        """Set up the key sequence.

        Args:
            len_a: source images (``dataset.len_a``).
            len_b: target images (``dataset.len_b``).
            seed: run seed.
            start: position of the first key (samples already consumed).
            shuffle: shuffle A per epoch and draw B at random; False walks both in order
                (``index_b = k % len_b``).
        Raises:
            ValueError: a domain is empty.
        """
        if len_a < 1 or len_b < 1:
            raise ValueError(f"both domains need images, got len_a={len_a}, len_b={len_b}")
        self.len_a, self.len_b = len_a, len_b
        self.seed, self.start, self.shuffle = seed, start, shuffle

    def _order(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(derive_seed(self.seed, 0, epoch))
        return torch.randperm(self.len_a, generator=g).tolist()

    def key(self, k: int) -> Key:
        """The key at position ``k``."""
        epoch, i = divmod(k, self.len_a)
        return self._key(k, self._order(epoch)[i] if self.shuffle else i)

    def _key(self, k: int, index_a: int) -> Key:
        sample_seed = derive_seed(self.seed, 2, k)
        index_b = derive_seed(self.seed, 1, k) % self.len_b if self.shuffle else k % self.len_b
        return index_a, index_b, sample_seed

    def __iter__(self) -> Iterator[Key]:
        k = self.start
        epoch, order = -1, list(range(self.len_a))
        while True:
            e, i = divmod(k, self.len_a)
            if self.shuffle and e != epoch:
                epoch, order = e, self._order(e)
            yield self._key(k, order[i])
            k += 1


class ImageFolder(Dataset[dict[str, Any]]):
    """Whole images (no resize, no crop) for translation at test time."""

    def __init__(self, paths: Sequence[Path]) -> None:
        """Wrap a list of files.

        Args:
            paths: image files, e.g. ``filter_images(list_images(folder, ...), ...)``.
        Raises:
            UserError: the list is empty.
        """
        if not paths:
            raise UserError("no images to translate: give a folder or files with images")
        self.paths = [Path(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One image.

        Returns:
            ``{"image": (3, H, W) float32 in [-1, 1], "path": str, "size": (H, W)}``.
        Raises:
            UserError: the file cannot be read.
        """
        path = self.paths[index]
        img = load_rgb(path)
        return {"image": to_tensor(img), "path": str(path), "size": (img.height, img.width)}


def collate_images(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch `ImageFolder` items, keeping paths and sizes as lists.

    Args:
        batch: items of equal image size.
    Returns:
        ``{"image": (B, 3, H, W), "path": list[str], "size": list[(H, W)]}``.
    Raises:
        ValueError: the images differ in size (use ``batch_size=1`` for such folders).
    """
    sizes = [tuple(item["image"].shape) for item in batch]
    if len(set(sizes)) > 1:
        raise ValueError(
            f"cannot batch images of different sizes {sorted(set(sizes))}: use batch_size=1"
        )
    return {
        "image": torch.stack([item["image"] for item in batch]),
        "path": [item["path"] for item in batch],
        "size": [tuple(item["size"]) for item in batch],
    }
