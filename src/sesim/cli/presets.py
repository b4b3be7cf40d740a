"""``sesim presets [NAME]``: the named training presets, one line each, or one in full."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from sesim.config import PRESETS, config_diff, preset


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``presets`` to the CLI's sub-commands."""
    pr = sub.add_parser(
        "presets",
        help="list the named presets, or show one in full",
        description="Without NAME: one line per preset. With NAME: the preset's full "
        "description (which source it follows: the authors' public code or the paper's text) "
        "and every config field where it differs from fsesim.",
    )
    pr.add_argument("name", nargs="?", metavar="NAME", help="a preset to show in full")
    pr.set_defaults(func=run)
    return pr


def _doc(name: str) -> str:
    return " ".join((PRESETS[name].__doc__ or "").split())


def run(args: argparse.Namespace) -> int:
    """Run ``sesim presets``; returns the exit status."""
    if args.name is None:
        width = max(len(n) for n in PRESETS)
        for name in PRESETS:
            doc = _doc(name)
            line = doc if len(doc) <= 110 else doc[:107].rstrip() + "..."
            print(f"{name:<{width}}  {line}")
        return 0
    cfg = preset(args.name)  # an unknown name is a one-line error listing the known ones
    print(args.name)
    print(textwrap.fill(_doc(args.name), width=88, initial_indent="  ", subsequent_indent="  "))
    diff = [d for d in config_diff(cfg, preset("fsesim")) if d[0] != "preset"]
    if args.name == "fsesim":
        print("\nthe reference preset: the others are described as differences from it")
    elif not diff:
        print("\nsame fields as fsesim")
    else:
        print("\ndifferences from fsesim (field: fsesim -> this preset):")
        for key, ref, value in diff:
            print(f"  {key}: {ref} -> {value}")
    return 0
