"""The CUT and FastCUT baselines (Park et al., ECCV 2020): one-sided GAN + PatchNCE.

Facts from ``models/cut_model.py`` of taesungp/contrastive-unpaired-translation:

- the PatchNCE loss compares the generator's own encoder features (CUT's ``--nce_layers
  0,4,8,12,16``: the padded input, both downsampling convolutions, residual blocks 1 and 5) of
  the translation G(x) (queries) with those of the input x (keys, detached), at the same randomly
  sampled positions (``--num_patches`` 256), after a 2-layer MLP per layer and L2
  normalisation (``--netF mlp_sample``, ``--netF_nc`` 256); negatives are the other patches of
  the same image; temperature ``--nce_T`` 0.07; the per-layer losses are averaged over layers;
- CUT adds the identity term PatchNCE(y, G(y)) and averages it with the main one
  (``(NCE + NCE_Y) / 2``), with lambda_NCE 1; FastCUT drops it and uses lambda_NCE 10;
- discriminator loss 0.5 * (real + fake); generator loss GAN (weight 1) + lambda_NCE * NCE;
- the MLP heads have their own Adam (same settings as G's), zeroed and stepped together with
  G's from the generator loss; D is updated first, then G and the heads.

Departures: the optimiser settings, GAN objective, image pool and schedule are the run's
``cfg.optim`` for every method of a comparison (CUT: Adam 2e-4, betas (0.5, 0.999), lsgan, no
pool); the heads use ``cfg.optim.lr`` as CUT does (not ``lr_heads``, which is LSeSim's). G runs
on x and y separately instead of on their concatenation (the same result with instance
normalisation). FastCUT's optional flip-equivariance regulariser (``--flip_equivariance``) is not
implemented. ``cfg.baseline.identity_weight`` adds a pixel identity L1 ``|G(y) - y|_1`` (not in
CUT's code; off by default and in every CUT/FastCUT preset; with CUT's identity PatchNCE both
terms share one ``G(y)``). The heads are built in ``build`` from the generator's channel counts
instead of on a throwaway first forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sesim.config import TrainConfig
from sesim.losses.adversarial import discriminator_loss_terms, generator_loss
from sesim.losses.patchnce import PatchSampleMLP, patchnce_loss
from sesim.methods.common import (
    StepContext,
    build_discriminator,
    build_generator,
    pixel_identity,
)
from sesim.nets.init import init_weights
from sesim.nets.resnet import PatchDiscriminator, ResnetGenerator

POOLS = ("fake_B",)


@dataclass
class CUTNets:
    """The networks of one CUT/FastCUT run.

    Attributes:
        G: generator (also the PatchNCE encoder).
        D: discriminator.
        heads: PatchNCE sampler with one projection MLP per layer of ``layers``.
        layers: the generator layers PatchNCE compares.
    """

    G: ResnetGenerator
    D: PatchDiscriminator
    heads: PatchSampleMLP
    layers: tuple[int, ...]

    def all_modules(self) -> list[nn.Module]:
        """Every module of the run, to move them to a device together."""
        return [self.G, self.D, self.heads]

    def trainable(self) -> dict[str, nn.Module]:
        """Modules with learned weights, by checkpoint key."""
        return {"G": self.G, "D": self.D, "heads": self.heads}


def nce_layers(cfg: TrainConfig, G: ResnetGenerator) -> tuple[int, ...]:
    """``cfg.baseline.nce_layers``, or the generator's CUT default when it is empty."""
    # Values read back from YAML or a checkpoint may arrive as strings.
    layers = tuple(int(i) for i in cfg.baseline.nce_layers)
    return layers if layers else G.default_nce_layers


def build(cfg: TrainConfig) -> CUTNets:
    """Networks for ``cfg``, on the CPU, with deterministic initialisation.

    The heads are sized from ``G.feature_channels`` here, so every parameter exists before the
    first step (and before the optimizers are built).
    """
    m = cfg.model
    G = build_generator(cfg)
    D = build_discriminator(cfg)
    layers = nce_layers(cfg, G)
    heads = PatchSampleMLP(G.feature_channels(layers), nc=cfg.baseline.nce_mlp_channels)
    init_weights(heads, m.init, m.init_gain, generator=torch.Generator().manual_seed(cfg.seed + 3))
    return CUTNets(G, D, heads, layers)


def build_optimizers(cfg: TrainConfig, nets: CUTNets) -> dict[str, torch.optim.Optimizer]:
    """Adam for G, D and the heads, all with ``cfg.optim.lr`` and betas (CUT: one lr for all)."""
    o = cfg.optim
    betas = (o.beta1, o.beta2)
    return {
        "G": torch.optim.Adam(nets.G.parameters(), lr=o.lr, betas=betas, foreach=True),
        "D": torch.optim.Adam(nets.D.parameters(), lr=o.lr_d, betas=betas, foreach=True),
        "heads": torch.optim.Adam(nets.heads.parameters(), lr=o.lr, betas=betas, foreach=True),
    }


