"""One-sided DistanceGAN (Benaim & Wolf, NeurIPS 2017): GAN + distance preservation.

The translation should keep the distances between samples: two inputs far apart (relative to
the typical distance in domain A) map to two outputs far apart (relative to domain B). With
``d(u, v) = mean |u - v|`` and each domain's distances standardised by their mean and std::

    L_dist = mean_{i<j} | (d(x_i, x_j) - mu_A) / sigma_A - (d(G x_i, G x_j) - mu_B) / sigma_B |

over the pairs of a batch, and the *self-distance* variant between the top and bottom halves of
one image (usable at batch 1)::

    L_self = | (d(top x, bottom x) - mu'_A) / sigma'_A - (d(top G x, bottom G x) - mu'_B) / sigma'_B |

    L_G = GAN(D(G(x))) + w * (L_dist + L_self)

with w = ``cfg.baseline.distance_weight`` (the official ``--lambda_distance_A``, 1), plus
``cfg.baseline.identity_weight`` times ``|G(y) - y|_1`` on target images when set (off by default).
The public code uses one term or the other (``--use_self_distance``); sesim sums the pair term
(batches of two or more) and the self term (``cfg.baseline.distance_self``). Departure: the
official code estimates mu and sigma once from up to 900 training images before training; sesim
keeps running (Welford) estimates over every real image it has seen, in a checkpointed buffer
module (``stats``), because a recipe sees no dataset before its first step. The generator, the
discriminator (0.5 * (real + fake) on a pooled fake) and ``cfg.optim`` are those of the other
baselines.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sesim.config import TrainConfig
from sesim.losses.adversarial import generator_loss
from sesim.methods.common import (
    StepContext,
    build_discriminator,
    build_generator,
    discriminator_step,
    pixel_identity,
)
from sesim.nets.resnet import PatchDiscriminator, ResnetGenerator

POOLS = ("fake_B",)

#: The running statistics kept: pair and self distances of each domain.
STAT_KEYS = ("A_pair", "B_pair", "A_self", "B_self")


def pair_distances(x: Tensor) -> Tensor:
    """Mean absolute differences between every pair of a batch.

    Args:
        x: (B, C, H, W) images.
    Returns:
        (B * (B - 1) / 2,) distances ``d(x_i, x_j)``, i < j, in row-major order of the pairs.
    """
    flat = x.flatten(1)
    d = (flat[:, None] - flat[None]).abs().mean(-1)
    i, j = torch.triu_indices(x.shape[0], x.shape[0], offset=1, device=x.device)
    return d[i, j]


def self_distances(x: Tensor) -> Tensor:
    """Mean absolute difference between the top and bottom halves of each image.

    Args:
        x: (B, C, H, W) images, H even (an odd middle row is dropped).
    Returns:
        (B,) distances.
    """
    h = x.shape[2] // 2
    return (x[:, :, :h] - x[:, :, x.shape[2] - h :]).abs().flatten(1).mean(-1)


class DistanceStats(nn.Module):
    """Running mean and std (Welford, population) of the distances of each kind; buffers only,
    so they travel in the checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        for key in STAT_KEYS:
            self.register_buffer(f"{key}_n", torch.zeros((), dtype=torch.float64))
            self.register_buffer(f"{key}_mean", torch.zeros((), dtype=torch.float64))
            self.register_buffer(f"{key}_m2", torch.zeros((), dtype=torch.float64))

    def update(self, key: str, values: Tensor) -> None:
        """Add a batch of distances (no gradient)."""
        v = values.detach().double().flatten()
        if v.numel() == 0:
            return
        n, mean, m2 = (getattr(self, f"{key}_{s}") for s in ("n", "mean", "m2"))
        nb = float(v.numel())
        mb = v.mean()
        m2b = ((v - mb) ** 2).sum()
        delta = mb - mean
        total = n + nb
        mean.copy_(mean + delta * nb / total)
        m2.copy_(m2 + m2b + delta**2 * n * nb / total)
        n.copy_(total)

    def standardise(self, key: str, values: Tensor) -> Tensor:
        """``(values - mean) / std``; std 1 until two distances were seen (or when it is 0)."""
        n, mean, m2 = (getattr(self, f"{key}_{s}") for s in ("n", "mean", "m2"))
        std = (m2 / n.clamp(min=1)).sqrt()
        std = torch.where((n >= 2) & (std > 1e-8), std, torch.ones_like(std))
        return (values - mean.to(values.dtype)) / std.to(values.dtype)


