"""What every ``sesim`` command shares: the parser class, exit codes and argument types.

Argument types check values as they are parsed, so a bad flag value ends in one ``error:`` line
naming the flag.
"""

from __future__ import annotations

import argparse
from typing import Any

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exits with status 2."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USER_ERROR, f"error: {message} (see '{self.prog} --help')\n")


def print_help(parser: argparse.ArgumentParser) -> int:
    """Print a command group's help (the group was called without a sub-command)."""
    parser.print_help()
    return EXIT_USER_ERROR


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def nonneg_int(text: str) -> int:
    """A whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value
