"""Why the structure loss keeps (or loses) the layout at small sizes: the numbers behind
docs/structure.md.

Four measurements on the synthetic bench tasks (ground truth known, CPU, no ImageNet weights
needed; ``--vgg-weights PATH`` repeats them with any VGG16 state dict):

1. ``taps``: the side of every VGG16 tap's feature map at each training size, and the width
   of the tasks' thinnest structures in map pixels.
2. ``static``: the structure loss (the ``tiny`` preset's comparison, window scaled to the map)
   between the input and candidate outputs whose structure is known: a recolouring that
   keeps the layout exactly (the structure oracle), the true paired target, the target shifted
   by 2 and 4 pixels, and another scene's target. A tap that sees the layout ranks the
   shifted target above (worse than) the true one; ``p(true<shift4)`` is the share of images
   for which it does. Averaged over several random VGG initialisations.
3. ``spread``: the magnitude of the features and the spread of ``dot / 10`` inside
   ``tanh`` (the public code's similarity), with the share of saturated values.
4. ``training`` (``--train-steps`` > 0): an FSeSim run with the paper's taps and generator
   and one with the ``tiny`` preset's, on ``layout``; at checkpoints along training the
   structure loss of the translation (and of the true target, for scale), and the norms of the
   gradients that the GAN term and the weighted structure term send into the generator's
   output.

Prints one table per measurement and a JSON document (also written to ``--out``).

    python benchmarks/structure_diagnosis.py [--tasks layout,shapes,maps] [--n 48]
        [--vgg-seeds 0,1,2] [--train-steps 200] [--out runs/structure-diagnosis]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sesim import bench as B
from sesim.bench.presets import parse_list
from sesim.config import TrainConfig, apply_overrides, validate
from sesim.data.synthetic import TASKS
from sesim.features.vgg import VGG16Features
from sesim.losses.adversarial import generator_loss
from sesim.losses.selfsim import normalize_features
from sesim.losses.spatial import SpatialCorrelativeLoss
from sesim.methods import get_method
from sesim.runs import config_of, list_checkpoints, load_checkpoint

TAPS = ("relu1_2", "relu2_2", "relu3_1", "relu4_1", "relu4_3")
STRIDE = {"relu1_2": 1, "relu2_2": 2, "relu3_1": 4, "relu4_1": 8, "relu4_3": 8}
#: the thinnest structures the generators draw, in pixels at 64 px (data/synthetic.py)
THIN = {"layout": 2.0, "shapes": 3.0, "maps": 1.5}
#: the settings the ``tiny`` preset had before docs/structure.md (the paper's taps and
#: generator at 64 px), as overrides of today's preset.
PAPER_TAPS = (
    "structure.layers=relu3_1,relu4_1,relu4_3",
    "structure.loss.query_strategy=random",
    "model.n_downsampling=2",
    "model.antialias=true",
    "optim.identity_warmup=0",
)


def per_image_loss(crit: SpatialCorrelativeLoss, fa: list[Tensor], fb: list[Tensor]) -> Tensor:
    """(N,) structure loss of each image pair, the same query points for every image."""
    out = []
    for i in range(fa[0].shape[0]):
        gen = torch.Generator().manual_seed(0)
        one_a, one_b = [f[i : i + 1] for f in fa], [f[i : i + 1] for f in fb]
        out.append(float(crit.structure_loss(one_a, one_b, generator=gen)))
    return torch.tensor(out)


def loss_config(cfg: TrainConfig, side: int, size: int) -> Any:
    """The tiny preset's comparison with its window scaled from the image to a map of ``side``."""
    loss = cfg.structure.loss
    window = loss.window
    if window is not None:
        window = max(3, round(window * side / size))
    return replace(loss, window=window, num_queries=64, query_strategy="random", learned=False)


