"""Image sets of an evaluation: folders of images, label maps, and the test split of a run's
dataset (inputs, real targets, pairs and labels)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sesim.data.images import filter_images, list_images, load_rgb, open_image, to_tensor
from sesim.errors import UserError

TEST_SET = "test set"

HELD_OUT = "held-out split"

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
        with open_image(path) as img:
            arr = np.asarray(img)
        if arr.ndim != 2:
            raise UserError(
                f"label map {path} has shape {arr.shape}: expected one channel of class ids "
                "(uint8 PNG, mode L or P)"
            )
        labels.append(torch.from_numpy(arr.astype(np.int64)))
    return labels


def size_text(sizes: set[tuple[int, int]]) -> str:
    ordered = sorted(sizes)
    text = ", ".join(f"{w}x{h}" for h, w in ordered[:3])
    return text + (f" (+{len(ordered) - 3} more)" if len(ordered) > 3 else "")


def batches(keys: Sequence[object], batch_size: int) -> list[list[int]]:
    """Indices grouped by key (first-seen order), in chunks of at most ``batch_size``."""
    groups: dict[object, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return [
        idx[start : start + batch_size]
        for idx in groups.values()
        for start in range(0, len(idx), batch_size)
    ]


def resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    """(N, 3, H, W) -> (N, 3, *size), anti-aliased bilinear; unchanged when the size matches."""
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def pairs_by_stem(reals: ImageSet, fakes: ImageSet) -> list[tuple[int, int]] | None:
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


# ---------------------------------------------------------------------------------------------
# Datasets of a run.


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


def splits(direction: str) -> tuple[str, str]:
    """(input split, target split) of the test set."""
    return ("testA", "testB") if direction == "AtoB" else ("testB", "testA")


def read_meta(root: Path) -> dict[str, Any]:
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
    src, dst = splits(direction)
    layout = "(the CycleGAN layout trainA/ trainB/ testA/ testB/)"
    inputs = load_image_set(root / src, f"test inputs of the {name} {layout}", max_images)
    reals = load_image_set(root / dst, f"real test images of the {name} {layout}", max_images)
    split = Split(name, root, inputs, reals)
    if with_targets and "pairing" in read_meta(root):
        index = {n: i for i, n in enumerate(reals.names)}
        if all(n in index for n in inputs.names):
            split.targets = [reals.images[index[n]] for n in inputs.names]
    if labels_dir is not None and labels_dir.is_dir():
        split.labels = load_label_maps(labels_dir, inputs.names)
        if (root / "labels" / dst).is_dir():
            split.real_labels = load_label_maps(root / "labels" / dst, reals.names)
    return split
