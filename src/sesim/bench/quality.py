"""``sesim bench quality``: translation methods compared on synthetic tasks with ground truth.

The paper's claim is that spatially-correlative losses keep the scene structure across a large
appearance gap better than cycle-consistency or PatchNCE. On the synthetic tasks of
:mod:`sesim.data.synthetic` the true structure of every test input is known, so the claim can be
measured directly, in minutes on a CPU (``--preset quick``) or at full scale on a GPU
(``--preset full``).

For every task and method the benchmark trains one run and scores the translations of the
paired test inputs ``testA``:

- **Structure** (higher is better): a :class:`~sesim.metrics.SmallSegmenter` is trained once per
  task on the *real* target-domain training images (``trainB`` and ``labels/trainB``). It labels
  each translation, and its map is compared with the true label map of the *input*
  (``labels/testA``): pixel accuracy and mean IoU. Its own scores on the real target test
  images (``testB``, same scenes) are the yardstick: no translation can be expected to beat it.
- **Appearance**: an :class:`AppearanceNet` is trained here, once per task, on the real training
  images of both domains with two heads: which domain an image comes from (A or B), and how
  much of the image each label class covers (a soft-label cross-entropy against the label
  map's class histogram, which makes the features describe how each class *looks* in each
  domain instead of one A-vs-B direction). The per-channel mean and standard deviation of its
  last three blocks (texture statistics, ``20 * width`` numbers) are the feature space of FID
  and KID (lower is better): unlike the pooled last block alone, they respond to blur, noise
  and colour shifts of otherwise target-like images. FID and KID are computed
  against a held-out set of real target images (``reference``: other scenes, rendered with a
  seed derived from ``--seed``). The **target rate** is the share of translations that its
  domain head calls "target" (higher is better).
- **Cost**: the median training step time and, on CUDA, the training peak memory
  (``train_summary.json`` of the run).

Four reference rows frame the numbers: ``input A`` scores the untranslated inputs (what doing
nothing gets); ``real B`` the true target renderings of the same scenes (the best that can be
reached; its FID against the reference set is the noise floor of the set size); ``oracle`` the
inputs recoloured from their true labels, each class in its mean target colour (the layout kept
exactly, no texture); and ``colour transfer`` each input histogram-matched channel by channel to
the target domain's training images (no labels, no training: the bar a learned translation
should clear on tasks where a global colour mapping already recolours most classes).

Every method gets the same generator, discriminator, data, step budget, batch and learning rate:
the run starts from the method's preset (``tiny-*`` where there is one, else the paper preset,
e.g. the Table 3 rows) and the benchmark overrides those settings identically for all. The local
window of the structure loss keeps its size relative to the image: the preset's window is scaled
by ``size / preset crop size`` (the ``tiny`` presets are at 64 px, the paper presets at 256 px).

Presets: ``quick`` (CPU, 64 px, ngf 16 with 3 residual blocks, ndf 16, 240 steps of batch 4
per run, 256 queries, 300 training images per domain, 100 test scenes, a three-level segmenter
trained for 2,000 steps and an appearance network for 1,000; 15 to 30 minutes per seed for the
eight methods on the three tasks on 2 cores, as measured on two VMs) and ``full`` (GPU, 128 px,
ngf 64 with 6 blocks, ndf 64, 10,000 steps of batch 4, 1,000 / 500 images, a four-level
segmenter trained for 3,000 steps). ``--steps``, ``--size``, ``--n-train``, ``--n-test`` and
``--aux-steps`` override them for smoke runs. On a CPU the judges and runs are trained in
``--jobs`` worker processes (default: one per core) of ``cores / jobs`` threads each.

Outputs, in ``--out`` (default ``runs/bench-quality``):

- ``results.md`` (a table per task) and ``results.json`` (everything, with the settings);
- ``samples/<task>_<method>.png``: inputs, translations and true targets;
- ``structure_vs_appearance.png``: mIoU against FID, one point per method, one panel per task;
- ``data/``: the datasets, cached per (task, size, images, seed), and the two trained judges;
- ``runs/<task>/<method>/``: the training runs. A finished run with the same config is reused
  and an unfinished one continued, so an interrupted benchmark picks up where it stopped.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from sesim.bench.jobs import check_run_dir, cpu_cores, executor, judges_job, run_folder, train_job
from sesim.bench.judges import Judges, prepare_judges, score_translations
from sesim.bench.presets import (
    BENCH_PRESETS,
    BenchPreset,
    available_methods,
    parse_list,
    run_config,
)
from sesim.bench.report import format_markdown_table, write_results
from sesim.bench.tasks import TaskData, colour_transfer, prepare_data, structure_oracle
from sesim.config import Precision, TrainConfig
from sesim.data.synthetic import TASKS
from sesim.devices import resolve_device
from sesim.errors import UserError
from sesim.features.vgg import imagenet_weights_available
from sesim.report import write_sample_grid
from sesim.runs import load_generator
from sesim.translate import translate_batch

# ---------------------------------------------------------------------------------------------
# Settings.


@dataclass(frozen=True)
class BenchArgs:
    """The resolved command line of ``sesim bench quality``.

    Attributes:
        bench: the preset with ``--steps``/``--size``/``--n-train``/``--n-test``/``--aux-steps``
            applied.
        methods: bench rows to train.
        tasks: synthetic tasks.
        out: the results folder.
        device: device of the runs and the judges.
        seeds: training seeds; every method is trained once per seed.
        data_seed: seed of the datasets and the judges (shared by every run).
        precision: training precision of every run (the judges and scoring stay fp32).
        jobs: runs trained at once, each in its own process (1: one after the other, here).
        quiet: no progress bar.
        command: the command line, for the report.
    """

    bench: BenchPreset
    methods: list[str]
    tasks: list[str]
    out: Path
    device: str
    seeds: list[int]
    data_seed: int = 0
    precision: Precision = "fp32"
    jobs: int = 1
    quiet: bool = False
    command: str = ""


#: The default results folder of ``sesim bench quality``.
DEFAULT_OUT = Path("runs/bench-quality")


def resolve_bench_args(
    preset: str = "quick",
    *,
    methods: str | None = None,
    tasks: str | None = None,
    out: Path = DEFAULT_OUT,
    steps: int | None = None,
    size: int | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    aux_steps: int | None = None,
    device: str | None = None,
    jobs: int | None = None,
    seeds: list[int] | None = None,
    seed: int | None = None,
    data_seed: int = 0,
    precision: Precision = "fp32",
    quiet: bool = False,
) -> BenchArgs:
    """The settings of ``sesim bench quality``: a preset with overrides, names checked.

    Args:
        preset: a key of :data:`BENCH_PRESETS`.
        methods: comma-separated bench rows; None takes the preset's.
        tasks: comma-separated synthetic tasks; None takes the preset's.
        out: the results folder.
        steps: overrides the preset's training steps.
        size: overrides the image side (a multiple of 4, >= 16).
        n_train: overrides the training images per domain.
        n_test: overrides the test scenes (>= 2).
        aux_steps: overrides the judges' training steps.
        device: the device of runs and judges; None takes the preset's.
        jobs: runs trained at once; None: the preset's, else one per CPU core (1 on CUDA).
        seeds: training seeds (each method is trained once per seed).
        seed: a single training seed (the same as ``seeds=[seed]``).
        data_seed: seed of the datasets and the judges.
        precision: training precision of every run.
        quiet: no progress bar.
    Returns:
        The resolved settings; ``command`` is the equivalent command line.
    Raises:
        UserError: an unknown name, a bad size or count, or both ``seeds`` and ``seed``.
    """
    if preset not in BENCH_PRESETS:
        raise UserError(f"unknown bench preset {preset!r}; choose from: {', '.join(BENCH_PRESETS)}")
    flags: dict[str, Any] = {
        "methods": methods,
        "tasks": tasks,
        "out": out,
        "steps": steps,
        "size": size,
        "n_train": n_train,
        "n_test": n_test,
        "aux_steps": aux_steps,
    }
    bench = BENCH_PRESETS[preset]
    overrides = {
        k: flags[k]
        for k in ("steps", "size", "n_train", "n_test", "aux_steps")
        if flags[k] is not None
    }
    if aux_steps is not None:  # the flag sets both judges' steps
        overrides["seg_steps"] = aux_steps
    bench = replace(bench, **overrides)
    if bench.size < 16 or bench.size % 4:
        raise UserError(f"--size must be a multiple of 4 and >= 16, got {bench.size}")
    if bench.n_test < 2:
        raise UserError(f"--n-test must be >= 2 (FID and KID need two images), got {bench.n_test}")
    valid = available_methods()
    chosen_methods = parse_list(methods, list(valid), bench.methods, "method")
    chosen_tasks = parse_list(tasks, list(TASKS), bench.tasks, "task")
    command = ["sesim bench quality", f"--preset {preset}"]
    for flag, value in flags.items():
        if value is not None and not (flag == "out" and value == DEFAULT_OUT):
            command.append(f"--{flag.replace('_', '-')} {value}")
    for flag, value in (("device", device), ("jobs", jobs)):
        if value is not None:
            command.append(f"--{flag} {value}")
    if seeds is not None and seed is not None:
        raise UserError("give either --seeds or --seed, not both")
    chosen_seeds = seeds if seeds is not None else [seed or 0]
    data_seed = data_seed or 0
    if chosen_seeds != [0]:
        command.append(f"--seeds {','.join(map(str, chosen_seeds))}")
    if data_seed:
        command.append(f"--data-seed {data_seed}")
    device = device or bench.device
    runs = len(chosen_methods) * len(chosen_tasks) * len(chosen_seeds)
    jobs = jobs or bench.jobs or (1 if device.startswith("cuda") else cpu_cores())
    if precision != "fp32":
        command.append(f"--precision {precision}")
    return BenchArgs(
        bench=bench,
        methods=chosen_methods,
        tasks=chosen_tasks,
        out=out,
        device=device,
        seeds=chosen_seeds,
        data_seed=data_seed,
        precision=precision,
        jobs=min(jobs, runs),
        quiet=quiet,
        command=" ".join(command),
    )


# ---------------------------------------------------------------------------------------------
# The benchmark.


def run_benchmark(args: BenchArgs) -> dict[str, Any]:
    """Run the benchmark and write its outputs into ``args.out``.

    Judges and runs are submitted as jobs (see ``args.jobs``); their results are read, scored
    and written in the order of the tasks, methods and seeds, so ``results.md`` grows one row at
    a time and an interrupted benchmark keeps every row finished so far.

    Returns:
        The ``results.json`` dict.
    """
    start = time.perf_counter()
    bench, out = args.bench, args.out
    device = resolve_device(args.device)
    vgg_weights = "imagenet" if imagenet_weights_available() else "random"
    if vgg_weights == "random":
        print(
            "notice: ImageNet VGG16 weights are not in the torch hub cache; every method that "
            "uses VGG features (F/LSeSim, perceptual) runs with random VGG weights",
            file=sys.stderr,
        )
    threads = max(1, cpu_cores() // args.jobs)
    results: dict[str, Any] = {
        "command": args.command,
        "preset": asdict(bench),
        "methods": args.methods,
        "device": str(device),
        "jobs": args.jobs,
        "threads": threads if args.jobs > 1 else torch.get_num_threads(),
        "vgg_weights": vgg_weights,
        "seeds": args.seeds,
        "data_seed": args.data_seed,
        "precision": args.precision,
        "elapsed_s": 0.0,
        "tasks": {},
    }
    notices: set[str] = set()
    bar = tqdm(
        total=bench.steps * len(args.methods) * len(args.tasks) * len(args.seeds),
        unit="step",
        desc="bench",
        disable=args.quiet,
        dynamic_ncols=True,
    )
    previous_threads = torch.get_num_threads()
    try:
        # Every config first: a bad name or value fails before any work.
        data = {task: prepare_data(out, task, bench, args.data_seed) for task in args.tasks}
        configs = {
            (task, m, seed): run_config(
                m, bench, data[task].root, seed, str(device), vgg_weights, args.precision
            )
            for task in args.tasks
            for m in args.methods
            for seed in args.seeds
        }
        for key, cfg in configs.items():
            check_run_dir(cfg, run_folder(out, *key))
        if args.jobs > 1:
            torch.set_num_threads(threads)  # scoring here beside the workers
        with bar, executor(args.jobs, threads) as pool:
            judged = {
                task: pool.submit(judges_job, out, task, bench, args.data_seed, str(device))
                for task in args.tasks
            }
            trained = {
                key: pool.submit(train_job, cfg, run_folder(out, *key))
                for key, cfg in configs.items()
            }
            for task in args.tasks:
                # The judges (trained by a job, loaded here from their cache) and the reference rows.
                bar.set_description(f"{task}: judges")
                judged[task].result()
                judges = prepare_judges(data[task], bench, args.data_seed, device)
                rows: list[dict[str, Any]] = []
                references = (
                    data[task].test_a,
                    data[task].test_b,
                    structure_oracle(data[task]),
                    colour_transfer(data[task]),
                )
                for name, images in zip(REFERENCE_ROWS, references):
                    scores = score_translations(images, data[task], judges, args.data_seed, device)
                    rows.append({"method": name, "kind": "reference", **scores})
                runs: list[dict[str, Any]] = []
                results["tasks"][task] = {
                    "classes": list(data[task].class_names),
                    "yardstick": judges.yardstick,
                    "classifier_accuracy": judges.classifier_accuracy,
                    "rows": rows,
                    "runs": runs,
                }

                for method in args.methods:
                    per_seed = []
                    for seed in args.seeds:
                        # Wait for the run, then score it.
                        bar.set_description(f"{task}: {method} seed {seed}")
                        final, reused, train_s, printed = trained[(task, method, seed)].result()
                        for line in printed.splitlines():
                            if line.strip() and line not in notices:
                                notices.add(line)
                                bar.write(line, file=sys.stderr)
                        cfg = configs[(task, method, seed)]
                        row = score_run(final, cfg, method, data[task], judges, args)
                        row = {**row, "seed": seed, "train_s": None if reused else train_s}
                        per_seed.append(row)
                        runs.append(row)
                        bar.update(bench.steps)
                        how = "reused" if reused else f"trained in {train_s:.0f} s"
                        bar.write(
                            f"{task}/{method}/seed {seed}: {how}; pixel acc "
                            f"{row['pixel_acc']:.3f}, mIoU {row['miou']:.3f}, FID "
                            f"{row['fid']:.2f}, target rate {row['target_rate']:.2f}"
                        )
                    rows.append(aggregate_seeds(per_seed))
                    results["elapsed_s"] = time.perf_counter() - start
                    _write_outputs(results, out)
    except KeyboardInterrupt:
        print(
            "run the same command again to continue: finished runs are reused and an "
            "interrupted one continues from its checkpoint",
            file=sys.stderr,
        )
        raise
    finally:
        torch.set_num_threads(previous_threads)
    results["elapsed_s"] = time.perf_counter() - start
    _write_outputs(results, out)
    plot_structure_vs_appearance(results, out / "structure_vs_appearance.png")
    return results


@torch.no_grad()
def translate_all(
    G: nn.Module, images: Tensor, device: torch.device, batch_size: int = 32
) -> Tensor:
    """Translate (N, 3, H, W) images in batches; returns (N, 3, H, W) on the CPU, in [-1, 1]."""
    outs = [translate_batch(G, x.to(device)).clamp(-1, 1).cpu() for x in images.split(batch_size)]
    return torch.cat(outs)


def score_run(
    final: Path, cfg: TrainConfig, method: str, data: TaskData, judges: Judges, args: BenchArgs
) -> dict[str, Any]:
    """Score a trained run on its task and write its sample grid.

    Args:
        final: the run's final checkpoint.
        cfg: its config.
        method: its bench row.
        data: the task's data.
        judges: the task's scorers.
        args: the benchmark settings (data seed, out).
    Returns:
        The run's row of ``results.json`` (without ``seed`` and ``train_s``).
    """
    device = resolve_device(cfg.device)
    run_dir = final.parents[1]
    G, _, step = load_generator(None, final, device)
    fakes = translate_all(G, data.test_a, device)
    scores = score_translations(fakes, data, judges, args.data_seed, device)
    summary = json.loads((run_dir / "train_summary.json").read_text())
    n = min(8, len(data.test_a))
    write_sample_grid(
        data.test_a[:n],
        [fakes[:n], data.test_b[:n]],
        args.out / "samples" / f"{data.task}_{method}_seed{cfg.seed}.png",
        labels=["input", method[:10], "true B"],
    )
    return {
        "method": method,
        "kind": "method",
        "preset": cfg.preset,
        "recipe": cfg.method,
        **scores,
        "median_step_ms": summary.get("median_step_ms"),
        "peak_memory_bytes": summary.get("peak_memory_bytes") if device.type == "cuda" else None,
        "steps": step,
        "run": str(run_dir),
    }


#: Scores averaged over seeds (mean and standard error) in the aggregated rows.
SCORE_KEYS: tuple[str, ...] = (
    "pixel_acc",
    "mean_class_acc",
    "miou",
    "fid",
    "kid",
    "target_rate",
    "median_step_ms",
    "peak_memory_bytes",
)


def mean_and_se(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (sample std / sqrt(n); None for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def aggregate_seeds(per_seed: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One table row from the rows of the same method's runs (one per seed).

    Args:
        per_seed: rows of :func:`score_run` (with ``seed``), same method.
    Returns:
        The first row's identity (``method``, ``kind``, ``preset``, ``recipe``) with, for each
        score of ``SCORE_KEYS``, its mean over seeds under the score's key, the standard error
        under ``<key>_se`` (None for one seed) and the values under ``<key>_runs``; plus
        ``seeds``, ``min_target_rate`` and ``runs`` (the run folders); and, when the runs
        have ``class_iou``, the mean IoU of each class under ``class_iou`` and its standard
        error under ``class_iou_se``.
    """
    first = per_seed[0]
    row: dict[str, Any] = {
        k: first[k] for k in ("method", "kind", "preset", "recipe", "steps") if k in first
    }
    row["seeds"] = [r["seed"] for r in per_seed]
    for key in SCORE_KEYS:
        values = [float(r[key]) for r in per_seed if r.get(key) is not None]
        values = [v for v in values if math.isfinite(v)]
        if not values:
            row[key], row[f"{key}_se"], row[f"{key}_runs"] = None, None, []
            continue
        row[key], row[f"{key}_se"] = mean_and_se(values)
        row[f"{key}_runs"] = values
    per_class = [r["class_iou"] for r in per_seed if r.get("class_iou") is not None]
    if per_class:
        stats = [
            mean_and_se(values) if values else (None, None)
            for values in ([v for v in column if v is not None] for column in zip(*per_class))
        ]
        row["class_iou"] = [m for m, _ in stats]
        row["class_iou_se"] = [se for _, se in stats]
    rates = row.get("target_rate_runs") or []
    row["min_target_rate"] = min(rates) if rates else None
    row["runs"] = [r["run"] for r in per_seed]
    return row


