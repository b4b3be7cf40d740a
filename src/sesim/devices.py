"""Devices, precision, distributed ranks and step timing of a training run.

``auto`` picks CUDA when present; mixed precision is a context-manager class built once per
run (``autocast_factory``); under ``torchrun`` each process learns its rank from the environment
(:func:`process_group`) and gradients are averaged with one flat all-reduce per optimiser.
:class:`StepTimer` times steps without making the host wait for the device every step.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import torch
import torch.distributed as dist

from sesim.errors import UserError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; an unavailable device is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but no CUDA GPU is visible; use --device cpu")
    return torch.device(name)


def autocast_factory(
    precision: str, device: torch.device
) -> type[AbstractContextManager[None]] | None:
    """A context-manager class for mixed precision, or None for fp32."""
    if precision == "fp32":
        return None
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return partial(torch.autocast, device_type=device.type, dtype=dtype)  # type: ignore[return-value]


class StepTimer:
    """Durations of training steps, without making the host wait for the device every step.

    On CUDA each step is bracketed by two events recorded on the current stream, and their
    times are read (waiting for the device) only in :meth:`flush`, which the loop calls at
    logging and checkpoint steps; a per-step ``synchronize`` would idle the GPU while the host
    fetches the next batch and launches the next step's first kernels. Elsewhere a host clock
    times each step.

    Args:
        device: the training device.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._t0 = 0.0
        self._start: Any = None
        self._events: list[tuple[Any, Any]] = []  # (start, end) CUDA event pairs
        self._seconds: list[float] = []  # host-timed steps

    def start(self) -> None:
        """Mark the start of a step."""
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()

    def stop(self) -> None:
        """Mark the end of the step started last."""
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._events.append((self._start, end))
        else:
            self._seconds.append(time.perf_counter() - self._t0)

    def flush(self) -> list[float]:
        """Seconds taken by each step stopped since the last flush, oldest first."""
        if self._events:
            self._events[-1][1].synchronize()  # one stream: every earlier event is done too
            self._seconds += [start.elapsed_time(end) / 1000 for start, end in self._events]
            self._events = []
        out, self._seconds = self._seconds, []
        return out


# ---------------------------------------------------------------------------------------------
# Distributed ranks.


@dataclass(frozen=True)
class Dist:
    """This process's place in a (possibly single-process) run.

    Attributes:
        rank: global rank.
        world: number of processes.
        local_rank: rank on this machine (selects the GPU).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process logs and writes checkpoints."""
        return self.rank == 0


@contextmanager
def process_group(device_name: str) -> Iterator[Dist]:
    """This process's place in the run, in ``torchrun``'s process group when started by it
    (WORLD_SIZE > 1).

    A group joined here is left when the body finishes: a gloo group left to the interpreter's
    shutdown is torn down while its threads may still run, which can abort a rank (``terminate
    called without an active exception``, SIGABRT) after all its work is done. A body that
    raises leaves the group to the process's exit (torchrun then stops every rank), and a
    group that already existed is left to whoever created it.

    Args:
        device_name: the run's device setting (``cpu`` selects gloo even beside a GPU).

    Yields:
        The rank, world size and local rank (``Dist()`` outside ``torchrun``).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield Dist()
        return
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    joined = not dist.is_initialized()
    if joined:
        backend = "nccl" if use_cuda else "gloo"
        store = _attempt_store(rank, world)
        if store is None:
            dist.init_process_group(backend=backend)
        else:
            dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world)
    if use_cuda:
        torch.cuda.set_device(local)
    yield Dist(rank, world, local)
    if joined:
        dist.destroy_process_group()


def _attempt_store(rank: int, world: int) -> dist.Store | None:
    """The torchrun agent's store, under a prefix of its own for this restart attempt.

    After ``torchrun --max-restarts N`` restarts a group, the agent's store still holds the
    keys that the killed attempt wrote (a peer's address among them): a new rank could read a
    dead peer's address and time out connecting. A prefix per restart keeps attempts apart.
    None for a first attempt and outside torchrun's agent store (``env://`` works as usual).
    """
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if attempt in ("", "0") or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None  # a first attempt joins through env:// as usual
    base = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world,
        is_master=False,
        timeout=timedelta(minutes=10),
    )
    return dist.PrefixStore(f"sesim/attempt_{attempt}/", base)


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """All-reduce and average gradients across ranks (one flat buffer per call)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n
