"""``sesim presets``: the named training presets, one line each."""

from __future__ import annotations

import argparse
from typing import Any

from sesim.config import PRESETS


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``presets`` to the CLI's sub-commands."""
    pr = sub.add_parser("presets", help="list the named presets")
    pr.set_defaults(func=run)
    return pr


def run(args: argparse.Namespace) -> int:
    """Run ``sesim presets``; returns the exit status."""
    for name, fn in PRESETS.items():
        doc = " ".join((fn.__doc__ or "").split())
        print(f"{name:<12} {doc[:150]}")
    return 0
