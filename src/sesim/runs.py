"""The run folder: checkpoints, the config of a run, its generator, and atomic file writes.

A run folder holds ``config.yaml``, ``checkpoints/step_XXXXXXXX.pt`` (the newest ``keep_last``),
``snapshots/step_XXXXXXXX.pt`` (generator-only snapshots every ``snapshot_every`` steps, never
pruned: the paper reports the best of the generators saved every 10 epochs), ``samples/``, ``tb/``, ``train_summary.json`` and ``index.html``. Checkpoints are plain dicts of
state (networks, optimisers, schedulers, pools, RNG states, the resolved config), written
atomically and read back with ``weights_only=True``; a generator is rebuilt from the config
stored in its checkpoint.

Every file sesim writes goes through :func:`atomic_path`: the data lands in a temporary file
beside the target (``.<name>.<pid>.<random>.tmp``), which replaces the target only once it is
complete, so a reader or a killed process never sees half a file. A write that the system
refuses (a full disk, a quota, a read-only folder) raises :class:`WriteError`, a user error that
names the file and the cause; the target and everything beside it are left as they were.

Each checkpoint has a small record beside it (``step_XXXXXXXX.json``: size and SHA-256, written
once the checkpoint is complete), so that a file cut short by a crash or an interrupted copy is
told apart from a file that is not a sesim checkpoint, and :func:`newest_readable_checkpoint`
skips either kind with a warning instead of stopping.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sesim.config import TrainConfig, from_dict, to_dict
from sesim.errors import UserError
from sesim.methods import get_method
from sesim.nets.ema import WeightAverage

CHECKPOINT_FORMAT = 1


class WriteError(UserError):
    """The system refused to write a file (disk full, quota, permissions...).

    Attributes:
        path: the file that could not be written (the target, not its temporary file).
        reason: the system's reason, e.g. ``No space left on device``.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"could not write {path}: {reason}; nothing was written there")


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (itself, or what it was raised from or during)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno is not None:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


# ---------------------------------------------------------------------------------------------
# Atomic writes.


@contextmanager
def atomic_path(path: Path, fsync: bool = False) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` that replaces ``path`` when the block succeeds.

    Write the file to the yielded path (give writers that guess the format from the suffix an
    explicit format: the temporary name ends in ``.tmp``). On success it is renamed over
    ``path``; on any error (Ctrl-C included) it is removed and ``path`` is left as it was.
    Parent folders are created.

    Args:
        path: the file to write.
        fsync: flush the data to the disk before the rename (checkpoints).
    Yields:
        The temporary path, ``.<name>.<pid>.<random>.tmp`` in ``path``'s folder; it does not
        exist yet (open it with mode ``"xb"`` to be sure).
    Raises:
        WriteError: the system refused the data (an ``OSError`` with an errno behind whatever
            the writer raised, e.g. torch's ``RuntimeError`` around ``No space left on device``).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(path, exc.strerror or str(exc)) from None
    # A fresh name in the same folder (not mkstemp, whose 0600 mode would survive the rename).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if fsync:
            with open(tmp, "r+b") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except WriteError:
        raise
    except Exception as exc:
        cause = _os_error_in(exc)
        if cause is None:
            raise
        raise WriteError(path, cause.strerror or str(cause)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write bytes or text (UTF-8) to ``path`` atomically; returns ``path``."""
    raw = data.encode() if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "xb") as fh:
        fh.write(raw)
    return path


def json_safe(value: Any) -> Any:
    """A JSON-safe copy of ``value``: non-finite floats become null, tuples lists, keys text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (non-finite floats as null), atomically."""
    return atomic_write(path, json.dumps(json_safe(data), indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
# Checkpoints.


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` goes."""
    return run_dir / "checkpoints" / f"step_{step:08d}.pt"


def record_path(checkpoint: Path) -> Path:
    """The size-and-checksum record written beside a checkpoint."""
    return checkpoint.with_suffix(".json")


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint files of a run, oldest first (temporary files are never listed).

    A file listed here was renamed into place complete, but may since have been damaged (a
    crash of the machine, a copy cut short): :func:`newest_readable_checkpoint` checks.
    """
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step_*.pt") if p.is_file())


