"""Benchmark scales (``quick``, ``full``), the bench rows and the training config of a row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sesim.config import PRESETS, Precision, TrainConfig, preset, validate
from sesim.errors import UserError
from sesim.methods import METHODS


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
        n_downsampling: generator downsampling steps (1 keeps the thin structures of 64 px
            images on the residual blocks' grid; see docs/structure.md).
        antialias: blur-pool resampling in the generator and discriminator (CUT's choice).
        identity_warmup: steps of L1 reconstruction that start a generator near the identity
            (``optim.identity_warmup``), for every row except the CPU presets tuned to start
            without it.
        ema: decay of the averaged generator every row is scored with (``optim.ema``; 0 =
            the last weights). Quick: 0.98, an average over about the last 50 of its 240
            steps, the share of the run that the CPU presets' 0.99 spans over their 600 (0.99
            gave the first adversarial steps, still close to the warm-up's identity, 17% of
            the average and washed out the ``shapes`` stripes; docs/structure.md section 6);
            full: 0, not measured at that scale.
        ndf: discriminator base filters.
        num_queries: query points per layer of the structure losses.
        n_train: training images per domain.
        n_test: paired test scenes (and held-out reference images).
        aux_steps: optimiser steps of the appearance network.
        aux_batch: the batch size of both judges.
        seg_width: the segmenter's base width.
        seg_levels: the segmenter's down-sampling levels. Quick: 3, the depth whose segmenter
            scores real target images best over the three tasks (docs/structure.md section 6:
            with 2 it cannot tell the ``shapes`` classes apart, rectangle IoU 0.00 on real
            targets); full: 4, one more for images twice as large (not measured).
        seg_steps: optimiser steps of the segmenter.
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
    n_downsampling: int
    antialias: bool
    identity_warmup: int
    ema: float
    ndf: int
    num_queries: int
    n_train: int
    n_test: int
    aux_steps: int
    aux_batch: int
    seg_width: int
    seg_levels: int
    seg_steps: int
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
    "distancegan": "tiny-distancegan",
    "gcgan": "tiny-gcgan",
    **{f"table3-{row}": f"table3-{row}" for row in "ABCDEF"},
}

ALL_METHODS: tuple[str, ...] = tuple(BENCH_METHODS)

#: The rows trained by default: F/LSeSim and the baselines (the Table 3 rows on request).
MAIN_METHODS: tuple[str, ...] = (
    "fsesim",
    "lsesim",
    "cyclegan",
    "cut",
    "fastcut",
    "perceptual",
    "distancegan",
    "gcgan",
)

BENCH_PRESETS: dict[str, BenchPreset] = {
    "quick": BenchPreset(
        name="quick",
        description="CPU, 64 px, tiny networks, F/LSeSim and the baselines on three tasks, 240 "
        "steps of batch 4 (15 to 30 minutes per seed on 2 cores)",
        size=64,
        steps=240,
        batch=4,
        lr=2e-4,
        ngf=16,
        n_blocks=3,
        n_downsampling=1,
        antialias=False,
        identity_warmup=100,
        ema=0.98,
        ndf=16,
        num_queries=256,
        n_train=300,
        n_test=100,
        aux_steps=1000,
        aux_batch=8,
        seg_width=16,
        seg_levels=3,
        seg_steps=2000,
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
        n_downsampling=2,
        antialias=True,
        identity_warmup=0,
        ema=0.0,
        ndf=64,
        num_queries=256,
        n_train=1000,
        n_test=500,
        aux_steps=3000,
        aux_batch=16,
        seg_width=32,
        seg_levels=4,
        seg_steps=3000,
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


def _starts_cold(base: TrainConfig) -> bool:
    """Whether a row keeps its preset's choice to start without the identity warm-up.

    The CPU presets (``tiny*``) were tuned at the bench's scale: ``tiny-distancegan`` starts
    without the warm-up, because started at the identity its discriminator won outright and
    runs stayed in the input domain (``docs/structure.md`` section 6). Every other row gets the
    bench's warm-up.
    """
    return base.preset.startswith("tiny") and base.optim.identity_warmup == 0


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
        snapshot_every=0,
        snapshot_every_epochs=0,
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
        model=replace(
            base.model,
            ngf=bench.ngf,
            n_blocks=bench.n_blocks,
            ndf=bench.ndf,
            n_downsampling=bench.n_downsampling,
            antialias=bench.antialias,
        ),
        structure=replace(
            s,
            vgg_weights=vgg_weights,
            loss=replace(s.loss, num_queries=bench.num_queries, window=window),
        ),
        optim=replace(
            base.optim,
            lr=bench.lr,
            lr_heads=bench.lr,
            identity_warmup=0 if _starts_cold(base) else bench.identity_warmup,
            ema=bench.ema,
        ),
    )
    return validate(cfg)