# ---------------------------------------------------------------------------------------------
# Reports.

REFERENCE_ROWS: tuple[str, ...] = ("input A", "real B", "oracle", "colour transfer")

#: (key, header, format, higher is better)
COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    ("pixel_acc", "pixel acc", "{:.3f}", True),
    ("miou", "mIoU", "{:.3f}", True),
    ("fid", "FID", "{:.2f}", False),
    ("kid", "KID", "{:.4f}", False),
    ("target_rate", "target rate", "{:.2f}", True),
    ("median_step_ms", "ms/step", "{:.0f}", False),
    ("peak_memory_bytes", "peak mem", "{:.0f} MiB", False),
)


def _mean_text(value: float | None, se: float | None, fmt: str) -> str:
    """``value`` formatted by ``fmt``, then `` ± se`` (the number part of ``fmt``) when ``se``
    is given and finite; ``n/a`` for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return "n/a"
    text = fmt.format(value)
    if se is not None and math.isfinite(se):
        text += " ± " + (fmt.split("}")[0] + "}").format(se)
    return text


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value, se = row.get(key), row.get(f"{key}_se")
    scale = 2**-20 if key == "peak_memory_bytes" else 1.0
    if key in ("median_step_ms", "peak_memory_bytes"):
        se = None  # timings and memory: the mean alone
    return _mean_text(
        None if value is None else value * scale, None if se is None else se * scale, fmt
    )


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of score rows; the best method value of each score is in bold.

    Args:
        rows: dicts with ``method``, ``kind`` (``method`` or ``reference``) and the keys of
            ``COLUMNS`` (missing or None shows ``n/a``).
    """
    methods = [r for r in rows if r.get("kind") == "method"]
    best: dict[str, float] = {}
    for key, _, _, higher in COLUMNS[:5]:
        values = [
            r[key] for r in methods if isinstance(r.get(key), float) and math.isfinite(r[key])
        ]
        if len(values) > 1:
            best[key] = max(values) if higher else min(values)

    def cells(r: dict[str, Any]) -> list[str]:
        out = []
        for key, _, fmt, _ in COLUMNS:
            text = _cell(r, key, fmt)
            if r.get("kind") == "method" and key in best and r.get(key) == best[key]:
                text = f"**{text}**"
            out.append(text)
        return out

    return format_markdown_table(["method", *(c[1] for c in COLUMNS)], rows, cells)


