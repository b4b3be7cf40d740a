"""ResNet generator and PatchGAN discriminator of CycleGAN/CUT, with anti-aliased resampling.

The architectures match the CUT code (``models/networks.py``: ``ResnetGenerator`` with
``no_antialias=False, no_antialias_up=False`` and ``NLayerDiscriminator``), which the public
F-LSeSim code uses unchanged. Attribute names (``model``, ``conv_block``, ``filt``) follow that
code, so the state dict of a generator or discriminator trained there loads into these modules.

Two small departures, both harmless for the default ``norm="instance"``:
- ReLU and LeakyReLU are not in-place, so features returned by ``encode_features`` are never
  overwritten by a later layer.
- With ``norm="none"`` the convolutions keep their bias (CUT drops it by accident of how it
  detects instance norm, leaving those convolutions without any offset).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.nets import check_image_size, check_layer_ids

NormKind = Literal["instance", "batch", "none"]

_NORM_KINDS: tuple[str, ...] = ("instance", "batch", "none")


def binomial_filter(size: int) -> Tensor:
    """A normalised 2-D binomial (blur) filter.

    Args:
        size: side of the filter, 1 to 7 in CUT (any positive size works here).
    Returns:
        (size, size) float32 filter whose entries sum to 1: the outer product of the row
        ``[C(size-1, k) for k in 0..size-1]`` with itself, divided by its sum.
    """
    if size < 1:
        raise ValueError(f"filter size must be positive, got {size}")
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float32)
    filt = row[:, None] * row[None, :]
    return filt / filt.sum()


def _norm_layer(kind: str, channels: int) -> nn.Module:
    """Normalisation layer by name, configured as in CUT's ``get_norm_layer``.

    Args:
        kind: ``"instance"`` (no affine, no running stats), ``"batch"`` (affine, running stats)
            or ``"none"`` (identity).
        channels: number of channels normalised.
    Returns:
        the layer.
    """
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected one of {', '.join(_NORM_KINDS)}")


def _check_norm(norm: str) -> None:
    if norm not in _NORM_KINDS:
        raise ValueError(f"unknown norm {norm!r}; expected one of {', '.join(_NORM_KINDS)}")


class BlurDownsample(nn.Module):
    """Anti-aliased downsampling ("blur pool", Zhang 2019): blur, then keep every second pixel.

    A fixed depthwise binomial filter applied with stride 2 after reflection padding, as CUT's
    ``Downsample``. Output size is ceil(H / 2) x ceil(W / 2) for the default filter size 3.

    Args:
        channels: number of input (and output) channels.
        filt_size: side of the binomial filter.
        stride: subsampling factor.
    """

    filt: Tensor

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.filt_size = filt_size
        self.stride = stride
        lo, hi = (filt_size - 1) // 2, filt_size // 2
        self.pad = nn.ReflectionPad2d((lo, hi, lo, hi))
        filt = binomial_filter(filt_size)
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Blur and subsample.

        Args:
            x: (B, channels, H, W) features.
        Returns:
            (B, channels, ceil(H / stride), ceil(W / stride)) features for odd filter sizes.
        """
        if self.filt_size == 1:
            return x[:, :, :: self.stride, :: self.stride]
        return F.conv2d(self.pad(x), self.filt, stride=self.stride, groups=x.shape[1])


def replicate_pad1(x: Tensor) -> Tensor:
    """Replicate-pad the last two dimensions by one pixel on each side.

    The same values as ``F.pad(x, (1, 1, 1, 1), mode="replicate")``, built from slices and
    concatenations: torch.compile (torch 2.14) fails on the backward of ``replication_pad2d``
    when it lays the input out channels-last, which it chooses for convolution outputs.

    Args:
        x: (B, C, H, W) features.
    Returns:
        (B, C, H + 2, W + 2) features.
    """
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
    return torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], dim=3)


