"""The CycleGAN baseline (Zhu et al., ICCV 2017): two generators, two discriminators, cycles.

Facts from ``models/cycle_gan_model.py`` of junyanz/pytorch-CycleGAN-and-pix2pix, in this
package's names (CycleGAN's code names in brackets; the paper calls them G, F, D_Y, D_X):

- ``G`` (G_A): A -> B, the generator used for translation and evaluation; ``G_B`` (G_B): B -> A;
- ``D`` (D_A) judges domain-B images, real y against pooled G(x); ``D_A`` (D_B) judges domain-A
  images, real x against pooled G_B(y). One image pool per discriminator;
- generator loss: GAN(D(G(x))) + GAN(D_A(G_B(y)))
  + lambda * |G_B(G(x)) - x|_1 + lambda * |G(G_B(y)) - y|_1
  + lambda * lambda_idt * (|G(y) - y|_1 + |G_B(x) - x|_1),
  with lambda = ``cycle_weight`` (10, CycleGAN's ``lambda_A`` = ``lambda_B``) and lambda_idt =
  ``cycle_identity`` (0.5, ``lambda_identity``);
- each discriminator loss is 0.5 * (real term + fake term);
- one Adam optimizer for both generators (``G``) and one for both discriminators (``D``); the
  generators are updated first (discriminators frozen), then the discriminators on the detached
  fakes of the same forward pass.

Departure: the optimiser settings, GAN objective, pool size and schedule are the run's
``cfg.optim`` (CycleGAN: Adam 2e-4, betas (0.5, 0.999), lsgan, pool 50), and the networks are the
run's ``cfg.model``, so that every method of a comparison shares them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.config import TrainConfig
from sesim.losses.adversarial import discriminator_loss_terms, generator_loss
from sesim.methods.common import (
    StepContext,
    build_generator,
    patch_discriminator,
    resnet_generator,
)
from sesim.nets.resnet import PatchDiscriminator, ResnetGenerator

POOLS = ("fake_B", "fake_A")

#: Offsets added to ``cfg.seed`` for the initialisation of each network (``seed + 4`` is the
#: training loop's generator).
_SEED_OFFSETS = {"G": 0, "D": 1, "G_B": 5, "D_A": 6}


@dataclass
class CycleGANNets:
    """The networks of one CycleGAN run.

    Attributes:
        G: generator A -> B (translation and evaluation).
        G_B: generator B -> A.
        D: discriminator of domain B.
        D_A: discriminator of domain A.
    """

    G: ResnetGenerator
    G_B: ResnetGenerator
    D: PatchDiscriminator
    D_A: PatchDiscriminator

    def all_modules(self) -> list[nn.Module]:
        """Every module of the run, to move them to a device together."""
        return [self.G, self.G_B, self.D, self.D_A]

    def trainable(self) -> dict[str, nn.Module]:
        """Modules with learned weights, by checkpoint key."""
        return {"G": self.G, "G_B": self.G_B, "D": self.D, "D_A": self.D_A}


def build(cfg: TrainConfig) -> CycleGANNets:
    """Networks for ``cfg``, on the CPU, each initialised from its own seed."""
    return CycleGANNets(
        G=build_generator(cfg),  # seed + _SEED_OFFSETS["G"], which is 0
        G_B=resnet_generator(cfg, cfg.seed + _SEED_OFFSETS["G_B"]),
        D=patch_discriminator(cfg, cfg.seed + _SEED_OFFSETS["D"]),
        D_A=patch_discriminator(cfg, cfg.seed + _SEED_OFFSETS["D_A"]),
    )


def build_optimizers(cfg: TrainConfig, nets: CycleGANNets) -> dict[str, torch.optim.Optimizer]:
    """One Adam for both generators (``G``) and one for both discriminators (``D``), as
    CycleGAN, with the run's ``cfg.optim`` settings."""
    o = cfg.optim
    betas = (o.beta1, o.beta2)
    gens = itertools.chain(nets.G.parameters(), nets.G_B.parameters())
    discs = itertools.chain(nets.D.parameters(), nets.D_A.parameters())
    return {
        "G": torch.optim.Adam(gens, lr=o.lr, betas=betas, foreach=True),
        "D": torch.optim.Adam(discs, lr=o.lr_d, betas=betas, foreach=True),
    }


