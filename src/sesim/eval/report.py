"""Reporting an evaluation: the best checkpoint per score, tables, CSV files, plots and the run's
training cost."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sesim.eval.multimodal import MULTIMODAL_COLUMNS, MULTIMODAL_SCORES
from sesim.eval.scoring import SEG_CLASS_PREFIX, Unavailable, Values
from sesim.eval.sets import TEST_SET
from sesim.metrics import METRICS
from sesim.runs import atomic_write

#: The metrics in the order of the stored columns and of the table's rows.
_COLUMN_ORDER: tuple[str, ...] = ("fid", "kid", "dc", "lpips", "seg")

# Ranked scores: the metric (the ``--metrics`` name) each belongs to, and whether higher is better.
SCORES: dict[str, tuple[str, bool]] = {
    **{
        column: (name, METRICS[name].higher_is_better)
        for name in _COLUMN_ORDER
        for column in METRICS[name].ranked
    },
    **MULTIMODAL_SCORES,
}

# Every stored column, in file order (kid_std, precision and recall are stored, not ranked).
COLUMNS: tuple[str, ...] = (
    *(column for name in _COLUMN_ORDER for column in METRICS[name].columns),
    *MULTIMODAL_COLUMNS,
)

# ---------------------------------------------------------------------------------------------
# Training cost.


def training_stats(run: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Peak memory and median step time of a run's training.

    From ``RUN/train_summary.json`` (written when a run finishes), else from the step times and
    peak memory kept in the newest checkpoint's history.

    Args:
        run: the run folder.
        state: its newest checkpoint.
    Returns:
        ``{"peak_memory_bytes", "median_step_ms", "device", "source"}``; unknown values are
        ``None``. A peak of 0 bytes means no CUDA memory was recorded (a CPU run).
    """
    summary = run / "train_summary.json"
    if summary.is_file():
        try:
            data = json.loads(summary.read_text())
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            return {
                "peak_memory_bytes": _bytes(data.get("peak_memory_bytes")),
                "median_step_ms": _finite(data.get("median_step_ms")),
                "device": data.get("device"),
                "source": summary.name,
            }
    history = state.get("history") or {}
    times = [float(t) for t in history.get("step_times") or []]
    return {
        "peak_memory_bytes": _bytes(history.get("peak_memory")),
        "median_step_ms": 1000 * statistics.median(times) if times else None,
        "device": None,
        "source": f"history in checkpoint step {int(state['step'])} (the run has no "
        "train_summary.json yet)",
    }


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _bytes(value: Any) -> int | None:
    number = _finite(value)
    return None if number is None else int(number)


def training_line(stats: dict[str, Any]) -> str:
    peak = stats["peak_memory_bytes"]
    if peak is None:
        memory = "peak memory unknown"
    elif peak == 0:
        memory = "peak GPU memory n/a (no CUDA memory recorded: a CPU run)"
    else:
        memory = f"peak GPU memory {peak / 2**30:.2f} GiB"
    ms = stats["median_step_ms"]
    step = "median step time unknown" if ms is None else f"median step {ms:.1f} ms"
    device = f" on {stats['device']}" if stats.get("device") else ""
    return f"training{device}: {memory}, {step} (from {stats['source']})"


# ---------------------------------------------------------------------------------------------
# Best checkpoints, tables, files.


