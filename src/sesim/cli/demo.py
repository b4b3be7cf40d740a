"""``sesim demo``: synthetic data -> tiny FSeSim training -> a report (:func:`sesim.demo.run_demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sesim.cli.common import positive_int
from sesim.demo import run_demo


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``demo`` to the CLI's sub-commands."""
    dm = sub.add_parser(
        "demo",
        help="synthetic data -> tiny FSeSim training on the CPU -> report (a few minutes)",
        description="Generate the synthetic dataset, train the tiny FSeSim preset, translate "
        "the test set and write RUN/index.html. Re-running continues or reuses the run.",
    )
    dm.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder")
    dm.add_argument("--data", type=Path, default=Path("data/demo"), help="dataset folder")
    dm.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="training steps (default: 500, the tiny preset's 600 shortened to keep the demo "
        "near 4.5 min on 2 CPU cores)",
    )
    dm.add_argument("--device", default="cpu", help="device (default cpu)")
    dm.add_argument("--quiet", action="store_true", help="no progress bar")
    dm.set_defaults(func=run)
    return dm


def run(args: argparse.Namespace) -> int:
    """Run ``sesim demo``; returns the exit status."""
    run_demo(args.out, args.data, steps=args.steps, device=args.device, quiet=args.quiet)
    return 0
