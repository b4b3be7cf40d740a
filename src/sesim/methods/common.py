"""What every training recipe shares: the per-step context and the method interface.

A method is a module with four functions (see :class:`Method`); the training loop only talks to
methods through them, so adding a recipe means adding one file and one registry entry.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from sesim.config import TrainConfig
from sesim.losses.adversarial import ImagePool


class Nets(Protocol):
    """The networks of a run, as the training loop sees them."""

    G: nn.Module

    def all_modules(self) -> list[nn.Module]:
        """Every module, to move them to a device together."""
        ...

    def trainable(self) -> dict[str, nn.Module]:
        """Modules with learned weights, by checkpoint key."""
        ...


class Method(Protocol):
    """A training recipe (a module implementing these functions).

    Attributes:
        POOLS: names of the image pools the recipe uses (``ctx.pools[name]``); the loop creates
            and checkpoints them.
    """

    POOLS: tuple[str, ...]

    def build(self, cfg: TrainConfig) -> Any: ...

    def build_generator(self, cfg: TrainConfig) -> nn.Module: ...

    def build_optimizers(self, cfg: TrainConfig, nets: Any) -> dict[str, torch.optim.Optimizer]: ...

    def train_step(
        self, nets: Any, ctx: StepContext, batch: dict[str, Tensor]
    ) -> dict[str, Tensor]: ...


@dataclass
class StepContext:
    """Everything a step needs besides networks and data.

    Attributes:
        cfg: the run's config.
        optimizers: by name (``G``, ``D``, ``heads``).
        pools: image pools of fakes for the discriminators, by the names in ``method.POOLS``.
        generator: CPU generator for query points and the pool.
        autocast: a context factory for mixed precision.
        scaler: gradient scaler (fp16) or None.
        sync: averages gradients across ranks before each step (multi-process runs), or None.
    """

    cfg: TrainConfig
    optimizers: dict[str, torch.optim.Optimizer]
    pools: dict[str, ImagePool]
    generator: torch.Generator
    autocast: type[AbstractContextManager[None]] | None = None
    scaler: torch.amp.GradScaler | None = None
    sync: Callable[[list[nn.Parameter]], None] | None = None

    def amp(self) -> AbstractContextManager[None]:
        return self.autocast() if self.autocast is not None else nullcontext()

    def update(self, name: str, loss: Tensor) -> None:
        """Backward and step one optimizer (through the scaler when there is one)."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if self.sync is not None:
            self.sync([p for group in opt.param_groups for p in group["params"]])
        if self.scaler is not None:
            self.scaler.step(opt)
        else:
            opt.step()
