"""The training loop: :func:`train` starts a run, :func:`resume` continues one.

The loop reads top to bottom in :func:`_loop`; what it stands on lives elsewhere: devices,
precision and ranks in :mod:`sesim.devices`, the batch stream in :mod:`sesim.data.stream`,
checkpoints in :mod:`sesim.runs`, the recipes in :mod:`sesim.methods`.

Everything random in a run is a function of ``cfg.seed`` and the step: the sample keys (which
A, which B, crop, flip, jitter) are derived from the seed and the sample counter, and the one
CPU generator used by the losses and the image pool is checkpointed. A run killed at any moment
and resumed from its newest complete checkpoint therefore continues exactly as if it had never
stopped (bit-identical on the CPU with ``deterministic: true``).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import signal
import statistics
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from tqdm import tqdm

from sesim.config import TrainConfig, dump_yaml, resolve_epochs, steps_per_epoch, to_dict
from sesim.data.colour import ChannelHistograms
from sesim.data.stream import batch_stream, fixed_samples, make_dataset, make_single_image_pair
from sesim.data.unpaired import derive_seed
from sesim.devices import (
    Dist,
    StepTimer,
    autocast_factory,
    average_gradients,
    process_group,
    resolve_device,
)
from sesim.errors import UserError
from sesim.loggers import RunLogger
from sesim.losses.adversarial import ImagePool
from sesim.methods import StepContext, get_method
from sesim.nets.ema import WeightAverage
from sesim.report import write_index, write_sample_grid
from sesim.runs import (
    CHECKPOINT_FORMAT,
    WriteError,
    atomic_write,
    checkpoint_path,
    config_of,
    generator_snapshot,
    list_checkpoints,
    load_checkpoint,
    newest_readable_checkpoint,
    prune_checkpoints,
    remove_stale_temporaries,
    save_checkpoint,
    save_generator_snapshot,
    snapshot_path,
)
from sesim.translate import translate_batch, translate_styles

# ---------------------------------------------------------------------------------------------
# Schedules.


def lr_lambda(
    step: int,
    total: int,
    decay_fraction: float,
    policy: str = "linear",
    step_size: int = 100_000,
    gamma: float = 0.5,
) -> float:
    """The learning-rate factor after ``step`` steps.

    ``linear`` (the public F-LSeSim code): constant, then linear decay to 0 over the last
    ``decay_fraction`` of ``total`` steps (the ``epochs_decay`` epochs when steps come from
    epochs). ``step`` (MUNIT's trainer): ``gamma ** (step // step_size)``.
    """
    if policy == "step":
        return float(gamma ** (step // step_size))
    decay_steps = round(total * decay_fraction)
    start = total - decay_steps
    if decay_steps <= 0 or step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / decay_steps)


def resolve_for_data(cfg: TrainConfig, world: int = 1) -> tuple[TrainConfig, str]:
    """Load the dataset's sizes and resolve the epoch settings into steps.

    Args:
        cfg: a config whose ``data.root`` is set (single-image configs are returned as given).
        world: ranks training together.
    Returns:
        The resolved config and one line saying how its steps were obtained.
    Raises:
        UserError: the dataset cannot be read.
    """
    if cfg.mode == "single-image":
        return cfg, f"steps: {cfg.steps:,} (given in steps)"
    ds = make_dataset(cfg)
    resolved = resolve_epochs(cfg, ds.len_a, ds.len_b, world)
    per_epoch = steps_per_epoch(ds.len_a, ds.len_b, cfg.batch, world)
    sizes = f"max({ds.len_a} A, {ds.len_b} B) // batch {cfg.batch * world}"
    if cfg.steps == 0:
        line = (
            f"steps: {resolved.steps:,} = ({cfg.epochs} + {cfg.epochs_decay}) epochs x "
            f"{per_epoch:,} steps per epoch ({sizes}); the learning rate decays over the last "
            f"{cfg.epochs_decay * per_epoch:,}"
        )
    else:
        line = f"steps: {resolved.steps:,} (given in steps; an epoch is {per_epoch:,}: {sizes})"
    if resolved.snapshot_every:
        line += f"; generator snapshots every {resolved.snapshot_every:,} steps"
    return resolved, line


# ---------------------------------------------------------------------------------------------
# Global RNG states (checkpointed with the run).


def rng_state() -> dict[str, Any]:
    """Global RNG states (torch CPU/CUDA, numpy, random)."""
    np_state: tuple[Any, ...] = np.random.get_state(legacy=True)  # type: ignore[assignment]
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np_state[1].tolist(),
        "numpy_pos": int(np_state[2]),
        "python": json.dumps(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(
        ("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"], 0, 0.0)
    )
    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------
# Interruption: Ctrl-C writes a checkpoint at the next step boundary, a second one aborts.


class _StopFlag:
    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopFlag:
        if _is_main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\ninterrupt: finishing this step and saving a checkpoint (Ctrl-C again to abort)",
            file=sys.stderr,
        )

    def __exit__(self, *exc: object) -> None:
        if _is_main_thread() and self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


# ---------------------------------------------------------------------------------------------
# The loop.


def train(cfg: TrainConfig, run_dir: Path, quiet: bool = False) -> Path:
    """Train a new run; returns the path of the newest checkpoint.

    Under ``torchrun`` every rank runs this function: ranks draw their own samples and query
    points, average their gradients before each optimiser step, and only rank 0 logs and writes.

    Args:
        cfg: resolved config.
        run_dir: the run folder (checkpoints, config, logs, samples, index.html).
        quiet: no progress bar.
    """
    return _loop(cfg, run_dir, None, quiet)


def resume(run_dir: Path, quiet: bool = False, steps: int | None = None) -> Path:
    """Continue a run from its newest readable checkpoint, with the config saved in it.

    A run resumed at any step continues exactly as if it had never stopped (see the module
    docstring); a finished run returns its last checkpoint. Newer checkpoints that cannot be
    read (cut short by a crash, damaged, foreign) are skipped with one warning each.

    ``steps`` extends (or shortens) the run to that many steps in all, counted from its start.
    The learning-rate schedule then becomes the one of a run of ``steps`` steps: constant, then
    linear decay to 0 over the last ``optim.decay_fraction`` of ``steps``, applied from the
    checkpoint's step on (a finished run whose rate had decayed to 0 therefore continues at the
    rate the new schedule gives that step). The new total is saved in the config of every later
    checkpoint, so resuming the extended run again is exact as usual.

    Args:
        run_dir: the run folder.
        quiet: no progress bar.
        steps: the new total number of steps; None keeps the run's own.
    Returns:
        The path of the newest checkpoint.
    Raises:
        UserError: the folder holds no readable checkpoint, or ``steps`` lies below the step
            the run has reached.
    """
    if not list_checkpoints(run_dir):
        raise UserError(f"no complete checkpoint in {run_dir / 'checkpoints'} to resume from")
    _, state = newest_readable_checkpoint(run_dir)
    cfg = config_of(state)
    if steps is not None:
        done = int(state["step"])
        if steps < done:
            raise UserError(
                f"{run_dir} has already reached step {done}; --steps is the run's total from its "
                f"start, give --steps {done} or more"
            )
        cfg = replace(cfg, steps=steps)
    return _loop(cfg, run_dir, state, quiet)


def _last_complete(run_dir: Path) -> str:
    """``the last complete checkpoint is ... (step N)`` for messages after a failed write."""
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        return "no checkpoint was completed yet"
    return f"the last complete checkpoint is {ckpts[-1]}"


def init_source(source: Path) -> Path:
    """The checkpoint that ``--init-from`` names: a run folder's newest, or a checkpoint file.

    Raises:
        UserError: no such file or folder, or a run folder without a checkpoint.
    """
    if source.is_dir():
        ckpts = list_checkpoints(source)
        if not ckpts:
            raise UserError(
                f"--init-from {source}: the folder holds no checkpoint (looked in "
                f"{source / 'checkpoints'}); give a run folder or a checkpoint file"
            )
        return newest_readable_checkpoint(source)[0]
    if not source.is_file():
        raise UserError(
            f"--init-from {source} does not exist; give a run folder or a checkpoint file"
        )
    return source


def init_weights(nets: Any, source: Path) -> list[str]:
    """Load another run's weights into freshly built networks (``--init-from``).

    The generator must fit exactly; every other trained network (discriminators, learned heads)
    is loaded when its names and shapes match and otherwise keeps its fresh initialisation.

    Args:
        nets: the networks of the new run (``method.build(cfg)``).
        source: a run folder (its newest readable checkpoint) or a checkpoint file.
    Returns:
        One notice per network left at its fresh initialisation.
    Raises:
        UserError: a missing or unreadable source, or a generator of another architecture.
    """
    path = init_source(source)
    saved = load_checkpoint(path).get("nets", {})
    notices = []
    for name, module in nets.trainable().items():
        problem = _mismatch(module, saved.get(name))
        if problem is None:
            module.load_state_dict(saved[name])
        elif name == "G":
            raise UserError(
                f"the generator of {path} does not fit this run's generator ({problem}); "
                f"leave out --preset so the new run starts from the source's config, or give "
                f"the source's model settings"
            )
        else:
            notices.append(f"{name} of {path} does not fit ({problem}); it starts from scratch")
    return notices


def _mismatch(module: torch.nn.Module, saved: Any) -> str | None:
    """Why ``saved`` cannot be loaded into ``module`` (None when it can), checked before any
    tensor is copied: ``load_state_dict`` copies the matching tensors before it complains."""
    if not isinstance(saved, dict):
        return "no such network in the checkpoint"
    own = module.state_dict()
    missing = sorted(set(own) - set(saved))
    extra = sorted(set(saved) - set(own))
    if missing or extra:
        return f"{len(missing)} missing and {len(extra)} unexpected tensors, e.g. " + (
            missing[0] if missing else extra[0]
        )
    for key, value in own.items():
        other = saved[key]
        if not isinstance(other, Tensor) or other.shape != value.shape:
            shape = tuple(other.shape) if isinstance(other, Tensor) else type(other).__name__
            return f"{key} is {shape} there, {tuple(value.shape)} here"
    return None


def _loop(cfg: TrainConfig, run_dir: Path, state: dict[str, Any] | None, quiet: bool) -> Path:
    """The training loop of :func:`train` (``state`` None) and :func:`resume`, in the process
    group of ``torchrun`` when started by it (:func:`~sesim.devices.process_group`)."""
    with process_group(cfg.device) as ranks:
        return _train_ranks(cfg, run_dir, state, quiet, ranks)


def _train_ranks(
    cfg: TrainConfig, run_dir: Path, state: dict[str, Any] | None, quiet: bool, ranks: Dist
) -> Path:
    """The body of :func:`_loop` for this rank of ``ranks``."""
    start_step = int(state["step"]) if state is not None else 0
    device = resolve_device(cfg.device)
    if device.type == "cuda" and ranks.world > 1:
        device = torch.device("cuda", ranks.local_rank)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    elif device.type == "cuda":
        # Training crops have one size: let cuDNN time its convolution algorithms once.
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg.seed + ranks.rank)
    np.random.seed((cfg.seed + ranks.rank) % 2**32)
    random.seed(cfg.seed + ranks.rank)

    # Data first: a bad folder or image should fail before anything is built or written.
    if cfg.mode == "single-image":
        make_single_image_pair(cfg)
    else:
        dataset = make_dataset(cfg)
        if state is None:  # epochs -> steps (a resumed run keeps the steps it resolved)
            cfg = resolve_epochs(cfg, dataset.len_a, dataset.len_b, ranks.world)
    if ranks.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / "config.yaml", dump_yaml(cfg))
        # A process killed while writing leaves its temporary file behind: never a checkpoint.
        remove_stale_temporaries(run_dir)

    # Networks (identical on every rank: initialisation is seeded by cfg.seed), optimisers.
    method = get_method(cfg.method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nets = method.build(cfg)
    for w in caught if ranks.main else []:
        print(f"notice: {w.message}", file=sys.stderr)
    memory_format = torch.channels_last if cfg.channels_last else torch.preserve_format
    for module in nets.all_modules():
        module.to(device=device, memory_format=memory_format)
    optimizers = method.build_optimizers(cfg, nets)
    schedulers = {
        name: torch.optim.lr_scheduler.LambdaLR(
            opt,
            partial(
                lr_lambda,
                total=cfg.steps,
                decay_fraction=cfg.optim.decay_fraction,
                policy=cfg.optim.lr_policy,
                step_size=cfg.optim.lr_step,
                gamma=cfg.optim.lr_gamma,
            ),
        )
        for name, opt in optimizers.items()
    }
    pools = {name: ImagePool(cfg.optim.pool_size) for name in method.POOLS}
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, 4, ranks.rank))
    scaler = torch.amp.GradScaler(device.type) if cfg.precision == "fp16" else None
    sync = partial(average_gradients, world=ranks.world) if ranks.world > 1 else None
    # The colour anchor's map A -> B (the same on every rank, and again on resume: it depends on
    # the config and the data only); a colour-transfer warm-up reuses it.
    recolour = (
        colour_transfer_map(cfg, device).to(device) if cfg.structure.colour_anchor > 0 else None
    )
    ctx = StepContext(
        cfg,
        optimizers,
        pools,
        generator,
        autocast_factory(cfg.precision, device),
        scaler,
        sync,
        recolour=recolour,
    )
    history: dict[str, Any] = {"step_times": [], "peak_memory": 0}
    samples = start_step * cfg.batch * ranks.world

    if state is not None:
        for name, module in nets.trainable().items():
            module.load_state_dict(state["nets"][name])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        if int(state["config"].get("steps", cfg.steps)) != cfg.steps:
            # An extended run: from this step on, the schedule of the new total (see resume).
            for name, sched in schedulers.items():
                _reschedule(optimizers[name], sched)
        for name, pool in pools.items():
            pool.load_state_dict(state["pools"][name])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        same_ranks = int(state.get("world", 1)) == ranks.world
        per_rank = state.get("ranks")
        if same_ranks and per_rank is not None and ranks.world > 1:  # every rank's own streams
            mine = per_rank[ranks.rank]
            generator.set_state(mine["generator"])
            set_rng_state(mine["rng"])
            for name, pool in pools.items():
                pool.load_state_dict(mine["pools"][name])
        elif same_ranks and ranks.main:
            generator.set_state(state["generator"])
            set_rng_state(state["rng"])
        elif not same_ranks:  # a changed number of ranks: fresh per-rank streams
            generator.manual_seed(derive_seed(cfg.seed, 4, ranks.rank, start_step))
        samples = int(state.get("samples", samples))
        history = state.get("history", history)
    if state is None and cfg.init_from:
        for notice in init_weights(nets, Path(cfg.init_from)):
            if ranks.main:
                print(f"notice: {notice}", file=sys.stderr)
    elif state is None and cfg.optim.identity_warmup > 0:
        identity_warmup(nets.G, cfg, device, ranks, recolour)
    elif state is None and cfg.optim.identity_warmup_target == "colour_transfer" and ranks.main:
        print(
            "notice: optim.identity_warmup_target colour_transfer has no effect without a "
            "warm-up; set optim.identity_warmup to a number of steps (the CPU presets use 100)",
            file=sys.stderr,
        )
    # The averaged generator starts from the weights training starts from (after the warm-up
    # or the initialisation, or the checkpoint's average when resuming).
    average = WeightAverage(nets.G, cfg.optim.ema) if cfg.optim.ema > 0 else None
    if average is not None and state is not None and state.get("ema"):
        average.load_state_dict(state["ema"])
    trainable = nets.trainable()
    if cfg.compile:
        for module in trainable.values():
            module.compile()

    def rank_states() -> list[Any] | None:
        """Every rank's own random streams and image pools (collective: all ranks call it)."""
        if ranks.world == 1:
            return None
        mine = {
            "generator": generator.get_state(),
            "rng": rng_state(),
            "pools": {k: p.state_dict() for k, p in pools.items()},
        }
        gathered: list[Any] = [None] * ranks.world
        dist.all_gather_object(gathered, mine)
        return gathered

    def snapshot(step: int, per_rank: list[Any] | None) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "method": cfg.method,
            "mode": cfg.mode,
            "step": step,
            "samples": samples,
            "world": ranks.world,
            "config": to_dict(cfg),
            "nets": {k: _plain_state(m) for k, m in trainable.items()},
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
            "scaler": scaler.state_dict() if scaler is not None else {},
            "pools": {k: p.state_dict() for k, p in pools.items()},
            "generator": generator.get_state(),
            "rng": rng_state(),
            "ranks": per_rank,
            "history": history,
            "ema": _plain_state(average) if average is not None else None,
        }

    def record_times() -> None:
        history["step_times"] = (history["step_times"] + timer.flush())[-500:]

    def save(step: int) -> Path | None:
        record_times()
        per_rank = rank_states()
        if not ranks.main:
            return None
        path = checkpoint_path(run_dir, step)
        save_checkpoint(path, snapshot(step, per_rank))
        # Only now that the new checkpoint is complete may the oldest go.
        prune_checkpoints(run_dir, cfg.keep_last)
        return path

    timer = StepTimer(device)
    inference_G = average.module if average is not None else nets.G  # samples and snapshots
    fixed = fixed_samples(cfg, device) if ranks.main else None
    stream = batch_stream(cfg, samples, device, ranks.rank, ranks.world)
    for module in trainable.values():
        module.train()
    if start_step >= cfg.steps:
        return list_checkpoints(run_dir)[-1]
    writer = RunLogger(run_dir, cfg.logger, to_dict(cfg)) if ranks.main else None

    bar = tqdm(
        total=cfg.steps,
        initial=start_step,
        desc=f"train {cfg.preset}",
        unit="step",
        disable=quiet or not ranks.main,
        dynamic_ncols=True,
    )
    last = None
    step = start_step
    with _StopFlag() as stop, _write_failures(run_dir):
        while step < cfg.steps:
            batch = {
                k: v.to(device, non_blocking=True).contiguous(memory_format=memory_format)
                for k, v in next(stream).items()
                if isinstance(v, Tensor)
            }
            ctx.step = step
            timer.start()
            logs = method.train_step(nets, ctx, batch)
            if average is not None:
                average.update(nets.G)
            timer.stop()
            for sched in schedulers.values():
                sched.step()
            step += 1
            samples += cfg.batch * ranks.world
            if device.type == "cuda":  # the allocator's counter: no wait for the device
                history["peak_memory"] = max(
                    history["peak_memory"], torch.cuda.max_memory_allocated(device)
                )

            # Logging (with the checkpoints, the only places where the host waits for the
            # device: losses and step times are read here).
            log_now = step % cfg.log_every == 0 or step == cfg.steps
            if log_now:
                record_times()
            if ranks.main and log_now:
                values = {k: float(v) for k, v in logs.items()}
                bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
                if writer is not None:
                    scalars = {f"loss/{k}": v for k, v in values.items()}
                    writer.scalars({**scalars, "lr": float(schedulers["G"].get_last_lr()[0])}, step)
            bar.update(1)
            if fixed is not None and (step % cfg.sample_every == 0 or step == cfg.steps):
                _write_samples(inference_G, fixed, run_dir, step, writer, method)
            if ranks.main and cfg.snapshot_every > 0 and step % cfg.snapshot_every == 0:
                save_generator_snapshot(
                    snapshot_path(run_dir, step), generator_snapshot(cfg, step, inference_G)
                )
            if step % cfg.save_every == 0 or step == cfg.steps:
                last = save(step) or last
            if _stop_requested(stop.requested, ranks):
                if step % cfg.save_every != 0 and step != cfg.steps:
                    last = save(step) or last
                bar.close()
                if writer is not None:
                    writer.close()
                if ranks.main:
                    print(
                        f"stopped at step {step}; checkpoint written. Continue with: "
                        f"sesim train --resume {run_dir}",
                        file=sys.stderr,
                    )
                raise KeyboardInterrupt
    bar.close()
    if writer is not None:
        writer.close()
    checksums = _rank_checksums(trainable, ranks)
    times = history["step_times"]
    summary = {
        "steps": cfg.steps,
        "median_step_ms": 1000 * statistics.median(times) if times else math.nan,
        "peak_memory_bytes": history["peak_memory"],
        "device": str(device),
        "world_size": ranks.world,
        "rank_checksums": checksums,
        "ranks_in_sync": len(set(checksums)) == 1,
    }
    if ranks.main:
        with _write_failures(run_dir):
            atomic_write(run_dir / "train_summary.json", json.dumps(summary, indent=2))
            write_index(run_dir)
    if ranks.world > 1:
        dist.barrier()
    return last if last is not None else list_checkpoints(run_dir)[-1]