def distance_loss(
    stats: DistanceStats, x: Tensor, y: Tensor, pairs: bool = True, self_term: bool = True
) -> dict[str, Tensor]:
    """DistanceGAN's terms for inputs ``x`` and their translations ``y`` (updates ``stats``
    with ``x`` only; the target domain's statistics come from real target images).

    Args:
        stats: running statistics (``A_*`` of the inputs, ``B_*`` of real target images).
        x: (B, C, H, W) inputs.
        y: (B, C, H, W) translations (gradients flow into them).
        pairs: add the pair term (needs B >= 2).
        self_term: add the top/bottom self-distance term.
    Returns:
        ``pair`` and/or ``self`` scalar losses (present when computed).
    """
    out: dict[str, Tensor] = {}
    if pairs and x.shape[0] >= 2:
        da = stats.standardise("A_pair", pair_distances(x))
        db = stats.standardise("B_pair", pair_distances(y.float()))
        out["pair"] = (da - db).abs().mean()
    if self_term:
        da = stats.standardise("A_self", self_distances(x))
        db = stats.standardise("B_self", self_distances(y.float()))
        out["self"] = (da - db).abs().mean()
    return out


@dataclass
class DistanceGANNets:
    """The networks of one run.

    Attributes:
        G: generator.
        D: discriminator.
        stats: running distance statistics of both domains.
    """

    G: ResnetGenerator
    D: PatchDiscriminator
    stats: DistanceStats

    def all_modules(self) -> list[nn.Module]:
        """Every module of the run, to move them to a device together."""
        return [self.G, self.D, self.stats]

    def trainable(self) -> dict[str, nn.Module]:
        """Modules saved in checkpoints (the statistics are buffers, saved for exact resume)."""
        return {"G": self.G, "D": self.D, "stats": self.stats}


def build(cfg: TrainConfig) -> DistanceGANNets:
    """Networks for ``cfg``, on the CPU, with deterministic initialisation."""
    return DistanceGANNets(build_generator(cfg), build_discriminator(cfg), DistanceStats())


def build_optimizers(cfg: TrainConfig, nets: DistanceGANNets) -> dict[str, torch.optim.Optimizer]:
    """Adam for G and D with the run's ``cfg.optim``."""
    o = cfg.optim
    betas = (o.beta1, o.beta2)
    return {
        "G": torch.optim.Adam(nets.G.parameters(), lr=o.lr, betas=betas, foreach=True),
        "D": torch.optim.Adam(nets.D.parameters(), lr=o.lr_d, betas=betas, foreach=True),
    }


def train_step(
    nets: DistanceGANNets, ctx: StepContext, batch: dict[str, Tensor]
) -> dict[str, Tensor]:
    """One step: statistics, discriminator, then generator; returns detached losses.

    Args:
        nets: the run's networks (in train mode, on the batch's device).
        ctx: optimizers (``G``, ``D``), pool, generator and precision settings.
        batch: ``A`` (B, 3, H, W) inputs and ``B`` (B, 3, H, W) target-domain images.

    Returns:
        Detached scalars: ``D_real``, ``D_fake``, ``G_gan``, ``G_dist_pair`` /
        ``G_dist_self`` and ``G_idt`` (unweighted; when computed).
    """
    cfg = ctx.cfg
    b = cfg.baseline
    real_a, real_b = batch["A"], batch["B"]
    use_pairs = real_a.shape[0] >= 2
    with torch.no_grad():
        if use_pairs:
            nets.stats.update("A_pair", pair_distances(real_a))
            nets.stats.update("B_pair", pair_distances(real_b))
        if b.distance_self:
            nets.stats.update("A_self", self_distances(real_a))
            nets.stats.update("B_self", self_distances(real_b))

    with ctx.amp():
        fake_b = nets.G(real_a)
    logs = discriminator_step(nets.D, ctx, real_b, fake_b)

    nets.D.requires_grad_(False)
    with ctx.amp():
        loss_gan = generator_loss(nets.D(fake_b), cfg.optim.gan_mode)
        terms = distance_loss(nets.stats, real_a, fake_b, use_pairs, b.distance_self)
        loss_g = loss_gan + b.distance_weight * sum(terms.values(), loss_gan.new_zeros(()))
        if b.identity_weight > 0:
            _, loss_idt = pixel_identity(nets.G, real_b)
            loss_g = loss_g + b.identity_weight * loss_idt
            logs["G_idt"] = loss_idt.detach()
    ctx.update("G", loss_g)
    nets.D.requires_grad_(True)
    if ctx.scaler is not None:
        ctx.scaler.update()
    logs["G_gan"] = loss_gan.detach()
    for name, value in terms.items():
        logs[f"G_dist_{name}"] = value.detach()
    return logs