def remove_stale_temporaries(run_dir: Path) -> None:
    """Delete the temporary checkpoint and snapshot files left by a process killed while
    writing one."""
    for folder in ("checkpoints", "snapshots"):
        for stale in (run_dir / folder).glob(".step_*.tmp"):
            stale.unlink(missing_ok=True)


def snapshot_path(run_dir: Path, step: int) -> Path:
    """Where the generator-only snapshot of ``step`` goes."""
    return run_dir / "snapshots" / f"step_{step:08d}.pt"


def list_snapshots(run_dir: Path) -> list[Path]:
    """Complete generator snapshots of a run, oldest first."""
    folder = run_dir / "snapshots"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step_*.pt") if p.is_file())


def generator_snapshot(cfg: TrainConfig, step: int, G: nn.Module) -> dict[str, Any]:
    """A generator-only state that :func:`load_generator` and :func:`load_checkpoint` read
    like a checkpoint (format, method, mode, step, config, ``nets["G"]``), but without the
    optimisers, discriminator and RNG states needed to resume."""
    weights = {k.replace("_orig_mod.", ""): v for k, v in G.state_dict().items()}
    return {
        "format": CHECKPOINT_FORMAT,
        "kind": "generator",
        "method": cfg.method,
        "mode": cfg.mode,
        "step": step,
        "config": to_dict(cfg),
        "nets": {"G": weights},
    }


def save_generator_snapshot(path: Path, state: dict[str, Any]) -> None:
    """Write a generator snapshot atomically (as :func:`save_checkpoint`)."""
    save_checkpoint(path, state)


def list_generators(run_dir: Path, skip: Collection[Path] = ()) -> list[Path]:
    """Every saved generator of a run, one per step, oldest first: the snapshots and the full
    checkpoints (a full checkpoint is listed when both exist for a step), leaving out ``skip``
    (e.g. damaged checkpoints)."""
    by_step = {int(p.stem.removeprefix("step_")): p for p in list_snapshots(run_dir)}
    by_step.update(
        {int(p.stem.removeprefix("step_")): p for p in list_checkpoints(run_dir) if p not in skip}
    )
    return [by_step[s] for s in sorted(by_step)]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temporary file, fsync, rename), then its record.

    Raises:
        WriteError: the disk refused the data; ``path`` and older checkpoints are untouched.
    """
    with atomic_path(path, fsync=True) as tmp, open(tmp, "xb") as fh:
        # Through a file object, so that the OSError (errno) stays behind torch's RuntimeError.
        torch.save(state, fh)
    try:
        write_json(record_path(path), {"bytes": path.stat().st_size, "sha256": _sha256(path)})
    except WriteError:
        path.unlink(missing_ok=True)  # without its record a checkpoint is not complete
        raise


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint file cannot be trusted, from its record; None when it matches.

    Returns a short reason (``truncated: 1,024 of 57,000,000 bytes``, ``checksum differs``)
    or None when the file matches its record or has no record (older runs).
    """
    record = record_path(path)
    if not record.is_file():
        return None
    try:
        expected = json.loads(record.read_text())
        size, digest = int(expected["bytes"]), str(expected["sha256"])
    except (ValueError, KeyError, TypeError, OSError):
        return None  # an unreadable record says nothing about the checkpoint
    actual = path.stat().st_size
    if actual != size:
        kind = "truncated" if actual < size else "longer than written"
        return f"{kind}: {actual:,} of {size:,} bytes"
    if _sha256(path) != digest:
        return "damaged: its checksum differs from the one recorded when it was written"
    return None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a sesim checkpoint with ``weights_only=True``, checked against its record.

    Raises:
        UserError: a missing file, a file cut short or damaged (by its record), or a file that
            is not a sesim checkpoint.
    """
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    problem = checkpoint_problem(path)
    if problem is not None:
        raise UserError(f"checkpoint {path} is {problem}; use an older checkpoint of the run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"cannot read checkpoint {path} ({type(exc).__name__}): is it a sesim checkpoint?"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a sesim checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def newest_readable_checkpoint(run: Path) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint of a run folder that loads, skipping damaged ones with a warning.

    Each skipped file gets one line on stderr (``warning: skipping ...: truncated ...``); the
    file is left in place for the user to inspect.

    Returns:
        ``(path, state)`` of the newest readable checkpoint.
    Raises:
        UserError: no such folder, no checkpoint, or none that can be read.
    """
    ckpts = list_checkpoints(run) if run.is_dir() else []
    if not run.is_dir():
        raise UserError(f"run folder {run} does not exist")
    if not ckpts:
        raise UserError(f"{run} holds no checkpoint yet (looked in {run / 'checkpoints'})")
    for path in reversed(ckpts):
        try:
            return path, load_checkpoint(path)
        except UserError as exc:
            print(f"warning: skipping {exc}", file=sys.stderr)
    raise UserError(
        f"none of the {len(ckpts)} checkpoints in {run / 'checkpoints'} can be read "
        "(see the warnings above); the run has to start again"
    )


