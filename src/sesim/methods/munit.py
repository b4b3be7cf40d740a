"""The multi-modal recipe: a one-sided MUNIT generator trained with GAN + F/LSeSim.

The paper's second mode (Table 2) keeps MUNIT's networks (content encoder, AdaIN decoder driven
by an 8-d style code from N(0, I), multi-scale discriminator) and replaces MUNIT's
reconstruction and cycle losses by the spatially-correlative loss between the input and its
translation. The loss constrains structure only, so the style code is free to change the
appearance. One step:

1. translate: draw one style code per image from ``ctx.generator``, ``fake = G(x, s)``; VGG
   features of x (no graph) and of ``fake`` (with graph) are computed once and reused;
2. heads (LSeSim only): InfoNCE as in :mod:`sesim.methods.sesim` (src = [x, x], positives =
   [fake (detached), jitter(x)], others = [flip(y), flip(jitter(y))]);
3. discriminator: real y against the detached fake (through the image pool, a pass-through
   with the presets' ``pool_size`` 0), real and fake terms summed over every scale;
4. generator: GAN loss on every scale + lambda * structure loss(x, fake) + (when the generator
   has the optional style encoder) MUNIT's style reconstruction ``|E_s(fake) - s|_1``.

The paper presets (``munit-fsesim``, ``munit-lsesim``, ``munit-table3-*``) train eq. 4's
objective, GAN + lambda * F/LSeSim, with no style encoder (``munit.style_encoder: false``).
The style encoder is an option that departs from the paper: with ``munit.style_encoder: true``
(the CPU preset ``munit-tiny`` sets it) the style reconstruction term (weight
:data:`STYLE_RECON_WEIGHT`, MUNIT's ``recon_s_w`` 1) is added, so that the encoder receives a
gradient and example-guided translation (``sesim translate --style-image``) reads trained
styles. It involves no second generator, no cycle and no auxiliary network.

VGG stays frozen; no gradient is ever computed for its weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.config import TrainConfig
from sesim.errors import UserError
from sesim.features.vgg import VGG16Features
from sesim.losses.adversarial import generator_loss
from sesim.losses.spatial import SpatialCorrelativeLoss
from sesim.methods.common import StepContext, build_structure, discriminator_step, heads_step
from sesim.nets.munit import MultiScaleDiscriminator, MunitGenerator

#: One pool of fakes for D; the multi-modal presets set ``pool_size`` 0 (MUNIT has none), which
#: makes it a pass-through.
POOLS = ("fake_B",)

#: Rows of the run's sample grids: the fixed inputs in this many sampled styles (the same codes
#: at every sample step, so each row keeps its style over training).
SAMPLE_STYLES = 4

#: Weight of MUNIT's style reconstruction ``|E_s(G(x, s)) - s|_1`` (``recon_s_w`` in its
#: configs); applied only when the generator has a style encoder.
STYLE_RECON_WEIGHT = 1.0

#: Offsets added to ``cfg.seed`` for each network's initialisation (``seed + 4`` is the
#: training loop's generator), as in :mod:`sesim.methods.sesim`.
_SEED_OFFSETS = {"G": 0, "D": 1}  # the VGG taps and the heads: 2 and 3 (`build_structure`)


class MunitTranslator(MunitGenerator):
    """:class:`~sesim.nets.munit.MunitGenerator` whose style code may be left out.

    ``G(x)`` renders every image in the prior's mean style (the zero code), so the tools that
    call a generator with images only (sample grids during training, ``sesim eval``'s FID of
    one translation per input, export, serving) work on multi-modal runs and stay
    deterministic. ``G(x, s)`` is the parent's forward. Parameters and state-dict keys are the
    parent's.
    """

    def forward(self, x: Tensor, style: Tensor | None = None) -> Tensor:
        """Translate images in the given styles, or in the mean style.

        Args:
            x: (B, in_channels, H, W) source images in [-1, 1]; H and W multiples of
                ``multiple`` and at least ``min_size``.
            style: (B, style_dim) or (B, style_dim, 1, 1) style codes, one per image; None
                uses the zero code (the mean of the N(0, I) prior) for every image.
        Returns:
            (B, out_channels, H, W) translated images in [-1, 1].
        """
        if style is None:
            param = next(self.parameters())
            style = x.new_zeros((x.shape[0], self.style_dim, 1, 1), dtype=param.dtype)
        out: Tensor = super().forward(x, style)
        return out


@dataclass
class MunitNets:
    """The networks of one multi-modal run (owned by the caller, moved to a device by it).

    Attributes:
        G: generator (content encoder, style MLP, AdaIN decoder, optional style encoder).
        D: multi-scale discriminator.
        vgg: frozen feature extractor.
        crit: structure loss (owns LSeSim's heads, if any).
    """

    G: MunitTranslator
    D: MultiScaleDiscriminator
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


def _seeded(cfg: TrainConfig, name: str) -> torch.Generator:
    return torch.Generator().manual_seed(cfg.seed + _SEED_OFFSETS[name])


def build_generator(cfg: TrainConfig) -> MunitTranslator:
    """The generator described by ``cfg.munit`` (weights initialised from ``cfg.seed``)."""
    m = cfg.munit
    G = MunitTranslator(
        3,
        3,
        dim=m.dim,
        style_dim=m.style_dim,
        n_downsample=m.n_downsample,
        n_res=m.n_res,
        mlp_dim=m.mlp_dim,
        style_encoder=m.style_encoder,
    )
    G.reset_parameters(_seeded(cfg, "G"))
    return G


def build(cfg: TrainConfig) -> MunitNets:
    """Networks for ``cfg``, on the CPU, with deterministic initialisation.

    Raises:
        UserError: the training crop is too small for the discriminator's scales and layers.
    """
    m = cfg.munit
    G = build_generator(cfg)
    D = MultiScaleDiscriminator(3, m.d_dim, m.d_layers, m.num_scales, norm="none")
    D.reset_parameters(_seeded(cfg, "D"))
    crop = cfg.data.crop_size
    try:
        D.output_sizes(crop, crop)
    except ValueError as exc:
        raise UserError(
            f"{exc}: use a larger crop, or fewer discriminator scales or layers "
            "(munit.num_scales, munit.d_layers)"
        ) from None
    vgg, crit = build_structure(cfg)
    return MunitNets(G, D, vgg, crit)


def build_optimizers(cfg: TrainConfig, nets: MunitNets) -> dict[str, torch.optim.Optimizer]:
    """Adam for G (with its style encoder), D and (LSeSim) the heads; VGG is in none of them.

    G and D take ``optim.weight_decay`` (MUNIT's trainer: 1e-4 on both); the heads take none.
    """
    o = cfg.optim
    betas = (o.beta1, o.beta2)
    wd = o.weight_decay
    opts: dict[str, torch.optim.Optimizer] = {
        "G": torch.optim.Adam(
            nets.G.parameters(), lr=o.lr, betas=betas, weight_decay=wd, foreach=True
        ),
        "D": torch.optim.Adam(
            nets.D.parameters(), lr=o.lr_d, betas=betas, weight_decay=wd, foreach=True
        ),
    }
    if nets.crit.heads is not None:
        opts["heads"] = torch.optim.Adam(
            nets.crit.heads.parameters(), lr=o.lr_heads, betas=betas, foreach=True
        )
    return opts


def train_step(nets: MunitNets, ctx: StepContext, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """One optimisation step of every network; returns detached losses for logging.

    Args:
        nets: the run's networks (in train mode, on the batch's device).
        ctx: optimizers, pool, generator (which also draws the style codes) and precision.
        batch: ``A`` (B, 3, H, W) inputs and ``B`` (B, 3, H, W) target-domain images in
            [-1, 1]; ``A_aug``/``B_aug`` colour-jittered copies when the heads are learned.

    Returns:
        Scalar tensors by name: ``G_gan``, ``G_struct``, ``D_real``, ``D_fake`` (GAN terms
        summed over scales), ``G_style`` (with a style encoder), ``heads_nce`` (LSeSim).
    """
    cfg = ctx.cfg
    s = cfg.structure
    real_a, real_b = batch["A"], batch["B"]
    logs: dict[str, Tensor] = {}

    # Translate in one random style per image; compute each image's VGG features once.
    style = nets.G.sample_style(real_a.shape[0], ctx.generator, device=real_a.device)
    with ctx.amp():
        fake_b = nets.G(real_a, style)
        with torch.no_grad():
            feats_a = nets.vgg(real_a)
        feats_fake = nets.vgg(fake_b)

    # Heads (LSeSim), then D on every scale: the same steps as the single-modal recipe.
    if nets.crit.heads is not None:
        logs.update(heads_step(nets.vgg, nets.crit, ctx, batch, feats_a, feats_fake))
    logs.update(discriminator_step(nets.D, ctx, real_b, fake_b))

    # Generator: fool D on every scale while keeping the input's self-similarity; the style
    # encoder must read the sampled code back from the translation.
    heads = nets.crit.heads
    frozen = [nets.D] + ([heads] if heads is not None else [])
    for module in frozen:
        module.requires_grad_(False)
    with ctx.amp():
        loss_gan = generator_loss(nets.D(fake_b), cfg.optim.gan_mode)
        loss_struct = nets.crit.structure_loss(feats_a, feats_fake, generator=ctx.generator)
        loss_g = loss_gan + s.weight * loss_struct
        if nets.G.enc_style is not None:
            loss_style = F.l1_loss(nets.G.encode_style(fake_b), style.to(fake_b.dtype))
            loss_g = loss_g + STYLE_RECON_WEIGHT * loss_style
            logs["G_style"] = loss_style.detach()
    ctx.update("G", loss_g)
    for module in frozen:
        module.requires_grad_(True)
    if ctx.scaler is not None:
        ctx.scaler.update()
    logs["G_gan"], logs["G_struct"] = loss_gan.detach(), loss_struct.detach()
    return logs
