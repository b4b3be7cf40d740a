"""Does bf16 training reach the quality of fp32? The quick synthetic benchmark at both precisions.

Runs ``sesim bench quality`` once per precision and seed (same data, judges, networks and
steps; only the training precision differs; the judges and the scoring stay fp32), then prints
the scores side by side, the paired differences and, with several seeds, the seed-to-seed spread
of each precision to judge them against. Prints a markdown table and, last, one JSON document;
writes both into ``--out`` too.

    python benchmarks/precision_quality.py                       # quick preset, seed 0
    python benchmarks/precision_quality.py --methods fsesim,lsesim --seeds 0,1,2

Each precision and seed has its own results folder (``OUT/<precision>-seed<k>/``); finished
runs there are reused, so the command can be run again after an interruption or with more
seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sesim.bench import BENCH_PRESETS, BenchArgs, resolve_bench_args, run_benchmark
from sesim.errors import UserError

# Scores compared, their labels and whether higher is better.
METRICS: dict[str, tuple[str, bool]] = {
    "miou": ("mIoU", True),
    "pixel_acc": ("pixel acc", True),
    "fid": ("FID", False),
    "kid": ("KID", False),
    "target_rate": ("target rate", True),
}


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--precisions", default="fp32,bf16", help="comma-separated, fp32 first")
    p.add_argument("--seeds", default="0", help="comma-separated seeds of data, runs and judges")
    p.add_argument("--preset", choices=tuple(BENCH_PRESETS), default="quick", help="bench scale")
    p.add_argument("--methods", help="comma-separated bench rows (default: the preset's)")
    p.add_argument("--tasks", help="comma-separated tasks (default: the preset's)")
    p.add_argument("--out", type=Path, default=Path("runs/precision-quality"), help="folder")
    p.add_argument("--steps", type=int, help="override the training steps")
    p.add_argument("--size", type=int, help="override the image size")
    p.add_argument("--n-train", type=int, help="override training images per domain")
    p.add_argument("--n-test", type=int, help="override test scenes")
    p.add_argument("--aux-steps", type=int, help="override the judges' steps")
    p.add_argument("--device", help="cpu, cuda or auto (default: the preset's)")
    p.add_argument("--jobs", type=int, help="runs trained at once (default: the preset's)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def bench_args(ns: argparse.Namespace, precision: str, seed: int) -> BenchArgs:
    """The ``sesim bench quality`` settings of one precision and seed."""
    return resolve_bench_args(
        ns.preset,
        methods=ns.methods,
        tasks=ns.tasks,
        out=ns.out / f"{precision}-seed{seed}",
        steps=ns.steps,
        size=ns.size,
        n_train=ns.n_train,
        n_test=ns.n_test,
        aux_steps=ns.aux_steps,
        device=ns.device,
        jobs=ns.jobs,
        seeds=[seed],
        data_seed=seed,
        precision=precision,
        quiet=ns.quiet,
    )


def finished(args: BenchArgs) -> dict[str, Any] | None:
    """The folder's ``results.json`` if it already scores every requested row with these settings.

    Reading it instead of calling the benchmark keeps a folder's wider table (say, every method
    at seed 0) when a later call asks for fewer methods.
    """
    path = args.out / "results.json"
    if not path.is_file():
        return None
    results: dict[str, Any] = json.loads(path.read_text())
    same = (
        results.get("preset") == json.loads(json.dumps(asdict(args.bench)))  # tuples as lists
        and results.get("precision", "fp32") == args.precision
        and results.get("seeds") == args.seeds
        and results.get("data_seed") == args.data_seed
    )
    if not same:
        return None
    for task in args.tasks:
        rows = {r["method"] for r in results.get("tasks", {}).get(task, {}).get("rows", [])}
        if not set(args.methods) <= rows:
            return None
    return results


def collect(ns: argparse.Namespace) -> tuple[dict[str, dict[int, dict[str, Any]]], BenchArgs]:
    """Run (or read) every precision and seed; returns ``results[precision][seed]``."""
    precisions, seeds = _csv(ns.precisions), [int(s) for s in _csv(ns.seeds)]
    bad = [p for p in precisions if p not in ("fp32", "bf16", "fp16")]
    if bad or len(precisions) < 2:
        raise UserError(f"--precisions needs two or more of fp32, bf16, fp16, got {ns.precisions}")
    out: dict[str, dict[int, dict[str, Any]]] = {}
    last: BenchArgs | None = None
    for seed in seeds:
        for precision in precisions:
            args = last = bench_args(ns, precision, seed)
            got = finished(args)
            if got is None:
                print(f"== {precision}, seed {seed}: {args.out}", file=sys.stderr, flush=True)
                got = run_benchmark(args)
            out.setdefault(precision, {})[seed] = got
    assert last is not None
    return out, last


def _row(results: dict[str, Any], task: str, method: str) -> dict[str, Any]:
    for r in results["tasks"][task]["rows"]:
        if r["method"] == method:
            return dict(r)
    raise KeyError(method)


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def compare(
    results: dict[str, dict[int, dict[str, Any]]], methods: list[str], tasks: list[str]
) -> dict[str, Any]:
    """Scores per precision (mean and spread over seeds), paired differences and a summary.

    Returns:
        ``{"rows": [...], "summary": {...}}``: one row per task and method with, per metric,
        ``{precision: {"mean", "std", "values"}}`` and ``diff`` (each other precision minus
        the first, paired by seed); the summary holds, per metric and precision, the mean
        paired difference over every task, method and seed, its standard error, the mean
        absolute difference and the first precision's mean seed-to-seed spread.
    """
    precisions = list(results)
    base = precisions[0]
    seeds = sorted(results[base])
    rows: list[dict[str, Any]] = []
    diffs: dict[str, dict[str, list[float]]] = {m: {p: [] for p in precisions[1:]} for m in METRICS}
    spreads: dict[str, list[float]] = {m: [] for m in METRICS}
    for task in tasks:
        for method in methods:
            row: dict[str, Any] = {"task": task, "method": method}
            for metric in METRICS:
                cell: dict[str, Any] = {}
                for p in precisions:
                    values = [float(_row(results[p][s], task, method)[metric]) for s in seeds]
                    mean, std = _mean_std(values)
                    cell[p] = {"mean": mean, "std": std, "values": values}
                cell["diff"] = {}
                for p in precisions[1:]:
                    d = [a - b for a, b in zip(cell[p]["values"], cell[base]["values"])]
                    cell["diff"][p] = statistics.fmean(d)
                    diffs[metric][p] += d
                if cell[base]["std"] is not None:
                    spreads[metric].append(cell[base]["std"])
                row[metric] = cell
            rows.append(row)
    summary: dict[str, Any] = {}
    for metric, by_p in diffs.items():
        summary[metric] = {}
        for p, d in by_p.items():
            mean, std = _mean_std(d)
            summary[metric][p] = {
                "mean_diff": mean,
                "stderr": None if std is None else std / math.sqrt(len(d)),
                "mean_abs_diff": statistics.fmean(abs(x) for x in d),
                "n": len(d),
            }
        summary[metric]["seed_spread"] = (
            statistics.fmean(spreads[metric]) if spreads[metric] else None
        )
    return {"precisions": precisions, "seeds": seeds, "rows": rows, "summary": summary}


def _fmt(cell: dict[str, Any], metric: str) -> str:
    digits = 4 if metric == "kid" else 2 if metric == "fid" else 3
    text = f"{cell['mean']:.{digits}f}"
    return text + (f" ± {cell['std']:.{digits}f}" if cell["std"] is not None else "")


def markdown(comparison: dict[str, Any], args: BenchArgs) -> str:
    """The comparison as markdown: settings, one table per task, the summary."""
    precisions, seeds = comparison["precisions"], comparison["seeds"]
    b = args.bench
    shown = ("miou", "pixel_acc", "fid", "target_rate")
    lines = [
        "# Training precision and quality",
        "",
        f"`sesim bench quality --preset {b.name}` at {', '.join(precisions)}: {b.size} px, "
        f"{b.steps} steps of batch {b.batch}, seeds {', '.join(map(str, seeds))} (mean ± "
        "seed-to-seed std where there are several). Judges and scoring in fp32.",
    ]
    for task in dict.fromkeys(r["task"] for r in comparison["rows"]):
        header = ["method"] + [f"{METRICS[m][0]} {p}" for m in shown for p in precisions]
        lines += ["", f"## {task}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---|" * len(header))
        for r in comparison["rows"]:
            if r["task"] == task:
                cells = [_fmt(r[m][p], m) for m in shown for p in precisions]
                lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Summary",
        "",
        f"Paired differences ({', '.join(precisions[1:])} minus {precisions[0]}, same task, "
        "method and seed), averaged over every cell; the seed spread is the mean seed-to-seed "
        f"std of {precisions[0]} (n/a with one seed).",
        "",
        "| metric | better | precision | mean diff | std error | mean abs diff | seed spread |",
        "|---|---|---|---|---|---|---|",
    ]
    for metric, (label, higher) in METRICS.items():
        s = comparison["summary"][metric]
        spread = "n/a" if s["seed_spread"] is None else f"{s['seed_spread']:.4f}"
        for p in precisions[1:]:
            d = s[p]
            err = "n/a" if d["stderr"] is None else f"{d['stderr']:.4f}"
            lines.append(
                f"| {label} | {'higher' if higher else 'lower'} | {p} | {d['mean_diff']:+.4f} "
                f"| {err} | {d['mean_abs_diff']:.4f} | {spread} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    try:
        results, args = collect(ns)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    comparison = compare(results, args.methods, args.tasks)
    text = markdown(comparison, args)
    doc = {"bench": asdict(args.bench), **comparison}
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "comparison.md").write_text(text)
    (ns.out / "comparison.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(text)
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
