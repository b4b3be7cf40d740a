"""The synthetic tasks of the benchmarks: datasets written once and cached, loaded as tensors,
the structure oracle and the colour-transfer reference."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from sesim.bench.presets import BenchPreset
from sesim.data.colour import histogram_transfer
from sesim.data.synthetic import write_synthetic_dataset
from sesim.data.unpaired import derive_seed
from sesim.errors import UserError


@dataclass
class TaskData:
    """One task's images as tensors (images (N, 3, H, W) in [-1, 1], labels (N, H, W) int64).

    Attributes:
        task: the task name.
        root: the dataset folder (CycleGAN layout), which the runs train on.
        class_names: label class names (index = class id).
        train_a, train_b: unpaired training images of each domain.
        labels_train_a, labels_train_b: their label maps.
        test_a: the test inputs.
        test_b: the same scenes rendered in domain B (the true translations).
        labels_test: the test scenes' label maps (shared by ``test_a`` and ``test_b``).
        reference: held-out real B images of other scenes (the FID/KID reference set).
    """

    task: str
    root: Path
    class_names: tuple[str, ...]
    train_a: Tensor
    train_b: Tensor
    labels_train_a: Tensor
    labels_train_b: Tensor
    test_a: Tensor
    test_b: Tensor
    labels_test: Tensor
    reference: Tensor

    @property
    def num_classes(self) -> int:
        """Number of label classes."""
        return len(self.class_names)


def _load_folder(folder: Path, labels: bool) -> tuple[list[str], Tensor]:
    """Read every PNG of a folder, sorted by name.

    Returns:
        The file names and either (N, 3, H, W) float32 images in [-1, 1] (``labels`` False) or
        (N, H, W) int64 class ids (``labels`` True).
    """
    names = sorted(p.name for p in folder.glob("*.png"))
    if not names:
        raise UserError(f"no PNG images in {folder}; delete the cached dataset and run again")
    arrays = []
    for name in names:
        with Image.open(folder / name) as img:
            arrays.append(np.asarray(img))
    stacked = torch.from_numpy(np.stack(arrays))
    if labels:
        return names, stacked.to(torch.int64)
    return names, stacked.permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1.0


def _load_split(root: Path, split: str) -> tuple[Tensor, Tensor]:
    """Images and label maps of ``root/split``, matched by file name."""
    names, images = _load_folder(root / split, labels=False)
    label_names, labels = _load_folder(root / "labels" / split, labels=True)
    if label_names != names:
        raise UserError(f"{root / 'labels' / split} does not match {root / split}")
    return images, labels


def prepare_data(
    out: Path, task: str, bench: BenchPreset, seed: int, progress: bool = False
) -> TaskData:
    """Write (or reuse) a task's dataset and reference set, and load them.

    Cached under ``out/data/<task>-<size>px-n<n_train>-t<n_test>-seed<seed>/``: ``dataset/``
    (the CycleGAN layout with labels) and ``reference/`` (a second dataset, seeded with a seed
    derived from ``seed``, whose ``testB`` holds the held-out real B images).

    Args:
        out: the benchmark folder.
        task: a key of ``TASKS``.
        bench: sizes and image counts.
        seed: the data seed.
        progress: progress bars while writing.
    """
    folder = out / "data" / f"{task}-{bench.size}px-n{bench.n_train}-t{bench.n_test}-seed{seed}"
    root, ref = folder / "dataset", folder / "reference"
    for path, n, n_test, data_seed in (
        (root, bench.n_train, bench.n_test, seed),
        (ref, 1, bench.n_test, derive_seed(seed, 0xBE4C)),
    ):
        if not (path / "meta.json").is_file():
            if path.exists():  # an older, incomplete attempt
                shutil.rmtree(path)
            write_synthetic_dataset(
                path,
                n=n,
                size=bench.size,
                seed=data_seed,
                task=task,
                n_test=n_test,
                progress=progress,
            )
    meta = json.loads((root / "meta.json").read_text())
    train_a, labels_train_a = _load_split(root, "trainA")
    train_b, labels_train_b = _load_split(root, "trainB")
    test_a, labels_test = _load_split(root, "testA")
    test_b, _ = _load_split(root, "testB")
    _, reference = _load_folder(ref / "testB", labels=False)
    return TaskData(
        task=task,
        root=root,
        class_names=tuple(meta["class_names"]),
        train_a=train_a,
        train_b=train_b,
        labels_train_a=labels_train_a,
        labels_train_b=labels_train_b,
        test_a=test_a,
        test_b=test_b,
        labels_test=labels_test,
        reference=reference,
    )


def class_mean_colours(images: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """The mean colour of each class over all pixels of all images.

    Args:
        images: (N, C, H, W) images.
        labels: (N, H, W) class indices.
        num_classes: number of classes.
    Returns:
        (num_classes, C) mean colours; NaN for a class with no pixel.
    """
    # Sums in float64: a float32 sum over a training set's million pixels drifts by 1e-3.
    onehot = F.one_hot(labels.long(), num_classes).double()  # (N, H, W, K)
    sums = torch.einsum("nchw,nhwk->kc", images.double(), onehot)
    return (sums / onehot.sum((0, 1, 2))[:, None]).to(images.dtype)


def structure_oracle(data: TaskData) -> Tensor:
    """The structure oracle: every test input recoloured from its true labels.

    Each pixel of a test scene is painted with the mean colour that its class has in the real
    target-domain training images (``train_b`` and its labels). The layout is kept exactly and
    only the colours change: the structure a translation could keep with no texture at all.
    A class absent from the training labels gets the mean colour of all training pixels.

    Args:
        data: the task.
    Returns:
        (N, 3, H, W) images in [-1, 1], in the order of ``data.test_a``.
    """
    means = class_mean_colours(data.train_b, data.labels_train_b, data.num_classes)
    overall = data.train_b.mean((0, 2, 3))
    means = torch.where(torch.isnan(means), overall, means)
    return means[data.labels_test].permute(0, 3, 1, 2).contiguous()


def colour_transfer(data: TaskData) -> Tensor:
    """The colour-transfer reference: every test input histogram-matched, channel by channel,
    from domain A's training images to domain B's (:func:`sesim.data.colour.histogram_transfer`).

    Args:
        data: the task.
    Returns:
        (N, 3, H, W) images in [-1, 1], in the order of ``data.test_a``.
    """
    return histogram_transfer(data.test_a, data.train_a, data.train_b)
