"""``sesim bench quality``: translation methods compared on synthetic tasks with ground truth.

The paper's claim is that spatially-correlative losses keep the scene structure across a large
appearance gap better than cycle-consistency or PatchNCE. On the synthetic tasks of
:mod:`sesim.data.synthetic` the true structure of every test input is known, so the claim can be
measured directly, in minutes on a CPU (``--preset quick``) or at full scale on a GPU
(``--preset full``).

For every task and method the benchmark trains one run and scores the translations of the
paired test inputs ``testA``:

- **Structure** (higher is better): a :class:`~sesim.metrics.SmallSegmenter` is trained once per
  task on the *real* target-domain training images (``trainB`` and ``labels/trainB``). It labels
  each translation, and its map is compared with the true label map of the *input*
  (``labels/testA``): pixel accuracy and mean IoU. Its own scores on the real target test
  images (``testB``, same scenes) are the yardstick: no translation can be expected to beat it.
- **Appearance**: an :class:`AppearanceNet` is trained here, once per task, on the real training
  images of both domains with two heads: which domain an image comes from (A or B), and how
  much of the image each label class covers (a soft-label cross-entropy against the label
  map's class histogram, which makes the features describe how each class *looks* in each
  domain instead of one A-vs-B direction). The per-channel mean and standard deviation of its
  last three blocks (texture statistics, ``20 * width`` numbers) are the feature space of FID
  and KID (lower is better): unlike the pooled last block alone, they respond to blur, noise
  and colour shifts of otherwise target-like images. FID and KID are computed
  against a held-out set of real target images (``reference``: other scenes, rendered with a
  seed derived from ``--seed``). The **target rate** is the share of translations that its
  domain head calls "target" (higher is better).
- **Cost**: the median training step time and, on CUDA, the training peak memory
  (``train_summary.json`` of the run).

Two reference rows frame the numbers: ``input A`` scores the untranslated inputs (what doing
nothing gets) and ``real B`` the true target renderings of the same scenes (the best that can be
reached; its FID against the reference set is the noise floor of the set size).

Every method gets the same generator, discriminator, data, step budget, batch and learning rate:
the run starts from the method's preset (``tiny-*`` where there is one, else the paper preset,
e.g. the Table 3 rows) and the benchmark overrides those settings identically for all. The local
window of the structure loss keeps its size relative to the image: the preset's window is scaled
by ``size / preset crop size`` (the ``tiny`` presets are at 64 px, the paper presets at 256 px).

Presets: ``quick`` (CPU, 64 px, ngf 16 with 3 residual blocks, ndf 16, 240 steps of batch 4
per run, 300 training images per domain, 100 test scenes; about 20 minutes for every method on
both tasks on 2 cores) and ``full`` (GPU, 128 px, ngf 64 with 6 blocks, ndf 64, 10,000 steps of
batch 4, 1,000 / 500 images). ``--steps``, ``--size``, ``--n-train``, ``--n-test`` and
``--aux-steps`` override them for smoke runs. On a CPU the judges and runs are trained in
``--jobs`` worker processes (default: one per core) of ``cores / jobs`` threads each.

Outputs, in ``--out`` (default ``runs/bench-quality``):

- ``results.md`` (a table per task) and ``results.json`` (everything, with the settings);
- ``samples/<task>_<method>.png``: inputs, translations and true targets;
- ``structure_vs_appearance.png``: mIoU against FID, one point per method, one panel per task;
- ``data/``: the datasets, cached per (task, size, images, seed), and the two trained judges;
- ``runs/<task>/<method>/``: the training runs. A finished run with the same config is reused
  and an unfinished one continued, so an interrupted benchmark picks up where it stopped.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm

from sesim.config import PRESETS, Precision, TrainConfig, preset, to_dict, validate
from sesim.data.synthetic import TASKS, write_synthetic_dataset
from sesim.data.unpaired import derive_seed
from sesim.devices import resolve_device
from sesim.errors import UserError
from sesim.metrics import (
    SmallSegmenter,
    evaluate_segmenter,
    extract_features,
    fid_from_features,
    kid_from_features,
    train_segmenter,
)
from sesim.report import write_sample_grid
from sesim.runs import (
    atomic_path,
    atomic_write,
    list_checkpoints,
    load_checkpoint,
    load_generator,
    write_json,
)
from sesim.translate import translate_batch

# ---------------------------------------------------------------------------------------------
# Presets and the method list.


@dataclass(frozen=True)
class BenchPreset:
    """Settings of one benchmark scale.

    Attributes:
        name: registry key.
        description: one line for ``--help``.
        size: image side in pixels (data are rendered at this size; training crops are whole
            images, flipped at random).
        steps: optimisation steps of every run.
        batch: images per step.
        lr: Adam learning rate of every run (generator, discriminator, heads).
        ngf: generator base filters.
        n_blocks: generator residual blocks.
        ndf: discriminator base filters.
        num_queries: query points per layer of the structure losses.
        n_train: training images per domain.
        n_test: paired test scenes (and held-out reference images).
        aux_steps: optimiser steps of the segmenter and of the appearance network.
        aux_batch: their batch size.
        seg_width: the segmenter's base width.
        app_width: the appearance network's base width (features: ``20 * app_width``).
        workers: data-loading processes of the runs.
        jobs: runs trained at once, each in its own process (0: one per CPU core).
        device: default device (``cpu`` or ``auto``).
        methods: default method list.
        tasks: default task list.
    """

    name: str
    description: str
    size: int
    steps: int
    batch: int
    lr: float
    ngf: int
    n_blocks: int
    ndf: int
    num_queries: int
    n_train: int
    n_test: int
    aux_steps: int
    aux_batch: int
    seg_width: int
    app_width: int
    workers: int
    jobs: int
    device: str
    methods: tuple[str, ...]
    tasks: tuple[str, ...] = ("layout", "shapes", "maps")


#: bench row -> the training preset it starts from. Rows whose method is not registered in
#: ``sesim.methods.METHODS`` (or whose preset does not exist) are left out; any other
#: single-modal ``tiny-NAME`` preset of a registered method is offered as row ``NAME`` too.
BENCH_METHODS: dict[str, str] = {
    "fsesim": "tiny",
    "lsesim": "tiny-lsesim",
    "cyclegan": "tiny-cyclegan",
    "cut": "tiny-cut",
    "fastcut": "tiny-fastcut",
    "perceptual": "tiny-perceptual",
    **{f"table3-{row}": f"table3-{row}" for row in "ABCDEF"},
}

ALL_METHODS: tuple[str, ...] = tuple(BENCH_METHODS)

#: The rows trained by default: F/LSeSim and the baselines (the Table 3 rows on request).
MAIN_METHODS: tuple[str, ...] = ("fsesim", "lsesim", "cyclegan", "cut", "fastcut", "perceptual")

BENCH_PRESETS: dict[str, BenchPreset] = {
    "quick": BenchPreset(
        name="quick",
        description="CPU, 64 px, tiny networks, every method on two tasks, 240 steps of batch 4 "
        "(about 20 minutes on 2 cores)",
        size=64,
        steps=240,
        batch=4,
        lr=2e-4,
        ngf=16,
        n_blocks=3,
        ndf=16,
        num_queries=64,
        n_train=300,
        n_test=100,
        aux_steps=300,
        aux_batch=8,
        seg_width=16,
        app_width=16,
        workers=0,
        jobs=0,
        device="cpu",
        methods=MAIN_METHODS,
    ),
    "full": BenchPreset(
        name="full",
        description="GPU, 128 px, ResNet-6 generator (64 filters), 10k steps of batch 4",
        size=128,
        steps=10_000,
        batch=4,
        lr=2e-4,
        ngf=64,
        n_blocks=6,
        ndf=64,
        num_queries=256,
        n_train=1000,
        n_test=500,
        aux_steps=3000,
        aux_batch=16,
        seg_width=32,
        app_width=32,
        workers=4,
        jobs=1,
        device="auto",
        methods=ALL_METHODS,
    ),
}


def available_methods() -> dict[str, str]:
    """Bench rows that can run now, mapped to the preset each starts from.

    The benchmark compares single-modal translators between two domains (config ``mode``
    ``single``); multi-modal (MUNIT) and single-image recipes have their own evaluations.

    Returns:
        ``BENCH_METHODS`` without rows whose preset is missing or whose method is not
        registered, plus ``NAME -> tiny-NAME`` for every other single-modal ``tiny-*`` preset
        of a registered method, in that order.
    """
    from sesim.methods import METHODS

    out: dict[str, str] = {}
    candidates = dict(BENCH_METHODS)
    for name in PRESETS:
        if name.startswith("tiny-") and name not in candidates.values():
            candidates.setdefault(name.removeprefix("tiny-"), name)
    for row, preset_name in candidates.items():
        if preset_name not in PRESETS:
            continue
        cfg = PRESETS[preset_name]()
        if cfg.method in METHODS and cfg.mode == "single":
            out[row] = preset_name
    return out


def parse_list(
    text: str | None, valid: Sequence[str], default: Sequence[str], what: str
) -> list[str]:
    """Split ``a,b,c``, check each name, keep the order and drop repeats.

    Args:
        text: the flag's value; None or empty gives ``default``.
        valid: the accepted names.
        default: the list used without the flag.
        what: ``"method"`` or ``"task"``, for the error message.
    Raises:
        UserError: an unknown name (the message lists the valid ones).
    """
    names = [n.strip() for n in (text or "").split(",") if n.strip()] or list(default)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise UserError(f"unknown {what}(s) {', '.join(unknown)}; choose from: {', '.join(valid)}")
    return list(dict.fromkeys(names))


def run_config(
    method: str,
    bench: BenchPreset,
    data_root: Path,
    seed: int,
    device: str,
    vgg_weights: str,
    precision: Precision = "fp32",
) -> TrainConfig:
    """The training config of one bench row: its preset with the bench's shared settings.

    Args:
        method: a key of :func:`available_methods`.
        bench: the benchmark settings (size, steps, batch, networks, queries, learning rate).
        data_root: the task's dataset folder.
        seed: seed of the run (the same for every method, so equal networks start equal).
        device: the run's device.
        vgg_weights: ``imagenet`` or ``random`` (the same for every method).
        precision: training precision, ``fp32``, ``bf16`` or ``fp16`` (the same for every
            method).
    Returns:
        The validated config.
    """
    base = preset(available_methods()[method])
    s = base.structure
    window = s.loss.window
    if window is not None:
        window = max(1, round(window * bench.size / base.data.crop_size))
    cfg = replace(
        base,
        steps=bench.steps,
        batch=bench.batch,
        seed=seed,
        device=device,
        precision=precision,
        save_every=min(bench.steps, 1000),
        keep_last=1,
        log_every=min(50, bench.steps),
        sample_every=bench.steps,
        num_samples=4,
        data=replace(
            base.data,
            root=str(data_root),
            direction="AtoB",
            load_size=bench.size,
            crop_size=bench.size,
            flip=True,
            preprocess="resize_and_crop",
            workers=bench.workers,
        ),
        model=replace(base.model, ngf=bench.ngf, n_blocks=bench.n_blocks, ndf=bench.ndf),
        structure=replace(
            s,
            vgg_weights=vgg_weights,
            loss=replace(s.loss, num_queries=bench.num_queries, window=window),
        ),
        optim=replace(base.optim, lr=bench.lr, lr_heads=bench.lr),
    )
    return validate(cfg)


# ---------------------------------------------------------------------------------------------
# Data.


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
    pixels = data.train_b.permute(0, 2, 3, 1).reshape(-1, 3)
    labels = data.labels_train_b.reshape(-1)
    overall = pixels.mean(0)
    means = torch.stack(
        [
            pixels[labels == k].mean(0) if bool((labels == k).any()) else overall
            for k in range(data.num_classes)
        ]
    )
    return means[data.labels_test].permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------------------------------------
# The appearance network: domain classifier + class-coverage predictor, trained here.


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 4 if stride == 2 else 3, stride=stride, padding=1),
        nn.GroupNorm(math.gcd(8, c_out), c_out),
        nn.LeakyReLU(0.2, inplace=True),
    )


class AppearanceNet(nn.Module):
    """A small conv net trained on both domains; its texture statistics are the FID/KID space.

    Four conv blocks (widths w, 2w, 4w, 4w; the first three of stride 2). The heads read the
    globally average-pooled last block: domain logits (A = 0, B = 1) and class-coverage logits
    (which share of the image each label class covers). The *features* are the per-channel mean
    and standard deviation of the last three blocks (``20 * width`` numbers): texture
    statistics in the sense of Gatys et al., which respond to blur, noise and colour shifts
    that the pooled last block alone ignores. Works on any image size.

    Args:
        num_classes: C, label classes of the task.
        width: base channels w.
    """

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        w = width
        self.blocks = nn.ModuleList(
            [_block(3, w, 2), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2), _block(4 * w, 4 * w, 1)]
        )
        self.domain = nn.Linear(4 * w, 2)
        self.coverage = nn.Linear(4 * w, num_classes)
        self.num_features = 20 * w

    def _maps(self, images: Tensor) -> list[Tensor]:
        """The output of every block for (N, 3, H, W) images in [-1, 1]."""
        maps, x = [], images
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return maps

    def features(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) images in [-1, 1] -> (N, 20 * width) texture statistics."""
        maps = self._maps(images)[1:]
        return torch.cat([m.mean(dim=(2, 3)) for m in maps] + [m.std(dim=(2, 3)) for m in maps], 1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(N, 3, H, W) in [-1, 1] -> domain logits (N, 2) and coverage logits (N, C)."""
        pooled = self._maps(images)[-1].mean(dim=(2, 3))
        return self.domain(pooled), self.coverage(pooled)


def class_coverage(labels: Tensor, num_classes: int) -> Tensor:
    """(N, H, W) class ids -> (N, C) share of the pixels of each class (rows sum to 1)."""
    onehot = F.one_hot(labels.to(torch.int64), num_classes).to(torch.float32)
    return onehot.mean(dim=(1, 2))


def train_appearance_net(
    images_a: Tensor,
    images_b: Tensor,
    labels_a: Tensor,
    labels_b: Tensor,
    num_classes: int,
    steps: int = 300,
    batch_size: int = 16,
    lr: float = 2e-3,
    width: int = 16,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> AppearanceNet:
    """Fit an :class:`AppearanceNet` to real images of both domains.

    Each step draws ``batch_size`` images from A and as many from B (with replacement, random
    horizontal flips) and minimises the domain cross-entropy plus the soft cross-entropy between
    the predicted and the true class coverage.

    Args:
        images_a: (N_a, 3, H, W) real domain-A images in [-1, 1].
        images_b: (N_b, 3, H, W) real domain-B images.
        labels_a: (N_a, H, W) their label maps.
        labels_b: (N_b, H, W) their label maps.
        num_classes: C.
        steps: optimiser steps.
        batch_size: images per domain per step.
        lr: Adam learning rate.
        width: base channels.
        seed: seeds the initial weights and the draws (the global RNG is untouched).
        device: where to train.
    Returns:
        The trained network, in eval mode on ``device``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AppearanceNet(num_classes, width)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    images = torch.cat([images_a, images_b])
    coverage = torch.cat(
        [class_coverage(labels_a, num_classes), class_coverage(labels_b, num_classes)]
    )
    domain = torch.cat(
        [
            torch.zeros(len(images_a), dtype=torch.int64),
            torch.ones(len(images_b), dtype=torch.int64),
        ]
    )
    for _ in range(steps):
        # Draw a balanced batch and flip half of it.
        idx = torch.cat(
            [
                torch.randint(len(images_a), (batch_size,), generator=generator),
                len(images_a) + torch.randint(len(images_b), (batch_size,), generator=generator),
            ]
        )
        flip = torch.rand(len(idx), generator=generator) < 0.5
        x = images[idx].clone()
        x[flip] = x[flip].flip(-1)
        x, y, c = x.to(device), domain[idx].to(device), coverage[idx].to(device)

        # Update weights.
        domain_logits, coverage_logits = model(x)
        loss = F.cross_entropy(domain_logits, y) + F.cross_entropy(coverage_logits, c)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def target_rate(model: AppearanceNet, images: Tensor, batch_size: int = 64) -> float:
    """Share of ``images`` (N, 3, H, W) that the domain head calls B (the target domain)."""
    device = next(model.parameters()).device
    calls = [model(x.to(device))[0].argmax(1).cpu() for x in images.split(batch_size)]
    return float(torch.cat(calls).float().mean())


# ---------------------------------------------------------------------------------------------
# Judges: the segmenter and the appearance network of a task, trained once and cached.


@dataclass
class Judges:
    """The trained scorers of one task.

    Attributes:
        segmenter: labels images (structure score).
        appearance: domain classifier and feature space (appearance scores).
        reference_features: (N_ref, D) features of the held-out real B images.
        yardstick: the segmenter's scores on the real B test images.
        classifier_accuracy: the domain head's accuracy on the real test images, per domain.
    """

    segmenter: SmallSegmenter
    appearance: AppearanceNet
    reference_features: Tensor
    yardstick: dict[str, float]
    classifier_accuracy: dict[str, float]


def _cached(path: Path, model: nn.Module, key: dict[str, Any]) -> bool:
    """Load ``model``'s weights from ``path`` when the file was saved with the same ``key``."""
    if not path.is_file():
        return False
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a corrupt or foreign file is replaced by the caller
        return False
    if not isinstance(saved, dict) or saved.get("key") != key:
        return False
    model.load_state_dict(saved["state_dict"])
    return True


def _save(path: Path, model: nn.Module, key: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save({"key": key, "state_dict": model.state_dict()}, tmp)


def prepare_judges(data: TaskData, bench: BenchPreset, seed: int, device: torch.device) -> Judges:
    """Train (or load from ``data.root/../judges``) the segmenter and the appearance network.

    Args:
        data: the task's images.
        bench: the judges' settings (``aux_*``, widths).
        seed: their seed.
        device: where they train and run.
    """
    folder = data.root.parent / "judges"
    key = {"steps": bench.aux_steps, "batch": bench.aux_batch, "seed": seed}
    seg_key = {**key, "width": bench.seg_width, "what": "segmenter"}
    segmenter = SmallSegmenter(data.num_classes, width=bench.seg_width)
    if _cached(folder / "segmenter.pt", segmenter, seg_key):
        segmenter = segmenter.to(device).eval()
    else:
        segmenter = train_segmenter(
            data.train_b,
            data.labels_train_b,
            data.num_classes,
            steps=bench.aux_steps,
            batch_size=bench.aux_batch,
            width=bench.seg_width,
            seed=seed,
            device=device,
        )
        _save(folder / "segmenter.pt", segmenter, seg_key)

    app_key = {**key, "width": bench.app_width, "what": "appearance"}
    appearance = AppearanceNet(data.num_classes, width=bench.app_width)
    if _cached(folder / "appearance.pt", appearance, app_key):
        appearance = appearance.to(device).eval()
    else:
        appearance = train_appearance_net(
            data.train_a,
            data.train_b,
            data.labels_train_a,
            data.labels_train_b,
            data.num_classes,
            steps=bench.aux_steps,
            batch_size=bench.aux_batch,
            width=bench.app_width,
            seed=seed + 1,
            device=device,
        )
        _save(folder / "appearance.pt", appearance, app_key)

    yardstick = evaluate_segmenter(
        segmenter, data.test_b, data.labels_test, data.num_classes, device=device
    )
    return Judges(
        segmenter=segmenter,
        appearance=appearance,
        reference_features=extract_features(appearance.features, data.reference, device=device),
        yardstick=yardstick,
        classifier_accuracy={
            "A": 1.0 - target_rate(appearance, data.test_a),
            "B": target_rate(appearance, data.test_b),
        },
    )


def score_translations(
    fakes: Tensor, data: TaskData, judges: Judges, seed: int, device: torch.device
) -> dict[str, float]:
    """Structure and appearance scores of translations of ``data.test_a``.

    Args:
        fakes: (N, 3, H, W) translations in [-1, 1], in the order of ``data.test_a``.
        data: the task (labels of the inputs).
        judges: the trained scorers.
        seed: seeds KID's subsets.
        device: where the judges run.
    Returns:
        ``pixel_acc``, ``mean_class_acc``, ``miou``, ``fid``, ``kid``, ``kid_std``,
        ``target_rate``.
    """
    seg = evaluate_segmenter(
        judges.segmenter, fakes, data.labels_test, data.num_classes, device=device
    )
    feats = extract_features(judges.appearance.features, fakes, device=device)
    ref = judges.reference_features
    kid, kid_std = kid_from_features(
        ref,
        feats,
        subsets=100,
        subset_size=min(100, len(ref), len(feats)),
        generator=torch.Generator().manual_seed(seed),
    )
    return {
        **seg,
        "fid": fid_from_features(ref, feats),
        "kid": kid,
        "kid_std": kid_std,
        "target_rate": target_rate(judges.appearance, fakes),
    }


# ---------------------------------------------------------------------------------------------
# Runs.


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_run_dir(cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse a run folder that holds a run with another config.

    Raises:
        UserError: naming the first differing fields.
    """
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return
    old = _flat(yaml.safe_load(saved.read_text()) or {})
    new = _flat(to_dict(cfg))
    differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if differ:
        raise UserError(
            f"{run_dir} holds a run with another config (differs in {', '.join(differ[:5])}); "
            "delete it or choose another --out"
        )


def train_run(cfg: TrainConfig, run_dir: Path) -> tuple[Path, bool]:
    """Train a run, continue an unfinished one, or reuse a finished one with the same config.

    Args:
        cfg: the run's config.
        run_dir: its folder.
    Returns:
        The final checkpoint and whether the run was reused as it was.
    Raises:
        UserError: ``run_dir`` holds a run with another config.
    """
    from sesim.train import resume, train

    check_run_dir(cfg, run_dir)
    ckpts = list_checkpoints(run_dir)
    if ckpts:
        done = int(load_checkpoint(ckpts[-1])["step"]) >= cfg.steps
        if done and (run_dir / "train_summary.json").is_file():
            return ckpts[-1], True
        return resume(run_dir, quiet=True), False
    return train(cfg, run_dir, quiet=True), False


@torch.no_grad()
def translate_all(
    G: nn.Module, images: Tensor, device: torch.device, batch_size: int = 32
) -> Tensor:
    """Translate (N, 3, H, W) images in batches; returns (N, 3, H, W) on the CPU, in [-1, 1]."""
    outs = [translate_batch(G, x.to(device)).clamp(-1, 1).cpu() for x in images.split(batch_size)]
    return torch.cat(outs)


# ---------------------------------------------------------------------------------------------
# Reports.

REFERENCE_ROWS: tuple[str, ...] = ("input A", "real B", "oracle")

#: (key, header, format, higher is better)
COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    ("pixel_acc", "pixel acc", "{:.3f}", True),
    ("miou", "mIoU", "{:.3f}", True),
    ("fid", "FID", "{:.2f}", False),
    ("kid", "KID", "{:.4f}", False),
    ("target_rate", "target rate", "{:.2f}", True),
    ("median_step_ms", "ms/step", "{:.0f}", False),
    ("peak_memory_bytes", "peak mem", "{:.0f} MiB", False),
)


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    scale = 2**-20 if key == "peak_memory_bytes" else 1.0
    text = fmt.format(value * scale)
    se = row.get(f"{key}_se")
    if se is not None and math.isfinite(se) and key not in ("median_step_ms", "peak_memory_bytes"):
        number = fmt.split("}")[0] + "}"
        text += " ± " + number.format(se * scale)
    return text


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of score rows; the best method value of each score is in bold.

    Args:
        rows: dicts with ``method``, ``kind`` (``method`` or ``reference``) and the keys of
            ``COLUMNS`` (missing or None shows ``n/a``).
    """
    header = ["method", *(c[1] for c in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    methods = [r for r in rows if r.get("kind") == "method"]
    best: dict[str, float] = {}
    for key, _, _, higher in COLUMNS[:5]:
        values = [
            r[key] for r in methods if isinstance(r.get(key), float) and math.isfinite(r[key])
        ]
        if len(values) > 1:
            best[key] = max(values) if higher else min(values)
    for r in rows:
        cells = []
        for key, _, fmt, _ in COLUMNS:
            text = _cell(r, key, fmt)
            if r.get("kind") == "method" and key in best and r.get(key) == best[key]:
                text = f"**{text}**"
            cells.append(text)
        name = r["method"] if r.get("kind") == "method" else f"*{r['method']}*"
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def write_results_md(results: dict[str, Any], path: Path) -> str:
    """Write ``results.md`` from the ``results.json`` dict; returns its text."""
    p = results["preset"]
    parts = [
        "# sesim bench quality",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Preset `{p['name']}`: {p['size']} px, {p['steps']} steps of batch {p['batch']}, "
        f"generator ngf {p['ngf']} with {p['n_blocks']} residual blocks, discriminator ndf "
        f"{p['ndf']}, Adam {p['lr']:g}, {p['num_queries']} queries; {p['n_train']} training "
        f"images per domain, {p['n_test']} test scenes. Device {results['device']}, "
        f"{results['jobs']} run(s) at a time on {results['threads']} thread(s) each, VGG16 "
        f"weights: {results['vgg_weights']}, training seeds "
        f"{', '.join(map(str, results['seeds']))} (data and judges: seed {results['data_seed']}), "
        f"training precision {results.get('precision', 'fp32')}. Wall time "
        f"{results['elapsed_s'] / 60:.1f} min.",
        "",
        "Structure: a segmenter trained on real target images labels each translation of the "
        "test inputs; pixel accuracy and mIoU against the input's true label map (higher is "
        "better). Appearance: FID and KID in the feature space of a small network trained here "
        "to tell the domains apart and predict class coverage, against held-out real target "
        "images (lower is better), and the share of translations its domain head calls target "
        "(higher is better). ms/step: median training step; peak mem: training peak (CUDA "
        "only). Method rows: mean ± standard error over the training seeds (one run per seed). "
        "*input A*: the untranslated inputs; *real B*: the true targets (its FID is the noise "
        "floor of the set size); *oracle*: the inputs recoloured from their true labels with "
        "each class's mean target-domain colour (the layout kept exactly, no texture). Best "
        "method mean in bold.",
    ]
    for task, t in results["tasks"].items():
        y, acc = t["yardstick"], t["classifier_accuracy"]
        parts += [
            "",
            f"## {task}",
            "",
            f"Segmenter on real target test images (the yardstick): pixel acc "
            f"{y['pixel_acc']:.3f}, mIoU {y['miou']:.3f}. Domain classifier accuracy on real test "
            f"images: A {acc['A']:.2f}, B {acc['B']:.2f}. {_lowest_target_rate(t)}",
            "",
            markdown_table(t["rows"]),
        ]
    text = "\n".join(parts) + "\n"
    atomic_write(path, text)
    return text


def _lowest_target_rate(task: dict[str, Any]) -> str:
    """A sentence naming the run that the domain head called "target" least often."""
    runs = [r for r in task.get("runs", []) if r.get("target_rate") is not None]
    if not runs:
        return ""
    low = min(runs, key=lambda r: r["target_rate"])
    stuck = sum(r["target_rate"] < 0.5 for r in runs)
    return (
        f"Lowest target rate of a run: {low['target_rate']:.2f} ({low['method']}, seed "
        f"{low['seed']}); runs left mostly in the input domain (rate < 0.5): {stuck} of "
        f"{len(runs)}."
    )


def plot_structure_vs_appearance(results: dict[str, Any], path: Path) -> Path:
    """Scatter mIoU against FID, one point per row (bars: standard errors over seeds), one panel
    per task.

    Args:
        results: the ``results.json`` dict.
        path: the PNG to write.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = list(results["tasks"])
    fig = Figure(figsize=(5.5 * len(tasks), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        for row in results["tasks"][task]["rows"]:
            x, y = row.get("fid"), row.get("miou")
            if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
                continue
            if row["kind"] == "reference":
                style = {"marker": "s", "color": "0.55", "label": "reference"}
            elif row.get("recipe") == "sesim":
                style = {"marker": "o", "color": "C0", "label": "F/LSeSim"}
            else:
                style = {"marker": "^", "color": "C1", "label": "baselines"}
            ax.errorbar(
                [x],
                [y],
                xerr=[row.get("fid_se") or 0.0],
                yerr=[row.get("miou_se") or 0.0],
                linestyle="none",
                markersize=6,
                capsize=2,
                **style,
            )
            ax.annotate(
                row["method"], (x, y), textcoords="offset points", xytext=(4, 3), fontsize=8
            )
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), loc="best", fontsize=8)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_title(task)
        ax.set_xlabel("appearance: FID to real target images (lower is better; log above 1)")
        ax.set_ylabel("structure: mIoU of the input's layout (higher is better)")
        ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# ---------------------------------------------------------------------------------------------
# The command.


@dataclass(frozen=True)
class BenchArgs:
    """The resolved command line of ``sesim bench quality``.

    Attributes:
        bench: the preset with ``--steps``/``--size``/``--n-train``/``--n-test``/``--aux-steps``
            applied.
        methods: bench rows to train.
        tasks: synthetic tasks.
        out: the results folder.
        device: device of the runs and the judges.
        seeds: training seeds; every method is trained once per seed.
        data_seed: seed of the datasets and the judges (shared by every run).
        precision: training precision of every run (the judges and scoring stay fp32).
        jobs: runs trained at once, each in its own process (1: one after the other, here).
        quiet: no progress bar.
        command: the command line, for the report.
    """

    bench: BenchPreset
    methods: list[str]
    tasks: list[str]
    out: Path
    device: str
    seeds: list[int]
    data_seed: int = 0
    precision: Precision = "fp32"
    jobs: int = 1
    quiet: bool = False
    command: str = ""


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Jobs. With --jobs N > 1 the judges and the runs are trained in N worker processes of
# cores // N threads each: on a 2-core CPU two one-thread runs side by side are about twice as
# fast as one run on two threads, and they do not stall when another program takes a core
# (small convolutions on two OpenMP threads wait for each other at every operation).


def _judges_job(out: Path, task: str, bench: BenchPreset, seed: int, device: str) -> None:
    """Train and cache a task's judges (see :func:`prepare_judges`)."""

    data = prepare_data(out, task, bench, seed)
    prepare_judges(data, bench, seed, resolve_device(device))


def _train_job(cfg: TrainConfig, run_dir: Path) -> tuple[Path, bool, float, str]:
    """Train one run (:func:`train_run`); returns its final checkpoint, whether it was reused,
    the seconds it took and what the training loop printed to stderr (notices)."""
    t0 = time.perf_counter()
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stderr(buffer):
            final, reused = train_run(cfg, run_dir)
    except BaseException:
        sys.stderr.write(buffer.getvalue())
        raise
    return final, reused, time.perf_counter() - t0, buffer.getvalue()


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


class _Deferred(Future[Any]):
    """A job run in this process when its result is first asked for (``--jobs 1``)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        super().__init__()
        self._job = (fn, args)

    def result(self, timeout: float | None = None) -> Any:
        if not self.done():
            fn, args = self._job
            self.set_result(fn(*args))
        return super().result(timeout)


class _InProcess:
    """The executor of ``--jobs 1``: each job runs here, in order, when its result is read."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return _Deferred(fn, *args)


@contextlib.contextmanager
def _executor(jobs: int, threads: int) -> Iterator[_InProcess | ProcessPoolExecutor]:
    """Jobs in this process (``jobs`` 1) or in a pool of ``jobs`` processes of ``threads``
    threads each; on an error or Ctrl-C the jobs not started yet are dropped."""
    if jobs == 1:
        yield _InProcess()
        return
    pool = ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads,),
    )
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# The benchmark.


def run_benchmark(args: BenchArgs) -> dict[str, Any]:
    """Run the benchmark and write its outputs into ``args.out``.

    Judges and runs are submitted as jobs (see ``args.jobs``); their results are read, scored
    and written in the order of the tasks, methods and seeds, so ``results.md`` grows one row at
    a time and an interrupted benchmark keeps every row finished so far.

    Returns:
        The ``results.json`` dict.
    """
    from sesim.features.vgg import imagenet_weights_available

    start = time.perf_counter()
    bench, out = args.bench, args.out
    device = resolve_device(args.device)
    vgg_weights = "imagenet" if imagenet_weights_available() else "random"
    if vgg_weights == "random":
        print(
            "notice: ImageNet VGG16 weights are not in the torch hub cache; every method that "
            "uses VGG features (F/LSeSim, perceptual) runs with random VGG weights",
            file=sys.stderr,
        )
    threads = max(1, cpu_cores() // args.jobs)
    results: dict[str, Any] = {
        "command": args.command,
        "preset": asdict(bench),
        "methods": args.methods,
        "device": str(device),
        "jobs": args.jobs,
        "threads": threads if args.jobs > 1 else torch.get_num_threads(),
        "vgg_weights": vgg_weights,
        "seeds": args.seeds,
        "data_seed": args.data_seed,
        "precision": args.precision,
        "elapsed_s": 0.0,
        "tasks": {},
    }
    notices: set[str] = set()
    bar = tqdm(
        total=bench.steps * len(args.methods) * len(args.tasks) * len(args.seeds),
        unit="step",
        desc="bench",
        disable=args.quiet,
        dynamic_ncols=True,
    )
    previous_threads = torch.get_num_threads()
    try:
        # Every config first: a bad name or value fails before any work.
        data = {task: prepare_data(out, task, bench, args.data_seed) for task in args.tasks}
        configs = {
            (task, m, seed): run_config(
                m, bench, data[task].root, seed, str(device), vgg_weights, args.precision
            )
            for task in args.tasks
            for m in args.methods
            for seed in args.seeds
        }
        for key, cfg in configs.items():
            check_run_dir(cfg, run_folder(out, *key))
        if args.jobs > 1:
            torch.set_num_threads(threads)  # scoring here beside the workers
        with bar, _executor(args.jobs, threads) as pool:
            judged = {
                task: pool.submit(_judges_job, out, task, bench, args.data_seed, str(device))
                for task in args.tasks
            }
            trained = {
                key: pool.submit(_train_job, cfg, run_folder(out, *key))
                for key, cfg in configs.items()
            }
            for task in args.tasks:
                # The judges (trained by a job, loaded here from their cache) and the reference rows.
                bar.set_description(f"{task}: judges")
                judged[task].result()
                judges = prepare_judges(data[task], bench, args.data_seed, device)
                rows: list[dict[str, Any]] = []
                references = (data[task].test_a, data[task].test_b, structure_oracle(data[task]))
                for name, images in zip(REFERENCE_ROWS, references):
                    scores = score_translations(images, data[task], judges, args.data_seed, device)
                    rows.append({"method": name, "kind": "reference", **scores})
                runs: list[dict[str, Any]] = []
                results["tasks"][task] = {
                    "classes": list(data[task].class_names),
                    "yardstick": judges.yardstick,
                    "classifier_accuracy": judges.classifier_accuracy,
                    "rows": rows,
                    "runs": runs,
                }

                for method in args.methods:
                    per_seed = []
                    for seed in args.seeds:
                        # Wait for the run, then score it.
                        bar.set_description(f"{task}: {method} seed {seed}")
                        final, reused, train_s, printed = trained[(task, method, seed)].result()
                        for line in printed.splitlines():
                            if line.strip() and line not in notices:
                                notices.add(line)
                                bar.write(line, file=sys.stderr)
                        cfg = configs[(task, method, seed)]
                        row = score_run(final, cfg, method, data[task], judges, args)
                        row = {**row, "seed": seed, "train_s": None if reused else train_s}
                        per_seed.append(row)
                        runs.append(row)
                        bar.update(bench.steps)
                        how = "reused" if reused else f"trained in {train_s:.0f} s"
                        bar.write(
                            f"{task}/{method}/seed {seed}: {how}; pixel acc "
                            f"{row['pixel_acc']:.3f}, mIoU {row['miou']:.3f}, FID "
                            f"{row['fid']:.2f}, target rate {row['target_rate']:.2f}"
                        )
                    rows.append(aggregate_seeds(per_seed))
                    results["elapsed_s"] = time.perf_counter() - start
                    _write_outputs(results, out)
    except KeyboardInterrupt:
        print(
            "run the same command again to continue: finished runs are reused and an "
            "interrupted one continues from its checkpoint",
            file=sys.stderr,
        )
        raise
    finally:
        torch.set_num_threads(previous_threads)
    results["elapsed_s"] = time.perf_counter() - start
    _write_outputs(results, out)
    plot_structure_vs_appearance(results, out / "structure_vs_appearance.png")
    return results


def run_folder(out: Path, task: str, method: str, seed: int) -> Path:
    """The training run of one task, method and seed: ``out/runs/<task>/<method>/seed<k>``."""
    return out / "runs" / task / method / f"seed{seed}"


#: Scores averaged over seeds (mean and standard error) in the aggregated rows.
SCORE_KEYS: tuple[str, ...] = (
    "pixel_acc",
    "mean_class_acc",
    "miou",
    "fid",
    "kid",
    "target_rate",
    "median_step_ms",
    "peak_memory_bytes",
)


def mean_and_se(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (sample std / sqrt(n); None for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def aggregate_seeds(per_seed: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One table row from the rows of the same method's runs (one per seed).

    Args:
        per_seed: rows of :func:`score_run` (with ``seed``), same method.
    Returns:
        The first row's identity (``method``, ``kind``, ``preset``, ``recipe``) with, for each
        score of ``SCORE_KEYS``, its mean over seeds under the score's key, the standard error
        under ``<key>_se`` (None for one seed) and the values under ``<key>_runs``; plus
        ``seeds``, ``min_target_rate`` and ``runs`` (the run folders).
    """
    first = per_seed[0]
    row: dict[str, Any] = {
        k: first[k] for k in ("method", "kind", "preset", "recipe", "steps") if k in first
    }
    row["seeds"] = [r["seed"] for r in per_seed]
    for key in SCORE_KEYS:
        values = [float(r[key]) for r in per_seed if r.get(key) is not None]
        values = [v for v in values if math.isfinite(v)]
        if not values:
            row[key], row[f"{key}_se"], row[f"{key}_runs"] = None, None, []
            continue
        row[key], row[f"{key}_se"] = mean_and_se(values)
        row[f"{key}_runs"] = values
    rates = row.get("target_rate_runs") or []
    row["min_target_rate"] = min(rates) if rates else None
    row["runs"] = [r["run"] for r in per_seed]
    return row


def score_run(
    final: Path, cfg: TrainConfig, method: str, data: TaskData, judges: Judges, args: BenchArgs
) -> dict[str, Any]:
    """Score a trained run on its task and write its sample grid.

    Args:
        final: the run's final checkpoint.
        cfg: its config.
        method: its bench row.
        data: the task's data.
        judges: the task's scorers.
        args: the benchmark settings (data seed, out).
    Returns:
        The run's row of ``results.json`` (without ``seed`` and ``train_s``).
    """

    device = resolve_device(cfg.device)
    run_dir = final.parents[1]
    G, _, step = load_generator(None, final, device)
    fakes = translate_all(G, data.test_a, device)
    scores = score_translations(fakes, data, judges, args.data_seed, device)
    summary = json.loads((run_dir / "train_summary.json").read_text())
    n = min(8, len(data.test_a))
    write_sample_grid(
        data.test_a[:n],
        [fakes[:n], data.test_b[:n]],
        args.out / "samples" / f"{data.task}_{method}_seed{cfg.seed}.png",
        labels=["input", method[:10], "true B"],
    )
    return {
        "method": method,
        "kind": "method",
        "preset": cfg.preset,
        "recipe": cfg.method,
        **scores,
        "median_step_ms": summary.get("median_step_ms"),
        "peak_memory_bytes": summary.get("peak_memory_bytes") if device.type == "cuda" else None,
        "steps": step,
        "run": str(run_dir),
    }


def _write_outputs(results: dict[str, Any], out: Path) -> None:
    write_json(out / "results.json", results)
    write_results_md(results, out / "results.md")


#: The default results folder of ``sesim bench quality``.
DEFAULT_OUT = Path("runs/bench-quality")


def resolve_bench_args(
    preset: str = "quick",
    *,
    methods: str | None = None,
    tasks: str | None = None,
    out: Path = DEFAULT_OUT,
    steps: int | None = None,
    size: int | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    aux_steps: int | None = None,
    device: str | None = None,
    jobs: int | None = None,
    seeds: list[int] | None = None,
    seed: int | None = None,
    data_seed: int = 0,
    precision: Precision = "fp32",
    quiet: bool = False,
) -> BenchArgs:
    """The settings of ``sesim bench quality``: a preset with overrides, names checked.

    Args:
        preset: a key of :data:`BENCH_PRESETS`.
        methods: comma-separated bench rows; None takes the preset's.
        tasks: comma-separated synthetic tasks; None takes the preset's.
        out: the results folder.
        steps: overrides the preset's training steps.
        size: overrides the image side (a multiple of 4, >= 16).
        n_train: overrides the training images per domain.
        n_test: overrides the test scenes (>= 2).
        aux_steps: overrides the judges' training steps.
        device: the device of runs and judges; None takes the preset's.
        jobs: runs trained at once; None: the preset's, else one per CPU core (1 on CUDA).
        seeds: training seeds (each method is trained once per seed).
        seed: a single training seed (the same as ``seeds=[seed]``).
        data_seed: seed of the datasets and the judges.
        precision: training precision of every run.
        quiet: no progress bar.
    Returns:
        The resolved settings; ``command`` is the equivalent command line.
    Raises:
        UserError: an unknown name, a bad size or count, or both ``seeds`` and ``seed``.
    """
    if preset not in BENCH_PRESETS:
        raise UserError(f"unknown bench preset {preset!r}; choose from: {', '.join(BENCH_PRESETS)}")
    flags: dict[str, Any] = {
        "methods": methods,
        "tasks": tasks,
        "out": out,
        "steps": steps,
        "size": size,
        "n_train": n_train,
        "n_test": n_test,
        "aux_steps": aux_steps,
    }
    bench = BENCH_PRESETS[preset]
    overrides = {
        k: flags[k]
        for k in ("steps", "size", "n_train", "n_test", "aux_steps")
        if flags[k] is not None
    }
    bench = replace(bench, **overrides)
    if bench.size < 16 or bench.size % 4:
        raise UserError(f"--size must be a multiple of 4 and >= 16, got {bench.size}")
    if bench.n_test < 2:
        raise UserError(f"--n-test must be >= 2 (FID and KID need two images), got {bench.n_test}")
    valid = available_methods()
    chosen_methods = parse_list(methods, list(valid), bench.methods, "method")
    chosen_tasks = parse_list(tasks, list(TASKS), bench.tasks, "task")
    command = ["sesim bench quality", f"--preset {preset}"]
    for flag, value in flags.items():
        if value is not None and not (flag == "out" and value == DEFAULT_OUT):
            command.append(f"--{flag.replace('_', '-')} {value}")
    for flag, value in (("device", device), ("jobs", jobs)):
        if value is not None:
            command.append(f"--{flag} {value}")
    if seeds is not None and seed is not None:
        raise UserError("give either --seeds or --seed, not both")
    chosen_seeds = seeds if seeds is not None else [seed or 0]
    data_seed = data_seed or 0
    if chosen_seeds != [0]:
        command.append(f"--seeds {','.join(map(str, chosen_seeds))}")
    if data_seed:
        command.append(f"--data-seed {data_seed}")
    device = device or bench.device
    runs = len(chosen_methods) * len(chosen_tasks) * len(chosen_seeds)
    jobs = jobs or bench.jobs or (1 if device.startswith("cuda") else cpu_cores())
    if precision != "fp32":
        command.append(f"--precision {precision}")
    return BenchArgs(
        bench=bench,
        methods=chosen_methods,
        tasks=chosen_tasks,
        out=out,
        device=device,
        seeds=chosen_seeds,
        data_seed=data_seed,
        precision=precision,
        jobs=min(jobs, runs),
        quiet=quiet,
        command=" ".join(command),
    )


__all__ = [
    "ALL_METHODS",
    "BENCH_METHODS",
    "BENCH_PRESETS",
    "DEFAULT_OUT",
    "MAIN_METHODS",
    "AppearanceNet",
    "BenchArgs",
    "BenchPreset",
    "aggregate_seeds",
    "available_methods",
    "mean_and_se",
    "prepare_data",
    "prepare_judges",
    "resolve_bench_args",
    "run_benchmark",
    "run_config",
    "score_translations",
    "structure_oracle",
    "train_appearance_net",
]