@dataclass
class CycleOutputs:
    """Images and unweighted reconstruction terms of one CycleGAN forward pass.

    Attributes:
        fake_b: (B, 3, H, W) G(x).
        fake_a: (B, 3, H, W) G_B(y).
        cycle_a: |G_B(G(x)) - x|_1, mean over pixels.
        cycle_b: |G(G_B(y)) - y|_1.
        idt_g: |G(y) - y|_1 (None without identity terms).
        idt_g_b: |G_B(x) - x|_1 (None without identity terms).
    """

    fake_b: Tensor
    fake_a: Tensor
    cycle_a: Tensor
    cycle_b: Tensor
    idt_g: Tensor | None
    idt_g_b: Tensor | None


def cycle_forward(
    G: nn.Module, G_B: nn.Module, real_a: Tensor, real_b: Tensor, identity: bool
) -> CycleOutputs:
    """Translate both ways, reconstruct, and measure the cycle (and identity) L1 errors.

    Args:
        G: generator A -> B.
        G_B: generator B -> A.
        real_a: (B, 3, H, W) domain-A images in [-1, 1].
        real_b: (B, 3, H, W) domain-B images in [-1, 1].
        identity: also compute the identity terms (each generator on its own output domain).
    Returns:
        the translations and the unweighted L1 terms (see :class:`CycleOutputs`).
    """
    fake_b = G(real_a)
    fake_a = G_B(real_b)
    cycle_a = F.l1_loss(G_B(fake_b), real_a)
    cycle_b = F.l1_loss(G(fake_a), real_b)
    idt_g = idt_g_b = None
    if identity:
        idt_g = F.l1_loss(G(real_b), real_b)
        idt_g_b = F.l1_loss(G_B(real_a), real_a)
    return CycleOutputs(fake_b, fake_a, cycle_a, cycle_b, idt_g, idt_g_b)


def train_step(nets: CycleGANNets, ctx: StepContext, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """One CycleGAN step: both generators, then both discriminators.

    Args:
        nets: the run's networks (in train mode, on the batch's device).
        ctx: optimizers (``G``, ``D``), pools (``fake_B``, ``fake_A``), generator and precision.
        batch: ``A`` (B, 3, H, W) and ``B`` (B, 3, H, W) images in [-1, 1].

    Returns:
        Detached scalars: ``G_gan``, ``G_B_gan``, ``cycle_A``, ``cycle_B``, ``idt_G``,
        ``idt_G_B`` (unweighted; identity terms only when on), ``D_real``, ``D_fake``,
        ``D_A_real``, ``D_A_fake``.
    """
    cfg = ctx.cfg
    b = cfg.baseline
    mode = cfg.optim.gan_mode
    real_a, real_b = batch["A"], batch["B"]
    lam, lam_idt = b.cycle_weight, b.cycle_weight * b.cycle_identity
    logs: dict[str, Tensor] = {}

    # Generators: fool both discriminators and close both cycles (discriminators frozen).
    for D in (nets.D, nets.D_A):
        D.requires_grad_(False)
    with ctx.amp():
        out = cycle_forward(nets.G, nets.G_B, real_a, real_b, identity=lam_idt > 0)
        gan_g = generator_loss(nets.D(out.fake_b), mode)
        gan_g_b = generator_loss(nets.D_A(out.fake_a), mode)
        loss_g = gan_g + gan_g_b + lam * (out.cycle_a + out.cycle_b)
        if out.idt_g is not None and out.idt_g_b is not None:
            loss_g = loss_g + lam_idt * (out.idt_g + out.idt_g_b)
            logs["idt_G"], logs["idt_G_B"] = out.idt_g.detach(), out.idt_g_b.detach()
    ctx.update("G", loss_g)
    for D in (nets.D, nets.D_A):
        D.requires_grad_(True)

    # Discriminators: real images of their domain against pooled, detached fakes.
    with ctx.amp():
        pooled_b = ctx.pools["fake_B"].query(out.fake_b.detach(), ctx.generator)
        pooled_a = ctx.pools["fake_A"].query(out.fake_a.detach(), ctx.generator)
        d_real, d_fake = discriminator_loss_terms(nets.D(real_b), nets.D(pooled_b), mode)
        da_real, da_fake = discriminator_loss_terms(nets.D_A(real_a), nets.D_A(pooled_a), mode)
        loss_d = 0.5 * (d_real + d_fake) + 0.5 * (da_real + da_fake)
    ctx.update("D", loss_d)
    if ctx.scaler is not None:
        ctx.scaler.update()

    logs["G_gan"], logs["G_B_gan"] = gan_g.detach(), gan_g_b.detach()
    logs["cycle_A"], logs["cycle_B"] = out.cycle_a.detach(), out.cycle_b.detach()
    logs["D_real"], logs["D_fake"] = d_real.detach(), d_fake.detach()
    logs["D_A_real"], logs["D_A_fake"] = da_real.detach(), da_fake.detach()
    return logs
