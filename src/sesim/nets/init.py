"""Weight initialisation shared by every network of the package.

The schemes follow the CycleGAN/CUT convention (``init_weights`` in their ``models/networks.py``):
convolution and linear weights are drawn by the chosen scheme, their biases set to zero, and the
affine weights of normalisation layers drawn from N(1, gain) with zero bias. Blur filters stored
as buffers (the anti-aliased resampling layers) are not parameters and are left untouched.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

InitKind = Literal["normal", "xavier", "kaiming", "orthogonal"]

_INIT_KINDS: tuple[str, ...] = ("normal", "xavier", "kaiming", "orthogonal")

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*d and InstanceNorm*d
    nn.GroupNorm,
    nn.LayerNorm,
)


def init_weights(
    module: nn.Module,
    kind: InitKind = "xavier",
    gain: float = 0.02,
    generator: torch.Generator | None = None,
) -> None:
    """Initialise the weights of ``module`` and all its submodules in place.

    Convolutions (including transposed ones) and linear layers get their weight drawn by ``kind``
    and their bias set to 0. Normalisation layers with affine parameters (batch, instance, group
    and layer norm) get weight ~ N(1, gain) and bias 0. Other parameters are not touched.

    Args:
        module: the network to initialise.
        kind: ``"normal"`` draws N(0, gain); ``"xavier"`` is Glorot-normal scaled by ``gain``;
            ``"kaiming"`` is He-normal (fan-in, a=0) and ignores ``gain``, as in CUT;
            ``"orthogonal"`` is a (semi-)orthogonal matrix scaled by ``gain``.
        gain: scale of the scheme; CUT and the public F-LSeSim code use xavier with gain 0.02.
        generator: random source for reproducible initialisation; None uses torch's global one.
            It must live on the same device as the parameters.

    Raises:
        ValueError: if ``kind`` is not one of the four schemes.
    """
    if kind not in _INIT_KINDS:
        raise ValueError(f"unknown init kind {kind!r}; expected one of {', '.join(_INIT_KINDS)}")

    for m in module.modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            weight: torch.Tensor = m.weight
            if kind == "normal":
                nn.init.normal_(weight, 0.0, gain, generator=generator)
            elif kind == "xavier":
                nn.init.xavier_normal_(weight, gain=gain, generator=generator)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in", generator=generator)
            else:
                nn.init.orthogonal_(weight, gain=gain, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORM_TYPES):
            norm_weight = getattr(m, "weight", None)
            norm_bias = getattr(m, "bias", None)
            if isinstance(norm_weight, torch.Tensor):
                nn.init.normal_(norm_weight, 1.0, gain, generator=generator)
            if isinstance(norm_bias, torch.Tensor):
                nn.init.zeros_(norm_bias)
