"""Tests for sesim.losses.adversarial: GAN objectives, gradient penalties, image pool."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.losses.adversarial import (
    ImagePool,
    discriminator_loss,
    discriminator_loss_terms,
    generator_loss,
    mixed_gradient_penalty,
    r1_penalty,
)
from sesim.nets.resnet import NLayerDiscriminator

MODES = ["lsgan", "vanilla", "hinge", "nonsaturating"]


def _full(value: float) -> Tensor:
    return torch.full((2, 1, 3, 3), value)


# --- objectives on known inputs -----------------------------------------------------------------


def test_lsgan_known_values() -> None:
    assert discriminator_loss(_full(1.0), _full(0.0), "lsgan").item() == 0.0
    assert generator_loss(_full(1.0), "lsgan").item() == 0.0
    assert discriminator_loss(_full(0.0), _full(1.0), "lsgan").item() == pytest.approx(1.0)
    assert generator_loss(_full(0.5), "lsgan").item() == pytest.approx(0.25)


def test_vanilla_known_values() -> None:
    log2 = math.log(2.0)
    assert discriminator_loss(_full(0.0), _full(0.0), "vanilla").item() == pytest.approx(log2)
    assert generator_loss(_full(0.0), "vanilla").item() == pytest.approx(log2)
    pred = torch.randn(2, 1, 5, 5)
    ref = nn.BCEWithLogitsLoss()(pred, torch.ones_like(pred))
    assert torch.allclose(generator_loss(pred, "vanilla"), ref)


def test_hinge_known_values() -> None:
    assert discriminator_loss(_full(2.0), _full(-3.0), "hinge").item() == 0.0
    real, fake = discriminator_loss_terms(_full(0.0), _full(0.5), "hinge")
    assert real.item() == pytest.approx(1.0) and fake.item() == pytest.approx(1.5)
    assert generator_loss(_full(0.25), "hinge").item() == pytest.approx(-0.25)


def test_nonsaturating_known_values() -> None:
    pred_real, pred_fake = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    real, fake = discriminator_loss_terms(pred_real, pred_fake, "nonsaturating")
    assert torch.allclose(real, F.softplus(-pred_real).mean())
    assert torch.allclose(fake, F.softplus(pred_fake).mean())
    d = discriminator_loss(pred_real, pred_fake, "nonsaturating")
    assert torch.allclose(d, 0.5 * (real + fake))
    assert torch.allclose(generator_loss(pred_fake, "nonsaturating"), F.softplus(-pred_fake).mean())


@pytest.mark.parametrize("mode", MODES)
def test_multiscale_sums_scales(mode: str) -> None:
    r = [torch.randn(2, 1, 6, 6), torch.randn(2, 1, 3, 3)]
    f = [torch.randn(2, 1, 6, 6), torch.randn(2, 1, 3, 3)]
    d = discriminator_loss(r, f, mode)  # type: ignore[arg-type]
    ref = discriminator_loss(r[0], f[0], mode) + discriminator_loss(r[1], f[1], mode)  # type: ignore[arg-type]
    assert torch.allclose(d, ref)
    g = generator_loss(f, mode)  # type: ignore[arg-type]
    ref_g = generator_loss(f[0], mode) + generator_loss(f[1], mode)  # type: ignore[arg-type]
    assert torch.allclose(g, ref_g)


@pytest.mark.parametrize("mode", MODES)
def test_losses_are_scalars_with_gradients(mode: str) -> None:
    pred_real = torch.randn(2, 1, 4, 4, requires_grad=True)
    pred_fake = torch.randn(2, 1, 4, 4, requires_grad=True)
    d = discriminator_loss(pred_real, pred_fake, mode)  # type: ignore[arg-type]
    g = generator_loss(pred_fake, mode)  # type: ignore[arg-type]
    assert d.ndim == 0 and g.ndim == 0
    d.backward()
    assert pred_real.grad is not None and pred_real.grad.abs().sum() > 0
    assert pred_fake.grad is not None and pred_fake.grad.abs().sum() > 0
    pred_fake.grad = None
    g.backward()
    assert pred_fake.grad is not None and pred_fake.grad.abs().sum() > 0


def test_bad_mode_raises() -> None:
    p = _full(0.0)
    for call in (
        lambda: discriminator_loss(p, p, "wgan"),  # type: ignore[arg-type]
        lambda: generator_loss(p, "wgan"),  # type: ignore[arg-type]
        lambda: discriminator_loss_terms(p, p, "LSGAN"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match="unknown GAN mode"):
            call()


# --- gradient penalties -------------------------------------------------------------------------


class _Linear(nn.Module):
    """D(x) = <w, x> per image, so dD/dx = w everywhere."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: Tensor) -> Tensor:
        return (x * self.w).flatten(1).sum(1).view(-1, 1, 1, 1)


