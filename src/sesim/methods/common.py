"""What every training recipe shares: the method interface, the per-step context, the ResNet
generator and PatchGAN builders, and the heads and discriminator steps.

A method is a module with four functions (see :class:`Method`); the training loop only talks to
methods through them, so adding a recipe means adding one file and one registry entry.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.config import TrainConfig
from sesim.features.vgg import VGG16Features
from sesim.losses.adversarial import ImagePool, discriminator_loss_terms
from sesim.losses.spatial import SpatialCorrelativeLoss
from sesim.nets.init import init_weights
from sesim.nets.resnet import (
    NLayerDiscriminator,
    PatchDiscriminator,
    PatchDiscriminatorPair,
    ResnetGenerator,
)


class Nets(Protocol):
    """The networks of a run, as the training loop sees them."""

    G: nn.Module

    def all_modules(self) -> list[nn.Module]:
        """Every module, to move them to a device together."""
        ...

    def trainable(self) -> dict[str, nn.Module]:
        """Modules with learned weights, by checkpoint key."""
        ...


class Method(Protocol):
    """A training recipe (a module implementing these functions).

    Attributes:
        POOLS: names of the image pools the recipe uses (``ctx.pools[name]``); the loop creates
            and checkpoints them.
    """

    POOLS: tuple[str, ...]

    def build(self, cfg: TrainConfig) -> Any: ...

    def build_generator(self, cfg: TrainConfig) -> nn.Module: ...

    def build_optimizers(self, cfg: TrainConfig, nets: Any) -> dict[str, torch.optim.Optimizer]: ...

    def train_step(
        self, nets: Any, ctx: StepContext, batch: dict[str, Tensor]
    ) -> dict[str, Tensor]: ...


@dataclass
class StepContext:
    """Everything a step needs besides networks and data.

    Attributes:
        cfg: the run's config.
        optimizers: by name (``G``, ``D``, ``heads``).
        pools: image pools of fakes for the discriminators, by the names in ``method.POOLS``.
        generator: CPU generator for query points and the pool.
        autocast: a context factory for mixed precision.
        scaler: gradient scaler (fp16) or None.
        sync: averages gradients across ranks before each step (multi-process runs), or None.
        step: the number of optimisation steps taken before this one (set by the loop).
        recolour: the colour transfer from domain A to domain B
            (:func:`sesim.train.colour_transfer_map`) on the run's device, when
            ``structure.colour_anchor`` asks for it; None otherwise.
    """

    cfg: TrainConfig
    optimizers: dict[str, torch.optim.Optimizer]
    pools: dict[str, ImagePool]
    generator: torch.Generator
    autocast: type[AbstractContextManager[None]] | None = None
    scaler: torch.amp.GradScaler | None = None
    sync: Callable[[list[nn.Parameter]], None] | None = None
    step: int = 0
    recolour: Callable[[Tensor], Tensor] | None = None

    def amp(self) -> AbstractContextManager[None]:
        return self.autocast() if self.autocast is not None else nullcontext()

    def update(self, name: str, loss: Tensor) -> None:
        """Backward and step one optimizer (through the scaler when there is one)."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if self.sync is not None:
            self.sync([p for group in opt.param_groups for p in group["params"]])
        if self.scaler is not None:
            self.scaler.step(opt)
        else:
            opt.step()


# ---------------------------------------------------------------------------------------------
# Networks of the ResNet recipes (sesim, cyclegan, cut, fastcut, perceptual).


def resnet_generator(cfg: TrainConfig, seed: int) -> ResnetGenerator:
    """The ResNet generator described by ``cfg.model``, initialised from ``seed``."""
    m = cfg.model
    G = ResnetGenerator(
        3, 3, m.ngf, m.n_blocks, norm=m.norm, antialias=m.antialias, n_downsampling=m.n_downsampling
    )
    init_weights(G, m.init, m.init_gain, generator=torch.Generator().manual_seed(seed))
    return G


def patch_discriminator(cfg: TrainConfig, seed: int) -> PatchDiscriminator:
    """The PatchGAN described by ``cfg.model``, initialised from ``seed``.

    With ``cfg.model.d_local_layers`` > 0 it is a :class:`PatchDiscriminatorPair`: the same
    PatchGAN (initialised as without it) and a local one with that many layers.
    """
    m = cfg.model
    D = NLayerDiscriminator(3, m.ndf, m.d_layers, norm=m.norm, antialias=m.antialias)
    init_weights(D, m.init, m.init_gain, generator=torch.Generator().manual_seed(seed))
    if m.d_local_layers == 0:
        return D
    local = NLayerDiscriminator(3, m.ndf, m.d_local_layers, norm=m.norm, antialias=m.antialias)
    init_weights(local, m.init, m.init_gain, generator=torch.Generator().manual_seed(seed + 1000))
    return PatchDiscriminatorPair(D, local)


