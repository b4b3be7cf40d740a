"""The CUDA path: the loss agrees with the CPU, every precision trains, a step never syncs.

Skipped where no CUDA GPU is visible (CI has none). ``benchmarks/gpu_check.sh`` runs this file
on a GPU machine together with the speed and memory benchmarks.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sesim.config import TrainConfig, preset
from sesim.data.stream import batch_stream
from sesim.data.synthetic import write_synthetic_dataset
from sesim.devices import StepTimer, autocast_factory
from sesim.losses import compare_similarity, sample_queries, self_similarity
from sesim.losses.adversarial import ImagePool
from sesim.methods import StepContext, get_method
from sesim.runs import load_checkpoint
from sesim.train import train

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (none visible here)"
)
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cuda") / "ds"
    write_synthetic_dataset(root, n=8, size=64, seed=0, task="layout", n_test=2)
    return root


def tiny(name: str, dataset: Path, **kw: object) -> TrainConfig:
    cfg = preset(name)
    return replace(
        cfg,
        steps=3,
        batch=2,
        save_every=3,
        log_every=1,
        sample_every=3,
        device="cuda",
        data=replace(cfg.data, root=str(dataset), load_size=72, crop_size=64, workers=0),
        structure=replace(cfg.structure, vgg_weights="random"),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("window", [None, 32, 8])
def test_loss_on_cuda_matches_the_cpu(window: int | None) -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 2, 64, 40, 48, generator=g)
    idx = sample_queries(40, 48, 128, generator=g)
    cpu = compare_similarity(self_similarity(x, idx, window), self_similarity(y, idx, window))
    gpu = compare_similarity(
        self_similarity(x.to(CUDA), idx.to(CUDA), window),
        self_similarity(y.to(CUDA), idx.to(CUDA), window),
    )
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "precision,channels_last", [("fp32", False), ("bf16", True), ("fp16", False)]
)
def test_every_precision_trains_on_cuda(
    precision: str, channels_last: bool, dataset: Path, tmp_path: Path
) -> None:
    cfg = tiny("tiny-lsesim", dataset, precision=precision, channels_last=channels_last)
    final = train(cfg, tmp_path / "run", quiet=True)
    state = load_checkpoint(final)
    assert state["step"] == 3
    for net in state["nets"].values():
        assert all(torch.isfinite(v.float()).all() for v in net.values() if v.is_floating_point())
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["peak_memory_bytes"] > 0 and summary["median_step_ms"] > 0
    assert len(state["history"]["step_times"]) == 3  # CUDA events read at log steps


def test_step_timer_uses_cuda_events() -> None:
    timer = StepTimer(CUDA)
    a = torch.randn(2048, 2048, device=CUDA)
    for _ in range(2):
        timer.start()
        for _ in range(10):
            a = a @ a / 2048
        timer.stop()
    times = timer.flush()
    assert len(times) == 2 and all(t > 0 and math.isfinite(t) for t in times)
    assert timer.flush() == []


@pytest.mark.parametrize("name", ["tiny", "tiny-lsesim", "munit-tiny", "tiny-cut"])
def test_a_step_does_not_synchronize(name: str, dataset: Path) -> None:
    """``torch.cuda.set_sync_debug_mode("error")`` raises on any host wait inside the step."""
    cfg = tiny(name, dataset)
    method = get_method(cfg.method)
    nets = method.build(cfg)
    for module in nets.all_modules():
        module.to(CUDA)
    ctx = StepContext(
        cfg,
        method.build_optimizers(cfg, nets),
        {pool: ImagePool(2) for pool in method.POOLS},
        torch.Generator().manual_seed(0),
        autocast_factory("fp32", CUDA),
    )
    cpu = next(batch_stream(cfg, 0, torch.device("cpu")))
    batch = {k: v.to(CUDA) for k, v in cpu.items() if isinstance(v, torch.Tensor)}
    method.train_step(nets, ctx, batch)  # first step: lazy initialisation may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2):
            method.train_step(nets, ctx, batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