def class_iou_table(rows: Sequence[dict[str, Any]], classes: Sequence[str]) -> str:
    """A Markdown table of each row's IoU per class (mean ± standard error over seeds).

    Args:
        rows: dicts with ``method`` and ``class_iou`` (one value or None per class), and
            ``class_iou_se`` for aggregated rows; rows without ``class_iou`` are left out.
        classes: the class names, in the order of ``class_iou``.
    """

    def cells(r: dict[str, Any]) -> list[str]:
        means = r["class_iou"]
        ses = r.get("class_iou_se") or [None] * len(means)
        return [_mean_text(m, se, "{:.3f}") for m, se in zip(means, ses)]

    kept = [r for r in rows if r.get("class_iou") is not None]
    return format_markdown_table(["method", *classes], kept, cells)


def results_markdown(results: dict[str, Any]) -> str:
    """The ``results.md`` text of the ``results.json`` dict."""
    p = results["preset"]
    parts = [
        "# sesim bench quality",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Preset `{p['name']}`: {p['size']} px, {p['steps']} steps of batch {p['batch']}, "
        f"generator ngf {p['ngf']} with {p['n_blocks']} residual blocks, discriminator ndf "
        f"{p['ndf']}, Adam {p['lr']:g}, {p['num_queries']} queries; {p['n_train']} training "
        f"images per domain, {p['n_test']} test scenes. Device {results['device']}, "
        f"{results['jobs']} run(s) at a time on {results['threads']} thread(s) each, VGG16 "
        f"weights: {results['vgg_weights']}, training seeds "
        f"{', '.join(map(str, results['seeds']))} (data and judges: seed {results['data_seed']}), "
        f"training precision {results.get('precision', 'fp32')}. Wall time "
        f"{results['elapsed_s'] / 60:.1f} min.",
        "",
        "Structure: a segmenter trained on real target images labels each translation of the "
        "test inputs; pixel accuracy and mIoU against the input's true label map (higher is "
        "better). Appearance: FID and KID in the feature space of a small network trained here "
        "to tell the domains apart and predict class coverage, against held-out real target "
        "images (lower is better), and the share of translations its domain head calls target "
        "(higher is better). ms/step: median training step; peak mem: training peak (CUDA "
        "only). Method rows: mean ± standard error over the training seeds (one run per seed). "
        "*input A*: the untranslated inputs; *real B*: the true targets (its FID is the noise "
        "floor of the set size); *oracle*: the inputs recoloured from their true labels with "
        "each class's mean target-domain colour (the layout kept exactly, no texture); *colour "
        "transfer*: each input's channels histogram-matched from domain A's training images to "
        "domain B's (no labels, no training: what a global colour mapping alone does). Best "
        "method mean in bold.",
    ]
    for task, t in results["tasks"].items():
        y, acc = t["yardstick"], t["classifier_accuracy"]
        parts += [
            "",
            f"## {task}",
            "",
            f"Segmenter on real target test images (the yardstick): pixel acc "
            f"{y['pixel_acc']:.3f}, mIoU {y['miou']:.3f}. Domain classifier accuracy on real test "
            f"images: A {acc['A']:.2f}, B {acc['B']:.2f}. {_lowest_target_rate(t)}",
            "",
            markdown_table(t["rows"]),
        ]
        if any(r.get("class_iou") is not None for r in t["rows"]):
            parts += [
                "",
                "IoU of each class (the mIoU above is their mean): which parts of the layout "
                "a translation keeps.",
                "",
                class_iou_table(t["rows"], t["classes"]),
            ]
    return "\n".join(parts) + "\n"


