"""MUNIT's AdaIN generator and multi-scale discriminator, for multi-modal translation.

The multi-modal mode of F/LSeSim is a one-sided MUNIT (Huang et al., ECCV 2018): a content
encoder maps the source image to a spatial content code, an MLP maps a style code (sampled from
N(0, I), or read from an example image by the style encoder) to the scales and shifts of the
decoder's AdaIN layers, and the decoder renders the target image. The discriminator judges the
image at three scales.

Architecture and defaults follow NVlabs/MUNIT (``networks.py``: ``AdaINGen``, ``MsImageDis``;
``configs/*.yaml``): ``dim`` 64, ``style_dim`` 8, ``n_downsample`` 2, ``n_res`` 4, ``mlp_dim``
256, ReLU, reflection padding; instance norm in the content encoder, AdaIN in the decoder's
residual blocks, MUNIT's layer norm after each upsampling convolution; a discriminator of
``n_layer`` 4 stride-2 convolutions per scale, no norm, LeakyReLU(0.2), 3 scales separated by
average pooling. Parameter names and shapes follow MUNIT's modules (``enc_style``,
``enc_content``, ``dec``, ``mlp``; ``cnns`` in the discriminator), so MUNIT parameters can be
loaded by name; MUNIT's state dicts also hold running-statistics buffers that nothing here uses,
so load them with ``strict=False``.

Departures from MUNIT:

- AdaIN parameters are passed explicitly (``Decoder.forward(content, adain_params)``) rather
  than assigned as ``weight``/``bias`` attributes of the AdaIN layers before each forward pass,
  so the modules hold no per-batch state and a decoder can run on several style batches at once.
- Instance norm always uses the statistics of each image. MUNIT builds it with
  ``track_running_stats=True``, which switches to running averages in eval mode; here train and
  eval mode compute the same function.
- ReLU and LeakyReLU are not in-place.
- The style encoder of ``MunitGenerator`` reads images of the *target* domain (``out_channels``
  channels), since the translator is one-sided.

Initialisation: ``MunitGenerator`` and ``MultiScaleDiscriminator`` apply MUNIT's scheme in their
constructors (Kaiming-normal fan-in convolutions and linear layers for the generator, N(0, 0.02)
for the discriminator, zero biases, layer-norm scales drawn from U(0, 1)) with torch's global
random source; call their ``reset_parameters(generator)`` to redraw them reproducibly.
"""

from __future__ import annotations

from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.nets import check_image_size
from sesim.nets.init import init_weights

PadKind = Literal["reflect", "zero"]
NormKind = Literal["instance", "layer", "none"]
_ActKind = Literal["relu", "lrelu", "tanh", "none"]

_PAD_KINDS: tuple[str, ...] = ("reflect", "zero")
_NORM_KINDS: tuple[str, ...] = ("instance", "layer", "none")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")


