"""Tests for sesim.nets.resnet: blur resampling, ResNet generator, PatchGAN discriminator."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from sesim.nets.resnet import (
    BlurDownsample,
    BlurUpsample,
    NLayerDiscriminator,
    PatchDiscriminatorPair,
    ResnetBlock,
    ResnetGenerator,
    binomial_filter,
)


def _gen(**kwargs: Any) -> ResnetGenerator:
    torch.manual_seed(0)
    return ResnetGenerator(**{"ngf": 8, "n_blocks": 2, **kwargs})


# --- blur resampling ----------------------------------------------------------------------------


def test_binomial_filter() -> None:
    row = torch.tensor([1.0, 3.0, 3.0, 1.0])
    assert torch.allclose(binomial_filter(4), row[:, None] * row[None, :] / 64)
    assert torch.allclose(binomial_filter(3).sum(), torch.tensor(1.0))


@pytest.mark.parametrize("size", [8, 9, 10])
def test_blur_resampling_sizes_and_constants(size: int) -> None:
    x = torch.full((1, 4, size, size), 0.7)
    down = BlurDownsample(4)(x)
    assert down.shape[-1] == (size + 1) // 2
    assert torch.allclose(down, torch.full_like(down, 0.7))
    up = BlurUpsample(4)(x)
    assert up.shape[-1] == 2 * size
    assert torch.allclose(up, torch.full_like(up, 0.7), atol=1e-6)


# --- generator ----------------------------------------------------------------------------------


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_generator_keeps_size_and_range(antialias: bool, norm: str) -> None:
    g = _gen(antialias=antialias, norm=norm)
    for h, w in [(32, 32), (32, 48), (36, 44)]:  # 36 and 44 give odd sizes at 1/4 resolution
        y = g(torch.randn(1, 3, h, w) * 3)
        assert y.shape == (1, 3, h, w)
        assert y.min() >= -1 and y.max() <= 1


def test_generator_channels_and_dropout() -> None:
    g = _gen(in_channels=1, out_channels=2, dropout=True)
    assert g(torch.randn(1, 1, 32, 32)).shape == (1, 2, 32, 32)
    assert any(isinstance(m, nn.Dropout) for m in g.modules())


def test_generator_rejects_bad_sizes_and_options() -> None:
    g = _gen()
    assert g.multiple == 4 and ResnetGenerator(3, 3, 4, 1, n_downsampling=1).multiple == 2
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match="norm"):
        ResnetGenerator(norm="group")  # type: ignore[arg-type]


def test_generator_layer_numbering() -> None:
    g = _gen(n_blocks=9)
    assert g.num_layers == 12 + 9 + 8 + 3
    assert isinstance(g.model[0], nn.ReflectionPad2d)
    for i in (1, 4, 8):
        assert isinstance(g.model[i], nn.Conv2d)
    assert isinstance(g.model[7], BlurDownsample) and isinstance(g.model[11], BlurDownsample)
    assert all(isinstance(g.model[i], ResnetBlock) for i in range(12, 21))
    assert isinstance(g.model[21], BlurUpsample)
    assert isinstance(g.model[-1], nn.Tanh)
    assert g.default_nce_layers == (0, 4, 8, 12, 16)

    plain = _gen(n_blocks=9, antialias=False)
    assert plain.default_nce_layers == (0, 4, 7, 10, 14)
    assert isinstance(plain.model[7], nn.Conv2d) and plain.model[7].stride == (2, 2)
    assert isinstance(plain.model[10], ResnetBlock)
    assert _gen(n_blocks=2).default_nce_layers == (0, 4, 8, 12)


def test_encode_features_shapes_order_and_values() -> None:
    g = _gen().eval()
    x = torch.randn(2, 3, 32, 32)
    ids = [0, 4, 8, 12]
    feats = g.encode_features(x, ids)
    assert [tuple(f.shape) for f in feats] == [
        (2, 3, 38, 38),
        (2, 16, 32, 32),
        (2, 32, 16, 16),
        (2, 32, 8, 8),
    ]
    assert g.feature_channels(ids) == [3, 16, 32, 32]
    # Same tensors whatever the order asked.
    rev = g.encode_features(x, ids[::-1])
    for a, b in zip(feats, rev[::-1]):
        assert torch.equal(a, b)
    # The last layer's output is the image.
    assert torch.allclose(g.encode_features(x, [g.num_layers - 1])[0], g(x))
    with pytest.raises(ValueError, match="out of range"):
        g.encode_features(x, [g.num_layers])


def test_encode_features_stops_after_last_layer() -> None:
    g = _gen()
    calls: list[int] = []
    for i, layer in enumerate(g.model):
        layer.register_forward_hook(lambda *_, i=i: calls.append(i))
    g.encode_features(torch.randn(1, 3, 32, 32), [4, 8])
    assert calls == list(range(9))


def test_generator_gradients_flow() -> None:
    g = _gen()
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    g(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in g.parameters())


def test_state_dict_names_follow_cut() -> None:
    keys = set(_gen().state_dict())
    assert {"model.1.weight", "model.7.filt", "model.12.conv_block.1.weight"} <= keys


# --- discriminator ------------------------------------------------------------------------------


@pytest.mark.parametrize("antialias", [True, False])
def test_discriminator_output_shape(antialias: bool) -> None:
    torch.manual_seed(0)
    d = NLayerDiscriminator(ndf=8, antialias=antialias)
    assert d(torch.randn(2, 3, 70, 70)).shape == (2, 1, 6, 6)
    assert d(torch.randn(1, 3, 64, 96)).shape == (1, 1, 6, 10)


def test_discriminator_gradients_and_leaky_relu() -> None:
    d = NLayerDiscriminator(in_channels=1, ndf=8, n_layers=2, norm="batch")
    assert any(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in d.modules())
    x = torch.randn(2, 1, 40, 40, requires_grad=True)
    d(x).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in d.parameters())


def test_discriminator_pair_scores_large_and_small_patches() -> None:
    torch.manual_seed(0)
    # No normalisation, so that a pixel's reach is its receptive field alone.
    main = NLayerDiscriminator(ndf=8, norm="none")
    local = NLayerDiscriminator(ndf=8, n_layers=1, norm="none")
    pair = PatchDiscriminatorPair(main, local)
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    out = pair(x)
    assert isinstance(out, list) and len(out) == 2
    torch.testing.assert_close(out[0], main(x))
    torch.testing.assert_close(out[1], local(x))
    # The local one judges more, smaller patches: 30x30 logits for 16x16 patches.
    assert out[0].shape == (2, 1, 6, 6) and out[1].shape == (2, 1, 30, 30)
    # A change of one pixel reaches only the local logits around it, not all of them.
    y = x.detach().clone()
    y[:, :, 0, 0] += 5.0
    changed = (pair(y)[1] - out[1]).abs().amax(dim=(0, 1)) > 0
    assert 0 < int(changed.sum()) <= 4 * 4
    sum(o.mean() for o in out).backward()
    assert all(p.grad is not None for p in pair.parameters())


@pytest.mark.parametrize("n_down", [0, 1, 3])
def test_generator_downsampling_depth(n_down: int) -> None:
    for antialias in (True, False):
        G = ResnetGenerator(3, 3, ngf=4, n_blocks=1, antialias=antialias, n_downsampling=n_down)
        assert G.multiple == 2**n_down
        side = 3 * G.multiple * 2
        assert G(torch.randn(1, 3, side, side)).shape == (1, 3, side, side)
        assert len(G.default_nce_layers) >= 1