def _lowest_target_rate(task: dict[str, Any]) -> str:
    """A sentence naming the run that the domain head called "target" least often."""
    runs = [r for r in task.get("runs", []) if r.get("target_rate") is not None]
    if not runs:
        return ""
    low = min(runs, key=lambda r: r["target_rate"])
    stuck = sum(r["target_rate"] < 0.5 for r in runs)
    return (
        f"Lowest target rate of a run: {low['target_rate']:.2f} ({low['method']}, seed "
        f"{low['seed']}); runs left mostly in the input domain (rate < 0.5): {stuck} of "
        f"{len(runs)}."
    )


def plot_structure_vs_appearance(results: dict[str, Any], path: Path) -> Path:
    """Scatter mIoU against FID, one point per row (bars: standard errors over seeds), one panel
    per task.

    Args:
        results: the ``results.json`` dict.
        path: the PNG to write.
    """
    # matplotlib is imported when a figure is drawn: it is slow to import.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = list(results["tasks"])
    fig = Figure(figsize=(5.5 * len(tasks), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        for row in results["tasks"][task]["rows"]:
            x, y = row.get("fid"), row.get("miou")
            if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
                continue
            if row["kind"] == "reference":
                style = {"marker": "s", "color": "0.55", "label": "reference"}
            elif row.get("recipe") == "sesim":
                style = {"marker": "o", "color": "C0", "label": "F/LSeSim"}
            else:
                style = {"marker": "^", "color": "C1", "label": "baselines"}
            ax.errorbar(
                [x],
                [y],
                xerr=[row.get("fid_se") or 0.0],
                yerr=[row.get("miou_se") or 0.0],
                linestyle="none",
                markersize=6,
                capsize=2,
                **style,
            )
            ax.annotate(
                row["method"], (x, y), textcoords="offset points", xytext=(4, 3), fontsize=8
            )
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), loc="best", fontsize=8)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_title(task)
        ax.set_xlabel("appearance: FID to real target images (lower is better; log above 1)")
        ax.set_ylabel("structure: mIoU of the input's layout (higher is better)")
        ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _write_outputs(results: dict[str, Any], out: Path) -> None:
    write_results(out, results, results_markdown(results))