def test_r1_penalty_linear_discriminator() -> None:
    disc = _Linear((3, 4, 4))
    real = torch.randn(2, 3, 4, 4).requires_grad_(True)
    penalty = r1_penalty(disc(real), real)
    assert torch.allclose(penalty, disc.w.square().sum())
    penalty.backward()
    assert disc.w.grad is not None
    assert torch.allclose(disc.w.grad, 2 * disc.w.detach())


def test_r1_penalty_multiscale_and_patchgan() -> None:
    disc = NLayerDiscriminator(ndf=4, n_layers=2)
    real = torch.randn(2, 3, 32, 32).requires_grad_(True)
    pred = disc(real)
    assert torch.allclose(r1_penalty([pred, pred], real), 4 * r1_penalty(pred, real))


def test_mixed_gradient_penalty_linear_discriminator() -> None:
    disc = _Linear((3, 4, 4))
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    gp = mixed_gradient_penalty(disc, real, fake, torch.Generator().manual_seed(0), constant=1.0)
    assert torch.allclose(gp, (disc.w.detach().norm() - 1) ** 2, atol=1e-5)


def test_mixed_gradient_penalty_deterministic_and_differentiable() -> None:
    torch.manual_seed(0)
    disc = NLayerDiscriminator(ndf=4, n_layers=2)
    real, fake = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    a = mixed_gradient_penalty(disc, real, fake, torch.Generator().manual_seed(5))
    b = mixed_gradient_penalty(disc, real, fake, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    a.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in disc.parameters())
    # A list-valued (multi-scale) discriminator sums the gradients of its scales.
    two = mixed_gradient_penalty(
        lambda x: [disc(x), disc(x)], real, fake, torch.Generator().manual_seed(5), constant=0.0
    )
    one = mixed_gradient_penalty(disc, real, fake, torch.Generator().manual_seed(5), constant=0.0)
    assert torch.allclose(two, 4 * one, rtol=1e-4)


# --- image pool ---------------------------------------------------------------------------------


def _batches(n: int, seed: int = 0) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 1, 2, 2, generator=gen) for _ in range(n)]


def test_pool_size_zero_is_passthrough() -> None:
    pool = ImagePool(0)
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    assert pool.query(x, torch.Generator()) is x


def test_pool_fills_then_mixes() -> None:
    pool = ImagePool(4)
    gen = torch.Generator().manual_seed(0)
    batches = _batches(20)
    for b in batches[:2]:
        assert torch.equal(pool.query(b, gen), b)
    assert len(pool) == 4
    seen = torch.cat(batches)
    returned_old = 0
    for b in batches[2:]:
        out = pool.query(b, gen)
        assert out.shape == b.shape and not out.requires_grad
        for img, new in zip(out, b):
            assert any(torch.equal(img, s) for s in seen)
            returned_old += int(not torch.equal(img, new))
    assert 0 < returned_old < 36  # about half of the 36 images come from the pool


def test_pool_determinism_under_same_seed() -> None:
    outs = []
    for _ in range(2):
        pool, gen = ImagePool(3), torch.Generator().manual_seed(7)
        outs.append(torch.cat([pool.query(b, gen) for b in _batches(10)]))
    assert torch.equal(outs[0], outs[1])


def test_pool_state_dict_resume_is_bit_exact() -> None:
    batches = _batches(12)
    pool, gen = ImagePool(5), torch.Generator().manual_seed(1)
    for b in batches[:6]:
        pool.query(b, gen)

    # Checkpoint: pool state and generator state, through torch.save / weights_only load.
    buf = io.BytesIO()
    torch.save({"pool": pool.state_dict(), "rng": gen.get_state()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)

    resumed, gen2 = ImagePool(5), torch.Generator()
    resumed.load_state_dict(ckpt["pool"])
    gen2.set_state(ckpt["rng"])
    for b in batches[6:]:
        assert torch.equal(pool.query(b, gen), resumed.query(b, gen2))


def test_pool_load_state_dict_checks_size() -> None:
    with pytest.raises(ValueError, match="size"):
        ImagePool(4).load_state_dict(ImagePool(3).state_dict())
    with pytest.raises(ValueError, match=">= 0"):
        ImagePool(-1)
