"""Tests for sesim.nets.munit: AdaIN generator and multi-scale discriminator (tiny CPU configs)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from sesim.nets.munit import (
    MLP,
    AdaIN2d,
    ContentEncoder,
    Decoder,
    MultiScaleDiscriminator,
    MunitGenerator,
    MunitLayerNorm,
    StyleEncoder,
)

STYLE_DIM = 8


def _gen(**kwargs: Any) -> MunitGenerator:
    torch.manual_seed(0)
    return MunitGenerator(**{"dim": 8, "n_res": 1, "mlp_dim": 16, "style_dim": STYLE_DIM, **kwargs})


def _images(b: int = 2, c: int = 3, size: int = 32, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, size, size, generator=g) * 2 - 1


# --- normalisation layers -----------------------------------------------------------------------


def test_adain_sets_per_channel_mean_and_std() -> None:
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 4 + 2
    beta = torch.tensor([[0.5, -1.0, 2.0], [0.0, 1.0, -2.0]])
    gamma = torch.tensor([[1.0, 2.0, 0.5], [3.0, 1.0, 1.5]])
    out = AdaIN2d(3)(x, torch.cat([beta, gamma], dim=1))
    assert torch.allclose(out.mean(dim=(2, 3)), beta, atol=1e-5)
    assert torch.allclose(out.var(dim=(2, 3), unbiased=False).sqrt(), gamma, atol=1e-3)
    identity = AdaIN2d(3)(x, torch.cat([torch.zeros(2, 3), torch.ones(2, 3)], dim=1))
    assert torch.allclose(identity, F.instance_norm(x), atol=1e-6)
    with pytest.raises(ValueError, match="parameters"):
        AdaIN2d(3)(x, torch.zeros(2, 5))


def test_munit_layer_norm_matches_definition() -> None:
    norm = MunitLayerNorm(4)
    assert bool(((norm.gamma >= 0) & (norm.gamma <= 1)).all()) and not norm.beta.any()
    x = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(0))
    flat = x.reshape(2, -1)
    mean, std = flat.mean(1), flat.std(1)  # unbiased std, eps added to it
    ref = (x - mean[:, None, None, None]) / (std[:, None, None, None] + norm.eps)
    ref = ref * norm.gamma[None, :, None, None] + norm.beta[None, :, None, None]
    assert torch.allclose(norm(x), ref, atol=1e-6)


# --- parts ---------------------------------------------------------------------------------------


def test_content_encoder_shape() -> None:
    enc = ContentEncoder(3, dim=8, n_downsample=2, n_res=1)
    out = enc(_images())
    assert enc.out_channels == 32
    assert out.shape == (2, 32, 8, 8) and out.dtype == torch.float32


def test_style_encoder_shape_and_min_size() -> None:
    enc = StyleEncoder(3, dim=8, n_downsample=4, style_dim=STYLE_DIM)
    assert enc(_images()).shape == (2, STYLE_DIM, 1, 1)
    assert enc(_images(size=20)).shape == (2, STYLE_DIM, 1, 1)  # any size from min_size up
    with pytest.raises(ValueError, match="at least 16x16"):
        enc(_images(size=8))


def test_decoder_adain_params_count_and_check() -> None:
    dec = Decoder(3, dim=32, n_upsample=2, n_res=2)
    adain = [m for m in dec.modules() if isinstance(m, AdaIN2d)]
    assert len(adain) == 4
    assert dec.num_adain_params == sum(m.num_params for m in adain) == 4 * 32 * 2
    content = torch.randn(2, 32, 4, 4)
    params = torch.randn(2, dec.num_adain_params)
    assert dec(content, params).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="adain_params"):
        dec(content, params[:, :-1])


def test_decoder_splits_params_in_layer_order() -> None:
    """Each AdaIN layer gets the next 2 C columns, in the order the layers run."""
    dec = Decoder(3, dim=8, n_upsample=1, n_res=2)
    content = torch.randn(1, 8, 4, 4)
    params = torch.randn(1, dec.num_adain_params)
    seen: list[torch.Tensor] = []
    handles = [
        m.register_forward_hook(lambda m, i, o: seen.append(i[1]))
        for m in dec.modules()
        if isinstance(m, AdaIN2d)
    ]
    dec(content, params)
    for h in handles:
        h.remove()
    assert [s.shape[1] for s in seen] == [16, 16, 16, 16]
    assert torch.equal(torch.cat(seen, dim=1), params)


def test_mlp_accepts_flat_and_4d_codes() -> None:
    mlp = MLP(STYLE_DIM, 10, dim=16, n_blk=3)
    z = torch.randn(3, STYLE_DIM)
    assert torch.equal(mlp(z), mlp(z[:, :, None, None]))
    assert mlp(z).shape == (3, 10)
    assert len(mlp.model) == 3


# --- generator ----------------------------------------------------------------------------------


def test_generator_shapes_range_and_dtype() -> None:
    g = _gen()
    x = _images()
    z = g.sample_style(2, torch.Generator().manual_seed(0))
    assert z.shape == (2, STYLE_DIM, 1, 1) and z.dtype == torch.float32
    out = g(x, z)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.abs().max() <= 1.0
    assert g.multiple == 4 and g.style_dim == STYLE_DIM
    assert g.encode_content(x).shape == (2, g.content_channels, 8, 8)
    assert torch.equal(g(x, z.flatten(1)), out)  # (B, style_dim) codes work too


@pytest.mark.parametrize("train", [True, False])
def test_generator_style_changes_output_and_is_deterministic(train: bool) -> None:
    g = _gen().train(train)
    x = _images()
    gen = torch.Generator().manual_seed(0)
    z1, z2 = g.sample_style(2, gen), g.sample_style(2, gen)
    with torch.no_grad():
        a, b, a2 = g(x, z1), g(x, z2), g(x, z1)
    assert torch.equal(a, a2)
    assert (a - b).abs().mean() > 1e-3


def test_generator_train_and_eval_agree() -> None:
    g = _gen()
    x, z = _images(), torch.randn(2, STYLE_DIM)
    with torch.no_grad():
        train_out = g.train()(x, z)
        eval_out = g.eval()(x, z)
    assert torch.equal(train_out, eval_out)


def test_generator_style_encoder() -> None:
    g = _gen(out_channels=1)
    y = _images(c=1)
    s = g.encode_style(y)
    assert s.shape == (2, STYLE_DIM, 1, 1)
    assert g(_images(), s).shape == (2, 1, 32, 32)
    with pytest.raises(RuntimeError, match="style_encoder=False"):
        _gen(style_encoder=False).encode_style(y)


@pytest.mark.parametrize("size", [30, 4])
def test_generator_bad_size(size: int) -> None:
    g = _gen()
    with pytest.raises(ValueError, match="multiples of 4"):
        g(_images(size=size), torch.randn(2, STYLE_DIM))


def test_generator_bad_style() -> None:
    g = _gen()
    with pytest.raises(ValueError, match="style codes"):
        g(_images(), torch.randn(2, STYLE_DIM + 1))
    with pytest.raises(ValueError, match="3 style codes for a batch of 2"):
        g(_images(), torch.randn(3, STYLE_DIM))


def test_gradients_reach_every_generator_parameter() -> None:
    g = _gen()
    x = _images()
    y = _images(seed=2)
    # Sampled style for the translation path, encoded style so the style encoder is used too.
    loss = g(x, torch.randn(2, STYLE_DIM)).square().mean() + g(x, g.encode_style(y)).mean()
    loss.backward()
    for name, p in g.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        if not name.endswith(".bias"):  # biases before a norm get (near) zero gradients
            assert p.grad.abs().sum() > 0, name


def test_sample_style_deterministic() -> None:
    g = _gen()
    a = g.sample_style(4, torch.Generator().manual_seed(5))
    b = g.sample_style(4, torch.Generator().manual_seed(5))
    c = g.sample_style(4, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert g.sample_style(1, dtype=torch.float64).dtype == torch.float64


def test_reset_parameters_reproducible_and_kaiming() -> None:
    a, b = _gen(dim=16), _gen(dim=16)
    a.reset_parameters(torch.Generator().manual_seed(3))
    b.reset_parameters(torch.Generator().manual_seed(3))
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    w = a.state_dict()["enc_content.model.1.conv.weight"]  # fan_in = 16 * 4 * 4
    assert abs(w.std().item() - (2 / (16 * 16)) ** 0.5) < 0.01


def test_parameter_names_follow_munit() -> None:
    """Names of MUNIT's AdaINGen (dim 8, n_downsample 2, n_res 1) and MsImageDis (n_layer 2)."""
    conv = ("conv.weight", "conv.bias")
    expected = {f"enc_style.model.{i}.{k}" for i in range(5) for k in conv}
    expected |= {"enc_style.model.6.weight", "enc_style.model.6.bias"}
    expected |= {f"enc_content.model.{i}.{k}" for i in range(3) for k in conv}
    expected |= {f"enc_content.model.3.model.0.model.{j}.{k}" for j in range(2) for k in conv}
    expected |= {f"dec.model.0.model.0.model.{j}.{k}" for j in range(2) for k in conv}
    expected |= {f"dec.model.{i}.{k}" for i in (2, 4, 5) for k in conv}
    expected |= {f"dec.model.{i}.norm.{k}" for i in (2, 4) for k in ("gamma", "beta")}
    expected |= {f"mlp.model.{i}.fc.{k}" for i in range(3) for k in ("weight", "bias")}
    assert set(_gen().state_dict()) == expected

    d = MultiScaleDiscriminator(dim=8, n_layer=2, num_scales=2)
    expected_d = {f"cnns.{s}.{i}.{k}" for s in range(2) for i in range(2) for k in conv}
    expected_d |= {f"cnns.{s}.2.{k}" for s in range(2) for k in ("weight", "bias")}
    assert set(d.state_dict()) == expected_d


