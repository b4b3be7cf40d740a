"""Errors that the command line reports as one line, without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input: the message says what is wrong and how to fix it.

    The CLI prints ``error: <message>`` and exits with status 2. Library code raises it for bad
    files, folders, checkpoints and settings; programming errors stay ordinary exceptions.
    """


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the known names closest to a mistyped one, else ``""``.

    Args:
        name: what the user typed.
        known: the valid names.
    Returns:
        Text to append to an error message (empty when nothing is close).
    """
    close = difflib.get_close_matches(name, list(known), n=2, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)"
