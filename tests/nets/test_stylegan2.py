"""Tests for sesim.nets.stylegan2: building blocks, generator and discriminator."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from sesim.nets.stylegan2 import (
    Blur,
    ConvLayer,
    ModulatedConv2d,
    ResBlock,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    blur_kernel,
    discriminator_channels,
    generator_channels,
    minibatch_stddev,
)


def _gen(**kwargs: Any) -> StyleGAN2Generator:
    torch.manual_seed(0)
    # resolution=128 with ngf=4 gives the narrowest widths: 16, 32, 64 channels.
    return StyleGAN2Generator(**{"ngf": 4, "n_blocks": 2, "resolution": 128, **kwargs})


def _disc(**kwargs: Any) -> StyleGAN2Discriminator:
    torch.manual_seed(0)
    return StyleGAN2Discriminator(**{"ndf": 2, "size": 32, "final_resolution": 4, **kwargs})


def _fill(module: nn.Module) -> None:
    """Deterministic parameter values (biases and noise strengths smaller)."""
    with torch.no_grad():
        for i, (name, p) in enumerate(module.named_parameters()):
            v = torch.sin(torch.arange(p.numel(), dtype=torch.float64) * 0.37 + i)
            v = v.float().reshape(p.shape)
            p.copy_(0.2 * v if "bias" in name or "noise" in name else v)


# --- building blocks ----------------------------------------------------------------------------


def test_blur_kernel_and_sizes() -> None:
    k = blur_kernel()
    assert k.shape == (4, 4)
    assert torch.isclose(k.sum(), torch.tensor(1.0))
    assert torch.allclose(k, k.flip(0)) and torch.allclose(k, k.T)
    blur = Blur((2, 1))
    x = torch.ones(2, 3, 10, 12)
    y = blur(x)
    assert y.shape == (2, 3, 10, 12)
    # A constant image stays constant away from the zero padding.
    assert torch.allclose(y[:, :, 2:-2, 2:-2], torch.ones(1))


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_conv_layer_downsample_halves(kernel_size: int) -> None:
    layer = ConvLayer(4, 6, kernel_size, downsample=True)
    assert layer(torch.randn(1, 4, 16, 12)).shape == (1, 6, 8, 6)


def test_resblock_shapes() -> None:
    assert ResBlock(4, 8, downsample=True)(torch.randn(2, 4, 8, 8)).shape == (2, 8, 4, 4)
    block = ResBlock(4, 4, downsample=False)
    assert isinstance(block.skip, nn.Identity)
    assert block(torch.randn(2, 4, 6, 10)).shape == (2, 4, 6, 10)


@pytest.mark.parametrize("style_dim", [None, 16])
def test_modulated_conv_demodulation_keeps_unit_variance(style_dim: int | None) -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(32, 8, 3, style_dim=style_dim)
    x = torch.randn(4, 32, 48, 48)
    style = None if style_dim is None else torch.randn(4, style_dim)
    y = conv(x, style)[:, :, 1:-1, 1:-1]  # away from the zero padding
    var = y.var(dim=(2, 3))  # per sample and output channel
    assert torch.all((var > 0.8) & (var < 1.2)), var
    assert abs(var.mean().item() - 1.0) < 0.05
    # Every demodulated filter has unit norm.
    norms = conv._weights(style).pow(2).sum(dim=(2, 3, 4))
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)


def test_modulated_conv_without_demodulation_is_scaled_conv() -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(3, 4, 1, demodulate=False)
    x = torch.randn(2, 3, 5, 5)
    ref = torch.nn.functional.conv2d(x, conv.weight[0] * conv.scale)
    assert torch.allclose(conv(x), ref, atol=1e-6)


@pytest.mark.parametrize("upsample", [False, True])
def test_modulated_conv_constant_style_matches_per_sample_path(upsample: bool) -> None:
    """style=None (shared weights) equals the grouped per-sample path with all-one scales."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(5, 6, 3, style_dim=7, upsample=upsample)
    assert conv.modulation is not None
    with torch.no_grad():
        conv.modulation.weight.zero_()  # scales = bias = 1 for any style
    x = torch.randn(3, 5, 6, 8)
    a, b = conv(x, None), conv(x, torch.randn(3, 7))
    size = (12, 16) if upsample else (6, 8)
    assert a.shape == (3, 6, *size)
    assert torch.allclose(a, b, atol=1e-5)


def test_minibatch_stddev() -> None:
    x = torch.randn(6, 3, 4, 4)
    y = minibatch_stddev(x, 4)  # 6 is split into groups of 3
    assert y.shape == (6, 4, 4, 4)
    assert torch.equal(y[:, :3], x)
    grouped = x.reshape(3, 2, 3, 4, 4)
    expected = torch.sqrt(grouped.var(0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))
    assert torch.allclose(y[:, 3, 0, 0], expected.repeat(3))
    assert torch.allclose(y[0, 3], y[0, 3, 0, 0].expand(4, 4))


def test_channel_tables_match_cut() -> None:
    # CUT's tables with ngf=8 (channel_multiplier 0.25) and ndf=8 (0.125).
    assert [generator_channels(r, 8) for r in (4, 16, 32, 64, 128, 1024)] == [
        512,
        256,
        128,
        64,
        32,
        4,
    ]
    assert [discriminator_channels(r, 8) for r in (4, 8, 16, 64, 128)] == [384, 256, 128, 32, 16]


