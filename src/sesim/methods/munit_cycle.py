"""Two-sided MUNIT (Huang et al., ECCV 2018) with its reconstruction and cycle losses: the
multi-modal baseline of the paper's Tables 1-2.

Each domain has a content encoder, a style encoder and an AdaIN decoder. sesim stores them as
two translators with the layout of :class:`~sesim.methods.munit.MunitTranslator`, so that
inference, export and ``sesim eval`` use ``G`` like any multi-modal generator:

- ``G`` (A -> B): A's content encoder, B's decoder (with its style MLP) and B's style encoder;
- ``G_B`` (B -> A): B's content encoder, A's decoder and A's style encoder.

One step (MUNIT's ``gen_update`` and ``dis_update``; the weights are ``cfg.baseline``'s)::

    c_a, s_a' = E_c^A(x_a), E_s^A(x_a)         c_b, s_b' = E_c^B(x_b), E_s^B(x_b)
    x_ab = Dec^B(c_a, s_b),  x_ba = Dec^A(c_b, s_a)          s_a, s_b ~ N(0, I)
    L_G = GAN_B(x_ab) + GAN_A(x_ba)
          + w_x  * (|Dec^A(c_a, s_a') - x_a|_1 + |Dec^B(c_b, s_b') - x_b|_1)
          + w_c  * (|E_c^B(x_ab) - c_a|_1 + |E_c^A(x_ba) - c_b|_1)
          + w_s  * (|E_s^B(x_ab) - s_b|_1 + |E_s^A(x_ba) - s_a|_1)
          + w_cyc * (|Dec^A(E_c^B(x_ab), s_a') - x_a|_1 + |Dec^B(E_c^A(x_ba), s_b') - x_b|_1)

with MUNIT's weights w_x 10, w_c 1, w_s 1 and the cycle weight w_cyc 10
(``recon_x_cyc_w``; its edges2handbags config sets 0, its other configs 10). Two multi-scale
discriminators, D for domain B and D_A for domain A, with real and fake terms summed over
scales (as the one-sided recipe); no image pool and no structure loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.config import TrainConfig
from sesim.losses.adversarial import discriminator_loss_terms, generator_loss
from sesim.methods.common import StepContext
from sesim.methods.munit import MunitTranslator
from sesim.nets.munit import MultiScaleDiscriminator

POOLS: tuple[str, ...] = ()

#: Rows of the sample grids (as the one-sided recipe).
SAMPLE_STYLES = 4

#: Offsets added to ``cfg.seed`` for each network's initialisation.
_SEED_OFFSETS = {"G": 0, "D": 1, "G_B": 5, "D_A": 6}


@dataclass
class MunitCycleNets:
    """The networks of one run.

    Attributes:
        G: A -> B translator (A's content encoder, B's decoder and style encoder).
        G_B: B -> A translator (B's content encoder, A's decoder and style encoder).
        D: multi-scale discriminator of domain B.
        D_A: multi-scale discriminator of domain A.
    """

    G: MunitTranslator
    G_B: MunitTranslator
    D: MultiScaleDiscriminator
    D_A: MultiScaleDiscriminator

    def all_modules(self) -> list[nn.Module]:
        """Every module of the run, to move them to a device together."""
        return [self.G, self.G_B, self.D, self.D_A]

    def trainable(self) -> dict[str, nn.Module]:
        """Modules with learned weights, by checkpoint key."""
        return {"G": self.G, "G_B": self.G_B, "D": self.D, "D_A": self.D_A}


def _translator(cfg: TrainConfig, offset: int) -> MunitTranslator:
    m = cfg.munit
    G = MunitTranslator(
        3,
        3,
        dim=m.dim,
        style_dim=m.style_dim,
        n_downsample=m.n_downsample,
        n_res=m.n_res,
        mlp_dim=m.mlp_dim,
        style_encoder=True,
    )
    G.reset_parameters(torch.Generator().manual_seed(cfg.seed + offset))
    return G


def _discriminator(cfg: TrainConfig, offset: int) -> MultiScaleDiscriminator:
    m = cfg.munit
    D = MultiScaleDiscriminator(3, m.d_dim, m.d_layers, m.num_scales, norm="none")
    D.reset_parameters(torch.Generator().manual_seed(cfg.seed + offset))
    return D


def build_generator(cfg: TrainConfig) -> MunitTranslator:
    """The A -> B translator (always with its style encoder: two-sided MUNIT needs it)."""
    return _translator(cfg, _SEED_OFFSETS["G"])


def build(cfg: TrainConfig) -> MunitCycleNets:
    """Networks for ``cfg``, on the CPU, with deterministic initialisation."""
    return MunitCycleNets(
        build_generator(cfg),
        _translator(cfg, _SEED_OFFSETS["G_B"]),
        _discriminator(cfg, _SEED_OFFSETS["D"]),
        _discriminator(cfg, _SEED_OFFSETS["D_A"]),
    )


def build_optimizers(cfg: TrainConfig, nets: MunitCycleNets) -> dict[str, torch.optim.Optimizer]:
    """One Adam over both translators and one over both discriminators (as MUNIT), with
    ``optim.weight_decay``."""
    o = cfg.optim
    betas, wd = (o.beta1, o.beta2), o.weight_decay
    g_params = [*nets.G.parameters(), *nets.G_B.parameters()]
    d_params = [*nets.D.parameters(), *nets.D_A.parameters()]
    return {
        "G": torch.optim.Adam(g_params, lr=o.lr, betas=betas, weight_decay=wd, foreach=True),
        "D": torch.optim.Adam(d_params, lr=o.lr_d, betas=betas, weight_decay=wd, foreach=True),
    }


def train_step(
    nets: MunitCycleNets, ctx: StepContext, batch: dict[str, Tensor]
) -> dict[str, Tensor]:
    """One step: both discriminators, then both translators; returns detached losses.

    Args:
        nets: the run's networks (in train mode, on the batch's device).
        ctx: optimizers (``G``, ``D``), generator (style codes) and precision settings.
        batch: ``A`` (B, 3, H, W) and ``B`` (B, 3, H, W) images in [-1, 1].

    Returns:
        Detached scalars: ``D_real``, ``D_fake`` (both domains summed), ``G_gan``,
        ``G_recon_x``, ``G_recon_c``, ``G_recon_s`` and ``G_cycle`` (unweighted).
    """
    cfg = ctx.cfg
    b, mode = cfg.baseline, cfg.optim.gan_mode
    G, G_B = nets.G, nets.G_B
    x_a, x_b = batch["A"], batch["B"]
    n = x_a.shape[0]
    s_b = G.sample_style(n, ctx.generator, device=x_a.device)
    s_a = G_B.sample_style(n, ctx.generator, device=x_a.device)

    with ctx.amp():
        c_a, c_b = G.encode_content(x_a), G_B.encode_content(x_b)
        x_ab, x_ba = G.decode(c_a, s_b), G_B.decode(c_b, s_a)

    # Discriminators on both domains.
    with ctx.amp():
        rb, fb = discriminator_loss_terms(nets.D(x_b), nets.D(x_ab.detach()), mode)
        ra, fa = discriminator_loss_terms(nets.D_A(x_a), nets.D_A(x_ba.detach()), mode)
        loss_d = rb + fb + ra + fa
    ctx.update("D", loss_d)

    # Translators.
    for d in (nets.D, nets.D_A):
        d.requires_grad_(False)
    with ctx.amp():
        s_a_own, s_b_own = G_B.encode_style(x_a), G.encode_style(x_b)
        recon_x = F.l1_loss(G_B.decode(c_a, s_a_own), x_a) + F.l1_loss(G.decode(c_b, s_b_own), x_b)
        c_ab, c_ba = G_B.encode_content(x_ab), G.encode_content(x_ba)
        recon_c = F.l1_loss(c_ab, c_a) + F.l1_loss(c_ba, c_b)
        recon_s = F.l1_loss(G.encode_style(x_ab), s_b.to(x_ab.dtype)) + F.l1_loss(
            G_B.encode_style(x_ba), s_a.to(x_ba.dtype)
        )
        loss_gan = generator_loss(nets.D(x_ab), mode) + generator_loss(nets.D_A(x_ba), mode)
        loss_g = (
            loss_gan
            + b.munit_recon_x_weight * recon_x
            + b.munit_recon_c_weight * recon_c
            + b.munit_recon_s_weight * recon_s
        )
        cycle = None
        if b.munit_cycle_weight > 0:
            cycle = F.l1_loss(G_B.decode(c_ab, s_a_own), x_a) + F.l1_loss(
                G.decode(c_ba, s_b_own), x_b
            )
            loss_g = loss_g + b.munit_cycle_weight * cycle
    ctx.update("G", loss_g)
    for d in (nets.D, nets.D_A):
        d.requires_grad_(True)
    if ctx.scaler is not None:
        ctx.scaler.update()
    logs = {
        "D_real": (rb + ra).detach(),
        "D_fake": (fb + fa).detach(),
        "G_gan": loss_gan.detach(),
        "G_recon_x": recon_x.detach(),
        "G_recon_c": recon_c.detach(),
        "G_recon_s": recon_s.detach(),
    }
    if cycle is not None:
        logs["G_cycle"] = cycle.detach()
    return logs
