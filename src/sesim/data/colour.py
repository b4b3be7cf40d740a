"""Histogram matching: a global, per-channel colour transfer from one image set to another.

Used to start a generator from the input recoloured towards the target domain
(``optim.identity_warmup_target: colour_transfer``), to keep its translations near that
recolouring during training (``structure.colour_anchor``) and as the benchmarks' label-free
*colour transfer* reference row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: at most this many values per channel are kept of each image set's sorted pixels
MAX_VALUES = 1 << 20


def _sorted_channels(images: Tensor) -> Tensor:
    """(C, M) the sorted values of each channel, thinned evenly to at most ``MAX_VALUES``."""
    values = images.detach().float().transpose(0, 1).reshape(images.shape[1], -1)
    values = values.sort(dim=1).values
    if values.shape[1] > MAX_VALUES:
        keep = torch.linspace(0, values.shape[1] - 1, MAX_VALUES).round().long()
        values = values[:, keep]
    return values.contiguous()


@dataclass(frozen=True)
class ChannelHistograms:
    """The per-channel monotone map that turns ``source``'s value distribution into
    ``target``'s.

    A value is placed at its mid-rank among the source's values of its channel (so the pixels
    of a flat region, which tie, keep one colour) and replaced by the target's value at that
    quantile.

    Attributes:
        source: (C, M) sorted values of each channel of the source images.
        target: (C, K) sorted values of each channel of the target images.
    """

    source: Tensor
    target: Tensor

    @classmethod
    def fit(cls, source: Tensor, target: Tensor) -> ChannelHistograms:
        """The map from ``source``'s channel distributions to ``target``'s.

        Args:
            source: (N, C, H, W) images of the domain to map from.
            target: (N', C, H', W') images of the domain to map to.
        Returns:
            the fitted map (values on the CPU, float32).
        """
        if source.shape[1] != target.shape[1]:
            raise ValueError(
                f"source and target need the same channels, got {source.shape[1]} and "
                f"{target.shape[1]}"
            )
        return cls(_sorted_channels(source.cpu()), _sorted_channels(target.cpu()))

    def to(self, device: torch.device) -> ChannelHistograms:
        """The same map with its tables on ``device`` (so that calls there copy nothing)."""
        return ChannelHistograms(self.source.to(device), self.target.to(device))

    def __call__(self, images: Tensor) -> Tensor:
        """Map every channel of ``images``.

        Args:
            images: (N, C, H, W) images of the source domain (any device).
        Returns:
            (N, C, H, W) images whose values are drawn from the target's, on ``images``'s
            device and in its dtype.
        """
        if images.shape[1] != self.source.shape[0]:
            raise ValueError(
                f"the map was fitted on {self.source.shape[0]} channels, got {images.shape[1]}"
            )
        source = self.source.to(images.device)
        target = self.target.to(images.device)
        out = torch.empty_like(images)
        for c in range(images.shape[1]):
            values = images[:, c].detach().float().contiguous()
            below = torch.searchsorted(source[c], values, right=False).double()
            upto = torch.searchsorted(source[c], values, right=True).double()
            quantile = ((below + upto) / (2 * source.shape[1])).clamp(0, 1)
            index = (quantile * (target.shape[1] - 1)).round().long()
            out[:, c] = target[c][index].to(images.dtype)
        return out


def histogram_transfer(images: Tensor, source: Tensor, target: Tensor) -> Tensor:
    """Map each channel of ``images`` through the monotone map that turns ``source``'s histogram
    of that channel into ``target``'s (histogram matching, the classic global colour transfer).

    Args:
        images: (N, C, H, W) images to map.
        source: (M, C, H', W') images whose channel distributions ``images`` follow.
        target: (K, C, H'', W'') images whose channel distributions to match.
    Returns:
        (N, C, H, W) mapped images, values drawn from ``target``'s.
    """
    return ChannelHistograms.fit(source, target)(images)