# --- generator ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(32, 48), (64, 64), (36, 20)])
def test_generator_keeps_size_and_range(size: tuple[int, int]) -> None:
    g = _gen().eval()
    x = torch.rand(2, 3, *size) * 2 - 1
    y = g(x)
    assert y.shape == (2, 3, *size)
    assert y.min() >= -1 and y.max() <= 1


def test_generator_multiple_and_bad_sizes() -> None:
    g = _gen()
    assert g.multiple == 4
    assert _gen(num_downsampling=1).multiple == 2
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.zeros(1, 3, 32, 30))
    with pytest.raises(ValueError):
        g(torch.zeros(3, 32, 32))


def test_generator_eval_deterministic_and_noise_reproducible() -> None:
    g = _gen()
    _fill(g)  # noise strengths become non-zero
    x = torch.randn(1, 3, 32, 32)
    g.eval()
    assert torch.equal(g(x), g(x))
    g.train()
    a = g(x, generator=torch.Generator().manual_seed(1))
    b = g(x, generator=torch.Generator().manual_seed(1))
    c = g(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.equal(g(x, noise=False), g.eval()(x))


def test_generator_default_config_matches_flsesim_sinsc() -> None:
    g = StyleGAN2Generator()
    assert (g.ngf, g.num_downsampling, g.n_blocks, g.multiple) == (8, 2, 6, 4)
    assert g.num_layers == 7
    assert g.feature_channels(range(7)) == [3, 32, 64, 128, 128, 128, 128]
    # Parameter count of F-LSeSim's StyleGAN2Generator(3, 3, 8) for 128-px crops.
    assert sum(p.numel() for p in g.parameters()) == 2012261
    keys = g.state_dict().keys()
    assert {"encoder.convs.1.0.weight", "decoder.convs.3.conv.weight"} <= keys
    assert "decoder.convs.3.noise.weight" in keys


def test_generator_matches_reference_values() -> None:
    """Values computed with the public F-LSeSim StyleGAN2Generator(3, 3, 4, n_blocks=2), crop 32,
    2 downsamplings, parameters set by ``_fill`` and noise strengths zero."""
    g = StyleGAN2Generator(ngf=4, n_blocks=2, resolution=32)
    _fill(g)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if "noise" in name:
                p.zero_()
    x = torch.cos(torch.arange(2 * 3 * 32 * 32, dtype=torch.float64) * 0.11)
    y = g.eval()(x.float().reshape(2, 3, 32, 32))
    assert y.mean().item() == pytest.approx(0.47981104, abs=1e-5)
    assert y.std().item() == pytest.approx(0.37069565, abs=1e-5)
    expected = torch.tensor([0.67454314, 0.80403167, -0.03906060])
    assert torch.allclose(y[0, :, 5, 7], expected, atol=1e-5)
    expected = torch.tensor([0.67415696, 0.80445725, -0.03886248])
    assert torch.allclose(y[1, :, 30, 1], expected, atol=1e-5)


def test_generator_encode_features() -> None:
    g = _gen().eval()
    x = torch.randn(2, 3, 32, 48)
    ids = [4, 0, 2, 2]
    feats = g.encode_features(x, ids)
    chans = g.feature_channels(ids)
    shapes = [(2, chans[0], 8, 12), (2, 3, 32, 48), (2, chans[2], 16, 24), (2, chans[3], 16, 24)]
    assert [tuple(f.shape) for f in feats] == shapes
    assert torch.equal(feats[1], x)
    assert torch.allclose(feats[0], g.encoder(x))
    assert g.encode_features(x, []) == []
    with pytest.raises(ValueError, match="out of range"):
        g.encode_features(x, [g.num_layers])


def test_generator_gradients_reach_every_parameter() -> None:
    g = _gen()
    _fill(g)
    y = g.train()(torch.randn(2, 3, 16, 16), generator=torch.Generator().manual_seed(0))
    y.square().mean().backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_generator_without_noise_has_no_noise_effect() -> None:
    g = _gen(inject_noise=False)
    _fill(g)
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(g.train()(x), g.eval()(x))


# --- discriminator ------------------------------------------------------------------------------


def test_discriminator_logits_and_size_check() -> None:
    d = _disc()
    assert d(torch.randn(3, 3, 32, 32)).shape == (3, 1)
    with pytest.raises(ValueError, match="32, 32"):
        d(torch.randn(3, 3, 64, 64))
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Discriminator(size=96)
    with pytest.raises(ValueError):
        StyleGAN2Discriminator(size=8, final_resolution=16)


def test_discriminator_default_config_matches_flsesim_sinsc() -> None:
    d = StyleGAN2Discriminator()
    assert len(d.convs) == 1 + 4  # 128 -> 8 in four downsampling blocks
    # Parameter count of F-LSeSim's StyleGAN2Discriminator(3, 8) for 128-px crops.
    assert sum(p.numel() for p in d.parameters()) == 10954897


def test_discriminator_matches_reference_values() -> None:
    """Values computed with the public F-LSeSim StyleGAN2Discriminator(3, 2) for 32-px crops."""
    d = StyleGAN2Discriminator(ndf=2, size=32)
    _fill(d)
    x = torch.cos(torch.arange(2 * 3 * 32 * 32, dtype=torch.float64) * 0.11)
    out = d(x.float().reshape(2, 3, 32, 32))
    assert torch.allclose(out.flatten(), torch.tensor([0.29323274, 0.29262805]), atol=1e-5)


def test_discriminator_minibatch_stddev_and_gradients() -> None:
    d = _disc(mbstd_group=4)
    x = torch.randn(3, 3, 32, 32, requires_grad=True)
    out = d(x)
    assert out.shape == (3, 1)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in d.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
