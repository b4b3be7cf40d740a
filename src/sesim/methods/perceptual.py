"""The perceptual-loss baseline: one-sided GAN + L1 between VGG16 features of x and G(x).

The structure loss of the SeSim recipe is replaced by a plain feature-matching (content) loss on
the same VGG16 taps (``cfg.structure.layers``, weights ``cfg.structure.vgg_weights``)::

    L_G = GAN(D(G(x))) + lambda_p * mean_l |phi_l(x) - phi_l(G(x))|_1

with lambda_p = ``cfg.baseline.perceptual_weight``, plus ``cfg.baseline.identity_weight`` times the
identity L1 ``|G(y) - y|_1`` on target images when that weight is set (off by default). Unlike the
self-similarity maps, these features also carry appearance (colour, texture), so the loss resists
the domain change; the baseline shows what comparing structure instead buys. Everything else
(networks, discriminator loss 0.5 * (real + fake) on a pooled fake, ``cfg.optim``) is the SeSim
recipe's.

VGG stays frozen; no gradient is ever computed for its weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.config import TrainConfig
from sesim.features.vgg import VGG16Features
from sesim.losses.adversarial import discriminator_loss_terms, generator_loss
from sesim.methods.common import (
    StepContext,
    build_discriminator,
    build_generator,
    build_vgg,
    pixel_identity,
)
from sesim.nets.resnet import PatchDiscriminator, ResnetGenerator

POOLS = ("fake_B",)


def perceptual_loss(feats_src: Sequence[Tensor], feats_tgt: Sequence[Tensor]) -> Tensor:
    """Mean over layers of the mean absolute difference between two images' features.

    Args:
        feats_src: per layer, (B, C_l, H_l, W_l) features of the input.
        feats_tgt: the same layers of the translation, same shapes.
    Returns:
        scalar loss (0 for identical features).

    Raises:
        ValueError: for empty or mismatched feature lists.
    """
    if not feats_src or len(feats_src) != len(feats_tgt):
        raise ValueError(
            f"expected two equally long, non-empty feature lists, got {len(feats_src)} "
            f"and {len(feats_tgt)}"
        )
    for a, b in zip(feats_src, feats_tgt, strict=True):
        if a.shape != b.shape:
            raise ValueError(f"feature shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return torch.stack([F.l1_loss(b, a) for a, b in zip(feats_src, feats_tgt, strict=True)]).mean()


@dataclass
class PerceptualNets:
    """The networks of one run.

    Attributes:
        G: generator.
        D: discriminator.
        vgg: frozen feature extractor.
    """

    G: ResnetGenerator
    D: PatchDiscriminator
    vgg: VGG16Features

    def all_modules(self) -> list[nn.Module]:
        """Every module of the run, to move them to a device together."""
        return [self.G, self.D, self.vgg]

    def trainable(self) -> dict[str, nn.Module]:
        """Modules with learned weights, by checkpoint key (VGG is rebuilt from the config)."""
        return {"G": self.G, "D": self.D}


def build(cfg: TrainConfig) -> PerceptualNets:
    """Networks for ``cfg``, on the CPU, with deterministic initialisation."""
    G = build_generator(cfg)
    D = build_discriminator(cfg)
    vgg = build_vgg(cfg)
    return PerceptualNets(G, D, vgg)


def build_optimizers(cfg: TrainConfig, nets: PerceptualNets) -> dict[str, torch.optim.Optimizer]:
    """Adam for G and D with the run's ``cfg.optim``; VGG is in neither."""
    o = cfg.optim
    betas = (o.beta1, o.beta2)
    return {
        "G": torch.optim.Adam(nets.G.parameters(), lr=o.lr, betas=betas, foreach=True),
        "D": torch.optim.Adam(nets.D.parameters(), lr=o.lr_d, betas=betas, foreach=True),
    }


def train_step(
    nets: PerceptualNets, ctx: StepContext, batch: dict[str, Tensor]
) -> dict[str, Tensor]:
    """One step: discriminator, then generator; returns detached losses for logging.

    Args:
        nets: the run's networks (in train mode, on the batch's device).
        ctx: optimizers (``G``, ``D``), pool, generator and precision settings.
        batch: ``A`` (B, 3, H, W) inputs and ``B`` (B, 3, H, W) target-domain images in [-1, 1].

    Returns:
        Detached scalars: ``D_real``, ``D_fake``, ``G_gan``, ``G_perceptual`` and (with
        ``cfg.baseline.identity_weight``) ``G_idt``, unweighted.
    """
    cfg = ctx.cfg
    mode = cfg.optim.gan_mode
    real_a, real_b = batch["A"], batch["B"]

    with ctx.amp():
        fake_b = nets.G(real_a)
        with torch.no_grad():
            feats_a = nets.vgg(real_a)

    # Discriminator: real target images against pooled fakes.
    with ctx.amp():
        pooled = ctx.pools["fake_B"].query(fake_b.detach(), ctx.generator)
        d_real, d_fake = discriminator_loss_terms(nets.D(real_b), nets.D(pooled), mode)
        loss_d = 0.5 * (d_real + d_fake)
    ctx.update("D", loss_d)

    # Generator: fool D while keeping the input's VGG features.
    nets.D.requires_grad_(False)
    with ctx.amp():
        loss_gan = generator_loss(nets.D(fake_b), mode)
        loss_p = perceptual_loss(feats_a, nets.vgg(fake_b))
        loss_g = loss_gan + cfg.baseline.perceptual_weight * loss_p
        logs: dict[str, Tensor] = {}
        if cfg.baseline.identity_weight > 0:
            _, loss_idt = pixel_identity(nets.G, real_b)
            loss_g = loss_g + cfg.baseline.identity_weight * loss_idt
            logs["G_idt"] = loss_idt.detach()
    ctx.update("G", loss_g)
    nets.D.requires_grad_(True)
    if ctx.scaler is not None:
        ctx.scaler.update()
    return {
        "D_real": d_real.detach(),
        "D_fake": d_fake.detach(),
        "G_gan": loss_gan.detach(),
        "G_perceptual": loss_p.detach(),
        **logs,
    }
