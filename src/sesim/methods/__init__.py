"""Training recipes, by the name users type (``sesim train --method NAME``).

Each recipe is a module with ``build``, ``build_generator``, ``build_optimizers`` and
``train_step`` (see :class:`sesim.methods.common.Method`).
"""

from __future__ import annotations

import importlib
from typing import cast

from sesim.errors import UserError
from sesim.methods.common import Method, StepContext

#: method name -> module path
METHODS: dict[str, str] = {
    "sesim": "sesim.methods.sesim",
    "cyclegan": "sesim.methods.cyclegan",
    "cut": "sesim.methods.cut",
    "fastcut": "sesim.methods.cut",
    "perceptual": "sesim.methods.perceptual",
    "munit": "sesim.methods.munit",
    "singleimage": "sesim.methods.singleimage",
}


def get_method(name: str) -> Method:
    """The recipe module registered under ``name``."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return cast(Method, importlib.import_module(METHODS[name]))


__all__ = ["METHODS", "Method", "StepContext", "get_method"]
