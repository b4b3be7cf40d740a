"""Networks: generators and discriminators (tensors in, tensors out; they never see a config)."""

from __future__ import annotations

from collections.abc import Sequence
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


def check_image_size(x: Tensor, multiple: int, min_size: int = 1) -> None:
    """Raise ``ValueError`` unless ``x`` is (B, C, H, W) with H and W multiples of ``multiple``
    and at least ``min_size``.

    Args:
        x: the network's input.
        multiple: the product of the network's down-sampling strides.
        min_size: the smallest side the network accepts.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple or min(h, w) < min_size:
        least = f" and at least {min_size}" if min_size > 1 else ""
        raise ValueError(
            f"input height and width must be multiples of {multiple}{least}, got {h}x{w}"
        )


def check_layer_ids(layer_ids: Sequence[int], n: int, what: str) -> None:
    """Raise ``ValueError`` unless every id in ``layer_ids`` indexes one of ``n`` layers.

    Args:
        layer_ids: requested layer indices.
        n: number of layers of the network.
        what: the network's name in the message (``"generator"``, ``"encoder"``).
    """
    bad = [i for i in layer_ids if not 0 <= i < n]
    if bad:
        raise ValueError(f"layer ids {bad} out of range; this {what} has layers 0..{n - 1}")


__all__ = ["Generator", "check_image_size", "check_layer_ids"]
