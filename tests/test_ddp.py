"""Multi-process training through torchrun on the CPU (gloo backend)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from sesim import devices
from sesim.data.synthetic import write_synthetic_dataset
from sesim.runs import list_checkpoints, load_checkpoint

ARGS = [
    "train", "--preset", "tiny-lsesim", "--size", "32", "--batch", "1", "--device", "cpu",
    "--vgg-weights", "random", "--queries", "16", "--save-every", "1", "--quiet",
    "--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.n_blocks=1",
    "--set", "data.workers=0",
]  # fmt: skip


def _torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc)]
    cmd += ["--standalone", "-m", "sesim", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_two_ranks_stay_in_sync_and_resume_with_one(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    write_synthetic_dataset(data, n=8, size=32, seed=0, task="layout", n_test=2)
    run = tmp_path / "run"
    proc = _torchrun(2, *ARGS, "--data", str(data), "--steps", "3", "--out", str(run))
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["world_size"] == 2
    assert len(summary["rank_checksums"]) == 2 and summary["ranks_in_sync"], summary
    # Only rank 0 wrote: one config print, one set of checkpoints.
    assert proc.stdout.count("# resolved config") == 1
    state = load_checkpoint(list_checkpoints(run)[-1])
    assert state["world"] == 2 and state["samples"] == 3 * 2

    # Resume the same run with a single process from step 2.
    list_checkpoints(run)[-1].unlink()
    shutil.rmtree(run / "tb", ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-m", "sesim", "train", "--resume", str(run), "--quiet"],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = load_checkpoint(list_checkpoints(run)[-1])
    assert state["step"] == 3 and state["world"] == 1 and state["samples"] == 2 * 2 + 1


def test_process_group_is_left_by_whoever_joined_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A finished run leaves its group itself: a gloo group left to the interpreter's shutdown
    # can abort the rank after its work is done (SIGABRT, seen in CI). A one-process gloo
    # group stands in for torchrun's, which would wait for a second rank.
    stores = iter(dist.FileStore(str(tmp_path / f"store{i}"), 1) for i in range(2))
    init = dist.init_process_group

    def one_rank_group(backend: str, **_: object) -> None:
        init(backend, store=next(stores), rank=0, world_size=1)

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(devices, "_attempt_store", lambda rank, world: None)
    monkeypatch.setattr(devices.dist, "init_process_group", one_rank_group)
    with devices.process_group("cpu") as ranks:
        assert dist.is_initialized() and (ranks.rank, ranks.world) == (1, 2)
    assert not dist.is_initialized()
    # A failed body leaves the group to the process's exit.
    with pytest.raises(RuntimeError), devices.process_group("cpu"):
        raise RuntimeError("a failed step")
    assert dist.is_initialized()
    # A group that existed before is not this run's to leave.
    with devices.process_group("cpu"):
        pass
    assert dist.is_initialized()
    dist.destroy_process_group()
    monkeypatch.setenv("WORLD_SIZE", "1")
    with devices.process_group("cpu") as ranks:
        assert ranks == devices.Dist() and not dist.is_initialized()
