"""An exponential moving average of a network's weights (the averaged generator).

GAN generators oscillate from step to step: two checkpoints a few steps apart can keep very
different amounts of the input's structure (``docs/structure.md``, "The last checkpoint is a
lottery"). Averaging the weights along training (Polyak averaging; StyleGAN2's ``G_ema``;
Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training") smooths the
oscillation out. The average is used for inference only; training updates the live network.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightAverage(nn.Module):
    """An exponential moving average of ``model``'s parameters; buffers are copied.

    The average is bias-corrected (as Adam's moments): after ``n`` updates it weighs the
    weights of update ``k`` by ``decay ** (n - k)``, normalised to sum to one, so the weights
    the average was created from count for nothing once it has been updated, and a run shorter
    than ``1 / (1 - decay)`` steps gets (nearly) the plain mean of its steps instead of an
    average pulled towards its start.

    Args:
        model: the network to average; a frozen copy of it (in eval mode) holds the average.
        decay: the largest per-update decay, in (0, 1): the average spans about
            ``1 / (1 - decay)`` updates.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates: torch.Tensor
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        """The share of the current average that the next :meth:`update` keeps:
        ``decay * (1 - decay ** n) / (1 - decay ** (n + 1))`` after ``n`` updates (0 at the
        first update, then rising towards ``decay``)."""
        n = int(self.updates)
        return self.decay * (1.0 - self.decay**n) / (1.0 - self.decay ** (n + 1))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights (one step); ``model`` is the
        network the average was created from (its parameters and buffers in the same order)."""
        d = self.current_decay()
        for avg, live in zip(self.module.parameters(), model.parameters(), strict=True):
            avg.lerp_(live.detach().to(avg.dtype), 1.0 - d)
        for buf, live_buf in zip(self.module.buffers(), model.buffers(), strict=True):
            buf.copy_(live_buf)
        self.updates.add_(1)

    @staticmethod
    def averaged_weights(state: dict[str, Any]) -> dict[str, Any]:
        """The averaged network's own state dict inside a ``WeightAverage`` state dict (as
        saved in a checkpoint), ready for ``load_state_dict`` on a network like ``model``."""
        prefix = "module."
        return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