def static(
    data: B.TaskData, cfg: TrainConfig, n: int, vgg_seeds: list[int], weights: str | None
) -> list[dict[str, Any]]:
    """Measurement 2 for one task: one row per tap."""
    a, b = data.test_a[:n], data.test_b[:n]
    cands = {
        "oracle": B.structure_oracle(data)[:n],
        "true": b,
        "shift2": torch.roll(b, (2, 2), (2, 3)),
        "shift4": torch.roll(b, (4, 4), (2, 3)),
        "other": torch.roll(b, 1, 0),
    }
    per_tap: dict[str, dict[str, list[float]]] = {tap: {} for tap in TAPS}
    sides: dict[str, int] = {}
    for seed in vgg_seeds:
        vgg = VGG16Features(TAPS, weights=weights, seed=seed)
        with torch.no_grad():
            fa_all = vgg(a)
            feats_all = {k: vgg(v) for k, v in cands.items()}
        for i, tap in enumerate(TAPS):
            fa = [fa_all[i]]
            side = sides[tap] = fa[0].shape[-1]
            cfg_loss = loss_config(cfg, side, a.shape[-1])
            crit = SpatialCorrelativeLoss((fa[0].shape[1],), cfg_loss)
            losses = {k: per_image_loss(crit, fa, [v[i]]) for k, v in feats_all.items()}
            true = losses["true"]
            stats = {
                **{f"loss_{k}": float(v.mean()) for k, v in losses.items()},
                "oracle_over_true": float(losses["oracle"].mean() / true.mean()),
                "shift4_over_true": float(losses["shift4"].mean() / true.mean()),
                "p_true_lt_shift2": float((true < losses["shift2"]).float().mean()),
                "p_true_lt_shift4": float((true < losses["shift4"]).float().mean()),
                "p_true_lt_other": float((true < losses["other"]).float().mean()),
            }
            for k, v in stats.items():
                per_tap[tap].setdefault(k, []).append(v)
    rows = []
    for tap in TAPS:
        row: dict[str, Any] = {"task": data.task, "tap": tap, "side": sides[tap]}
        for k, v in per_tap[tap].items():
            row[k] = statistics.fmean(v)
            row[f"{k}_se"] = statistics.stdev(v) / len(v) ** 0.5 if len(v) > 1 else None
        rows.append(row)
    return rows


