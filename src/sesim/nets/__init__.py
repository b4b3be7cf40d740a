"""Networks: generators and discriminators (tensors in, tensors out; they never see a config)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Generator(Protocol):
    """An image-to-image generator, as inference code sees it.

    Attributes:
        multiple: input heights and widths must be multiples of this (the product of the
            network's down-sampling strides); :func:`sesim.translate.pad_to_multiple` pads any
            image to it.
    """

    multiple: int

    def __call__(self, x: Tensor) -> Tensor:
        """Map (B, C, H, W) images in [-1, 1] to (B, C', H, W) translations in [-1, 1]."""
        ...


__all__ = ["Generator"]
