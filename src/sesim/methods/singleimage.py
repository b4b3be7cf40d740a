"""The single-image recipe (the public ``sinsc`` model): StyleGAN2 networks trained on crops of
one source and one target image with the FSeSim structure loss.

The public F-LSeSim ``sinsc`` model is CUT's single-image setting (SinCUT) with its PatchNCE
loss replaced by the spatially-correlative loss. One step, in the public code's order:

1. translate: ``fake = G(x)`` on crops of the source image, with fresh per-pixel noise in the
   decoder drawn from ``ctx.generator``; VGG features of x (no graph) and of ``fake`` (with
   graph) are computed once;
2. discriminator: crops of the target image against the detached fakes (no image pool),
   ``0.5 * (real + fake)`` of the GAN objective (``cfg.optim.gan_mode``, non-saturating in the
   presets) plus a gradient penalty chosen by ``cfg.stylegan.gp``:

   - ``mixed`` (the public model): ``gp_weight * mean((||grad D(x_hat)|| - 1)^2)`` at random
     interpolates x_hat of real and fake crops (F-LSeSim's ``cal_gradient_penalty(type="mixed")``
     with ``lambda_gp = gp_weight``, 1 in the presets);
   - ``r1``: ``gp_weight / 2 * mean(||grad D(y)||^2)`` at the real crops, i.e. gamma =
     ``gp_weight`` in the usual ``gamma / 2`` weighting (SinCUT's ``lambda_R1 * 0.5``);
   - ``none``: no penalty;

3. generator: GAN loss + ``cfg.structure.weight`` * structure loss(x, fake) (+ the optional
   identity terms of ``cfg.structure``, off in the presets).

Only FSeSim (fixed VGG features) is supported: the single-image batches carry no colour-jittered
copies, which LSeSim's learned heads need. VGG stays frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.config import TrainConfig
from sesim.errors import UserError
from sesim.features.vgg import VGG16Features
from sesim.losses.adversarial import (
    discriminator_loss_terms,
    generator_loss,
    mixed_gradient_penalty,
    r1_penalty,
)
from sesim.losses.spatial import SpatialCorrelativeLoss
from sesim.methods.common import StepContext, build_structure
from sesim.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

#: No image pool: the discriminator sees the current fakes only (as SinCUT and ``sinsc``).
POOLS: tuple[str, ...] = ()


@dataclass
class SingleImageNets:
    """The networks of a single-image run (owned by the caller, moved to a device by it).

    Attributes:
        G: StyleGAN2 encoder-decoder generator.
        D: StyleGAN2 discriminator on crops.
        vgg: frozen feature extractor.
        crit: structure loss (FSeSim: no learned parameters).
    """

    G: StyleGAN2Generator
    D: StyleGAN2Discriminator
    vgg: VGG16Features
    crit: SpatialCorrelativeLoss

    def all_modules(self) -> list[nn.Module]:
        """Every module of the run, to move them to a device together."""
        return [self.G, self.D, self.vgg, self.crit]

    def trainable(self) -> dict[str, nn.Module]:
        """Modules with learned weights, by checkpoint key."""
        return {"G": self.G, "D": self.D}


def build_generator(cfg: TrainConfig) -> StyleGAN2Generator:
    """The generator described by ``cfg`` (weights drawn from torch's RNG seeded by ``cfg.seed``).

    The StyleGAN2 layers draw N(0, 1) weights in their constructors (no ``init_weights``), so
    they are built under a forked global RNG seeded with ``cfg.seed``; the caller's RNG state
    is left untouched.
    """
    s = cfg.stylegan
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return StyleGAN2Generator(
            3,
            3,
            ngf=s.ngf,
            n_blocks=s.n_blocks,
            num_downsampling=s.num_downsampling,
            resolution=cfg.data.crop_size,
            inject_noise=True,
        )


def build_discriminator(cfg: TrainConfig) -> StyleGAN2Discriminator:
    """The discriminator on ``cfg.data.crop_size`` crops (weights seeded by ``cfg.seed + 1``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 1)
        return StyleGAN2Discriminator(3, cfg.stylegan.ndf, size=cfg.data.crop_size)


def build(cfg: TrainConfig) -> SingleImageNets:
    """Networks for ``cfg``, on the CPU, with deterministic initialisation.

    Raises:
        UserError: the crop size is not a power of two (the discriminator's input), the
            config asks for LSeSim's learned heads, or for ``compile`` with a gradient penalty.
    """
    crop = cfg.data.crop_size
    if crop < 8 or crop & (crop - 1):
        raise UserError(
            f"single-image mode needs a power-of-two crop size of at least 8 (the StyleGAN2 "
            f"discriminator halves it down to 8x8), got {crop}; try 64 or 128"
        )
    if cfg.structure.loss.learned:
        raise UserError(
            "single-image mode supports FSeSim only: set structure.loss.learned=false "
            "(LSeSim's heads need colour-jittered copies, which single-image batches lack)"
        )
    if cfg.compile and cfg.stylegan.gp != "none":
        raise UserError(
            f"compile=true cannot be combined with the {cfg.stylegan.gp} gradient penalty "
            f"(torch.compile does not support the double backward it needs); set compile=false "
            f"or stylegan.gp=none"
        )
    G, D = build_generator(cfg), build_discriminator(cfg)
    vgg, crit = build_structure(cfg)
    return SingleImageNets(G, D, vgg, crit)


def build_optimizers(cfg: TrainConfig, nets: SingleImageNets) -> dict[str, torch.optim.Optimizer]:
    """Adam for G and D with ``cfg.optim`` lr and betas (presets: 1e-3, (0, 0.99))."""
    o = cfg.optim
    betas = (o.beta1, o.beta2)
    return {
        "G": torch.optim.Adam(nets.G.parameters(), lr=o.lr, betas=betas, foreach=True),
        "D": torch.optim.Adam(nets.D.parameters(), lr=o.lr_d, betas=betas, foreach=True),
    }


def _generator_on(device: torch.device, source: torch.Generator) -> torch.Generator:
    """``source`` itself when it lives on ``device``, else a generator there seeded from it.

    Keeps every random draw a function of the checkpointed CPU generator, also on accelerators.
    """
    if source.device.type == device.type:
        return source
    seed = int(torch.randint(2**62, (), generator=source))
    return torch.Generator(device).manual_seed(seed)


def gradient_penalty(
    nets: SingleImageNets, ctx: StepContext, real: Tensor, fake: Tensor
) -> tuple[Tensor, Tensor]:
    """Discriminator logits on ``real`` and the weighted penalty of ``cfg.stylegan.gp``.

    Args:
        nets: networks (only ``D`` is used).
        ctx: step context (config and generator).
        real: (B, 3, S, S) target crops.
        fake: (B, 3, S, S) generated crops, detached.
    Returns:
        (pred_real, penalty): (B, 1) logits on ``real`` (with a graph to D's weights) and the
        weighted scalar penalty (zero for ``gp="none"``).
    """
    s = ctx.cfg.stylegan
    if s.gp == "r1":
        real = real.detach().requires_grad_(True)
        pred_real = nets.D(real)
        return pred_real, 0.5 * s.gp_weight * r1_penalty(pred_real, real)
    pred_real = nets.D(real)
    if s.gp == "mixed":
        gen = _generator_on(real.device, ctx.generator)
        penalty = mixed_gradient_penalty(nets.D, real, fake, generator=gen, constant=1.0)
        return pred_real, s.gp_weight * penalty
    return pred_real, pred_real.new_zeros(())


def train_step(
    nets: SingleImageNets, ctx: StepContext, batch: dict[str, Tensor]
) -> dict[str, Tensor]:
    """One optimisation step of D then G; returns detached losses for logging.

    Args:
        nets: the run's networks (in train mode, on the batch's device).
        ctx: optimizers, generator and precision settings.
        batch: ``A`` (B, 3, S, S) source crops and ``B`` (B, 3, S, S) target crops in [-1, 1].
    Returns:
        Scalar tensors: ``D_real``, ``D_fake``, ``D_gp``, ``G_gan``, ``G_struct`` (and
        ``G_idt``, ``G_idt_struct`` when those weights are set).
    """
    cfg = ctx.cfg
    s = cfg.structure
    real_a, real_b = batch["A"], batch["B"]
    logs: dict[str, Tensor] = {}

    # Translate (with decoder noise from the run's generator); VGG features computed once.
    with ctx.amp():
        fake_b = nets.G(real_a, generator=ctx.generator)
        with torch.no_grad():
            feats_a = nets.vgg(real_a)
        feats_fake = nets.vgg(fake_b)

    # Discriminator: target crops against the current fakes, plus the gradient penalty.
    with ctx.amp():
        fake_d = fake_b.detach()
        pred_real, loss_gp = gradient_penalty(nets, ctx, real_b, fake_d)
        d_real, d_fake = discriminator_loss_terms(pred_real, nets.D(fake_d), cfg.optim.gan_mode)
        loss_d = 0.5 * (d_real + d_fake) + loss_gp
    ctx.update("D", loss_d)
    logs["D_real"], logs["D_fake"], logs["D_gp"] = (
        d_real.detach(),
        d_fake.detach(),
        loss_gp.detach(),
    )

    # Generator: fool D while keeping the source crop's self-similarity.
    nets.D.requires_grad_(False)
    with ctx.amp():
        loss_gan = generator_loss(nets.D(fake_b), cfg.optim.gan_mode)
        loss_struct = nets.crit.structure_loss(feats_a, feats_fake, generator=ctx.generator)
        loss_g = loss_gan + s.weight * loss_struct
        if s.identity_weight > 0 or s.identity_structure_weight > 0:
            idt_b = nets.G(real_b, generator=ctx.generator)
            if s.identity_weight > 0:
                loss_idt = F.l1_loss(idt_b, real_b)
                loss_g = loss_g + s.identity_weight * loss_idt
                logs["G_idt"] = loss_idt.detach()
            if s.identity_structure_weight > 0:
                with torch.no_grad():
                    feats_b = nets.vgg(real_b)
                loss_idt_s = nets.crit.structure_loss(
                    feats_b, nets.vgg(idt_b), generator=ctx.generator
                )
                loss_g = loss_g + s.identity_structure_weight * loss_idt_s
                logs["G_idt_struct"] = loss_idt_s.detach()
    ctx.update("G", loss_g)
    nets.D.requires_grad_(True)
    if ctx.scaler is not None:
        ctx.scaler.update()
    logs["G_gan"], logs["G_struct"] = loss_gan.detach(), loss_struct.detach()
    return logs