def spread(data: B.TaskData, n: int, weights: str | None, seed: int) -> list[dict[str, Any]]:
    """Measurement 3: feature magnitude and the spread of tanh's argument, per tap."""
    x = torch.cat([data.test_a[: n // 2], data.test_b[: n // 2]])
    vgg = VGG16Features(TAPS, weights=weights, seed=seed)
    with torch.no_grad():
        feats = vgg(x)
    rows = []
    for tap, f in zip(TAPS, feats):
        unit = normalize_features(f, "tanh").flatten(2)
        arg = torch.bmm(unit.transpose(1, 2), unit) / 10.0
        sim = torch.tanh(arg)
        rows.append(
            {
                "tap": tap,
                "mean_abs_feature": float(f.abs().mean()),
                "arg_std": float(arg.std()),
                "arg_p99": float(
                    arg.abs().flatten()[:: max(1, arg.numel() // 2_000_000)].quantile(0.99)
                ),
                "share_abs_tanh_gt_0.5": float((sim.abs() > 0.5).float().mean()),
                "share_abs_tanh_gt_0.9": float((sim.abs() > 0.9).float().mean()),
                "tanh_linearity": float((sim / arg.where(arg.abs() > 1e-12, 1e-12)).mean()),
            }
        )
    return rows


def gradient_norms(cfg: TrainConfig, ckpt: Path, a: Tensor, b: Tensor) -> dict[str, float]:
    """The losses and output gradients of one checkpoint on a fixed batch of test inputs."""
    nets = get_method(cfg.method).build(cfg)
    state = load_checkpoint(ckpt)
    nets.G.load_state_dict(state["nets"]["G"])
    nets.D.load_state_dict(state["nets"]["D"])
    nets.G.eval()
    with torch.no_grad():
        fake = nets.G(a)
        feats_a = nets.vgg(a)
        true = float(nets.crit.structure_loss(feats_a, nets.vgg(b), generator=_gen()))
    fake = fake.detach().requires_grad_(True)
    loss_gan = generator_loss(nets.D(fake), cfg.optim.gan_mode)
    loss_struct = nets.crit.structure_loss(feats_a, nets.vgg(fake), generator=_gen())
    (g_gan,) = torch.autograd.grad(loss_gan, fake)
    (g_struct,) = torch.autograd.grad(cfg.structure.weight * loss_struct, fake)
    return {
        "step": int(state["step"]),
        "loss_struct_translation": float(loss_struct),
        "loss_struct_true_target": true,
        "loss_gan": float(loss_gan),
        "grad_gan": float(g_gan.norm()),
        "grad_struct_weighted": float(g_struct.norm()),
        "ratio_struct_over_gan": float(g_struct.norm() / g_gan.norm().clamp_min(1e-12)),
    }


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def training(
    out: Path, data: B.TaskData, bench: B.BenchPreset, steps: int, seed: int
) -> list[dict[str, Any]]:
    """Measurement 4: two short FSeSim runs, measured at five checkpoints each."""
    rows = []
    base = B.run_config("fsesim", bench, data.root, seed, "cpu", "random")
    variants = {"paper taps, 2 downsamplings": list(PAPER_TAPS), "tiny preset": []}
    a, b = data.test_a[:16], data.test_b[:16]
    for name, overrides in variants.items():
        every = max(1, steps // 5)
        cfg = validate(apply_overrides(base, overrides))
        cfg = replace(cfg, steps=steps, save_every=every, keep_last=10)
        run = out / "runs" / name.replace(" ", "_").replace(",", "")
        B.train_run(cfg, run)
        for ckpt in list_checkpoints(run):
            row = gradient_norms(config_of(load_checkpoint(ckpt)), ckpt, a, b)
            rows.append({"variant": name, **row})
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    """A markdown table of the chosen keys."""
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default="layout,shapes,maps", help="synthetic bench tasks")
    p.add_argument("--size", type=int, default=64, help="image side (the quick bench's 64)")
    p.add_argument("--n", type=int, default=48, help="test images per measurement")
    p.add_argument("--vgg-seeds", default="0,1,2", help="random VGG initialisations to average")
    p.add_argument("--vgg-weights", default=None, help="a VGG16 state dict instead of random")
    p.add_argument("--train-steps", type=int, default=200, help="steps of measurement 4 (0: skip)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data")
    p.add_argument("--n-train", type=int, default=None, help="training images per domain")
    p.add_argument("--n-test", type=int, default=None, help="test scenes (>= --n)")
    p.add_argument("--out", type=Path, default=Path("runs/structure-diagnosis"), help="folder")
    args = p.parse_args()
    torch.manual_seed(0)
    start = time.perf_counter()
    bench = replace(B.BENCH_PRESETS["quick"], size=args.size)
    if args.n_train is not None:
        bench = replace(bench, n_train=args.n_train)
    if args.n_test is not None:
        bench = replace(bench, n_test=args.n_test)
    tiny = B.run_config("fsesim", bench, Path("."), 0, "cpu", "random")
    seeds = [int(s) for s in args.vgg_seeds.split(",")]
    tasks = parse_list(args.tasks, list(TASKS), ["layout"], "task")
    args.out.mkdir(parents=True, exist_ok=True)

    taps = [{"size": size, **{tap: size // STRIDE[tap] for tap in TAPS}} for size in (64, 128, 256)]
    thin = [
        {"task": t, **{tap: THIN[t] * args.size / 64 / STRIDE[tap] for tap in TAPS}}
        for t in tasks
        if t in THIN
    ]
    print("## 1. Feature-map side of each VGG16 tap\n\n" + table(taps, ["size", *TAPS]))
    print("\nThinnest structure, in map pixels:\n\n" + table(thin, ["task", *TAPS]))

    static_rows: list[dict[str, Any]] = []
    spread_rows: list[dict[str, Any]] = []
    datas = {}
    for task in tasks:
        datas[task] = B.prepare_data(args.out, task, bench, args.data_seed)
        static_rows += static(datas[task], tiny, args.n, seeds, args.vgg_weights)
    keys = ["task", "tap", "side", "loss_true", "oracle_over_true", "shift4_over_true"]
    keys += ["p_true_lt_shift2", "p_true_lt_shift4", "p_true_lt_other"]
    print(f"\n## 2. Structure loss of known outputs (VGG seeds {args.vgg_seeds})\n")
    print(table(static_rows, keys))

    spread_rows = spread(datas[tasks[0]], args.n, args.vgg_weights, seeds[0])
    print(f"\n## 3. Similarity spread ({tasks[0]}, VGG seed {seeds[0]})\n")
    print(table(spread_rows, list(spread_rows[0])))

    train_rows: list[dict[str, Any]] = []
    if args.train_steps > 0 and "layout" in datas:
        train_rows = training(args.out, datas["layout"], bench, args.train_steps, args.data_seed)
        print("\n## 4. Along training (layout, 16 test inputs)\n")
        print(table(train_rows, list(train_rows[0])))

    doc = {
        "benchmark": "structure_diagnosis",
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "vgg_weights": args.vgg_weights or "random",
        "vgg_seeds": seeds,
        "size": args.size,
        "taps": taps,
        "thin": thin,
        "static": static_rows,
        "spread": spread_rows,
        "training": train_rows,
        "seconds": round(time.perf_counter() - start, 1),
    }
    (args.out / "diagnosis.json").write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
