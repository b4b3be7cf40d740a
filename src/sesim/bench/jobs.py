"""Training runs of the benchmarks and the process pool that trains them.

A finished run with the same config is reused and an unfinished one continued, so an
interrupted benchmark picks up where it stopped."""

from __future__ import annotations

import contextlib
import ctypes
import io
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
import yaml

from sesim.bench.judges import prepare_judges
from sesim.bench.presets import BenchPreset
from sesim.bench.tasks import prepare_data
from sesim.config import TrainConfig, config_diff, from_dict
from sesim.devices import resolve_device
from sesim.errors import UserError
from sesim.runs import list_checkpoints, newest_readable_checkpoint
from sesim.train import resume, train

# ---------------------------------------------------------------------------------------------
# Runs.


def check_run_dir(cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse a run folder that holds a run with another config.

    A field missing from the saved config (written by a sesim version that did not have it yet)
    counts as its default, the value that keeps the older behaviour.

    Raises:
        UserError: naming the first differing fields.
    """
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return
    try:
        old = from_dict(TrainConfig, yaml.safe_load(saved.read_text()) or {})
    except UserError as exc:  # a field this version does not know, or a value it refuses
        raise UserError(
            f"{run_dir} holds a run with another config ({exc}); delete it or choose another --out"
        ) from None
    differ = sorted(path for path, _, _ in config_diff(cfg, old))
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
    check_run_dir(cfg, run_dir)
    ckpts = list_checkpoints(run_dir)
    if ckpts:
        done = int(newest_readable_checkpoint(run_dir)[1]["step"]) >= cfg.steps
        if done and (run_dir / "train_summary.json").is_file():
            return ckpts[-1], True
        return resume(run_dir, quiet=True), False
    return train(cfg, run_dir, quiet=True), False


def run_folder(out: Path, task: str, method: str, seed: int) -> Path:
    """The training run of one task, method and seed: ``out/runs/<task>/<method>/seed<k>``."""
    return out / "runs" / task / method / f"seed{seed}"


# ---------------------------------------------------------------------------------------------
# Jobs.


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# With --jobs N > 1 the judges and the runs are trained in N worker processes of cores // N
# threads each: on a 2-core CPU two one-thread runs side by side are about twice as fast as one
# run on two threads, and they do not stall when another program takes a core (small
# convolutions on two OpenMP threads wait for each other at every operation).


def judges_job(out: Path, task: str, bench: BenchPreset, seed: int, device: str) -> None:
    """Train and cache a task's judges (see :func:`prepare_judges`)."""
    data = prepare_data(out, task, bench, seed)
    prepare_judges(data, bench, seed, resolve_device(device))


def train_job(cfg: TrainConfig, run_dir: Path) -> tuple[Path, bool, float, str]:
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


def _init_worker(threads: int, parent: int) -> None:
    """Set a worker's thread count, and make it die with the benchmark that started it."""
    _die_with_parent(parent)
    torch.set_num_threads(threads)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (a killed benchmark must not
    leave workers training into its run folders); elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


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
def executor(jobs: int, threads: int) -> Iterator[_InProcess | ProcessPoolExecutor]:
    """Jobs in this process (``jobs`` 1) or in a pool of ``jobs`` processes of ``threads``
    threads each; on an error or Ctrl-C the jobs not started yet are dropped."""
    if jobs == 1:
        yield _InProcess()
        return
    pool = ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads, os.getpid()),
    )
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