def fmt(column: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if column == "fid":
        return f"{value:.2f}"
    if column.startswith("kid"):
        return f"{value:.4f}"
    return f"{value:.3f}"


def label(column: str) -> str:
    return f"{column} ({'higher' if SCORES[column][1] else 'lower'})"


def _present(values: dict[int, Values], column: str) -> dict[int, float]:
    """Steps where ``column`` has a value, with that value."""
    found: dict[int, float] = {}
    for step, row in values.items():
        value = row.get(column)
        if value is not None:
            found[step] = value
    return found


def best_checkpoints(
    results: dict[int, Values], selection: dict[int, Values], selected_on: str
) -> dict[str, dict[str, Any]]:
    """The best step per ranked score, chosen on ``selection``, reported from ``results``.

    Args:
        results: test-set values by step.
        selection: the values the choice is made on (the test set or a held-out split).
        selected_on: what ``selection`` is, stored with each choice.
    Returns:
        ``{score: {"step", "value", "selected_on"[, "selection_value"]}}`` for every ranked score
        with a value at some step. Ties go to the later step.
    """
    best: dict[str, dict[str, Any]] = {}
    columns = {c for values in results.values() for c in values if c in SCORES}
    for column in [c for c in SCORES if c in columns]:
        higher = SCORES[column][1]
        where = selected_on
        candidates = _present(selection, column)
        if not candidates and selection is not results:
            # Not computable on the held-out split (no labels or no pairs): the test set decides.
            candidates = _present(results, column)
            where = TEST_SET
        if not candidates:
            continue
        sign = 1.0 if higher else -1.0
        step = max(candidates, key=lambda s: (sign * candidates[s], s))
        entry: dict[str, Any] = {"step": step, "value": results[step].get(column)}
        entry["selected_on"] = where
        if where != TEST_SET:
            entry["selection_value"] = candidates[step]
        best[column] = entry
    return best


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; a rule under the first row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_table(
    last_step: int,
    last: Values,
    best: dict[str, dict[str, Any]],
    missing: dict[str, Unavailable],
    held_out: bool,
) -> str:
    """Rows = ranked scores; columns = the last checkpoint and the best one per score."""
    chosen = "(chosen on held-out split)" if held_out else "(chosen on the test set)"
    rows = [["metric", f"last (step {last_step})", f"best {chosen}"]]
    for column in SCORES:
        if column not in last:
            continue
        if last[column] is None and column in missing:
            na = f"n/a ({missing[column].short})"
            rows.append([label(column), na, na])
            continue
        value = fmt(column, last[column])
        if column == "kid" and last.get("kid_std") is not None:
            value += f" +/- {fmt('kid', last['kid_std'])}"
        entry = best.get(column)
        if entry is None:
            cell = "n/a"
        else:
            cell = f"{fmt(column, entry['value'])} (step {entry['step']})"
            if held_out and entry["selected_on"] == TEST_SET:
                cell += " (chosen on the test set: not computable on the held-out split)"
        rows.append([label(column), value, cell])
    return format_table(rows)


def class_iou_table(names: Sequence[str], columns: Sequence[tuple[str, Values]]) -> str:
    """The segmenter's IoU of each class, one row per class and one column per checkpoint.

    Args:
        names: class names, index = class id.
        columns: ``(header, values)`` per checkpoint; ``values`` holds ``seg_iou_<k>``.
    Returns:
        The table; a class neither labelled nor predicted reads ``n/a (absent)``.
    """
    rows = [["class", *(header for header, _ in columns)]]
    for k, name in enumerate(names):
        cells = []
        for _, values in columns:
            iou = values.get(f"{SEG_CLASS_PREFIX}{k}")
            cells.append("n/a (absent)" if iou is None else f"{iou:.3f}")
        rows.append([f"{k} {name}", *cells])
    return format_table(rows)


def write_csv(header: Sequence[str], rows: Sequence[Sequence[Any]], path: Path) -> None:
    """Write a CSV file atomically; ``None`` cells are left empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    atomic_write(path, buffer.getvalue())


def plot_metric(
    metric: str,
    results: dict[int, Values],
    heldout: dict[int, Values] | None,
    best: dict[str, dict[str, Any]],
    yardstick: Values | None,
    path: Path,
) -> bool:
    """Draw one metric's scores over training steps as a PNG (matplotlib, no GUI backend).

    Held-out values are dashed, the best checkpoint of each score is a star, and the
    segmenter's yardstick (its scores on real images) a dotted line.

    Returns:
        Whether a figure was written (False when no step has a value).
    """
    # matplotlib is imported when a figure is drawn: it is slow to import.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    columns = [c for c in COLUMNS if c in SCORES and SCORES[c][0] == metric]
    fig = Figure(figsize=(8.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    drawn = False
    for column in columns:
        present = _present(results, column)
        if not present:
            continue
        drawn = True
        xs = sorted(present)
        ys = [present[s] for s in xs]
        (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=column)
        color = line.get_color()
        if column == "kid":
            std = [float(results[s].get("kid_std") or 0.0) for s in xs]
            low = [y - d for y, d in zip(ys, std)]
            high = [y + d for y, d in zip(ys, std)]
            ax.fill_between(xs, low, high, color=color, alpha=0.2, linewidth=0)
        if heldout is not None:
            held = _present(heldout, column)
            if held:
                hx = sorted(held)
                hy = [held[s] for s in hx]
                ax.plot(hx, hy, linestyle="--", color=color, label=f"{column} (held-out)")
        entry = best.get(column)
        if entry is not None and entry["value"] is not None:
            ax.plot([entry["step"]], [entry["value"]], marker="*", markersize=12, color=color)
        real_value = yardstick.get(column) if yardstick is not None else None
        if real_value is not None:
            ax.axhline(real_value, linestyle=":", color=color, label=f"{column} of real images")
    if not drawn:
        return False
    better = "higher" if SCORES[columns[0]][1] else "lower"
    ax.set_title(f"{metric}: {better} is better; star = best checkpoint")
    ax.set_xlabel("training step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return True