def _check_images(x: Tensor, channels: int, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(
            f"{what} must be a (B, {channels}, H, W) tensor, got shape {tuple(x.shape)}"
        )


# --- normalisation --------------------------------------------------------------------------------


class MunitLayerNorm(nn.Module):
    """MUNIT's layer norm: whole-sample statistics, per-channel affine.

    Each sample is normalised by the mean and the *unbiased* standard deviation of all its
    elements (channels and positions together), as ``(x - mean) / (std + eps)``, then scaled and
    shifted per channel. This differs from ``nn.LayerNorm``/``nn.GroupNorm(1, C)`` in the
    unbiased std, the eps added to the std rather than the variance, and the per-channel affine.

    Args:
        num_features: number of channels C.
        eps: added to the standard deviation.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.gamma = nn.Parameter(torch.empty(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw the scales from U(0, 1) (MUNIT's choice) and zero the shifts.

        Args:
            generator: random source; None uses torch's global one. It must live on the
                parameters' device.
        """
        with torch.no_grad():
            self.gamma.uniform_(0.0, 1.0, generator=generator)
            self.beta.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """Normalise.

        Args:
            x: (B, C, ...) features, at least two elements per sample.
        Returns:
            (B, C, ...) features.
        """
        b = x.shape[0]
        stat_shape = [b] + [1] * (x.ndim - 1)
        flat = x.reshape(b, -1)
        mean = flat.mean(dim=1).view(stat_shape)
        std = flat.std(dim=1).view(stat_shape)
        out = (x - mean) / (std + self.eps)
        affine_shape = [1, -1] + [1] * (x.ndim - 2)
        return out * self.gamma.view(affine_shape) + self.beta.view(affine_shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class AdaIN2d(nn.Module):
    """Adaptive instance normalisation with per-sample scales and shifts given at call time.

    ``AdaIN(x, beta, gamma) = gamma * (x - mean(x)) / sqrt(var(x) + eps) + beta``, with the mean
    and (biased) variance taken over the positions of each channel of each sample. The module has
    no parameters or buffers: ``gamma`` and ``beta`` come from the style MLP.

    Args:
        num_features: number of channels C.
        eps: added to the variance.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps

    @property
    def num_params(self) -> int:
        """Length of the per-sample parameter vector this layer takes: 2 C."""
        return 2 * self.num_features

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        """Normalise each channel of each sample, then apply that sample's scale and shift.

        Args:
            x: (B, C, H, W) features with H * W > 1.
            params: (B, 2 C) parameters: ``params[:, :C]`` are the shifts beta and
                ``params[:, C:]`` the scales gamma, used as they are (no +1 offset). This is
                MUNIT's order ("mean" then "std"), so MUNIT's style MLP works unchanged.
        Returns:
            (B, C, H, W) features.
        """
        c = self.num_features
        if params.ndim != 2 or params.shape != (x.shape[0], 2 * c):
            raise ValueError(
                f"AdaIN over {c} channels needs ({x.shape[0]}, {2 * c}) parameters, "
                f"got shape {tuple(params.shape)}"
            )
        beta = params[:, :c, None, None]
        gamma = params[:, c:, None, None]
        return F.instance_norm(x, eps=self.eps) * gamma + beta

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def _norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "layer":
        return MunitLayerNorm(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected one of {', '.join(_NORM_KINDS)}")


def _activation(kind: _ActKind) -> nn.Module:
    if kind == "relu":
        return nn.ReLU()
    if kind == "lrelu":
        return nn.LeakyReLU(0.2)
    if kind == "tanh":
        return nn.Tanh()
    return nn.Identity()


def _padding(kind: str, size: int) -> nn.Module:
    if kind == "reflect":
        return nn.ReflectionPad2d(size)
    if kind == "zero":
        return nn.ZeroPad2d(size)
    raise ValueError(f"unknown pad_type {kind!r}; expected one of {', '.join(_PAD_KINDS)}")


# --- building blocks ------------------------------------------------------------------------------


class _ConvBlock(nn.Module):
    """pad -> conv (with bias) -> norm -> activation, as MUNIT's ``Conv2dBlock``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        padding: int,
        norm: str,
        activation: _ActKind,
        pad_type: str,
    ) -> None:
        super().__init__()
        self.pad = _padding(pad_type, padding)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride)
        self.norm = _norm_layer(norm, out_channels)
        self.activation = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> (B, out_channels, H', W')."""
        out: Tensor = self.activation(self.norm(self.conv(self.pad(x))))
        return out


class _AdaINConvBlock(nn.Module):
    """pad -> conv 3x3 -> AdaIN -> activation; the AdaIN parameters come with the input."""

    def __init__(self, channels: int, activation: _ActKind, pad_type: str) -> None:
        super().__init__()
        self.pad = _padding(pad_type, 1)
        self.conv = nn.Conv2d(channels, channels, 3, 1)
        self.norm = AdaIN2d(channels)
        self.activation = _activation(activation)

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        """(B, C, H, W) features and (B, 2 C) AdaIN parameters -> (B, C, H, W)."""
        out: Tensor = self.activation(self.norm(self.conv(self.pad(x)), params))
        return out


class _ResBlock(nn.Module):
    """x + [conv 3x3, norm, ReLU, conv 3x3, norm](x)."""

    def __init__(self, channels: int, norm: str, pad_type: str) -> None:
        super().__init__()
        self.model = nn.Sequential(
            _ConvBlock(channels, channels, 3, 1, 1, norm, "relu", pad_type),
            _ConvBlock(channels, channels, 3, 1, 1, norm, "none", pad_type),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        out: Tensor = self.model(x)
        return x + out


class _ResBlocks(nn.Module):
    """A stack of residual blocks (kept as its own module for MUNIT's parameter names)."""

    def __init__(self, n_blocks: int, channels: int, norm: str, pad_type: str) -> None:
        super().__init__()
        self.model = nn.Sequential(*[_ResBlock(channels, norm, pad_type) for _ in range(n_blocks)])

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        out: Tensor = self.model(x)
        return out


class _AdaINResBlock(nn.Module):
    """x + [conv 3x3, AdaIN, ReLU, conv 3x3, AdaIN](x); takes 4 C AdaIN parameters."""

    def __init__(self, channels: int, pad_type: str) -> None:
        super().__init__()
        self.channels = channels
        self.model = nn.ModuleList(
            [
                _AdaINConvBlock(channels, "relu", pad_type),
                _AdaINConvBlock(channels, "none", pad_type),
            ]
        )

    @property
    def num_adain_params(self) -> int:
        return 4 * self.channels

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        """(B, C, H, W) features and (B, 4 C) parameters (first conv's, then second's)."""
        c2 = 2 * self.channels
        first, second = self.model
        out = first(x, params[:, :c2])
        out = second(out, params[:, c2:])
        return x + out


class _AdaINResBlocks(nn.Module):
    """A stack of AdaIN residual blocks; the parameter vector is split among them in order."""

    def __init__(self, n_blocks: int, channels: int, pad_type: str) -> None:
        super().__init__()
        self.model = nn.ModuleList([_AdaINResBlock(channels, pad_type) for _ in range(n_blocks)])

    @property
    def num_adain_params(self) -> int:
        return sum(block.num_adain_params for block in self.blocks())

    def blocks(self) -> list[_AdaINResBlock]:
        return [block for block in self.model if isinstance(block, _AdaINResBlock)]

    def forward(self, x: Tensor, params: Tensor) -> Tensor:
        """(B, C, H, W) features and (B, num_adain_params) parameters -> (B, C, H, W)."""
        start = 0
        for block in self.blocks():
            stop = start + block.num_adain_params
            x = block(x, params[:, start:stop])
            start = stop
        return x


class _LinearBlock(nn.Module):
    """fc -> activation, as MUNIT's ``LinearBlock`` without norm."""

    def __init__(self, in_features: int, out_features: int, activation: _ActKind) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.activation = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_features) -> (B, out_features)."""
        out: Tensor = self.activation(self.fc(x))
        return out


# --- encoders, decoder, MLP -----------------------------------------------------------------------


class ContentEncoder(nn.Module):
    """Content encoder: conv 7x7, ``n_downsample`` stride-2 convs 4x4, ``n_res`` residual blocks.

    Each downsampling doubles the channels, so the content code has
    ``out_channels = dim * 2**n_downsample`` channels at 1 / 2**n_downsample of the input size
    (for sides that are multiples of 2**n_downsample). Every convolution is followed by ``norm``
    and ReLU (the second convolution of each residual block has no activation).

    Args:
        in_channels: channels of the input image.
        dim: filters of the first convolution.
        n_downsample: number of stride-2 convolutions.
        n_res: number of residual blocks.
        norm: ``"instance"`` (MUNIT's choice; per-image statistics, no affine), ``"layer"``
            (``MunitLayerNorm``) or ``"none"``.
        pad_type: ``"reflect"`` (MUNIT's configs) or ``"zero"``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        dim: int = 64,
        n_downsample: int = 2,
        n_res: int = 4,
        norm: NormKind = "instance",
        pad_type: PadKind = "reflect",
    ) -> None:
        super().__init__()
        _check_choice("norm", norm, _NORM_KINDS)
        _check_choice("pad_type", pad_type, _PAD_KINDS)
        if n_downsample < 0 or n_res < 0:
            raise ValueError(f"n_downsample and n_res must be >= 0, got {n_downsample} and {n_res}")
        self.in_channels = in_channels
        self.n_downsample = n_downsample
        layers: list[nn.Module] = [_ConvBlock(in_channels, dim, 7, 1, 3, norm, "relu", pad_type)]
        for _ in range(n_downsample):
            layers.append(_ConvBlock(dim, 2 * dim, 4, 2, 1, norm, "relu", pad_type))
            dim *= 2
        layers.append(_ResBlocks(n_res, dim, norm, pad_type))
        self.model = nn.Sequential(*layers)
        self.out_channels = dim

    def forward(self, x: Tensor) -> Tensor:
        """Encode content.

        Args:
            x: (B, in_channels, H, W) images.
        Returns:
            (B, out_channels, H / 2**n_downsample, W / 2**n_downsample) content codes (sizes
            rounded down at each downsampling).
        """
        _check_images(x, self.in_channels, "images")
        out: Tensor = self.model(x)
        return out


class StyleEncoder(nn.Module):
    """Style encoder: convolutions, global average pooling, 1x1 conv to the style code.

    Conv 7x7 (``dim`` filters), two stride-2 convs 4x4 that double the channels, then
    ``n_downsample - 2`` stride-2 convs 4x4 that keep them, all with ReLU and no norm (MUNIT's
    ``StyleEncoder`` with ``norm="none"``, as ``AdaINGen`` builds it); then a global average pool
    and a 1x1 convolution to ``style_dim`` channels.

    Args:
        in_channels: channels of the images whose style is read.
        dim: filters of the first convolution.
        n_downsample: number of stride-2 convolutions, at least 2 (MUNIT uses 4).
        style_dim: length of the style code.
        pad_type: ``"reflect"`` or ``"zero"``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        dim: int = 64,
        n_downsample: int = 4,
        style_dim: int = 8,
        pad_type: PadKind = "reflect",
    ) -> None:
        super().__init__()
        _check_choice("pad_type", pad_type, _PAD_KINDS)
        if n_downsample < 2:
            raise ValueError(f"the style encoder needs n_downsample >= 2, got {n_downsample}")
        self.in_channels = in_channels
        self.n_downsample = n_downsample
        self.style_dim = style_dim
        layers: list[nn.Module] = [_ConvBlock(in_channels, dim, 7, 1, 3, "none", "relu", pad_type)]
        for _ in range(2):
            layers.append(_ConvBlock(dim, 2 * dim, 4, 2, 1, "none", "relu", pad_type))
            dim *= 2
        for _ in range(n_downsample - 2):
            layers.append(_ConvBlock(dim, dim, 4, 2, 1, "none", "relu", pad_type))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1, 1, 0)]
        self.model = nn.Sequential(*layers)

    @property
    def min_size(self) -> int:
        """Smallest accepted image side: max(4, 2**n_downsample)."""
        return max(4, 2**self.n_downsample)

    def forward(self, y: Tensor) -> Tensor:
        """Read the style of images.

        Args:
            y: (B, in_channels, H, W) images, both sides at least ``min_size``.
        Returns:
            (B, style_dim, 1, 1) style codes.
        """
        _check_images(y, self.in_channels, "style images")
        h, w = y.shape[-2:]
        if min(h, w) < self.min_size:
            raise ValueError(
                f"style images must be at least {self.min_size}x{self.min_size}, got {h}x{w}"
            )
        out: Tensor = self.model(y)
        return out


class Decoder(nn.Module):
    """AdaIN decoder: ``n_res`` AdaIN residual blocks, ``n_upsample`` x [nearest 2x, conv 5x5,
    norm, ReLU], conv 7x7 and tanh.

    The AdaIN layers take their parameters from ``forward``'s ``adain_params``: a (B, P) matrix,
    ``P = num_adain_params = 4 * dim * n_res``, split among the AdaIN layers in the order they
    run (block 1 conv 1, block 1 conv 2, block 2 conv 1, ...), each taking 2 * dim columns,
    shifts first and scales second (see ``AdaIN2d``).

    Args:
        out_channels: channels of the output image.
        dim: channels of the content code (``ContentEncoder.out_channels``); each upsampling
            halves them.
        n_upsample: number of 2x upsamplings.
        n_res: number of AdaIN residual blocks, at least 1.
        norm: norm after the upsampling convolutions: ``"layer"`` (MUNIT's choice,
            ``MunitLayerNorm``), ``"instance"`` or ``"none"``.
        pad_type: ``"reflect"`` or ``"zero"``.
    """

    def __init__(
        self,
        out_channels: int = 3,
        dim: int = 256,
        n_upsample: int = 2,
        n_res: int = 4,
        norm: NormKind = "layer",
        pad_type: PadKind = "reflect",
    ) -> None:
        super().__init__()
        _check_choice("norm", norm, _NORM_KINDS)
        _check_choice("pad_type", pad_type, _PAD_KINDS)
        if n_res < 1:
            raise ValueError(f"the decoder needs n_res >= 1 to take a style, got {n_res}")
        if n_upsample < 0:
            raise ValueError(f"n_upsample must be >= 0, got {n_upsample}")
        if dim % 2**n_upsample:
            raise ValueError(f"dim {dim} cannot be halved {n_upsample} times")
        self.in_channels = dim
        self.out_channels = out_channels
        self.n_upsample = n_upsample
        layers: list[nn.Module] = [_AdaINResBlocks(n_res, dim, pad_type)]
        for _ in range(n_upsample):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                _ConvBlock(dim, dim // 2, 5, 1, 2, norm, "relu", pad_type),
            ]
            dim //= 2
        layers.append(_ConvBlock(dim, out_channels, 7, 1, 3, "none", "tanh", pad_type))
        # A ModuleList (not a Sequential) because its first entry takes the AdaIN parameters.
        self.model = nn.ModuleList(layers)

    @property
    def res_blocks(self) -> _AdaINResBlocks:
        """The AdaIN residual blocks (``model[0]``)."""
        return cast(_AdaINResBlocks, self.model[0])

    @property
    def num_adain_params(self) -> int:
        """Columns of ``adain_params``: 2 * channels for each AdaIN layer (4 * dim * n_res)."""
        return self.res_blocks.num_adain_params

    def forward(self, content: Tensor, adain_params: Tensor) -> Tensor:
        """Render images from content codes and AdaIN parameters.

        Args:
            content: (B, dim, h, w) content codes with h, w >= 2.
            adain_params: (B, num_adain_params) AdaIN parameters, usually ``MLP(style)``.
        Returns:
            (B, out_channels, h * 2**n_upsample, w * 2**n_upsample) images in [-1, 1].
        """
        _check_images(content, self.in_channels, "content codes")
        expected = (content.shape[0], self.num_adain_params)
        if adain_params.ndim != 2 or tuple(adain_params.shape) != expected:
            raise ValueError(
                f"adain_params must have shape {expected}, got {tuple(adain_params.shape)}"
            )
        x = self.res_blocks(content, adain_params)
        for layer in self.model[1:]:
            x = layer(x)
        return x


class MLP(nn.Module):
    """Style MLP: ``n_blk`` linear layers mapping a style code to AdaIN parameters.

    Linear(style_dim, dim) + ReLU, ``n_blk - 2`` x [Linear(dim, dim) + ReLU], Linear(dim,
    out_dim) with no activation.

    Args:
        style_dim: length of the style code.
        out_dim: number of outputs (``Decoder.num_adain_params``).
        dim: hidden width (MUNIT's ``mlp_dim``, 256).
        n_blk: number of linear layers, at least 2.
    """

    def __init__(self, style_dim: int, out_dim: int, dim: int = 256, n_blk: int = 3) -> None:
        super().__init__()
        if n_blk < 2:
            raise ValueError(f"the style MLP needs n_blk >= 2, got {n_blk}")
        self.style_dim = style_dim
        self.out_dim = out_dim
        layers: list[nn.Module] = [_LinearBlock(style_dim, dim, "relu")]
        layers += [_LinearBlock(dim, dim, "relu") for _ in range(n_blk - 2)]
        layers.append(_LinearBlock(dim, out_dim, "none"))
        self.model = nn.Sequential(*layers)

    def forward(self, style: Tensor) -> Tensor:
        """Map style codes to AdaIN parameters.

        Args:
            style: (B, style_dim) or (B, style_dim, 1, 1) style codes.
        Returns:
            (B, out_dim) parameters.
        """
        out: Tensor = self.model(_style_matrix(style, None, self.style_dim))
        return out


def _style_matrix(style: Tensor, batch: int | None, style_dim: int) -> Tensor:
    """Check a (B, style_dim) or (B, style_dim, 1, 1) style code and return it as (B, style_dim)."""
    ok_shape = (style.ndim == 2 or (style.ndim == 4 and style.shape[2:] == (1, 1))) and (
        style.shape[1] == style_dim
    )
    if not ok_shape:
        raise ValueError(
            f"style codes must have shape (B, {style_dim}) or (B, {style_dim}, 1, 1), "
            f"got {tuple(style.shape)}"
        )
    if batch is not None and style.shape[0] != batch:
        raise ValueError(f"got {style.shape[0]} style codes for a batch of {batch} images")
    return style.flatten(1)


# --- generator and discriminator ------------------------------------------------------------------


class MunitGenerator(nn.Module):
    """One-sided MUNIT translator: content encoder, style MLP, AdaIN decoder, optional style
    encoder.

    ``forward(x, style)`` keeps the content (layout) of ``x`` and takes the appearance from the
    style code; with ``style = sample_style(B, generator)`` it draws one of many translations.
    The decoder mirrors the encoder, so it upsamples ``n_downsample`` times and shares ``n_res``.

    Input height and width must be multiples of ``multiple`` (2**n_downsample) and at least
    ``min_size`` (max(4, 2 * multiple), so that the content code is at least 2x2).

    Args:
        in_channels: channels of the source images.
        out_channels: channels of the translated (target-domain) images.
        dim: filters of the first encoder convolution (content codes have
            ``dim * 2**n_downsample`` channels).
        style_dim: length of the style code.
        n_downsample: downsamplings of the content encoder (and upsamplings of the decoder).
        n_res: residual blocks of the content encoder and AdaIN residual blocks of the decoder.
        mlp_dim: hidden width of the style MLP (3 layers).
        style_encoder: build a style encoder (4 downsamplings, as MUNIT) reading target-domain
            images, for example-guided translation.
        pad_type: ``"reflect"`` (MUNIT's configs) or ``"zero"``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        dim: int = 64,
        style_dim: int = 8,
        n_downsample: int = 2,
        n_res: int = 4,
        mlp_dim: int = 256,
        style_encoder: bool = True,
        pad_type: PadKind = "reflect",
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.style_dim = style_dim
        self.multiple = 2**n_downsample
        self.enc_style: StyleEncoder | None = (
            StyleEncoder(out_channels, dim, 4, style_dim, pad_type) if style_encoder else None
        )
        self.enc_content = ContentEncoder(
            in_channels, dim, n_downsample, n_res, "instance", pad_type
        )
        self.dec = Decoder(
            out_channels, self.enc_content.out_channels, n_downsample, n_res, "layer", pad_type
        )
        self.mlp = MLP(style_dim, self.dec.num_adain_params, mlp_dim, 3)
        self.reset_parameters()

    @property
    def min_size(self) -> int:
        """Smallest accepted image side."""
        return max(4, 2 * self.multiple)

    @property
    def content_channels(self) -> int:
        """Channels of the content code."""
        return self.enc_content.out_channels

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise as MUNIT's generator (``init: kaiming`` in its configs).

        Convolution and linear weights are Kaiming-normal (fan-in, a=0) with zero biases; the
        layer-norm scales are drawn from U(0, 1) and their shifts zeroed.

        Args:
            generator: random source for reproducible initialisation; None uses torch's global
                one. It must live on the parameters' device.
        """
        init_weights(self, "kaiming", generator=generator)
        for m in self.modules():
            if isinstance(m, MunitLayerNorm):
                m.reset_parameters(generator)

    def _check_size(self, x: Tensor) -> None:
        _check_images(x, self.in_channels, "images")
        check_image_size(x, self.multiple, self.min_size)

    def encode_content(self, x: Tensor) -> Tensor:
        """Content codes of source images.

        Args:
            x: (B, in_channels, H, W) images; H and W multiples of ``multiple``.
        Returns:
            (B, content_channels, H / multiple, W / multiple) content codes.
        """
        self._check_size(x)
        return self.enc_content(x)

    def encode_style(self, y: Tensor) -> Tensor:
        """Style codes of target-domain example images.

        Args:
            y: (B, out_channels, H, W) images, sides at least 16 (any size above that).
        Returns:
            (B, style_dim, 1, 1) style codes.
        Raises:
            RuntimeError: if the generator was built with ``style_encoder=False``.
        """
        if self.enc_style is None:
            raise RuntimeError(
                "this MunitGenerator has no style encoder (built with style_encoder=False); "
                "sample style codes with sample_style() instead"
            )
        return self.enc_style(y)

    def decode(self, content: Tensor, style: Tensor) -> Tensor:
        """Render content codes in the given styles.

        Args:
            content: (B, content_channels, h, w) content codes.
            style: (B, style_dim) or (B, style_dim, 1, 1) style codes.
        Returns:
            (B, out_channels, h * multiple, w * multiple) images in [-1, 1].
        """
        style = _style_matrix(style, content.shape[0], self.style_dim)
        return self.dec(content, self.mlp(style))

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """Translate images in the given styles.

        Args:
            x: (B, in_channels, H, W) source images in [-1, 1]; H and W multiples of
                ``multiple`` and at least ``min_size``.
            style: (B, style_dim) or (B, style_dim, 1, 1) style codes, one per image.
        Returns:
            (B, out_channels, H, W) translated images in [-1, 1].
        """
        self._check_size(x)
        _style_matrix(style, x.shape[0], self.style_dim)
        return self.decode(self.enc_content(x), style)

    def sample_style(
        self,
        batch: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """Draw style codes from the prior N(0, I).

        The codes are drawn on the generator's device (the CPU for None), so a CPU generator
        gives the same codes whatever device they are then moved to.

        Args:
            batch: number of codes B.
            generator: random source; None uses torch's global one.
            device: device of the result; None uses the device of this module's parameters.
            dtype: dtype of the result; None uses the dtype of this module's parameters.
        Returns:
            (B, style_dim, 1, 1) style codes.
        """
        param = next(self.parameters())
        draw_device = generator.device if generator is not None else torch.device("cpu")
        z = torch.randn(batch, self.style_dim, 1, 1, generator=generator, device=draw_device)
        return z.to(
            device=param.device if device is None else device,
            dtype=param.dtype if dtype is None else dtype,
            non_blocking=True,
        )


class MultiScaleDiscriminator(nn.Module):
    """MUNIT's multi-scale discriminator: one conv net per scale, images halved between scales.

    Each scale's net is ``n_layer`` stride-2 convs 4x4 (``dim`` filters, doubling after the
    first; the first without norm, the others with ``norm``; LeakyReLU(0.2) after each) and a
    1x1 convolution to one channel. Between scales the image is average-pooled (3x3, stride 2,
    padding 1, padding excluded from the average), so scale ``s`` sees the image at about
    1 / 2**s of its size and returns a logit map about 1 / 2**(s + n_layer) of it.

    Args:
        in_channels: channels of the images judged.
        dim: filters of the first convolution.
        n_layer: stride-2 convolutions per scale.
        num_scales: number of scales.
        norm: ``"none"`` (MUNIT's configs), ``"instance"`` or ``"layer"``.
        pad_type: ``"reflect"`` (MUNIT's configs) or ``"zero"``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        dim: int = 64,
        n_layer: int = 4,
        num_scales: int = 3,
        norm: NormKind = "none",
        pad_type: PadKind = "reflect",
    ) -> None:
        super().__init__()
        _check_choice("norm", norm, _NORM_KINDS)
        _check_choice("pad_type", pad_type, _PAD_KINDS)
        if n_layer < 1 or num_scales < 1:
            raise ValueError(f"n_layer and num_scales must be >= 1, got {n_layer} and {num_scales}")
        self.in_channels = in_channels
        self.n_layer = n_layer
        self.num_scales = num_scales
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.cnns = nn.ModuleList(
            [self._make_net(in_channels, dim, n_layer, norm, pad_type) for _ in range(num_scales)]
        )
        self.reset_parameters()

    @staticmethod
    def _make_net(in_channels: int, dim: int, n_layer: int, norm: str, pad_type: str) -> nn.Module:
        layers: list[nn.Module] = [_ConvBlock(in_channels, dim, 4, 2, 1, "none", "lrelu", pad_type)]
        for _ in range(n_layer - 1):
            layers.append(_ConvBlock(dim, 2 * dim, 4, 2, 1, norm, "lrelu", pad_type))
            dim *= 2
        layers.append(nn.Conv2d(dim, 1, 1, 1, 0))
        return nn.Sequential(*layers)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Initialise as MUNIT's discriminator (``weights_init("gaussian")``).

        Convolution weights are drawn from N(0, 0.02) with zero biases; layer-norm scales (only
        with ``norm="layer"``) from U(0, 1).

        Args:
            generator: random source for reproducible initialisation; None uses torch's global
                one. It must live on the parameters' device.
        """
        init_weights(self, "normal", gain=0.02, generator=generator)
        for m in self.modules():
            if isinstance(m, MunitLayerNorm):
                m.reset_parameters(generator)

    def output_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Sizes of the logit maps for an input size.

        Args:
            height: input height.
            width: input width.
        Returns:
            one (h, w) per scale, coarsest last.
        Raises:
            ValueError: if some convolution would see a side smaller than 2.
        """
        sizes: list[tuple[int, int]] = []
        h, w = height, width
        for scale in range(self.num_scales):
            sh, sw = h, w
            for _ in range(self.n_layer):
                if min(sh, sw) < 2:
                    raise ValueError(
                        f"a {height}x{width} input is too small for {self.num_scales} scales of "
                        f"{self.n_layer} stride-2 layers (scale {scale} would reach {sh}x{sw})"
                    )
                sh, sw = sh // 2, sw // 2
            sizes.append((sh, sw))
            h, w = (h + 1) // 2, (w + 1) // 2
        return sizes

    def forward(self, x: Tensor) -> list[Tensor]:
        """Score the images at every scale.

        Args:
            x: (B, in_channels, H, W) images.
        Returns:
            ``num_scales`` logit maps (no sigmoid), finest first: (B, 1, h_s, w_s) with sizes
            given by ``output_sizes(H, W)``.
        """
        _check_images(x, self.in_channels, "images")
        self.output_sizes(x.shape[-2], x.shape[-1])
        outputs: list[Tensor] = []
        for i, net in enumerate(self.cnns):
            outputs.append(net(x))
            if i + 1 < len(self.cnns):
                x = self.downsample(x)
        return outputs
