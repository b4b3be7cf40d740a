"""``sesim weights``: which pretrained weight files sesim uses, where, and fetching one."""

from __future__ import annotations

import argparse
from typing import Any

from sesim.cli.common import Parser, print_help
from sesim.weights import WEIGHTS, fetch


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``weights`` (with ``status`` and ``fetch``) to the CLI's sub-commands."""
    w = sub.add_parser(
        "weights",
        help="pretrained weight files: where sesim looks for them, and fetching one",
        description="sesim reads every pretrained file from the torch hub cache "
        "($TORCH_HOME/hub/checkpoints, by default ~/.cache/torch/hub/checkpoints).",
    )
    wsub = w.add_subparsers(dest="weights_command", metavar="TOOL", parser_class=Parser)
    st = wsub.add_parser("status", help="list the weight files, where they go, and which are there")
    st.set_defaults(func=run_status)
    fe = wsub.add_parser(
        "fetch",
        help="download one weight file into the torch hub cache",
        description="Download NAME into the torch hub cache with torch.hub's transfer (hash "
        "checked where the file name carries one); where that is not possible, say which file "
        f"to place where. Names: {', '.join(WEIGHTS)}.",
    )
    fe.add_argument("name", metavar="NAME", help=f"one of {', '.join(WEIGHTS)}")
    fe.add_argument("--quiet", action="store_true", help="no progress bar")
    fe.set_defaults(func=run_fetch)
    w.set_defaults(func=lambda args: print_help(w))
    return w


def run_status(args: argparse.Namespace) -> int:
    """Run ``sesim weights status``; returns the exit status."""
    for entry in WEIGHTS.values():
        state = "present" if entry.path.is_file() else "missing"
        print(f"{entry.name:<10} {state:<8} {entry.path}")
        print(f"{'':<10} for {entry.used_for}; from {entry.url}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    """Run ``sesim weights fetch``; returns the exit status."""
    path, downloaded = fetch(args.name, progress=not args.quiet)
    print(f"{'downloaded' if downloaded else 'already there'}: {path}")
    return 0
