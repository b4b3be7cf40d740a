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
from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from sesim.config import TrainConfig, preset
from sesim.losses.adversarial import ImagePool
from sesim.methods import StepContext, get_method
from sesim.train import autocast_factory

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


def run(cfg: TrainConfig, steps: int, warmup: int) -> dict[str, object]:
    device = torch.device(cfg.device)
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
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
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
        "tflop_per_step": round(flops / 1e12, 3),
        "achieved_tflops": round(flops / 1e12 / (ms / 1000), 2),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
    }


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
    for name in args.preset.split(","):
        if name not in BENCH_PRESETS:
            parser.error(f"unknown preset {name!r}; choose from {', '.join(BENCH_PRESETS)}")
        for batch in (int(b) for b in args.batch.split(",")):
            for precision in args.precision.split(","):
                cfg = config_for(name, args, batch, precision)
                result = run(cfg, args.steps, args.warmup)
                result["preset"] = name
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
