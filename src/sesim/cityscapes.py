"""Cityscapes labels -> photos, prepared as the CUT and F-LSeSim papers use it.

From the official archives (``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip``,
or the folders they extract to), :func:`prepare_cityscapes` writes a CycleGAN-layout dataset:

- ``trainA/`` colour label maps (``*_gtFine_color.png``) of the 2,975 training images and
  ``trainB/`` the photos (``*_leftImg8bit.png``), both resized to ``size`` x ``size`` (the
  256 x 256 of pix2pix's and CUT's Cityscapes; label maps with nearest-neighbour, photos with
  bicubic resampling);
- ``testA/`` and ``testB/`` the same for the 500 validation images (the test split has no
  public labels);
- ``labels/testA/`` and ``labels/testB/`` the validation label maps as *train ids* (19
  classes, 255 = ignore), single-channel PNGs named like the test images, at 128 x 256
  (height x width, nearest) - the size at which ``sesim eval --metrics seg`` scores
  translations with DRN-D-22 (CUT's protocol);
- ``meta.json`` with the class names and the source archives.

Train ids come from the ``*_gtFine_labelIds.png`` maps through the official table
(``cityscapesscripts/helpers/labels.py``), since the archives hold no train-id maps.

An application module (beside ``demo.py``), not part of ``data/``: it writes files, and every
file goes through :mod:`sesim.runs`' atomic writes, which ``data/`` may not import.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sesim.errors import UserError
from sesim.runs import atomic_path, write_json

#: Train-id names (19 evaluated classes).
TRAIN_CLASSES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)

#: label id -> train id of the evaluated classes; every other id maps to 255 (ignore).
LABEL_TO_TRAIN: dict[int, int] = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}

#: (height, width) of the label maps used for scoring (CUT's DRN-D-22 evaluation).
SEG_SIZE: tuple[int, int] = (128, 256)

_PHOTO = re.compile(r"(?:^|/)(train|val)/([^/]+)/([^/]+)_leftImg8bit\.png$")
_COLOR = re.compile(r"(?:^|/)(train|val)/([^/]+)/([^/]+)_gtFine_color\.png$")
_IDS = re.compile(r"(?:^|/)(train|val)/([^/]+)/([^/]+)_gtFine_labelIds\.png$")


def train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map Cityscapes label ids to train ids (255 for classes that are not evaluated).

    Args:
        label_ids: (H, W) integer label ids.
    Returns:
        (H, W) uint8 train ids.
    """
    table = np.full(256, 255, dtype=np.uint8)
    for label, train in LABEL_TO_TRAIN.items():
        table[label] = train
    return table[np.clip(label_ids.astype(np.int64), 0, 255)]


class _Source:
    """Files of an archive or an extracted folder, by their path relative to its root."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        if path.is_file() and zipfile.is_zipfile(path):
            self._zip: zipfile.ZipFile | None = zipfile.ZipFile(path)
            self.names = [n for n in self._zip.namelist() if not n.endswith("/")]
        elif path.is_dir():
            self._zip = None
            self.names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        else:
            raise UserError(f"{what} {path} is neither a zip archive nor a folder")

    def read(self, name: str) -> Image.Image:
        raw = self._zip.read(name) if self._zip is not None else (self.path / name).read_bytes()
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            return img.copy()

    def match(self, pattern: re.Pattern[str]) -> dict[tuple[str, str], str]:
        """``(split, image id) -> name`` of the files matching ``pattern``."""
        out = {}
        for name in self.names:
            m = pattern.search(name)
            if m is not None:
                out[(m.group(1), m.group(3))] = name
        return out

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


@dataclass(frozen=True)
class CityscapesSummary:
    """What :func:`prepare_cityscapes` wrote.

    Attributes:
        out: the dataset folder.
        train: training pairs written.
        test: validation pairs written (as test).
    """

    out: Path
    train: int
    test: int


def _save(img: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def _pairs(
    photos: _Source, labels: _Source, split: str, limit: int | None
) -> Iterator[tuple[str, str, str, str]]:
    """(image id, photo name, colour map name, label-id map name) of one split, sorted."""
    p = {k[1]: v for k, v in photos.match(_PHOTO).items() if k[0] == split}
    c = {k[1]: v for k, v in labels.match(_COLOR).items() if k[0] == split}
    i = {k[1]: v for k, v in labels.match(_IDS).items() if k[0] == split}
    ids = sorted(set(p) & set(c) & set(i))
    for key in ids[:limit]:
        yield key, p[key], c[key], i[key]


def prepare_cityscapes(
    images: Path,
    labels: Path,
    out: Path,
    size: int = 256,
    max_images: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> CityscapesSummary:
    """Write the labels -> photos dataset (see the module docstring).

    Args:
        images: ``leftImg8bit_trainvaltest.zip`` or the folder it extracts to.
        labels: ``gtFine_trainvaltest.zip`` or the folder it extracts to.
        out: the dataset folder to write (must not hold images yet).
        size: side of the square training and test images (256 as pix2pix and CUT).
        max_images: use only the first N images of each split (sorted by id; for tests).
        progress: called with one line per split written.
    Returns:
        How many training and test pairs were written.
    Raises:
        UserError: a missing archive, no matching photo/label pairs, or an ``out`` that
            already holds a dataset.
    """
    if (out / "trainA").is_dir() and any((out / "trainA").iterdir()):
        raise UserError(f"{out} already holds a dataset; choose another --out")
    photos, maps = _Source(images, "--images"), _Source(labels, "--labels")
    counts = {}
    try:
        for split, name in (("train", "train"), ("val", "test")):
            n = 0
            for key, photo, color, ids in _pairs(photos, maps, split, max_images):
                file = f"{key}.png"
                rgb = (
                    photos.read(photo).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
                )
                col = maps.read(color).convert("RGB").resize((size, size), Image.Resampling.NEAREST)
                _save(col, out / f"{name}A" / file)
                _save(rgb, out / f"{name}B" / file)
                if name == "test":
                    label_ids = np.asarray(maps.read(ids))
                    if label_ids.ndim != 2:
                        raise UserError(f"{ids} is not a single-channel label-id map")
                    small = Image.fromarray(train_ids(label_ids)).resize(
                        (SEG_SIZE[1], SEG_SIZE[0]), Image.Resampling.NEAREST
                    )
                    for side in ("testA", "testB"):
                        _save(small, out / "labels" / side / file)
                n += 1
            if n == 0:
                raise UserError(
                    f"no {split} images with colour and label-id maps found in {images} and "
                    f"{labels}: expected leftImg8bit/{split}/CITY/*_leftImg8bit.png and "
                    f"gtFine/{split}/CITY/*_gtFine_color.png, *_gtFine_labelIds.png"
                )
            counts[name] = n
            if progress is not None:
                progress(f"{name}: {n} pairs")
    finally:
        photos.close()
        maps.close()
    write_json(
        out / "meta.json",
        {
            "dataset": "cityscapes",
            "direction": "labels (A) -> photos (B)",
            "num_classes": len(TRAIN_CLASSES),
            "classes": list(TRAIN_CLASSES),
            "ignore_index": 255,
            "label_maps": "labels/testA, labels/testB: train ids at 128x256 (HxW), for seg",
            "size": size,
            "images": str(images),
            "labels": str(labels),
        },
    )
    return CityscapesSummary(out, counts["train"], counts["test"])
