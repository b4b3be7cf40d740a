"""The ``sesim`` command line: one module per command, registered here.

Each command module of :mod:`sesim.cli` adds its parser (``add_parser``) and maps the parsed
flags onto one typed call of the library; nothing outside this package imports it.

User mistakes (a missing folder, a bad value, a foreign checkpoint) end with one line on stderr,
``error: ...`` saying what is wrong and what to do, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from sesim.cli import bench, data, demo, export, presets, serve, train, translate, viz, weights
from sesim.cli import eval as eval_command
from sesim.cli.common import EXIT_INTERRUPTED, EXIT_USER_ERROR, Parser
from sesim.errors import UserError
from sesim.runs import WriteError
from sesim.version import __version__

#: The command modules, in the order of ``sesim --help``.
COMMANDS = (train, translate, data, weights, eval_command, bench, viz, export, serve, presets, demo)


def build_parser() -> argparse.ArgumentParser:
    """The ``sesim`` parser with every command."""
    parser = Parser(
        prog="sesim",
        description="Structure-preserving unpaired image translation with the "
        "spatially-correlative loss (F/LSeSim, CVPR 2021).",
    )
    parser.add_argument(
        "--version", action="version", version=f"sesim {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USER_ERROR
    warnings.filterwarnings("default", category=UserWarning, module="sesim")
    try:
        return int(func(args) or 0)
    except WriteError as exc:  # a full disk outside training (which says more itself)
        print(
            f"error: {exc}; files written before are intact: free some space (or choose "
            "another output folder), then run the command again",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
