"""What the benchmarks' reports share: Markdown tables of score rows and the results files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sesim.runs import atomic_write, write_json


def format_markdown_table(
    header: Sequence[str],
    rows: Sequence[dict[str, Any]],
    cells: Callable[[dict[str, Any]], list[str]],
) -> str:
    """A Markdown table with one line per row: its name, then ``cells(row)``.

    Args:
        header: the column titles, the name column's first.
        rows: dicts with ``method`` and ``kind`` (``method``, or ``reference`` for the reference
            rows, whose names are set in italics).
        cells: the other cells of a row, as text.
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        name = r["method"] if r.get("kind") == "method" else f"*{r['method']}*"
        lines.append("| " + " | ".join([name, *cells(r)]) + " |")
    return "\n".join(lines)


def write_results(out: Path, results: dict[str, Any], markdown: str) -> None:
    """Write ``out/results.json`` (non-finite numbers as null) and ``out/results.md``."""
    write_json(out / "results.json", results)
    atomic_write(out / "results.md", markdown)
