"""Where a translation's mIoU falls short of the structure oracle's: blur or colour.

Reads a finished ``sesim bench quality`` folder (its ``results.json``, data, judges and runs;
nothing is trained) and scores, with the bench's own segmenter, images that separate the two
ways a translation can lose the layout's classes:

- the structure oracle blurred by a Gaussian of each ``--sigmas`` (pixels): what softness
  alone costs a translation whose colours are exactly right;
- every run's translation *repainted*: each class region of each test image painted flat in
  the mean colour the translation gave it there (from the true labels). It keeps the colour
  each class was given and drops blur, texture and bleeding across region borders, so
  ``oracle - repainted`` is what the colour choices cost and ``repainted - translation`` what
  the drawing costs (negative where texture helps the segmenter);
- where each class's colour went: the mean colour a translation gives a class over all test
  scenes, as its Euclidean distance (RGB in [-1, 1]) from the input's colour for that class
  and from the oracle's. A class near the input and far from the oracle kept its input look.

Prints a table per task (mIoU, then the IoU of each class) and a JSON document (also written to
``--out``). Runs of the same method are averaged over their seeds (mean ± standard error).
Beside the JSON, one picture per task (``oracle_gap_TASK.png``): the first test inputs, the
oracle and its blurred copies, then each method's translation (its first seed) above its
repainting.

    python benchmarks/oracle_gap.py --bench runs/bench-quality [--tasks layout,maps]
        [--methods lsesim,cyclegan] [--sigmas 0.5,1,1.5] [--out runs/bench/oracle_gap.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from sesim.bench.judges import judge_paths, prepare_judges, score_translations
from sesim.bench.presets import BenchPreset, parse_list
from sesim.bench.quality import translate_all
from sesim.bench.tasks import TaskData, class_mean_colours, prepare_data, structure_oracle
from sesim.errors import UserError
from sesim.report import write_sample_grid
from sesim.runs import load_generator, newest_readable_checkpoint


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with replicated borders.

    Args:
        images: (N, C, H, W) images.
        sigma: standard deviation in pixels (> 0); the kernel spans 3 sigma each side.
    Returns:
        (N, C, H, W) blurred images.
    """
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype)
    k = torch.exp(-(t**2) / (2 * sigma * sigma))
    k = k / k.sum()
    c = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def repaint(images: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Paint each class region of each image flat in that region's mean colour.

    Args:
        images: (N, C, H, W) images.
        labels: (N, H, W) class indices.
        num_classes: number of classes.
    Returns:
        (N, C, H, W) images, constant on every (image, class) region.
    """
    n, c = images.shape[:2]
    onehot = F.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).to(images.dtype)
    area = onehot.sum((2, 3)).clamp(min=1)  # (N, K)
    means = torch.einsum("nchw,nkhw->nkc", images, onehot) / area[..., None]
    return torch.einsum("nkc,nkhw->nchw", means, onehot).reshape(n, c, *images.shape[2:])


def _distances(colours: Tensor, reference: Tensor) -> list[float | None]:
    d = (colours - reference).norm(dim=1)
    return [None if math.isnan(v) else v for v in d.tolist()]


def _bench_preset(results: dict[str, Any]) -> BenchPreset:
    stored = results.get("preset") or {}
    missing = [f.name for f in fields(BenchPreset) if f.name not in stored]
    if missing or "data_seed" not in results:
        raise UserError(
            f"results.json lacks the bench settings {', '.join(missing or ['data_seed'])} "
            "(written by another version of sesim?); rerun `sesim bench quality` into that folder"
        )
    values: dict[str, Any] = {
        f.name: tuple(stored[f.name]) if isinstance(stored[f.name], list) else stored[f.name]
        for f in fields(BenchPreset)
    }
    return BenchPreset(**values)


def _summary(values: list[float]) -> tuple[float, float | None]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
    return mean, se


def _mean_per_class(rows: list[list[float | None]], k: int) -> list[float | None]:
    """The mean of each of ``k`` columns over the rows that have a value there."""
    out: list[float | None] = []
    for c in range(k):
        values = [row[c] for row in rows if row[c] is not None]
        out.append(statistics.fmean(v for v in values if v is not None) if values else None)
    return out


def _fmt(mean: float, se: float | None) -> str:
    return f"{mean:.3f}" if se is None else f"{mean:.3f} ± {se:.3f}"


def _score(images: Tensor, data: TaskData, judges: Any, seed: int) -> dict[str, Any]:
    s = score_translations(images, data, judges, seed, torch.device("cpu"))
    return {"miou": s["miou"], "class_iou": s["class_iou"]}


def analyse_task(
    out: Path,
    results: dict[str, Any],
    task: str,
    methods: list[str],
    sigmas: list[float],
    grid: Path | None = None,
    grid_images: int = 8,
) -> dict[str, Any]:
    """Score the blurred oracles and the repainted translations of one task.

    Args:
        out: the bench folder.
        results: its ``results.json``.
        task: the task's name.
        methods: methods to analyse.
        sigmas: blur widths in pixels.
        grid: where to save the task's picture (None: no picture).
        grid_images: test images (columns) in the picture.
    Returns:
        ``classes``, ``references`` (name -> scores) and ``methods`` (method -> per-seed
        scores of the translation and of its repainting, and their means; per seed and on
        average, each class colour's distance from the input's and the oracle's).
    """
    bench = _bench_preset(results)
    data_seed = int(results["data_seed"])
    data = prepare_data(out, task, bench, data_seed)
    missing = [p for p in judge_paths(data).values() if not p.is_file()]
    if missing:
        print(
            f"{task}: {', '.join(p.name for p in missing)} not in {missing[0].parent}; training "
            "the bench's judges again (a few minutes on a CPU)",
            file=sys.stderr,
            flush=True,
        )
    with torch.enable_grad():  # main() turns gradients off; retraining the judges needs them
        judges = prepare_judges(data, bench, data_seed, torch.device("cpu"))
    oracle = structure_oracle(data)
    k = data.num_classes
    input_colours = class_mean_colours(data.test_a, data.labels_test, k)
    oracle_colours = class_mean_colours(oracle, data.labels_test, k)
    n = min(grid_images, oracle.shape[0])
    rows, labels = [oracle[:n]], ["input", "oracle"]
    references = {"oracle": _score(oracle, data, judges, data_seed)}
    for sigma in sigmas:
        blurred = gaussian_blur(oracle, sigma)
        references[f"oracle, blur {sigma:g} px"] = _score(blurred, data, judges, data_seed)
        rows.append(blurred[:n])
        labels.append(f"blur {sigma:g}")
    per_method: dict[str, dict[str, Any]] = {}
    for run in results["tasks"][task]["runs"]:
        if run["method"] not in methods:
            continue
        folder = out / "runs" / task / run["method"] / f"seed{run['seed']}"
        checkpoint, _ = newest_readable_checkpoint(folder)
        G, _, _ = load_generator(None, checkpoint, torch.device("cpu"))
        fakes = translate_all(G, data.test_a, torch.device("cpu"))
        painted = repaint(fakes, data.labels_test, data.num_classes)
        if run["method"] not in per_method:
            rows += [fakes[:n], painted[:n]]
            labels += [f"{run['method']} s{run['seed']}"[:12], "repainted"]
        entry = per_method.setdefault(
            run["method"],
            {"seeds": [], "translation": [], "repainted": [], "from_input": [], "from_oracle": []},
        )
        colours = class_mean_colours(fakes, data.labels_test, k)
        entry["from_input"].append(_distances(colours, input_colours))
        entry["from_oracle"].append(_distances(colours, oracle_colours))
        entry["seeds"].append(run["seed"])
        entry["translation"].append(_score(fakes, data, judges, data_seed))
        entry["repainted"].append(_score(painted, data, judges, data_seed))
    if grid is not None:
        write_sample_grid(data.test_a[:n], rows, grid, labels=labels)
    for entry in per_method.values():
        for kind in ("translation", "repainted"):
            mean, se = _summary([s["miou"] for s in entry[kind]])
            entry[f"{kind}_miou"], entry[f"{kind}_miou_se"] = mean, se
            entry[f"{kind}_class_iou"] = _mean_per_class([s["class_iou"] for s in entry[kind]], k)
        for kind in ("from_input", "from_oracle"):
            entry[f"colour_{kind}"] = _mean_per_class(entry[kind], k)
    return {"classes": list(data.class_names), "references": references, "methods": per_method}


def _cells(values: list[float | None]) -> str:
    return " | ".join("n/a" if v is None else f"{v:.2f}" for v in values)


def print_task(task: str, doc: dict[str, Any]) -> None:
    """Print one task's table (markdown)."""
    classes = doc["classes"]
    print(f"\n## {task}\n")
    print("| images | mIoU | " + " | ".join(classes) + " |")
    print("|---|---|" + "---|" * len(classes))
    for name, s in doc["references"].items():
        print(f"| *{name}* | {s['miou']:.3f} | {_cells(s['class_iou'])} |")
    for method, e in doc["methods"].items():
        for kind in ("translation", "repainted"):
            cell = _fmt(e[f"{kind}_miou"], e[f"{kind}_miou_se"])
            print(f"| {method}, {kind} | {cell} | {_cells(e[f'{kind}_class_iou'])} |")


def print_colours(doc: dict[str, Any]) -> None:
    """Print one task's colour table: each class's distance from the input's / oracle's colour."""
    classes = doc["classes"]
    print("\nMean colour of each class, distance from the input's / from the oracle's:\n")
    print("| method | " + " | ".join(classes) + " |")
    print("|---|" + "---|" * len(classes))
    for method, e in doc["methods"].items():
        cells = [
            "n/a" if a is None or o is None else f"{a:.2f} / {o:.2f}"
            for a, o in zip(e["colour_from_input"], e["colour_from_oracle"], strict=True)
        ]
        print(f"| {method} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--bench", type=Path, required=True, help="a finished `sesim bench quality` folder"
    )
    p.add_argument("--tasks", help="comma-separated tasks (default: every task of the bench)")
    p.add_argument("--methods", help="comma-separated methods (default: every method of the bench)")
    p.add_argument("--sigmas", default="0.5,1,1.5", help="blur widths of the oracle, in pixels")
    p.add_argument(
        "--out",
        type=Path,
        help="JSON output (default: BENCH/oracle_gap.json); the pictures go beside it",
    )
    p.add_argument(
        "--grid-images", type=int, default=8, help="test images (columns) in each task's picture"
    )
    args = p.parse_args(argv)
    results_path = args.bench / "results.json"
    if not results_path.is_file():
        print(
            f"error: {results_path} not found; run `sesim bench quality --out {args.bench}` first",
            file=sys.stderr,
        )
        return 2
    try:
        results = json.loads(results_path.read_text())
        ran = list(dict.fromkeys(r["method"] for t in results["tasks"].values() for r in t["runs"]))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        print(
            f"error: {results_path} is not a bench result ({type(err).__name__}: {err}); "
            "rerun `sesim bench quality` into that folder",
            file=sys.stderr,
        )
        return 2
    try:
        sigmas = [float(s) for s in args.sigmas.split(",")]
    except ValueError:
        sigmas = []
    if not sigmas or any(not s > 0 for s in sigmas):
        print(
            f"error: --sigmas must be positive numbers separated by commas, got {args.sigmas!r}",
            file=sys.stderr,
        )
        return 2
    if args.grid_images < 1:
        print(f"error: --grid-images must be at least 1, got {args.grid_images}", file=sys.stderr)
        return 2
    out = args.out or args.bench / "oracle_gap.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)
    doc: dict[str, Any] = {"bench": str(args.bench), "sigmas": sigmas, "tasks": {}}
    try:
        tasks = parse_list(args.tasks, list(results["tasks"]), list(results["tasks"]), "task")
        methods = parse_list(args.methods, ran, ran, "method")
        for task in tasks:
            grid = out.parent / f"oracle_gap_{task}.png"
            doc["tasks"][task] = analyse_task(
                args.bench, results, task, methods, sigmas, grid, args.grid_images
            )
            doc["tasks"][task]["picture"] = str(grid)
            print_task(task, doc["tasks"][task])
            print_colours(doc["tasks"][task])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(out)
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
