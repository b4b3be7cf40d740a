"""Speed of the vectorised self-similarity loss against a plain per-query loop.

Shapes are VGG16's at a 256x256 input: relu3_1 (256, 64, 64), relu4_1 and relu4_3 (512, 32, 32);
256 query points per layer; forward + backward of the ``cos`` structure loss. Prints a table and
one JSON document.

    python benchmarks/loss_speed.py [--device cpu,cuda] [--windows 64,32,16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch

from sesim.losses import compare_similarity, sample_queries, self_similarity

SHAPES = [(256, 64, 64), (512, 32, 32), (512, 32, 32)]


def loop_self_similarity(feat: torch.Tensor, idx: torch.Tensor, window: int | None) -> torch.Tensor:
    """A plain implementation: one window cut and one product per query (tanh similarity)."""
    _B, C, H, W = feat.shape
    f = (feat - feat.mean(dim=(2, 3), keepdim=True)) / math.sqrt(C)
    rows = []
    for q in idx.tolist():
        r, c = divmod(q, W)
        if window is None or (window >= H and window >= W):
            keys = f.flatten(2)
        else:
            top = min(max(r - window // 2, 0), H - window)
            left = min(max(c - window // 2, 0), W - window)
            keys = f[:, :, top : top + window, left : left + window].flatten(2)
        rows.append(torch.tanh(torch.einsum("bc,bck->bk", f[:, :, r, c], keys) / 10))
    return torch.stack(rows, dim=1)


def make_step(
    impl: Callable[[torch.Tensor, torch.Tensor, int | None], torch.Tensor],
    feats_x: list[torch.Tensor],
    feats_y: list[torch.Tensor],
    idx: list[torch.Tensor],
    window: int | None,
) -> Callable[[], None]:
    def step() -> None:
        total = feats_y[0].new_zeros(())
        for fx, fy, i in zip(feats_x, feats_y, idx):
            total = total + compare_similarity(impl(fx, i, window), impl(fy, i, window), "cos")
        total.backward()
        for fy in feats_y:
            fy.grad = None

    return step


def time_it(step: Callable[[], None], device: torch.device, repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--device", default="cpu,cuda", help="devices to try, comma-separated")
    parser.add_argument(
        "--windows", default="64,32,16,global", help="window sides; 'global' = whole map"
    )
    parser.add_argument("--queries", type=int, default=256, help="query points per layer")
    parser.add_argument("--batch", type=int, default=1, help="images per batch")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed repetitions (median reported)"
    )
    parser.add_argument("--no-loop", action="store_true", help="skip the per-query loop baseline")
    args = parser.parse_args()

    rows = []
    for dev_name in args.device.split(","):
        if dev_name == "cuda" and not torch.cuda.is_available():
            continue
        device = torch.device(dev_name)
        g = torch.Generator().manual_seed(0)
        feats_x = [torch.randn(args.batch, *s, generator=g).to(device) for s in SHAPES]
        feats_y = [
            (torch.randn(args.batch, *s, generator=g).to(device)).requires_grad_(True)
            for s in SHAPES
        ]
        idx = [sample_queries(h, w, args.queries, generator=g, device=device) for _, h, w in SHAPES]
        for w_name in args.windows.split(","):
            window = None if w_name == "global" else int(w_name)

            def ours(f: torch.Tensor, i: torch.Tensor, w: int | None) -> torch.Tensor:
                return self_similarity(f, i, w, "tanh")

            t_vec = time_it(make_step(ours, feats_x, feats_y, idx, window), device, args.repeats)
            t_loop = None
            if not args.no_loop:
                loop_step = make_step(loop_self_similarity, feats_x, feats_y, idx, window)
                t_loop = time_it(loop_step, device, max(1, args.repeats // 2))
            rows.append(
                {
                    "device": dev_name,
                    "window": w_name,
                    "vectorised_ms": round(t_vec, 2),
                    "loop_ms": None if t_loop is None else round(t_loop, 2),
                    "speedup": None if t_loop is None else round(t_loop / t_vec, 1),
                }
            )
    info = {
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "shapes": SHAPES,
        "queries": args.queries,
        "batch": args.batch,
    }
    print(f"{'device':<7} {'window':<7} {'vectorised ms':>14} {'loop ms':>10} {'speed-up':>9}")
    for r in rows:
        loop = "-" if r["loop_ms"] is None else f"{r['loop_ms']:.1f}"
        sp = "-" if r["speedup"] is None else f"{r['speedup']:.1f}x"
        print(f"{r['device']:<7} {r['window']:<7} {r['vectorised_ms']:>14.2f} {loop:>10} {sp:>9}")
    print(json.dumps({"info": info, "results": rows}))


if __name__ == "__main__":
    main()
