"""Full precision for losses inside mixed-precision (autocast) regions."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch


def full_precision(device: torch.device) -> AbstractContextManager[object]:
    """Autocast off on ``device`` while a loss runs, so that it computes in float32.

    The networks may run in bf16 or fp16; a loss's similarity products, ``tanh``, masking and
    softmax are a small part of the step's arithmetic and keep float32 precision. Cast the
    inputs with ``.float()`` inside the block (a no-op for float32 tensors).

    Args:
        device: device of the loss's inputs; devices without autocast get a no-op context.
    Returns:
        A context manager.
    """
    if device.type in ("cpu", "cuda", "xpu", "mps") and torch.is_autocast_enabled(device.type):
        return torch.autocast(device.type, enabled=False)
    return nullcontext()