def build_generator(cfg: TrainConfig) -> ResnetGenerator:
    """The (A -> B) generator described by ``cfg`` (weights initialised from ``cfg.seed``)."""
    return resnet_generator(cfg, cfg.seed)


def build_discriminator(cfg: TrainConfig) -> PatchDiscriminator:
    """The (domain B) discriminator described by ``cfg`` (weights from ``cfg.seed + 1``)."""
    return patch_discriminator(cfg, cfg.seed + 1)


def build_vgg(cfg: TrainConfig) -> VGG16Features:
    """The run's frozen VGG16 taps (``cfg.structure``; random weights from ``cfg.seed + 2``
    when ``vgg_weights`` is ``"random"``)."""
    s = cfg.structure
    weights = None if s.vgg_weights == "random" else s.vgg_weights
    return VGG16Features(s.layers, weights=weights, seed=cfg.seed + 2)


def build_structure(cfg: TrainConfig) -> tuple[VGG16Features, SpatialCorrelativeLoss]:
    """The frozen VGG16 taps and the structure loss on them (LSeSim's heads, if any,
    initialised from ``cfg.seed + 3`` without touching the global random state)."""
    vgg = build_vgg(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 3)
        crit = SpatialCorrelativeLoss(vgg.channels, cfg.structure.loss)
    return vgg, crit


# ---------------------------------------------------------------------------------------------
# Steps shared by the single-modal and multi-modal SeSim recipes.


def heads_step(
    vgg: VGG16Features,
    crit: SpatialCorrelativeLoss,
    ctx: StepContext,
    batch: dict[str, Tensor],
    feats_a: list[Tensor],
    feats_fake: list[Tensor],
) -> dict[str, Tensor]:
    """LSeSim's heads step: pull maps of the same point in structure-preserving views together.

    src = [x, x]; positives = [translation (detached), jitter(x)]; others = [y, jitter(y)]
    flipped on both spatial axes, as the public code.

    Args:
        vgg: the frozen extractor.
        crit: the loss owning the heads (``ctx.optimizers["heads"]`` steps them).
        ctx: step context.
        batch: with ``B``, ``A_aug`` and ``B_aug`` (B, 3, H, W).
        feats_a: VGG features of the inputs (no graph).
        feats_fake: VGG features of the translations (detached here).

    Returns:
        ``{"heads_nce": loss}`` (detached).
    """
    with ctx.amp():
        with torch.no_grad():
            others = torch.cat([batch["B"], batch["B_aug"]]).flip(2, 3)
            feats_aug = vgg(batch["A_aug"])
            feats_oth = vgg(others)
        src = [torch.cat([f, f]) for f in feats_a]
        pos = [torch.cat([f.detach(), g]) for f, g in zip(feats_fake, feats_aug)]
        loss = crit.contrastive_loss(src, pos, feats_oth, generator=ctx.generator)
    ctx.update("heads", loss)
    return {"heads_nce": loss.detach()}


def pixel_identity(
    G: nn.Module, real_b: Tensor, idt_b: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The identity term on target-domain images, ``|G(y) - y|_1``: a translator should leave an
    image that already looks like the target domain unchanged.

    Args:
        G: the generator (gradients flow into it).
        real_b: (B, 3, H, W) target-domain images.
        idt_b: (B, 3, H, W) ``G(real_b)`` when the caller already computed it for another
            term; None runs the generator here.

    Returns:
        ``G(y)`` (B, 3, H, W) and the scalar mean absolute difference.
    """
    if idt_b is None:
        idt_b = G(real_b)
    return idt_b, F.l1_loss(idt_b, real_b)


def discriminator_step(
    D: nn.Module, ctx: StepContext, real_b: Tensor, fake_b: Tensor
) -> dict[str, Tensor]:
    """Real target images against pooled, detached fakes (every scale of a multi-scale D).

    Args:
        D: discriminator (``ctx.optimizers["D"]`` steps it).
        ctx: step context (its ``fake_B`` pool).
        real_b: (B, 3, H, W) target-domain images.
        fake_b: (B, 3, H, W) translations.

    Returns:
        ``D_real`` and ``D_fake`` terms (detached).
    """
    with ctx.amp():
        pooled = ctx.pools["fake_B"].query(fake_b.detach(), ctx.generator)
        d_real, d_fake = discriminator_loss_terms(D(real_b), D(pooled), ctx.cfg.optim.gan_mode)
        loss = 0.5 * (d_real + d_fake)
    ctx.update("D", loss)
    return {"D_real": d_real.detach(), "D_fake": d_fake.detach()}