# --- discriminator ------------------------------------------------------------------------------


def test_discriminator_scales() -> None:
    torch.manual_seed(0)
    d = MultiScaleDiscriminator(3, dim=8, n_layer=2, num_scales=3)
    outs = d(_images())
    assert len(outs) == 3
    assert [tuple(o.shape) for o in outs] == [(2, 1, 8, 8), (2, 1, 4, 4), (2, 1, 2, 2)]
    assert [tuple(o.shape[-2:]) for o in outs] == d.output_sizes(32, 32)
    assert all(o.dtype == torch.float32 for o in outs)


def test_discriminator_default_depth_and_init() -> None:
    torch.manual_seed(0)
    d = MultiScaleDiscriminator(3, dim=8)
    assert d.output_sizes(256, 256) == [(16, 16), (8, 8), (4, 4)]
    d.reset_parameters(torch.Generator().manual_seed(0))
    params = d.state_dict()
    assert abs(params["cnns.0.1.conv.weight"].std().item() - 0.02) < 0.002
    assert not params["cnns.0.1.conv.bias"].any()
    with pytest.raises(ValueError, match="too small"):
        d(_images())  # 32x32 cannot feed 3 scales of 4 stride-2 layers


@pytest.mark.parametrize("norm", ["instance", "layer"])
def test_discriminator_norms(norm: str) -> None:
    d = MultiScaleDiscriminator(3, dim=8, n_layer=2, norm=norm)  # type: ignore[arg-type]
    assert len(d(_images())) == 3
