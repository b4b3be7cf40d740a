"""``sesim bench``: ``quality`` (:func:`sesim.bench.run_benchmark`) and ``multimodal``
(:func:`sesim.bench.run_multimodal_bench`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sesim.bench.multimodal import run_multimodal_bench
from sesim.bench.presets import ALL_METHODS, BENCH_PRESETS, MAIN_METHODS
from sesim.bench.quality import DEFAULT_OUT, BenchArgs, resolve_bench_args, run_benchmark
from sesim.cli.common import nonneg_int, positive_int, print_help
from sesim.data.synthetic import TASKS


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``bench`` (with the sub-commands ``quality`` and ``multimodal``) to the CLI.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers``.
    Returns:
        The ``bench`` parser.
    """
    bench = subparsers.add_parser(
        "bench",
        help="benchmarks (quality: methods compared on synthetic tasks with ground truth)",
        description="Benchmarks of sesim's translation methods.",
    )
    sub = bench.add_subparsers(dest="bench_command", metavar="BENCH", parser_class=type(bench))
    presets = "; ".join(f"{p.name}: {p.description}" for p in BENCH_PRESETS.values())
    q = sub.add_parser(
        "quality",
        help="train every method on synthetic tasks and score structure and appearance",
        description="Train each method on the synthetic tasks (same networks, data and steps) "
        "and score the translations of the paired test inputs: structure (pixel accuracy and "
        "mIoU of a segmenter trained on real target images, against the input's true labels), "
        "appearance (FID/KID in the features of a network trained here on both domains, and "
        "the share called 'target' by its domain head), step time and peak memory. Writes "
        f"results.md, results.json, sample grids and a plot into --out. Presets: {presets}.",
    )
    q.add_argument(
        "--preset", choices=tuple(BENCH_PRESETS), default="quick", help="scale (default quick)"
    )
    q.add_argument(
        "--methods",
        help=f"comma-separated rows (default for quick: {','.join(MAIN_METHODS)}; the Table 3 "
        f"rows on request): {', '.join(ALL_METHODS)}",
    )
    q.add_argument(
        "--tasks",
        help=f"comma-separated tasks (default layout,shapes,maps): {', '.join(TASKS)}",
    )
    q.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    q.add_argument("--steps", type=positive_int, help="override the training steps")
    q.add_argument("--size", type=positive_int, help="override the image size (pixels)")
    q.add_argument("--n-train", type=positive_int, help="override training images per domain")
    q.add_argument("--n-test", type=positive_int, help="override test scenes (>= 2)")
    q.add_argument(
        "--aux-steps", type=positive_int, help="override the judges' (segmenter, appearance) steps"
    )
    q.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: the preset's)")
    q.add_argument(
        "--jobs",
        type=positive_int,
        help="runs trained at once, one process each with cores/jobs threads (default: one "
        "per CPU core for quick, 1 for full and on a GPU)",
    )
    q.add_argument(
        "--seeds",
        type=_seed_list,
        help="comma-separated training seeds, e.g. 0,1,2: every method is trained once per "
        "seed and the tables give mean ± standard error (default 0)",
    )
    q.add_argument("--seed", type=nonneg_int, help="a single training seed (the same as --seeds N)")
    q.add_argument(
        "--data-seed",
        type=nonneg_int,
        default=0,
        help="seed of the synthetic datasets and of the judges, shared by every run (default 0)",
    )
    q.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="training precision of every run: fp32, bf16 (autocast) or fp16 (autocast and a "
        "grad scaler); the judges and the scoring stay fp32 (default fp32)",
    )
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=run_quality)
    mm = sub.add_parser(
        "multimodal",
        help="multi-modal translation on the multistyle task: structure and diversity",
        description="Train the multi-modal rows (munit-fsesim, munit-lsesim, munit-gan with no "
        "structure loss, munit-cycle: two-sided MUNIT) on the synthetic 'multistyle' task (three appearance families) and "
        "score structure (segmentation against the true labels) and diversity (LPIPS over "
        "19 style pairs per input, appearance families per input, FID over styles), as the "
        "paper's Table 2. Writes results.md, results.json and a grid of inputs by styles.",
    )
    mm.add_argument("--out", type=Path, default=Path("runs/bench-multimodal"), help="folder")
    mm.add_argument("--steps", type=positive_int, default=1000, help="training steps per row")
    mm.add_argument("--size", type=positive_int, default=64, help="image side in pixels")
    mm.add_argument(
        "--rows",
        default="munit-fsesim,munit-gan",
        help="comma-separated rows to train: munit-fsesim, munit-lsesim, munit-gan, munit-cycle",
    )
    mm.add_argument("--device", default="cpu", help="cpu, auto, cuda or cuda:N")
    mm.add_argument("--seed", type=nonneg_int, default=0, help="seed of data, runs and styles")
    mm.set_defaults(func=run_multimodal)
    bench.set_defaults(func=lambda args: print_help(bench))
    return bench


def _seed_list(text: str) -> list[int]:
    """``0,1,2`` -> [0, 1, 2] (each >= 0, no repeats)."""
    try:
        seeds = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers such as 0,1,2, got {text!r}"
        ) from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"expected seeds >= 0 such as 0,1,2, got {text!r}")
    return list(dict.fromkeys(seeds))


def resolve_args(args: argparse.Namespace) -> BenchArgs:
    """Map the parsed flags of ``sesim bench quality`` onto a :class:`BenchArgs`."""
    return resolve_bench_args(
        args.preset,
        methods=args.methods,
        tasks=args.tasks,
        out=args.out,
        steps=args.steps,
        size=args.size,
        n_train=args.n_train,
        n_test=args.n_test,
        aux_steps=args.aux_steps,
        device=args.device,
        jobs=args.jobs,
        seeds=args.seeds,
        seed=args.seed,
        data_seed=args.data_seed,
        precision=args.precision,
        quiet=args.quiet,
    )


def run_quality(args: argparse.Namespace) -> int:
    """``sesim bench quality``: run, print the tables and where the files are."""
    resolved = resolve_args(args)
    results = run_benchmark(resolved)
    out = resolved.out
    text = (out / "results.md").read_text()
    print(text[text.index("## ") :] if "## " in text else text)
    print(
        f"done in {results['elapsed_s'] / 60:.1f} min: {out / 'results.md'}, "
        f"{out / 'results.json'}, {out / 'structure_vs_appearance.png'}, "
        f"sample grids in {out / 'samples'}/, runs in {out / 'runs'}/"
    )
    return 0


def run_multimodal(args: argparse.Namespace) -> int:
    """``sesim bench multimodal``: train the rows, score them, say where the report is."""
    rows = tuple(r.strip() for r in args.rows.split(",") if r.strip())
    run_multimodal_bench(
        args.out,
        steps=args.steps,
        size=args.size,
        device=args.device,
        seed=args.seed,
        rows=rows,
        quiet=False,
    )
    print(f"results: {args.out / 'results.md'}")
    return 0
