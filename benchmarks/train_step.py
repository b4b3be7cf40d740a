"""Time one full training step (heads, D, G) of the paper presets.

Prints one JSON line per configuration: median ms per step, images per second, peak memory
(``torch.cuda.max_memory_allocated``), achieved TFLOP/s (FLOPs counted once with
``torch.utils.flop_counter``), the GPU name and the torch version. Random VGG weights and random
images are used: timing does not depend on them.

    python benchmarks/train_step.py --preset fsesim,lsesim --size 256 --batch 1 \\
        --precision fp32 --steps 20 --device cuda
    python benchmarks/train_step.py --preset lsesim-w32 --batch 16 --precision bf16 \\
        --channels-last --compile --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from sesim.config import TrainConfig, preset
from sesim.devices import autocast_factory
from sesim.losses.adversarial import ImagePool
from sesim.methods import StepContext, get_method

BENCH_PRESETS = {
    "fsesim": ("fsesim", None),
    "fsesim-w32": ("fsesim", 32),
    "lsesim": ("lsesim", 64),
    "lsesim-w32": ("lsesim", 32),
}


def config_for(name: str, args: argparse.Namespace, batch: int, precision: str) -> TrainConfig:
    base_name, window = BENCH_PRESETS[name]
    cfg = preset(base_name)
    loss = cfg.structure.loss
    if window is not None:
        loss = replace(loss, window=window)
    return replace(
        cfg,
        batch=batch,
        precision=precision,  # type: ignore[arg-type]
        channels_last=args.channels_last,
        compile=args.compile,
        device=args.device,
        data=replace(cfg.data, crop_size=args.size, load_size=args.size),
        structure=replace(cfg.structure, vgg_weights="random", loss=loss),
    )


def _storage_bytes(tensors: Iterable[torch.Tensor | None]) -> int:
    """Bytes of the distinct storages behind ``tensors``."""
    seen: dict[int, int] = {}
    for t in tensors:
        if isinstance(t, torch.Tensor):
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


def cpu_peak_bytes(step: Callable[[], object], nets: Any, ctx: StepContext) -> int:
    """Peak tensor memory of one training step on the CPU, an estimate of the GPU's figure.

    The bytes resident before the step (weights, buffers, gradients, optimiser states, pooled
    images) plus the highest running sum of the step's allocations and frees, as the profiler
    records them from the CPU allocator. The GPU's ``max_memory_allocated`` also counts cuDNN
    workspaces and rounds blocks up to 512 bytes, so it reads somewhat higher.
    """
    modules = nets.all_modules()
    resident = _storage_bytes(
        [t for m in modules for t in (*m.parameters(), *m.buffers())]
        + [p.grad for m in modules for p in m.parameters()]
        + [v for o in ctx.optimizers.values() for st in o.state.values() for v in st.values()]
        + [im for pool in ctx.pools.values() for im in pool.images]
    )
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        step()
    events = sorted(
        (e for e in prof.events() if e.self_cpu_memory_usage != 0),
        key=lambda e: e.time_range.start,
    )
    running = transient = 0
    for e in events:
        running += e.self_cpu_memory_usage
        transient = max(transient, running)
    return resident + transient


def run(cfg: TrainConfig, steps: int, warmup: int) -> dict[str, Any]:
    device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as training does (one crop size)
    method = get_method(cfg.method)
    nets = method.build(cfg)
    fmt = torch.channels_last if cfg.channels_last else torch.preserve_format
    for module in nets.all_modules():
        module.to(device=device, memory_format=fmt)
    if cfg.compile:
        for module in nets.trainable().values():
            module.compile()
    opts = method.build_optimizers(cfg, nets)
    ctx = StepContext(
        cfg,
        opts,
        {name: ImagePool(cfg.optim.pool_size) for name in method.POOLS},
        torch.Generator().manual_seed(0),
        autocast_factory(cfg.precision, device),
        torch.amp.GradScaler(device.type) if cfg.precision == "fp16" else None,
    )
    size, b = cfg.data.crop_size, cfg.batch
    g = torch.Generator().manual_seed(0)
    batch = {
        k: (torch.rand(b, 3, size, size, generator=g) * 2 - 1)
        .to(device)
        .contiguous(memory_format=fmt)
        for k in ("A", "B", "A_aug", "B_aug")
    }

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        method.train_step(nets, ctx, batch)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        method.train_step(nets, ctx, batch)
        sync()
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak: int | None = torch.cuda.max_memory_allocated(device)
        memory_source = "torch.cuda.max_memory_allocated"
    else:
        peak = cpu_peak_bytes(lambda: method.train_step(nets, ctx, batch), nets, ctx)
        memory_source = "cpu estimate: resident tensors + profiled allocations of one step"
    with FlopCounterMode(display=False) as counter:
        method.train_step(nets, ctx, batch)
    flops = counter.get_total_flops()
    ms = 1000 * statistics.median(times)
    return {
        "preset": cfg.preset,
        "window": cfg.structure.loss.window,
        "size": size,
        "batch": b,
        "precision": cfg.precision,
        "channels_last": cfg.channels_last,
        "compile": cfg.compile,
        "device": str(device),
        "median_ms": round(ms, 2),
        "images_per_s": round(1000 * b / ms, 1),
        "peak_memory_gb": None if peak is None else round(peak / 1e9, 3),
        "memory_source": memory_source,
        "tflop_per_step": round(flops / 1e12, 3),
        "achieved_tflops": round(flops / 1e12 / (ms / 1000), 2),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
    }


def targets_met(r: dict[str, Any]) -> str:
    """The GPU issue's targets that apply to a result (256x256 on CUDA), and whether it met them.

    Batch 1 fp32: at most 12 ms per step for FSeSim and FSeSim-w32, 18 ms for LSeSim and
    LSeSim-w32; LSeSim peak memory at most 1.5 GB at batch 1; any setting: at least 250 images/s
    for FSeSim, 150 for LSeSim.
    """
    if r["device"] == "cpu" or r["size"] != 256:
        return "n/a"
    lsesim = str(r["preset"]).startswith("lsesim")
    notes = []
    if r["batch"] == 1 and r["precision"] == "fp32":
        limit = 18.0 if lsesim else 12.0
        notes.append(f"<= {limit:g} ms: {'met' if r['median_ms'] <= limit else 'missed'}")
    if r["batch"] == 1 and lsesim and r["peak_memory_gb"] is not None:
        notes.append(f"<= 1.5 GB: {'met' if r['peak_memory_gb'] <= 1.5 else 'missed'}")
    rate = 150.0 if lsesim else 250.0
    notes.append(f">= {rate:g} img/s: {'met' if r['images_per_s'] >= rate else 'missed'}")
    return "; ".join(notes)


def print_table(results: list[dict[str, Any]]) -> None:
    """The results as a markdown table, after the JSON lines."""
    print()
    print("| preset | window | batch | precision | channels-last | compile | ms/step | img/s "
          "| peak GB | TFLOP/s | targets |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        peak = "n/a" if r["peak_memory_gb"] is None else f"{r['peak_memory_gb']:.3f}"
        print(
            f"| {r['preset']} | {r['window'] or 'global'} | {r['batch']} | {r['precision']} | "
            f"{'yes' if r['channels_last'] else 'no'} | {'yes' if r['compile'] else 'no'} | "
            f"{r['median_ms']:.2f} | {r['images_per_s']:.1f} | {peak} | "
            f"{r['achieved_tflops']:.2f} | {targets_met(r)} |"
        )
    first = results[0]
    where = first["gpu"] or "CPU"
    print(f"\n{where}, torch {first['torch']}; peak memory: {first['memory_source']}.")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--preset", default="fsesim", help=f"comma-separated, from {', '.join(BENCH_PRESETS)}"
    )
    parser.add_argument("--size", type=int, default=256, help="image side")
    parser.add_argument("--batch", default="1", help="comma-separated batch sizes")
    parser.add_argument("--precision", default="fp32", help="comma-separated: fp32, bf16, fp16")
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda or cpu"
    )
    args = parser.parse_args()
    # Random VGG weights are the point here (timing does not depend on them): no warning.
    warnings.filterwarnings("ignore", message="VGG16Features uses random weights")
    results: list[dict[str, Any]] = []
    for name in args.preset.split(","):
        if name not in BENCH_PRESETS:
            parser.error(f"unknown preset {name!r}; choose from {', '.join(BENCH_PRESETS)}")
        for batch in (int(b) for b in args.batch.split(",")):
            for precision in args.precision.split(","):
                cfg = config_for(name, args, batch, precision)
                result = run(cfg, args.steps, args.warmup)
                result["preset"] = name
                print(json.dumps(result), flush=True)
                results.append(result)
    print_table(results)


if __name__ == "__main__":
    main()