def identity_warmup(
    G: torch.nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    ranks: Dist,
    recolour: ChannelHistograms | None = None,
) -> None:
    """Fit ``G`` to reproduce training images (both domains) for ``cfg.optim.identity_warmup``
    steps of L1 with a throw-away Adam; seeded by ``cfg.seed``, before any checkpoint.

    With ``optim.identity_warmup_target: colour_transfer`` the images of domain A are fitted to
    their histogram transfer towards domain B (``recolour``, or :func:`colour_transfer_map`
    when it is not given) instead of to themselves."""
    warm = replace(
        cfg, seed=derive_seed(cfg.seed, 9), structure=replace(cfg.structure, augment=False)
    )
    if cfg.optim.identity_warmup_target != "colour_transfer":
        recolour = None
    elif recolour is None:
        recolour = colour_transfer_map(cfg, device).to(device)
    stream = batch_stream(warm, 0, device, ranks.rank, ranks.world)
    opt = torch.optim.Adam(
        G.parameters(), lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2)
    )
    G.train()
    for _ in range(cfg.optim.identity_warmup):
        batch = next(stream)
        real_a, real_b = batch["A"].to(device), batch["B"].to(device)
        x = torch.cat([real_a, real_b])
        target = x if recolour is None else torch.cat([recolour(real_a), real_b])
        loss = torch.nn.functional.l1_loss(G(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if ranks.world > 1:
            average_gradients(list(G.parameters()), ranks.world)
        opt.step()


def colour_transfer_map(
    cfg: TrainConfig, device: torch.device, images: int = 256
) -> ChannelHistograms:
    """The per-channel histogram map from domain A's training images to domain B's, fitted on
    the first ``images`` images of each domain of a stream of its own (seeded by ``cfg.seed``;
    the same on every rank). The global random state is restored afterwards (the loader draws
    from it), so that the rest of the run draws what it would with the identity start."""
    fit = replace(
        cfg, seed=derive_seed(cfg.seed, 10), structure=replace(cfg.structure, augment=False)
    )
    a: list[Tensor] = []
    b: list[Tensor] = []
    with torch.random.fork_rng(devices=[]):  # the loader draws from the CPU generator only
        stream = batch_stream(fit, 0, device, 0, 1)
        while len(a) * cfg.batch < images:
            batch = next(stream)
            a.append(batch["A"].cpu())
            b.append(batch["B"].cpu())
    return ChannelHistograms.fit(torch.cat(a), torch.cat(b))


def _reschedule(opt: torch.optim.Optimizer, sched: Any) -> None:
    """Set the learning rates of ``opt`` to what ``sched``'s (new) lambdas give its current
    step, as ``LambdaLR`` itself computes them."""
    for group, base, fn in zip(opt.param_groups, sched.base_lrs, sched.lr_lambdas, strict=True):
        group["lr"] = base * fn(sched.last_epoch)
    sched._last_lr = [group["lr"] for group in opt.param_groups]


@contextmanager
def _write_failures(run_dir: Path) -> Iterator[None]:
    """Turn a refused write (full disk...) into one line that says what was kept and what to do."""
    try:
        yield
    except WriteError as exc:
        raise UserError(
            f"{exc}. Nothing earlier was lost: {_last_complete(run_dir)}. Free some space (or fix "
            f"the folder's permissions), then continue with: sesim train --resume {run_dir}"
        ) from None


def _plain_state(module: torch.nn.Module) -> dict[str, Any]:
    """A state dict without the prefixes that compilation adds."""
    return {k.replace("_orig_mod.", ""): v for k, v in module.state_dict().items()}


def _stop_requested(local: bool, ranks: Dist) -> bool:
    """Whether any rank was interrupted (all ranks stop at the same step)."""
    if ranks.world == 1:
        return local
    flag = torch.tensor([1.0 if local else 0.0])
    dist.all_reduce(flag)
    return bool(flag.item() > 0)


def _rank_checksums(trainable: dict[str, torch.nn.Module], ranks: Dist) -> list[str]:
    """A hash of every trainable weight, gathered from every rank."""
    h = hashlib.sha256()
    for name in sorted(trainable):
        for key, value in sorted(_plain_state(trainable[name]).items()):
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    digest = h.hexdigest()[:16]
    if ranks.world == 1:
        return [digest]
    gathered: list[Any] = [None] * ranks.world
    dist.all_gather_object(gathered, digest)
    return [str(g) for g in gathered]


def _write_samples(
    G: torch.nn.Module,
    fixed: Tensor,
    run_dir: Path,
    step: int,
    writer: RunLogger | None,
    method: Any,
) -> None:
    """A grid of the fixed inputs and their translations (one row per sampled style for
    methods that set ``SAMPLE_STYLES``, the same codes at every sample step)."""
    styles = int(getattr(method, "SAMPLE_STYLES", 0))
    was_training = G.training
    G.eval()
    with torch.no_grad():
        if styles:
            outs = translate_styles(G, fixed, styles, torch.Generator().manual_seed(0))
            rows = [outs[:, j] for j in range(styles)]
        else:
            rows = [translate_batch(G, fixed)]
    G.train(was_training)
    labels = ["input"] + (
        ["output"] if len(rows) == 1 else [f"style {i}" for i in range(len(rows))]
    )
    write_sample_grid(fixed, rows, run_dir / "samples" / f"step_{step:08d}.png", labels=labels)
    if writer is not None:
        grid = (torch.cat([fixed, *rows]).cpu().float() + 1) / 2
        writer.images("samples", grid, step, nrow=fixed.shape[0])
    write_index(run_dir)
