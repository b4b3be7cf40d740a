"""One-sided GcGAN (Fu et al., CVPR 2019): GAN + geometry consistency.

A translation should commute with a simple geometric transform f (a 90-degree rotation, or a
vertical flip): ``G(f(x)) = f(G(x))``. The one generator translates both x and f(x) (the
"shared" model of the public code, ``gc_gan_share_model.py``); a second PatchGAN judges the
transformed branch against transformed target images::

    L_G = GAN(D(G x)) + GAN(D_gc(G f x))
          + w_gc * (|G x - f^-1(G f x)|_1 + |G f x - f(G x)|_1)        (targets detached)
          + w_idt * (|G y - y|_1 + |G f y - f y|_1)

with w_gc = ``cfg.baseline.gc_weight`` (the public ``lambda_AB * lambda_gc`` = 10 * 2 = 20)
and w_idt = ``cfg.baseline.gc_identity`` (``lambda_AB * identity`` = 10 * 0.5 = 5; 0 = off);
f is ``cfg.baseline.gc_geometry`` (``rot``, the public default, or ``vf``). Each discriminator
takes 0.5 * (real + fake) on its own pooled fakes. Departures: the step updates D before G
(the public code: G first), as every sesim recipe; the generator, discriminators and
``cfg.optim`` are those of the other baselines.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.config import TrainConfig
from sesim.losses.adversarial import discriminator_loss_terms, generator_loss
from sesim.methods.common import (
    StepContext,
    build_discriminator,
    build_generator,
    patch_discriminator,
)
from sesim.nets.resnet import PatchDiscriminator, ResnetGenerator

POOLS = ("fake_B", "fake_gc_B")


def geometry(x: Tensor, kind: str, inverse: bool = False) -> Tensor:
    """The transform f (or its inverse) on (B, C, H, W) images: ``rot`` turns by 90 degrees
    (counter-clockwise; the inverse clockwise), ``vf`` flips upside down (its own inverse)."""
    if kind == "rot":
        return torch.rot90(x, -1 if inverse else 1, dims=(2, 3))
    if kind == "vf":
        return x.flip(2)
    raise ValueError(f"unknown geometry {kind!r}; choose rot or vf")


def geometry_consistency(fake: Tensor, fake_gc: Tensor, kind: str) -> Tensor:
    """``|G x - f^-1(G f x)|_1 + |G f x - f(G x)|_1`` with each target detached (as the public
    code).

    Args:
        fake: (B, C, H, W) translations of x.
        fake_gc: translations of f(x) (shape of f applied to ``fake``).
        kind: ``rot`` or ``vf``.
    Returns:
        Scalar loss (0 when G commutes with f).
    """
    back = geometry(fake_gc.detach(), kind, inverse=True)
    forward = geometry(fake.detach(), kind)
    return F.l1_loss(fake, back) + F.l1_loss(fake_gc, forward)


@dataclass
class GcGANNets:
    """The networks of one run.

    Attributes:
        G: generator (both branches).
        D: discriminator of G(x) against y.
        D_gc: discriminator of G(f(x)) against f(y).
    """

    G: ResnetGenerator
    D: PatchDiscriminator
    D_gc: PatchDiscriminator

    def all_modules(self) -> list[nn.Module]:
        """Every module of the run, to move them to a device together."""
        return [self.G, self.D, self.D_gc]

    def trainable(self) -> dict[str, nn.Module]:
        """Modules with learned weights, by checkpoint key."""
        return {"G": self.G, "D": self.D, "D_gc": self.D_gc}


def build(cfg: TrainConfig) -> GcGANNets:
    """Networks for ``cfg``, on the CPU, with deterministic initialisation."""
    return GcGANNets(
        build_generator(cfg), build_discriminator(cfg), patch_discriminator(cfg, cfg.seed + 5)
    )


def build_optimizers(cfg: TrainConfig, nets: GcGANNets) -> dict[str, torch.optim.Optimizer]:
    """Adam for G, and one Adam for both discriminators (as the public code)."""
    o = cfg.optim
    betas = (o.beta1, o.beta2)
    d_params = [*nets.D.parameters(), *nets.D_gc.parameters()]
    return {
        "G": torch.optim.Adam(nets.G.parameters(), lr=o.lr, betas=betas, foreach=True),
        "D": torch.optim.Adam(d_params, lr=o.lr_d, betas=betas, foreach=True),
    }


def train_step(nets: GcGANNets, ctx: StepContext, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """One step: both discriminators, then the generator; returns detached losses.

    Args:
        nets: the run's networks (in train mode, on the batch's device).
        ctx: optimizers (``G``, ``D``), pools, generator and precision settings.
        batch: ``A`` (B, 3, H, W) inputs and ``B`` (B, 3, H, W) target-domain images.

    Returns:
        Detached scalars: ``D_real``, ``D_fake``, ``D_gc_real``, ``D_gc_fake``, ``G_gan``,
        ``G_gan_gc``, ``G_gc`` and (with identity) ``G_idt`` (unweighted).
    """
    cfg = ctx.cfg
    b, mode = cfg.baseline, cfg.optim.gan_mode
    real_a, real_b = batch["A"], batch["B"]
    gc_a, gc_b = geometry(real_a, b.gc_geometry), geometry(real_b, b.gc_geometry)
    with ctx.amp():
        fake_b = nets.G(real_a)
        fake_gc = nets.G(gc_a)

    # Discriminators: one optimiser over both, each on its own pool.
    with ctx.amp():
        pooled = ctx.pools["fake_B"].query(fake_b.detach(), ctx.generator)
        d_real, d_fake = discriminator_loss_terms(nets.D(real_b), nets.D(pooled), mode)
        pooled_gc = ctx.pools["fake_gc_B"].query(fake_gc.detach(), ctx.generator)
        g_real, g_fake = discriminator_loss_terms(nets.D_gc(gc_b), nets.D_gc(pooled_gc), mode)
        loss_d = 0.5 * (d_real + d_fake) + 0.5 * (g_real + g_fake)
    ctx.update("D", loss_d)

    # Generator.
    for d in (nets.D, nets.D_gc):
        d.requires_grad_(False)
    with ctx.amp():
        loss_gan = generator_loss(nets.D(fake_b), mode)
        loss_gan_gc = generator_loss(nets.D_gc(fake_gc), mode)
        loss_gc = geometry_consistency(fake_b, fake_gc, b.gc_geometry)
        loss_g = loss_gan + loss_gan_gc + b.gc_weight * loss_gc
        loss_idt = None
        if b.gc_identity > 0:
            loss_idt = F.l1_loss(nets.G(real_b), real_b) + F.l1_loss(nets.G(gc_b), gc_b)
            loss_g = loss_g + b.gc_identity * loss_idt
    ctx.update("G", loss_g)
    for d in (nets.D, nets.D_gc):
        d.requires_grad_(True)
    if ctx.scaler is not None:
        ctx.scaler.update()
    logs = {
        "D_real": d_real.detach(),
        "D_fake": d_fake.detach(),
        "D_gc_real": g_real.detach(),
        "D_gc_fake": g_fake.detach(),
        "G_gan": loss_gan.detach(),
        "G_gan_gc": loss_gan_gc.detach(),
        "G_gc": loss_gc.detach(),
    }
    if loss_idt is not None:
        logs["G_idt"] = loss_idt.detach()
    return logs