class BlurUpsample(nn.Module):
    """Anti-aliased 2x upsampling: transposed convolution with a fixed binomial filter.

    CUT's ``Upsample``: replicate-pad by one pixel, depthwise transposed convolution (stride 2)
    with a binomial filter scaled by stride**2, then crop. With the default filter size 4 the
    output is exactly (2H, 2W) for any input size.

    Args:
        channels: number of input (and output) channels.
        filt_size: side of the binomial filter.
        stride: upsampling factor.
    """

    filt: Tensor

    def __init__(self, channels: int, filt_size: int = 4, stride: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.filt_size = filt_size
        self.stride = stride
        self.pad_size = (filt_size - 1) // 2
        filt = binomial_filter(filt_size) * stride**2
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Upsample.

        Args:
            x: (B, channels, H, W) features.
        Returns:
            (B, channels, 2H, 2W) features (for the default stride 2 and filter size 4).
        """
        out = F.conv_transpose2d(
            replicate_pad1(x),
            self.filt,
            stride=self.stride,
            padding=1 + self.pad_size,
            groups=x.shape[1],
        )[:, :, 1:, 1:]
        if self.filt_size % 2 == 1:
            return out
        return out[:, :, :-1, :-1]


class ResnetBlock(nn.Module):
    """Residual block: x + [pad, conv3x3, norm, ReLU, (dropout), pad, conv3x3, norm](x).

    Args:
        channels: number of input (and output) channels.
        norm: normalisation after each convolution.
        dropout: insert Dropout(0.5) between the two convolutions.
        bias: give the convolutions a bias.
    """

    def __init__(self, channels: int, norm: NormKind, dropout: bool, bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=bias),
            _norm_layer(norm, channels),
            nn.ReLU(),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=bias),
            _norm_layer(norm, channels),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block.

        Args:
            x: (B, channels, H, W) features.
        Returns:
            (B, channels, H, W) features.
        """
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN/CUT ResNet generator: 2 downsamplings, ``n_blocks`` residual blocks, 2 upsamplings.

    The layers form one flat ``nn.Sequential`` (``self.model``); ``encode_features`` returns the
    outputs of chosen layers by their index there. With ``antialias=True`` (the default, as CUT
    and F-LSeSim) the indices are::

        0   ReflectionPad2d(3)        the padded input image            in_channels
        1   Conv 7x7                                                    ngf
        2   norm
        3   ReLU
        4   Conv 3x3 (stride 1)       first downsampling block          2 ngf, H
        5   norm
        6   ReLU
        7   BlurDownsample                                              2 ngf, H/2
        8   Conv 3x3 (stride 1)       second downsampling block         4 ngf, H/2
        9   norm
        10  ReLU
        11  BlurDownsample                                              4 ngf, H/4
        12 .. 11+n_blocks             ResnetBlocks                      4 ngf, H/4
        then 2 x [BlurUpsample, Conv 3x3, norm, ReLU], ReflectionPad2d(3), Conv 7x7, Tanh.

    With ``antialias=False`` each downsampling block is [Conv 3x3 stride 2, norm, ReLU] (so the
    convolutions sit at 4 and 7 and the residual blocks start at 10) and each upsampling block is
    [ConvTranspose 3x3 stride 2, norm, ReLU].

    CUT's default ``--nce_layers 0,4,8,12,16`` picks the padded input, the two downsampling
    convolutions, and the outputs of the 1st and 5th residual blocks; ``default_nce_layers`` gives
    those same layers in this model's numbering (``(0, 4, 8, 12, 16)`` with anti-aliasing,
    ``(0, 4, 7, 10, 14)`` without), dropping the 5th block when ``n_blocks < 5``.

    Input height and width must be multiples of ``self.multiple`` (2 ** n_downsampling, 4 by
    default): every size that is, odd intermediate sizes included (e.g. 36 -> 18 -> 9), comes
    back at the input size.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        ngf: filters of the first convolution (doubled by each downsampling).
        n_blocks: number of residual blocks (9 for 256x256 images, 6 for 128x128 in CycleGAN).
        norm: ``"instance"`` (no affine, no running stats), ``"batch"`` or ``"none"``.
        antialias: blur-pool downsampling and binomial transposed-conv upsampling (CUT's default);
            False uses strided convolutions and ConvTranspose2d.
        dropout: Dropout(0.5) inside the residual blocks.
        n_downsampling: downsampling (and upsampling) steps; 2 as CycleGAN and CUT. Fewer keep
            a finer grid for the residual blocks (thin structures of small images survive it);
            inputs must be multiples of ``2 ** n_downsampling`` (``self.multiple``).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: NormKind = "instance",
        antialias: bool = True,
        dropout: bool = False,
        n_downsampling: int = 2,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        if n_downsampling < 0:
            raise ValueError(f"n_downsampling must be >= 0, got {n_downsampling}")
        self.multiple: int = 2**n_downsampling
        self.n_downsampling = n_downsampling
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.ngf = ngf
        self.n_blocks = n_blocks
        self.norm = norm
        self.antialias = antialias
        bias = norm != "batch"

        layers: list[nn.Module] = []
        channels: list[int] = []  # output channels of each layer

        def add(layer: nn.Module, out: int) -> None:
            layers.append(layer)
            channels.append(out)

        add(nn.ReflectionPad2d(3), in_channels)
        add(nn.Conv2d(in_channels, ngf, kernel_size=7, bias=bias), ngf)
        add(_norm_layer(norm, ngf), ngf)
        add(nn.ReLU(), ngf)

        down_convs: list[int] = []
        c = ngf
        for _ in range(n_downsampling):
            down_convs.append(len(layers))
            if antialias:
                add(nn.Conv2d(c, 2 * c, kernel_size=3, stride=1, padding=1, bias=bias), 2 * c)
                add(_norm_layer(norm, 2 * c), 2 * c)
                add(nn.ReLU(), 2 * c)
                add(BlurDownsample(2 * c), 2 * c)
            else:
                add(nn.Conv2d(c, 2 * c, kernel_size=3, stride=2, padding=1, bias=bias), 2 * c)
                add(_norm_layer(norm, 2 * c), 2 * c)
                add(nn.ReLU(), 2 * c)
            c *= 2

        first_block = len(layers)
        for _ in range(n_blocks):
            add(ResnetBlock(c, norm, dropout, bias), c)

        for _ in range(n_downsampling):
            if antialias:
                add(BlurUpsample(c), c)
                add(nn.Conv2d(c, c // 2, kernel_size=3, stride=1, padding=1, bias=bias), c // 2)
            else:
                add(
                    nn.ConvTranspose2d(
                        c, c // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias
                    ),
                    c // 2,
                )
            add(_norm_layer(norm, c // 2), c // 2)
            add(nn.ReLU(), c // 2)
            c //= 2

        add(nn.ReflectionPad2d(3), c)
        add(nn.Conv2d(c, out_channels, kernel_size=7), out_channels)
        add(nn.Tanh(), out_channels)

        self.model = nn.Sequential(*layers)
        self._layer_channels: tuple[int, ...] = tuple(channels)
        nce = [0, *down_convs, first_block, first_block + 4]
        self._default_nce_layers: tuple[int, ...] = tuple(
            i for i in nce if i < first_block + n_blocks
        )

    @property
    def num_layers(self) -> int:
        """Number of layers of the flat ``model`` (valid ``layer_ids`` are 0 .. num_layers - 1)."""
        return len(self.model)

    @property
    def default_nce_layers(self) -> tuple[int, ...]:
        """CUT's ``--nce_layers`` choice (input, both downsampling convs, residual blocks 1 and 5)
        in this model's layer numbering."""
        return self._default_nce_layers

    def feature_channels(self, layer_ids: Sequence[int]) -> list[int]:
        """Channels of the features ``encode_features`` returns for ``layer_ids``.

        Use it to size heads on top of the features, e.g. ``PatchSampleMLP``.

        Args:
            layer_ids: indices into ``model``.
        Returns:
            one channel count per requested layer, in the same order.
        """
        self._check_layer_ids(layer_ids)
        return [self._layer_channels[i] for i in layer_ids]

    def _check_layer_ids(self, layer_ids: Sequence[int]) -> None:
        check_layer_ids(layer_ids, len(self.model), "generator")

    def _check_size(self, x: Tensor) -> None:
        check_image_size(x, self.multiple)

    def forward(self, x: Tensor) -> Tensor:
        """Translate images.

        Args:
            x: (B, in_channels, H, W) images in [-1, 1]; H and W multiples of 4.
        Returns:
            (B, out_channels, H, W) images in [-1, 1].
        """
        self._check_size(x)
        out: Tensor = self.model(x)
        return out

    def encode_features(self, x: Tensor, layer_ids: Sequence[int]) -> list[Tensor]:
        """Outputs of the chosen layers of ``model``, running it only as far as needed.

        Args:
            x: (B, in_channels, H, W) images; H and W multiples of 4.
            layer_ids: indices into ``model`` (see the class docstring); any order, repeats
                allowed.
        Returns:
            one tensor per id, in the order of ``layer_ids``: (B, C_i, H_i, W_i), with C_i given
            by ``feature_channels``.
        """
        self._check_size(x)
        self._check_layer_ids(layer_ids)
        if not layer_ids:
            return []
        wanted = set(layer_ids)
        last = max(wanted)
        found: dict[int, Tensor] = {}
        feat = x
        for i, layer in enumerate(self.model):
            feat = layer(feat)
            if i in wanted:
                found[i] = feat
            if i == last:
                break
        return [found[i] for i in layer_ids]


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator (70x70 receptive field for ``n_layers=3``), as in CUT.

    Layers: Conv 4x4 + LeakyReLU(0.2); ``n_layers - 1`` blocks of Conv 4x4 + norm + LeakyReLU
    (filters doubling up to 8 ndf); Conv 4x4 (stride 1) + norm + LeakyReLU; Conv 4x4 to one
    channel. The first ``n_layers`` convolutions halve the resolution: with ``antialias`` they
    run at stride 1 followed by a ``BlurDownsample`` (CUT's default), otherwise at stride 2.
    A 256x256 input gives a 30x30 logit map and a 70x70 input a 6x6 one, with either kind of
    downsampling.

    Args:
        in_channels: channels of the images judged.
        ndf: filters of the first convolution.
        n_layers: number of downsampling convolutions.
        norm: ``"instance"`` (no affine, no running stats), ``"batch"`` or ``"none"``.
        antialias: blur-pool downsampling instead of strided convolutions.
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: NormKind = "instance",
        antialias: bool = True,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.in_channels = in_channels
        self.ndf = ndf
        self.n_layers = n_layers
        bias = norm != "batch"
        stride = 1 if antialias else 2

        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=4, stride=stride, padding=1),
            nn.LeakyReLU(0.2),
        ]
        if antialias:
            layers.append(BlurDownsample(ndf))
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(
                    ndf * prev, ndf * mult, kernel_size=4, stride=stride, padding=1, bias=bias
                ),
                _norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2),
            ]
            if antialias:
                layers.append(BlurDownsample(ndf * mult))
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=1, padding=1, bias=bias),
            _norm_layer(norm, ndf * mult),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Score every patch.

        Args:
            x: (B, in_channels, H, W) images.
        Returns:
            (B, 1, h, w) logits, one per overlapping patch (no sigmoid).
        """
        out: Tensor = self.model(x)
        return out


class PatchDiscriminatorPair(nn.Module):
    """A PatchGAN beside a second, local one that judges small patches (pix2pixHD-like pair).

    The main discriminator sees patches of about 70 px (``n_layers`` 3); the local one, with
    fewer layers, sees patches of 16 px (one layer) or 34 px (two; strided downsampling), so
    thin lines and small objects fill a large part of what it judges. The GAN losses in
    :mod:`sesim.losses.adversarial` take the list this returns and sum their terms over it, as
    over the scales of a multi-scale discriminator.

    Args:
        main: the main PatchGAN.
        local: the local PatchGAN.
    """

    def __init__(self, main: NLayerDiscriminator, local: NLayerDiscriminator) -> None:
        super().__init__()
        self.main = main
        self.local = local

    def forward(self, x: Tensor) -> list[Tensor]:
        """Score every patch with both discriminators.

        Args:
            x: (B, C, H, W) images.
        Returns:
            [(B, 1, h, w) main logits, (B, 1, h', w') local logits] (no sigmoid).
        """
        return [self.main(x), self.local(x)]


#: What the single-modal recipes' discriminators are: one PatchGAN, or a PatchGAN and a local one.
PatchDiscriminator = NLayerDiscriminator | PatchDiscriminatorPair
