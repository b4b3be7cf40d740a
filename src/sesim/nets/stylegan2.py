"""StyleGAN2-style encoder-decoder generator and discriminator for single-image translation.

These are the ``netG="stylegan2"`` / ``netD="stylegan2"`` networks of CUT's single-image model
(SinCUT, ``models/stylegan_networks.py``) in the variant the public F-LSeSim code uses for its
single-image model ``sinsc``: the generator ends in a tanh and the discriminator stops its
downsampling at 8x8 (CUT's stops at 4x4; ``final_resolution=4`` gives that one). The F-LSeSim
``sinsc`` defaults are ``ngf=8``, ``ndf=8``, ``num_downsampling=2``, 6 residual blocks (3 in the
encoder, 3 in the decoder) and 128-pixel crops.

Building blocks, all in plain PyTorch (no custom CUDA kernels, so everything runs on the CPU):

- equalised learning rate: weights stored as N(0, 1) and scaled by 1/sqrt(fan_in) at run time;
- "fused" leaky ReLU: ``leaky_relu(x + b, 0.2) * sqrt(2)`` with a learned per-channel bias;
- blur with the [1, 3, 3, 1] binomial filter (zero padding, depthwise ``conv2d``) before every
  strided convolution and after every transposed one;
- modulated convolutions with weight demodulation (StyleGAN2). CUT gives them no style code: the
  modulation is a constant vector of ones, so the modulated convolution is a demodulated (unit
  norm per output filter) convolution. ``ModulatedConv2d`` still accepts a style code when it is
  built with ``style_dim``; the generator does not use it.

Module and attribute names follow the F-LSeSim code (``encoder.convs``, ``decoder.convs``,
``convs``, ``final_conv``, ``final_linear``), so state dicts of networks trained there load here.

These networks draw their weights from N(0, 1) in ``__init__`` (as the reference code, which
skips its usual initialisation for them); do not pass them to ``sesim.nets.init.init_weights``.

One departure: the reference injects fresh noise after each upsampling convolution on every
call, at test time too. Here the noise is drawn only when asked for (by default in training mode)
and from an optional ``torch.Generator``; in evaluation mode the generator is deterministic
(equivalent to replacing the noise by its mean, zero). The learned noise strengths start at zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.nets import check_image_size, check_layer_ids

_SQRT2 = math.sqrt(2.0)
_BLUR_TAPS: tuple[int, ...] = (1, 3, 3, 1)


def _pow2_round(size: int) -> int:
    """The power of two nearest to ``size`` in log scale (CUT's ``2 ** rint(log2(size))``)."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return int(2 ** round(math.log2(size)))


def generator_channels(resolution: int, ngf: int) -> int:
    """Feature channels of the StyleGAN2 generator at a given feature-map resolution.

    CUT's table: ``512 * ngf / resolution`` channels, capped at 512 for resolutions of 32 and
    below (so with ``ngf=8``: 32 channels at 128 px, 64 at 64 px, 128 at 32 px).

    Args:
        resolution: side of the feature map, a power of two.
        ngf: base width (CUT's ``--ngf``).
    Returns:
        the channel count (at least 1).
    """
    channels = round(512 * ngf / resolution)
    if resolution <= 32:
        channels = min(512, channels)
    return max(1, channels)


def discriminator_channels(resolution: int, ndf: int) -> int:
    """Feature channels of the StyleGAN2 discriminator at a given feature-map resolution.

    CUT's table: ``256 * ndf / resolution`` channels, capped at 384 for resolutions of 32 and
    below (so with ``ndf=8``: 16 channels at 128 px, 128 at 16 px, 384 at 4 px).

    Args:
        resolution: side of the feature map, a power of two.
        ndf: base width (CUT's ``--ndf``).
    Returns:
        the channel count (at least 1).
    """
    channels = round(256 * ndf / resolution)
    if resolution <= 32:
        channels = min(384, channels)
    return max(1, channels)


def blur_kernel(taps: Sequence[int] = _BLUR_TAPS) -> Tensor:
    """Separable 2-D blur filter from 1-D taps, normalised to sum 1.

    Args:
        taps: the 1-D filter, [1, 3, 3, 1] in StyleGAN2.
    Returns:
        (len(taps), len(taps)) float32 filter.
    """
    row = torch.tensor(list(taps), dtype=torch.float32)
    kernel = row[None, :] * row[:, None]
    return kernel / kernel.sum()


def fused_leaky_relu(
    x: Tensor, bias: Tensor, negative_slope: float = 0.2, scale: float = _SQRT2
) -> Tensor:
    """``leaky_relu(x + bias) * scale``, StyleGAN2's bias-and-activation step.

    Args:
        x: (B, C, ...) inputs.
        bias: a tensor broadcastable to ``x``, e.g. (1, C, 1, 1) or (C,) for (B, C) inputs.
        negative_slope: slope for negative inputs.
        scale: output gain; sqrt(2) keeps the second moment of unit-variance inputs.
    Returns:
        tensor of the shape of ``x``.
    """
    return F.leaky_relu(x + bias, negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """Learned per-channel bias followed by a scaled leaky ReLU (see `fused_leaky_relu`).

    Args:
        channels: number of channels of the inputs.
        negative_slope: slope for negative inputs.
        scale: output gain.
    """

    def __init__(self, channels: int, negative_slope: float = 0.2, scale: float = _SQRT2) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        """Apply bias and activation.

        Args:
            x: (B, channels, H, W) features.
        Returns:
            (B, channels, H, W) features.
        """
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


class ScaledLeakyReLU(nn.Module):
    """Leaky ReLU times a gain, without bias (used where a convolution has no bias).

    Args:
        negative_slope: slope for negative inputs.
        scale: output gain.
    """

    def __init__(self, negative_slope: float = 0.2, scale: float = _SQRT2) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        """Apply the activation.

        Args:
            x: (B, C, H, W) features.
        Returns:
            (B, C, H, W) features.
        """
        return F.leaky_relu(x, self.negative_slope) * self.scale


class Blur(nn.Module):
    """Zero-pad, then filter every channel with a fixed 2-D kernel (``upfirdn2d`` with up=down=1).

    Output size is ``H + pad[0] + pad[1] - k + 1`` for a k x k kernel.

    Args:
        pad: zeros added before and after, on both spatial axes.
        taps: 1-D taps of the separable kernel (normalised to sum 1).
        gain: factor applied to the kernel (``factor ** 2`` after a zero-stuffing upsampling,
            to keep the average brightness).
    """

    kernel: Tensor

    def __init__(
        self, pad: tuple[int, int], taps: Sequence[int] = _BLUR_TAPS, gain: float = 1.0
    ) -> None:
        super().__init__()
        if min(pad) < 0:
            raise ValueError(f"blur padding must be non-negative, got {pad}")
        self.pad = (int(pad[0]), int(pad[1]))
        self.register_buffer("kernel", blur_kernel(taps) * gain)

    def forward(self, x: Tensor) -> Tensor:
        """Blur.

        Args:
            x: (B, C, H, W) features.
        Returns:
            (B, C, H + pad0 + pad1 - k + 1, W + pad0 + pad1 - k + 1) features.
        """
        channels = x.shape[1]
        p0, p1 = self.pad
        x = F.pad(x, [p0, p1, p0, p1])
        # A true convolution flips the kernel (a no-op for the symmetric binomial filters).
        weight = torch.flip(self.kernel, [0, 1]).to(x.dtype)
        weight = weight[None, None].expand(channels, 1, *weight.shape)
        return F.conv2d(x, weight, groups=channels)


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate: N(0, 1) weights scaled by 1/sqrt(fan_in).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: side of the square kernel.
        stride: stride.
        padding: zero padding on each side.
        bias: learn an additive bias (initialised to zero).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        """Convolve.

        Args:
            x: (B, in_channels, H, W) features.
        Returns:
            (B, out_channels, H', W') features.
        """
        return F.conv2d(
            x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding
        )


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate, optionally followed by the fused leaky ReLU.

    Args:
        in_features: input features.
        out_features: output features.
        bias: learn an additive bias.
        bias_init: initial value of the bias (1 for style modulations).
        lr_mul: learning-rate multiplier: weights are stored divided by it and scaled back.
        activate: apply `fused_leaky_relu` with the bias instead of adding it.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activate: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layer.

        Args:
            x: (B, in_features) inputs.
        Returns:
            (B, out_features) outputs.
        """
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activate:
            out = F.linear(x, self.weight * self.scale)
            return (
                fused_leaky_relu(out, bias) if bias is not None else F.leaky_relu(out, 0.2) * _SQRT2
            )
        return F.linear(x, self.weight * self.scale, bias)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution with weight demodulation.

    The weight is scaled per input channel by a style s (``w'_{oik} = w_{oik} s_i``) and, with
    ``demodulate``, divided by ``sqrt(sum_{ik} w'_{oik}^2 + 1e-8)`` so every output filter has
    unit norm: unit-variance i.i.d. inputs give unit-variance outputs. Without a style code
    (``style_dim=None``, CUT's choice) s is all ones and the convolution is shared by the batch.

    With ``upsample`` the convolution is transposed with stride 2 and followed by a blur, giving
    (2H, 2W); otherwise it is a same-padded convolution (odd kernel sizes).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: side of the square kernel (odd).
        style_dim: size of the style code mapped to the per-channel scales; None for no style.
        demodulate: normalise every output filter to unit norm.
        upsample: double the resolution.
        taps: 1-D taps of the blur filter used with ``upsample``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int | None = None,
        demodulate: bool = True,
        upsample: bool = False,
        taps: Sequence[int] = _BLUR_TAPS,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.style_dim = style_dim
        self.demodulate = demodulate
        self.upsample = upsample
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
        )
        self.modulation = (
            EqualLinear(style_dim, in_channels, bias_init=1.0)
            if style_dim is not None and style_dim > 0
            else None
        )
        if upsample:
            # Transposed conv gives 2H + k - 2; the blur brings it back to exactly 2H.
            p = (len(taps) - 2) - (kernel_size - 1)
            self.blur: Blur | None = Blur(((p + 1) // 2 + 1, p // 2 + 1), taps, gain=4.0)
        else:
            self.blur = None

    def _weights(self, style: Tensor | None) -> Tensor:
        """(B or 1, out, in, k, k) modulated, optionally demodulated weights."""
        weight = self.scale * self.weight
        if style is not None:
            if self.modulation is None:
                raise ValueError("this ModulatedConv2d has no style_dim; pass style=None")
            scales = self.modulation(style)
            weight = weight * scales[:, None, :, None, None]
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
            weight = weight * demod
        return weight

    def forward(self, x: Tensor, style: Tensor | None = None) -> Tensor:
        """Convolve.

        Args:
            x: (B, in_channels, H, W) features.
            style: (B, style_dim) style codes, or None for the constant all-ones modulation.
        Returns:
            (B, out_channels, H, W), or (B, out_channels, 2H, 2W) with ``upsample``.
        """
        batch, _, height, width = x.shape
        weight = self._weights(style).to(x.dtype)
        k = self.kernel_size
        if style is None:
            w = weight[0]  # (out, in, k, k), shared by the batch
            if self.blur is not None:
                out = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
                return self.blur(out)
            return F.conv2d(x, w, padding=self.padding)
        # One group per sample: its own weights.
        grouped = x.reshape(1, batch * self.in_channels, height, width)
        if self.blur is not None:
            w = weight.transpose(1, 2).reshape(batch * self.in_channels, self.out_channels, k, k)
            out = F.conv_transpose2d(grouped, w, stride=2, groups=batch)
            out = out.reshape(batch, self.out_channels, *out.shape[-2:])
            return self.blur(out)
        w = weight.reshape(batch * self.out_channels, self.in_channels, k, k)
        out = F.conv2d(grouped, w, padding=self.padding, groups=batch)
        return out.reshape(batch, self.out_channels, *out.shape[-2:])


class NoiseInjection(nn.Module):
    """Adds per-pixel noise with a learned strength (initialised to zero): ``x + w * noise``."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        """Add noise.

        Args:
            x: (B, C, H, W) features.
            noise: (B, 1, H, W) noise, or None to add nothing.
        Returns:
            (B, C, H, W) features.
        """
        if noise is None:
            return x
        return x + self.weight * noise


class StyledConv(nn.Module):
    """Modulated convolution, optional noise injection, fused leaky ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: side of the square kernel (odd).
        style_dim: size of the style code; None (CUT) for the constant modulation.
        upsample: double the resolution.
        demodulate: weight demodulation.
        inject_noise: accept per-pixel noise (``forward``'s ``noise``); CUT's ``stylegan2``
            has it, ``smallstylegan2`` does not.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int | None = None,
        upsample: bool = False,
        demodulate: bool = True,
        inject_noise: bool = True,
    ) -> None:
        super().__init__()
        self.inject_noise = inject_noise
        self.conv = ModulatedConv2d(
            in_channels,
            out_channels,
            kernel_size,
            style_dim,
            demodulate=demodulate,
            upsample=upsample,
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(
        self, x: Tensor, style: Tensor | None = None, noise: Tensor | None = None
    ) -> Tensor:
        """Apply the layer.

        Args:
            x: (B, in_channels, H, W) features.
            style: (B, style_dim) style codes or None.
            noise: (B, 1, H', W') noise at the output resolution, or None for none (ignored
                when built with ``inject_noise=False``).
        Returns:
            (B, out_channels, H', W') features, H' = 2H with ``upsample``, else H.
        """
        out = self.conv(x, style)
        if self.inject_noise:
            out = self.noise(out, noise)
        return self.activate(out)


class ConvLayer(nn.Sequential):
    """[blur,] equalised conv [, fused or scaled leaky ReLU], the StyleGAN2 discriminator layer.

    With ``downsample`` the convolution has stride 2 and no padding, preceded by a blur whose
    padding makes the output exactly (H/2, W/2) for even H, W. Otherwise it is same-padded.
    With ``activate`` the bias lives in the activation (`FusedLeakyReLU`) when ``bias`` is set,
    and a `ScaledLeakyReLU` without bias is used otherwise.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: side of the square kernel (odd).
        downsample: halve the resolution.
        bias: learn a bias.
        activate: apply the leaky ReLU.
        taps: 1-D taps of the blur filter.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        downsample: bool = False,
        bias: bool = True,
        activate: bool = True,
        taps: Sequence[int] = _BLUR_TAPS,
    ) -> None:
        layers: list[nn.Module] = []
        if downsample:
            p = (len(taps) - 2) + (kernel_size - 1)
            layers.append(Blur(((p + 1) // 2, p // 2), taps))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(
            EqualConv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                bias=bias and not activate,
            )
        )
        if activate:
            layers.append(FusedLeakyReLU(out_channels) if bias else ScaledLeakyReLU())
        super().__init__(*layers)


class ResBlock(nn.Module):
    """StyleGAN2 residual block: ``(conv2(conv1(x)) + skip(x)) / sqrt(2)``.

    ``conv1`` is a 3x3 `ConvLayer` keeping the channels, ``conv2`` a 3x3 `ConvLayer` to
    ``out_channels`` (halving the resolution with ``downsample``), and ``skip`` a bias-free 1x1
    `ConvLayer` without activation (also downsampling) or the identity when shapes already match.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        downsample: halve the resolution.
        taps: 1-D taps of the blur filter.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        downsample: bool = True,
        taps: Sequence[int] = _BLUR_TAPS,
    ) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=downsample, taps=taps)
        self.skip: nn.Module
        if in_channels != out_channels or downsample:
            self.skip = ConvLayer(
                in_channels, out_channels, 1, downsample=downsample, bias=False, activate=False
            )
        else:
            self.skip = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block.

        Args:
            x: (B, in_channels, H, W) features, H and W even with ``downsample``.
        Returns:
            (B, out_channels, H', W') features, H' = H/2 with ``downsample``, else H.
        """
        out = self.conv2(self.conv1(x))
        return (out + self.skip(x)) / _SQRT2


class StyleGAN2Encoder(nn.Module):
    """Encoder half of `StyleGAN2Generator`: a flat ``convs`` sequence.

    Layers (indices into ``convs``)::

        0                       Identity (the input image)                 in_channels, H
        1                       1x1 ConvLayer                              C(r), H
        2 .. 1+num_downsampling downsampling ResBlocks                     C(r / 2^i), H / 2^i
        then n_blocks // 2      ResBlocks at the bottleneck resolution

    where r is ``resolution`` rounded to a power of two and C is `generator_channels`.

    Args:
        in_channels: channels of the input image.
        ngf: base width.
        n_blocks: residual blocks of the whole generator (half here, half in the decoder).
        num_downsampling: number of resolution halvings.
        resolution: training crop size, which sets the channel widths as in CUT.
    """

    def __init__(
        self,
        in_channels: int = 3,
        ngf: int = 8,
        n_blocks: int = 6,
        num_downsampling: int = 2,
        resolution: int = 128,
    ) -> None:
        super().__init__()
        res = _pow2_round(resolution)
        layers: list[nn.Module] = [
            nn.Identity(),
            ConvLayer(in_channels, generator_channels(res, ngf), 1),
        ]
        channels = [in_channels, generator_channels(res, ngf)]
        for _ in range(num_downsampling):
            c_in, c_out = generator_channels(res, ngf), generator_channels(res // 2, ngf)
            layers.append(ResBlock(c_in, c_out, downsample=True))
            channels.append(c_out)
            res //= 2
        for _ in range(n_blocks // 2):
            c = generator_channels(res, ngf)
            layers.append(ResBlock(c, c, downsample=False))
            channels.append(c)
        self.convs = nn.Sequential(*layers)
        self.layer_channels: tuple[int, ...] = tuple(channels)

    def forward(self, x: Tensor) -> Tensor:
        """Encode.

        Args:
            x: (B, in_channels, H, W) images, H and W multiples of 2**num_downsampling.
        Returns:
            (B, C, H / 2**num_downsampling, W / 2**num_downsampling) bottleneck features.
        """
        out: Tensor = self.convs(x)
        return out


class StyleGAN2Decoder(nn.Module):
    """Decoder half of `StyleGAN2Generator`: a flat ``convs`` sequence, then tanh.

    Layers: ``n_blocks // 2`` ResBlocks at the bottleneck, ``num_downsampling`` upsampling
    `StyledConv` (3x3, demodulated, constant style, optional noise), a 1x1 `ConvLayer` to
    ``out_channels`` with its leaky ReLU, and finally tanh (F-LSeSim's addition to CUT).

    Args:
        out_channels: channels of the output image.
        ngf: base width.
        n_blocks: residual blocks of the whole generator (half here).
        num_downsampling: number of resolution doublings.
        resolution: training crop size, which sets the channel widths as in CUT.
        inject_noise: the upsampling convolutions take per-pixel noise.
    """

    def __init__(
        self,
        out_channels: int = 3,
        ngf: int = 8,
        n_blocks: int = 6,
        num_downsampling: int = 2,
        resolution: int = 128,
        inject_noise: bool = True,
    ) -> None:
        super().__init__()
        res = _pow2_round(resolution) // 2**num_downsampling
        layers: list[nn.Module] = []
        for _ in range(n_blocks // 2):
            c = generator_channels(res, ngf)
            layers.append(ResBlock(c, c, downsample=False))
        for _ in range(num_downsampling):
            c_in, c_out = generator_channels(res, ngf), generator_channels(res * 2, ngf)
            layers.append(StyledConv(c_in, c_out, 3, upsample=True, inject_noise=inject_noise))
            res *= 2
        layers.append(ConvLayer(generator_channels(res, ngf), out_channels, 1))
        self.convs = nn.Sequential(*layers)
        self.inject_noise = inject_noise

    def forward(
        self, x: Tensor, noise: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """Decode.

        Args:
            x: (B, C, h, w) bottleneck features.
            noise: inject fresh N(0, 1) noise (one map per sample and upsampling layer).
            generator: random source of the noise; None uses torch's global one. It may live on
                another device than ``x``.
        Returns:
            (B, out_channels, h * 2**num_downsampling, w * 2**num_downsampling) in [-1, 1].
        """
        out = x
        for layer in self.convs:
            if isinstance(layer, StyledConv):
                maps = None
                if noise and self.inject_noise:
                    b, _, h, w = out.shape
                    maps = _normal((b, 1, 2 * h, 2 * w), out, generator)
                out = layer(out, noise=maps)
            else:
                out = layer(out)
        return torch.tanh(out)


def _normal(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """N(0, 1) samples with the dtype and device of ``like``, drawn on the generator's device."""
    device = like.device if generator is None else generator.device
    sample = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    return sample.to(device=like.device, dtype=like.dtype, non_blocking=True)


class StyleGAN2Generator(nn.Module):
    """CUT's ``stylegan2`` encoder-decoder generator, with F-LSeSim's tanh output.

    Fully convolutional: any height and width that are multiples of ``multiple``
    (``2 ** num_downsampling``) come back at the input size, so a network trained on 128-px crops
    translates whole high-resolution images. Defaults are those of F-LSeSim's ``sinsc`` model
    (``ngf=8``, 2 downsamplings, 6 residual blocks, 128-px crops), which with 3 input channels
    give encoder widths 32 (128 px), 64, 128 and decoder widths 128, 64, 32.

    ``resolution`` only sets the channel widths (CUT derives them from ``min(load_size,
    crop_size)`` rounded to a power of two); it does not restrict the input size.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        ngf: base width (CUT's ``--ngf``).
        n_blocks: residual blocks, half in the encoder and half in the decoder (CUT: 6; its
            ``smallstylegan2`` uses 2).
        num_downsampling: resolution halvings (CUT's ``--stylegan2_G_num_downsampling``: 1 for
            SinCUT, 2 for F-LSeSim's ``sinsc``).
        resolution: training crop size, which sets the channel widths.
        inject_noise: per-pixel noise after each upsampling convolution (CUT's ``stylegan2``).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 8,
        n_blocks: int = 6,
        num_downsampling: int = 2,
        resolution: int = 128,
        inject_noise: bool = True,
    ) -> None:
        super().__init__()
        if num_downsampling < 0:
            raise ValueError(f"num_downsampling must be >= 0, got {num_downsampling}")
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        if _pow2_round(resolution) < 2**num_downsampling:
            raise ValueError(
                f"resolution {resolution} is too small for {num_downsampling} downsamplings"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.ngf = ngf
        self.n_blocks = n_blocks
        self.num_downsampling = num_downsampling
        self.resolution = resolution
        self.multiple: int = 2**num_downsampling
        self.encoder = StyleGAN2Encoder(in_channels, ngf, n_blocks, num_downsampling, resolution)
        self.decoder = StyleGAN2Decoder(
            out_channels, ngf, n_blocks, num_downsampling, resolution, inject_noise
        )

    @property
    def num_layers(self) -> int:
        """Number of encoder layers (valid ``layer_ids`` are 0 .. num_layers - 1)."""
        return len(self.encoder.convs)

    def feature_channels(self, layer_ids: Sequence[int]) -> list[int]:
        """Channels of the features ``encode_features`` returns for ``layer_ids``.

        Args:
            layer_ids: indices into ``encoder.convs``.
        Returns:
            one channel count per requested layer, in the same order.
        """
        self._check_layer_ids(layer_ids)
        return [self.encoder.layer_channels[i] for i in layer_ids]

    def _check_layer_ids(self, layer_ids: Sequence[int]) -> None:
        check_layer_ids(layer_ids, self.num_layers, "encoder")

    def _check_size(self, x: Tensor) -> None:
        check_image_size(x, self.multiple)

    def forward(
        self,
        x: Tensor,
        noise: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Translate images.

        Args:
            x: (B, in_channels, H, W) images in [-1, 1]; H and W multiples of ``multiple``.
            noise: inject per-pixel noise in the decoder; None does so in training mode only,
                so evaluation is deterministic.
            generator: random source of the noise; None uses torch's global one.
        Returns:
            (B, out_channels, H, W) images in [-1, 1].
        """
        self._check_size(x)
        use_noise = self.training if noise is None else noise
        return self.decoder(self.encoder(x), noise=use_noise, generator=generator)

    def encode_features(self, x: Tensor, layer_ids: Sequence[int]) -> list[Tensor]:
        """Outputs of chosen encoder layers, running the encoder only as far as needed.

        Args:
            x: (B, in_channels, H, W) images; H and W multiples of ``multiple``.
            layer_ids: indices into ``encoder.convs`` (see `StyleGAN2Encoder`); any order,
                repeats allowed.
        Returns:
            one tensor per id, in the order of ``layer_ids``: (B, C_i, H_i, W_i), C_i given by
            ``feature_channels``.
        """
        self._check_size(x)
        self._check_layer_ids(layer_ids)
        if not layer_ids:
            return []
        wanted = set(layer_ids)
        last = max(wanted)
        found: dict[int, Tensor] = {}
        feat = x
        for i, layer in enumerate(self.encoder.convs):
            feat = layer(feat)
            if i in wanted:
                found[i] = feat
            if i == last:
                break
        return [found[i] for i in layer_ids]


def minibatch_stddev(x: Tensor, group_size: int) -> Tensor:
    """Append the minibatch standard-deviation feature (ProGAN/StyleGAN2) as one extra channel.

    Samples are split into groups of ``group_size`` (the largest divisor of the batch that is at
    most ``group_size``; sample i falls in group ``i mod (B / G)``); within each group the
    standard deviation of every feature over the group is averaged over channels and positions,
    and broadcast as a constant map to the group's samples.

    Args:
        x: (B, C, H, W) features.
        group_size: the largest group size wanted.
    Returns:
        (B, C + 1, H, W) features.
    """
    batch, channels, height, width = x.shape
    group = max(d for d in range(1, min(batch, group_size) + 1) if batch % d == 0)
    grouped = x.reshape(group, batch // group, channels, height, width)
    std = torch.sqrt(grouped.var(dim=0, unbiased=False) + 1e-8)  # (B / G, C, H, W)
    std = std.mean(dim=(1, 2, 3))  # (B / G,)
    feat = std.repeat(group)[:, None, None, None].expand(batch, 1, height, width)
    return torch.cat([x, feat.to(x.dtype)], dim=1)


class StyleGAN2Discriminator(nn.Module):
    """StyleGAN2 residual discriminator on fixed-size crops, one logit per image.

    Layers: a 1x1 `ConvLayer` from the image to C(size), then downsampling `ResBlock` s until the
    resolution is ``final_resolution`` (``log2(size / final_resolution)`` blocks), optionally the
    minibatch standard deviation channel, a 3x3 `ConvLayer` to C(4), and two `EqualLinear` layers
    (the first with leaky ReLU) down to one logit. C is `discriminator_channels`; with ``ndf=8``
    and 128-px crops the widths are 16, 32, 64, 128, 256 and 384.

    F-LSeSim's ``sinsc`` uses ``final_resolution=8``; CUT's SinCUT goes down to 4. Both leave the
    minibatch standard deviation off (``mbstd_group=0``); StyleGAN2 itself uses groups of 4.

    Args:
        in_channels: channels of the images judged.
        ndf: base width (CUT's ``--ndf``).
        size: side of the square crops judged, a power of two (CUT: ``--crop_size``).
        final_resolution: resolution of the last feature map, a power of two at most ``size``.
        mbstd_group: group size of the minibatch standard deviation; 0 leaves it out.
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 8,
        size: int = 128,
        final_resolution: int = 8,
        mbstd_group: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (("size", size), ("final_resolution", final_resolution)):
            if value < 1 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two, got {value}")
        if final_resolution > size:
            raise ValueError(f"final_resolution {final_resolution} exceeds size {size}")
        if mbstd_group < 0:
            raise ValueError(f"mbstd_group must be >= 0, got {mbstd_group}")
        self.in_channels = in_channels
        self.ndf = ndf
        self.size = size
        self.final_resolution = final_resolution
        self.mbstd_group = mbstd_group

        res = size
        layers: list[nn.Module] = [ConvLayer(in_channels, discriminator_channels(res, ndf), 1)]
        while res > final_resolution:
            c_in, c_out = discriminator_channels(res, ndf), discriminator_channels(res // 2, ndf)
            layers.append(ResBlock(c_in, c_out, downsample=True))
            res //= 2
        self.convs = nn.Sequential(*layers)
        c = discriminator_channels(res, ndf) + (1 if mbstd_group > 0 else 0)
        c_top = discriminator_channels(4, ndf)
        self.final_conv = ConvLayer(c, c_top, 3)
        self.final_linear = nn.Sequential(
            EqualLinear(c_top * res * res, c_top, activate=True),
            EqualLinear(c_top, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Score images.

        Args:
            x: (B, in_channels, size, size) images.
        Returns:
            (B, 1) logits (no sigmoid).
        """
        if x.ndim != 4 or x.shape[-2:] != (self.size, self.size):
            raise ValueError(
                f"expected (B, C, {self.size}, {self.size}) crops, got shape {tuple(x.shape)}"
            )
        out = self.convs(x)
        if self.mbstd_group > 0:
            out = minibatch_stddev(out, self.mbstd_group)
        out = self.final_conv(out)
        result: Tensor = self.final_linear(out.flatten(1))
        return result
