"""From a run's config to its data: the training batch stream, datasets and sample inputs.

The sample keys (which A, which B, crop, flip, jitter) are a pure function of the seed and the
sample counter, so a stream started at step s yields what the run saw at step s: a resumed run
continues exactly, and each rank of a multi-process run draws its own share of one global
sequence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from sesim.config import TrainConfig
from sesim.data.single_image import SingleImagePair
from sesim.data.unpaired import UnpairedDataset, UnpairedSampler, derive_seed
from sesim.errors import UserError


class RankSampler(Sampler[tuple[int, int, int]]):
    """This rank's share of the global key sequence of :class:`UnpairedSampler`.

    Step t of rank r (counting from ``start``, the number of samples already consumed by all
    ranks) takes positions ``start + (t * world + r) * batch + j``, j < batch. With one process
    this is simply ``start, start + 1, ...``.
    """

    def __init__(
        self, keys: UnpairedSampler, start: int, batch: int, rank: int = 0, world: int = 1
    ) -> None:
        self.keys, self.start, self.batch, self.rank, self.world = keys, start, batch, rank, world

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        if self.world == 1:
            yield from iter(
                UnpairedSampler(self.keys.len_a, self.keys.len_b, self.keys.seed, start=self.start)
            )
            return
        t = 0
        while True:
            base = self.start + (t * self.world + self.rank) * self.batch
            for j in range(self.batch):
                yield self.keys.key(base + j)
            t += 1


def make_loader(
    dataset: UnpairedDataset,
    cfg: TrainConfig,
    start_sample: int,
    device: torch.device,
    rank: int = 0,
    world: int = 1,
) -> DataLoader[dict[str, Any]]:
    """An endless loader whose batches for step s are the same whatever step it starts at."""
    keys = UnpairedSampler(dataset.len_a, dataset.len_b, cfg.seed)
    sampler = RankSampler(keys, start_sample, cfg.batch, rank, world)
    return DataLoader(
        dataset,
        batch_size=cfg.batch,
        sampler=sampler,
        num_workers=cfg.data.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.data.workers > 0,
        drop_last=True,
    )


def batch_stream(
    cfg: TrainConfig, samples: int, device: torch.device, rank: int = 0, world: int = 1
) -> Iterator[dict[str, Any]]:
    """Endless training batches, starting after ``samples`` samples consumed by all ranks.

    Unpaired folders go through a ``DataLoader`` keyed by :class:`RankSampler`; the single-image
    mode draws "zoom and patch" crops of its two images from a generator seeded by the step.
    Either way the batch of step s does not depend on where the run (re)started.

    Args:
        cfg: the run's config (``data``, ``batch``, ``seed``, ``mode``).
        samples: samples already consumed by all ranks together.
        device: the training device (pinned memory on CUDA).
        rank: this process's rank.
        world: the number of processes.
    """
    if cfg.mode == "single-image":
        pair = make_single_image_pair(cfg)
        step = samples // (cfg.batch * world)
        while True:
            g = torch.Generator().manual_seed(derive_seed(cfg.seed, 5, step, rank))
            yield pair.sample(cfg.batch, g)
            step += 1
    yield from make_loader(make_dataset(cfg), cfg, samples, device, rank, world)


def make_single_image_pair(cfg: TrainConfig) -> SingleImagePair:
    """The source and target images of a single-image run."""
    d = cfg.data
    if not d.source or not d.target:
        raise UserError("single-image mode needs --source IMAGE and --target IMAGE")
    return SingleImagePair(
        Path(d.source),
        Path(d.target),
        load_size=d.load_size,
        crop_size=d.crop_size,
        max_zoom=d.max_zoom,
        flip=d.flip,
    )


def check_data(cfg: TrainConfig) -> None:
    """Fail early on missing data: the training folders exist and list image files.

    Lists the files without decoding them (training checks every file once later), so it is
    cheap enough to run before anything is printed or written.

    Args:
        cfg: the run's config (``data.root``, or ``data.source``/``data.target`` for the
            single-image mode).
    Raises:
        UserError: no dataset given, a missing folder or image, or a domain without images.
    """
    d = cfg.data
    if cfg.mode == "single-image":
        if not d.source or not d.target:
            raise UserError("single-image mode needs --source IMAGE and --target IMAGE")
        for flag, name in (("--source", d.source), ("--target", d.target)):
            if not Path(name).is_file():
                raise UserError(f"{flag} image {name} does not exist")
        return
    if not d.root:
        raise UserError("no dataset given: pass --data DIR (a folder with trainA/ and trainB/)")
    UnpairedDataset(
        Path(d.root),
        phase="train",
        direction=d.direction,
        load_size=d.load_size,
        crop_size=d.crop_size,
        preprocess=d.preprocess,
        verify=False,
    )


def make_dataset(cfg: TrainConfig, phase: str = "train") -> UnpairedDataset:
    """The unpaired dataset described by ``cfg.data``."""
    d = cfg.data
    if not d.root:
        raise UserError("no dataset given: pass --data DIR (a folder with trainA/ and trainB/)")
    return UnpairedDataset(
        Path(d.root),
        phase=phase,
        direction=d.direction,
        load_size=d.load_size,
        crop_size=d.crop_size,
        flip=d.flip if phase == "train" else False,
        augment=cfg.structure.augment and phase == "train",
        preprocess=d.preprocess,
    )


def fixed_samples(cfg: TrainConfig, device: torch.device) -> Tensor | None:
    """The first test (else train) A crops, used for every sample grid of the run."""
    if cfg.mode == "single-image":
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, 7))
        return make_single_image_pair(cfg).sample(cfg.num_samples, g)["A"].to(device)
    for phase in ("test", "train"):
        try:
            ds = make_dataset(replace(cfg, structure=replace(cfg.structure, augment=False)), phase)
        except UserError:
            continue
        n = min(cfg.num_samples, ds.len_a)
        items = [ds[(i, 0, derive_seed(cfg.seed, 7, i))]["A"] for i in range(n)]
        return torch.stack(items).to(device)
    return None