def nce_loss(
    G: ResnetGenerator,
    heads: PatchSampleMLP,
    layers: tuple[int, ...],
    src: Tensor,
    tgt: Tensor,
    num_patches: int,
    temperature: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """CUT's ``calculate_NCE_loss`` (without its lambda): PatchNCE between ``tgt`` and ``src``.

    Positions are sampled on the features of ``src`` and reused for ``tgt``; each query (a patch
    of ``tgt``) must pick the key of its own position among the patches of its own image.

    Args:
        G: the generator, used as encoder (``encode_features``).
        heads: the sampler/projection heads, one per entry of ``layers``.
        layers: generator layer ids.
        src: (B, 3, H, W) the images that were translated (keys, no gradient through them).
        tgt: (B, 3, H, W) their translations (queries).
        num_patches: positions sampled per layer.
        temperature: InfoNCE temperature.
        generator: random source of the positions.
    Returns:
        scalar: the mean over layers of the per-layer PatchNCE loss.
    """
    feat_q = G.encode_features(tgt, layers)
    feat_k = G.encode_features(src, layers)
    samples_k, ids = heads(feat_k, num_patches, generator=generator)
    samples_q, _ = heads(feat_q, num_patches, patch_ids=ids)
    b = src.shape[0]
    per_layer = [
        patchnce_loss(q, k, temperature, num_images=b)
        for q, k in zip(samples_q, samples_k, strict=True)
    ]
    return torch.stack(per_layer).mean()


def train_step(nets: CUTNets, ctx: StepContext, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """One CUT step: discriminator, then generator and heads together.

    Args:
        nets: the run's networks (in train mode, on the batch's device).
        ctx: optimizers (``G``, ``D``, ``heads``), pool, generator and precision settings.
        batch: ``A`` (B, 3, H, W) inputs and ``B`` (B, 3, H, W) target-domain images in [-1, 1].

    Returns:
        Detached scalars: ``D_real``, ``D_fake``, ``G_gan``, ``G_nce``, (with identity)
        ``G_nce_idt`` and (with ``cfg.baseline.identity_weight``) ``G_idt``; unweighted.
    """
    cfg = ctx.cfg
    b = cfg.baseline
    mode = cfg.optim.gan_mode
    real_a, real_b = batch["A"], batch["B"]
    use_idt = b.nce_identity and b.nce_weight > 0
    logs: dict[str, Tensor] = {}

    with ctx.amp():
        fake_b = nets.G(real_a)
        idt_b = nets.G(real_b) if use_idt else None

    # Discriminator: real target images against (pooled) detached fakes.
    with ctx.amp():
        pooled = ctx.pools["fake_B"].query(fake_b.detach(), ctx.generator)
        d_real, d_fake = discriminator_loss_terms(nets.D(real_b), nets.D(pooled), mode)
        loss_d = 0.5 * (d_real + d_fake)
    ctx.update("D", loss_d)
    logs["D_real"], logs["D_fake"] = d_real.detach(), d_fake.detach()

    # Generator and heads: fool D; keep each output patch closest to its own input patch.
    nets.D.requires_grad_(False)
    with ctx.amp():
        loss_gan = generator_loss(nets.D(fake_b), mode)
        loss_g = loss_gan
        if b.nce_weight > 0:
            args = (nets.G, nets.heads, nets.layers)
            opts = (b.nce_patches, b.nce_temperature, ctx.generator)
            loss_nce = nce_loss(*args, real_a, fake_b, *opts)
            logs["G_nce"] = loss_nce.detach()
            both = loss_nce
            if idt_b is not None:
                loss_nce_idt = nce_loss(*args, real_b, idt_b, *opts)
                logs["G_nce_idt"] = loss_nce_idt.detach()
                both = 0.5 * (loss_nce + loss_nce_idt)
            loss_g = loss_g + b.nce_weight * both
        if b.identity_weight > 0:
            _, loss_idt = pixel_identity(nets.G, real_b, idt_b)
            loss_g = loss_g + b.identity_weight * loss_idt
            logs["G_idt"] = loss_idt.detach()
    # CUT zeroes and steps the heads' optimizer together with G's, from the same backward pass
    # (the heads get no gradient, and are not stepped, when PatchNCE is off). In multi-process
    # runs their gradients are averaged across ranks like G's.
    heads_opt = ctx.optimizers["heads"]
    heads_opt.zero_grad(set_to_none=True)
    ctx.update("G", loss_g)
    if b.nce_weight > 0:
        if ctx.sync is not None:
            ctx.sync([p for group in heads_opt.param_groups for p in group["params"]])
        if ctx.scaler is not None:
            ctx.scaler.step(heads_opt)
        else:
            heads_opt.step()
    nets.D.requires_grad_(True)
    if ctx.scaler is not None:
        ctx.scaler.update()
    logs["G_gan"] = loss_gan.detach()
    return logs
