"""Training recipes, by the name users type (``sesim train --method NAME``).

Each recipe is a module with ``build``, ``build_generator``, ``build_optimizers`` and
``train_step`` (see :class:`sesim.methods.common.Method`); :data:`METHODS` maps the names to
the modules. A new recipe is one file here and one entry in :data:`METHODS`.
"""

from __future__ import annotations

from types import ModuleType
from typing import cast

from sesim.errors import UserError, did_you_mean
from sesim.methods import (
    cut,
    cyclegan,
    distancegan,
    gcgan,
    munit,
    munit_cycle,
    perceptual,
    singleimage,
)
from sesim.methods import sesim as sesim_recipe
from sesim.methods.common import Method, StepContext

#: method name -> recipe module
METHODS: dict[str, ModuleType] = {
    "sesim": sesim_recipe,
    "cyclegan": cyclegan,
    "cut": cut,
    "fastcut": cut,
    "perceptual": perceptual,
    "distancegan": distancegan,
    "gcgan": gcgan,
    "munit": munit,
    "munit-cycle": munit_cycle,
    "singleimage": singleimage,
}


def get_method(name: str) -> Method:
    """The recipe module registered under ``name``.

    Raises:
        UserError: an unknown name (the message lists the known ones).
    """
    if name not in METHODS:
        raise UserError(
            f"unknown method {name!r}{did_you_mean(name, METHODS)}; choose one of: "
            f"{', '.join(METHODS)}"
        )
    return cast(Method, METHODS[name])


__all__ = ["METHODS", "Method", "StepContext", "get_method"]