def config_of(state: dict[str, Any]) -> TrainConfig:
    """The resolved config stored in a checkpoint."""
    cfg: TrainConfig = from_dict(TrainConfig, state["config"])
    return cfg


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (and their records).

    Called only after a new checkpoint is complete, so the newest complete checkpoint is never
    among the deleted.
    """
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
        record_path(old).unlink(missing_ok=True)


def newest_checkpoint(run: Path) -> Path:
    """The newest complete checkpoint of a run folder.

    Raises:
        UserError: the folder does not exist or holds no checkpoint yet.
    """
    if not run.is_dir():
        raise UserError(f"run folder {run} does not exist")
    ckpts = list_checkpoints(run)
    if not ckpts:
        raise UserError(f"{run} holds no checkpoint yet (looked in {run / 'checkpoints'})")
    return ckpts[-1]


def load_generator(
    run: Path | None, checkpoint: Path | None, device: torch.device | str
) -> tuple[nn.Module, TrainConfig, int]:
    """Rebuild a run's generator from a checkpoint (the run's newest by default).

    Args:
        run: a run folder (its newest readable checkpoint is used, damaged newer ones are
            skipped with a warning), or None.
        checkpoint: a checkpoint file, used when ``run`` is None.
        device: where the generator goes.
    Returns:
        ``(G, cfg, step)``: the generator in eval mode on ``device``, the run's config and the
        checkpoint's step.
    Raises:
        UserError: no such run or checkpoint, or a file that is not a generator of its config.
    """
    if run is not None:
        checkpoint, state = newest_readable_checkpoint(run)
    elif checkpoint is None:
        raise UserError("give --run RUN_DIR or --checkpoint FILE")
    else:
        state = load_checkpoint(checkpoint)
    cfg = config_of(state)
    G = get_method(cfg.method).build_generator(cfg)
    try:
        G.load_state_dict(generator_weights(state))
    except (KeyError, RuntimeError) as exc:
        raise UserError(
            f"{checkpoint} does not match a {cfg.method}/{cfg.mode} generator: {str(exc)[:120]}"
        ) from None
    return G.to(device).eval(), cfg, int(state["step"])


def generator_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The generator weights inference should use from a checkpoint or snapshot state: the
    averaged generator where the run kept one (``optim.ema``), else the trained weights.

    Raises:
        KeyError: the state holds no generator.
    """
    average = state.get("ema")
    return WeightAverage.averaged_weights(average) if average else state["nets"]["G"]
