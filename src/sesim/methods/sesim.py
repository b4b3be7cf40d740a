"""The one-sided SeSim recipe: ResNet generator, PatchGAN and the F/LSeSim structure loss.

One step, in the public code's order:

1. translate: ``fake = G(x)``; VGG features of x (no graph) and of ``fake`` (with graph) are
   computed once and reused by every loss below;
2. heads (LSeSim only): InfoNCE on src = [x, x], positives = [fake (detached), jitter(x)],
   others = [flip(y), flip(jitter(y))] (both spatial axes flipped);
3. discriminator: real y against a pooled, detached fake;
4. generator: GAN loss + lambda * structure loss(x, fake) (+ optional identity terms and the
   colour anchor ``|fake - T(x)|_1`` towards the input's colour transfer T).

VGG stays frozen; no gradient is ever computed for its weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.config import TrainConfig
from sesim.features.vgg import VGG16Features
from sesim.losses.adversarial import generator_loss
from sesim.losses.spatial import SpatialCorrelativeLoss
from sesim.methods.common import (
    StepContext,
    build_discriminator,
    build_generator,
    build_structure,
    discriminator_step,
    heads_step,
    pixel_identity,
)
from sesim.nets.resnet import PatchDiscriminator, ResnetGenerator

POOLS = ("fake_B",)


@dataclass
class SesimNets:
    """The networks of one run (owned by the caller, moved to a device by it).

    Attributes:
        G: generator.
        D: discriminator.
        vgg: frozen feature extractor.
        crit: structure loss (owns LSeSim's heads, if any).
    """

    G: ResnetGenerator
    D: PatchDiscriminator
    vgg: VGG16Features
    crit: SpatialCorrelativeLoss

    def all_modules(self) -> list[nn.Module]:
        """Every module of the run, to move them to a device together."""
        return [self.G, self.D, self.vgg, self.crit]

    def trainable(self) -> dict[str, nn.Module]:
        """Modules with learned weights, by checkpoint key."""
        out: dict[str, nn.Module] = {"G": self.G, "D": self.D}
        if self.crit.heads is not None:
            out["heads"] = self.crit.heads
        return out


def build(cfg: TrainConfig) -> SesimNets:
    """Networks for ``cfg``, on the CPU, with deterministic initialisation."""
    G = build_generator(cfg)
    D = build_discriminator(cfg)
    vgg, crit = build_structure(cfg)
    return SesimNets(G, D, vgg, crit)


def build_optimizers(cfg: TrainConfig, nets: SesimNets) -> dict[str, torch.optim.Optimizer]:
    """Adam for G, D and (LSeSim) the heads; VGG is in none of them."""
    o = cfg.optim
    betas = (o.beta1, o.beta2)
    opts: dict[str, torch.optim.Optimizer] = {
        "G": torch.optim.Adam(nets.G.parameters(), lr=o.lr, betas=betas, foreach=True),
        "D": torch.optim.Adam(nets.D.parameters(), lr=o.lr_d, betas=betas, foreach=True),
    }
    if nets.crit.heads is not None:
        opts["heads"] = torch.optim.Adam(
            nets.crit.heads.parameters(), lr=o.lr_heads, betas=betas, foreach=True
        )
    return opts


def balanced_output_loss(
    output: Tensor,
    loss_gan: Tensor,
    loss_struct: Tensor,
    ratio: float,
    scaler: torch.amp.GradScaler | None = None,
    eps: float = 1e-12,
) -> tuple[Tensor, dict[str, Tensor]]:
    """A surrogate loss whose gradient at ``output`` is g_gan + w * g_struct, ||w g_struct|| =
    ratio * ||g_gan||.

    Both gradients are taken at the generator's output (one backward pass through D and one
    through the feature extractor, as for the plain sum); the returned loss carries their
    balanced sum back through the generator only. The weight is recomputed every step, so the
    two terms keep the same share of the generator's update however their scales drift.

    Args:
        output: (B, 3, H, W) the generator's output, with its graph.
        loss_gan: the generator's adversarial loss (scalar, from ``output``).
        loss_struct: the structure loss (scalar, from ``output``).
        ratio: r, the structure gradient's norm as a multiple of the GAN gradient's.
        scaler: the fp16 gradient scaler, if any (gradients are taken of scaled losses).
        eps: guards the division when the structure gradient vanishes.

    Returns:
        The surrogate loss (scalar) and detached logs: ``G_struct_w`` (w), ``grad_gan`` and
        ``grad_struct`` (the unweighted norms at the output).
    """
    scale = scaler.get_scale() if scaler is not None else 1.0
    g_gan, g_struct = (
        torch.autograd.grad(loss * scale, output, retain_graph=True)[0]
        for loss in (loss_gan, loss_struct)
    )
    n_gan, n_struct = g_gan.float().norm(), g_struct.float().norm()
    w = ratio * n_gan / (n_struct + eps)
    combined = (g_gan.float() + w * g_struct.float()) / scale
    surrogate = (output.float() * combined.detach()).sum()
    logs = {
        "G_struct_w": w.detach(),
        "grad_gan": (n_gan / scale).detach(),
        "grad_struct": (n_struct / scale).detach(),
    }
    return surrogate, logs


def structure_weight(cfg: TrainConfig, step: int) -> float:
    """The structure term's weight at adversarial step ``step`` (0-based): ``weight``, or the
    linear ramp to ``weight_final`` over the run when that is set."""
    s = cfg.structure
    if s.weight_final <= 0 or cfg.steps <= 1:
        return s.weight
    return s.weight + (s.weight_final - s.weight) * min(1.0, step / (cfg.steps - 1))


def train_step(nets: SesimNets, ctx: StepContext, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """One optimisation step of every network; returns detached losses for logging.

    Args:
        nets: the run's networks (in train mode, on the batch's device).
        ctx: optimizers, pool, generator and precision settings.
        batch: ``A`` (B, 3, H, W) inputs and ``B`` (B, 3, H, W) target-domain images in
            [-1, 1]; ``A_aug``/``B_aug`` colour-jittered copies when the heads are learned.

    Returns:
        Scalar tensors by name (``G_gan``, ``G_struct``, ``D_real``, ``D_fake``, ...).
    """
    cfg = ctx.cfg
    s = cfg.structure
    real_a, real_b = batch["A"], batch["B"]
    logs: dict[str, Tensor] = {}

    # Translate; compute each image's VGG features once.
    with ctx.amp():
        fake_b = nets.G(real_a)
        with torch.no_grad():
            feats_a = nets.vgg(real_a)
        feats_fake = nets.vgg(fake_b)

    if nets.crit.heads is not None:
        logs.update(heads_step(nets.vgg, nets.crit, ctx, batch, feats_a, feats_fake))
    logs.update(discriminator_step(nets.D, ctx, real_b, fake_b))

    # Generator: fool D while keeping the input's self-similarity.
    heads = nets.crit.heads
    frozen = [nets.D] + ([heads] if heads is not None else [])
    for module in frozen:
        module.requires_grad_(False)
    with ctx.amp():
        loss_gan = generator_loss(nets.D(fake_b), cfg.optim.gan_mode)
        loss_struct = nets.crit.structure_loss(feats_a, feats_fake, generator=ctx.generator)
        gan_w = min(1.0, (ctx.step + 1) / s.gan_warmup) if s.gan_warmup > 0 else 1.0
        if s.balance > 0:
            loss_g, balance_logs = balanced_output_loss(
                fake_b, gan_w * loss_gan, loss_struct, s.balance, ctx.scaler
            )
            logs.update(balance_logs)
        else:
            weight = structure_weight(cfg, ctx.step)
            loss_g = gan_w * loss_gan + weight * loss_struct
            if s.weight_final > 0:
                logs["G_struct_w"] = loss_struct.new_tensor(weight).detach()
        if s.identity_weight > 0 or s.identity_structure_weight > 0:
            idt_b, loss_idt = pixel_identity(nets.G, real_b)
            if s.identity_weight > 0:
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
        if s.colour_anchor > 0:
            if ctx.recolour is None:
                raise RuntimeError("structure.colour_anchor needs ctx.recolour (set by training)")
            loss_anchor = F.l1_loss(fake_b, ctx.recolour(real_a))
            loss_g = loss_g + s.colour_anchor * loss_anchor
            logs["G_anchor"] = loss_anchor.detach()
    ctx.update("G", loss_g)
    for module in frozen:
        module.requires_grad_(True)
    if ctx.scaler is not None:
        ctx.scaler.update()
    logs["G_gan"], logs["G_struct"] = loss_gan.detach(), loss_struct.detach()
    return logs
