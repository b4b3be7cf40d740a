"""Frozen configuration dataclasses and the named presets.

A run is described by one :class:`TrainConfig`. Presets are functions returning a config; the
CLI only maps flags, ``--set section.field=value`` pairs or a YAML file onto one, validates it
early, prints it and saves it beside the run (``config.yaml``).

The paper presets follow one of two sources, and each preset's docstring says which: the
authors' public code (``scripts/train_sc.sh``; see ``shared/reference/public-defaults.md``:
``fsesim``, ``lsesim``) or the paper's text (``fsesim-paper``, ``lsesim-paper``, the Table 3
rows ``table3-A`` ... ``table3-F`` and their multi-modal ``munit-table3-*`` twins).

Training length. The public code counts epochs: 200 at a constant learning rate, then 200 with
a linear decay to zero, an epoch being max(|A|, |B|) iterations (its loader walks the larger
domain and drops the last incomplete batch). The single-modal paper presets do the same:
``steps`` 0 means "resolved from ``epochs`` and ``epochs_decay`` when the data is loaded"
(:func:`resolve_epochs`): ``steps = (epochs + epochs_decay) * (max(|A|, |B|) // batch)``,
at least one step per epoch, and the learning rate decays linearly over the last
``epochs_decay`` epochs' steps. horse2zebra (1,067 A, 1,334 B) gives 400 x 1,334 = 533,600
steps at batch 1. A ``steps`` value > 0 (``--steps``, ``--set steps=N``, YAML) wins over the
epochs. The same rule turns ``snapshot_every_epochs`` into ``snapshot_every``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from sesim.errors import UserError, did_you_mean
from sesim.features.vgg import VGG16_LAYERS
from sesim.losses.spatial import SpatialLossConfig

Precision = Literal["fp32", "bf16", "fp16"]

#: The names ``TrainConfig.logger`` accepts.
LOGGERS = ("tensorboard", "wandb", "none")


@dataclass(frozen=True)
class DataConfig:
    """Where images come from and how they are cut.

    Attributes:
        root: dataset folder in the CycleGAN layout (trainA/ trainB/ testA/ testB/).
        direction: ``"AtoB"`` or ``"BtoA"``.
        load_size: images are resized to this before cropping.
        crop_size: training crop side (the network's input).
        flip: random horizontal flips.
        preprocess: ``resize_and_crop``, ``crop``, ``scale_width_and_crop`` or ``none``.
        workers: data-loading worker processes.
        source: single-image mode: the source image file.
        target: single-image mode: the target (style) image file.
        max_zoom: single-image mode: largest random zoom of the "zoom and patch" crops.
    """

    root: str = ""
    direction: Literal["AtoB", "BtoA"] = "AtoB"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    preprocess: Literal["resize_and_crop", "crop", "scale_width_and_crop", "none"] = (
        "resize_and_crop"
    )
    workers: int = 2
    source: str = ""
    target: str = ""
    max_zoom: float = 3.0


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator shapes (ResNet generator + PatchGAN).

    Attributes:
        ngf: generator base filters.
        n_blocks: generator residual blocks (6 or 9).
        ndf: discriminator base filters.
        d_layers: PatchGAN layers (3 gives the 70x70 receptive field).
        norm: ``instance``, ``batch`` or ``none``.
        antialias: blur-pool down/up-sampling as in CUT and the public code.
        init: weight initialisation, ``xavier`` or ``normal`` (also ``kaiming``, ``orthogonal``).
        init_gain: gain (std) of the initialisation.
        n_downsampling: generator downsampling steps (2 as CycleGAN/CUT; the residual blocks
            work at 1 / 2**n of the image side).
        d_local_layers: 0 for one PatchGAN (the public code); n > 0 adds a second, local
            PatchGAN with n layers beside it (receptive field 16 px for n = 1, 34 px for 2)
            whose loss adds to the first one's, so thin lines and small objects are judged.
    """

    ngf: int = 64
    n_blocks: int = 9
    ndf: int = 64
    d_layers: int = 3
    norm: Literal["instance", "batch", "none"] = "instance"
    antialias: bool = True
    init: Literal["xavier", "normal", "kaiming", "orthogonal"] = "xavier"
    init_gain: float = 0.02
    n_downsampling: int = 2
    d_local_layers: int = 0


@dataclass(frozen=True)
class MunitConfig:
    """Multi-modal networks (MUNIT's published architecture; one generator, one discriminator).

    Attributes:
        dim: generator base filters.
        style_dim: style code dimensions (sampled from N(0, I)).
        n_downsample: content encoder downsamplings.
        n_res: residual blocks of the content encoder and of the AdaIN decoder.
        mlp_dim: hidden width of the style -> AdaIN parameters MLP.
        style_encoder: build the optional style encoder (example-guided translation).
        d_dim: discriminator base filters.
        d_layers: layers per discriminator scale.
        num_scales: discriminator scales (average-pool downsampling between them).
    """

    dim: int = 64
    style_dim: int = 8
    n_downsample: int = 2
    n_res: int = 4
    mlp_dim: int = 256
    style_encoder: bool = True
    d_dim: int = 64
    d_layers: int = 4
    num_scales: int = 3


@dataclass(frozen=True)
class StyleGANConfig:
    """Single-image networks (StyleGAN2-based, as the public ``sinsc`` model).

    Attributes:
        ngf: generator base filters.
        ndf: discriminator base filters.
        n_blocks: generator residual blocks.
        num_downsampling: generator downsampling steps.
        gp: gradient penalty: ``mixed`` (real/fake interpolation, the public model), ``r1`` or
            ``none``.
        gp_weight: weight of the gradient penalty.
    """

    ngf: int = 8
    ndf: int = 8
    n_blocks: int = 6
    num_downsampling: int = 2
    gp: Literal["mixed", "r1", "none"] = "mixed"
    gp_weight: float = 1.0


@dataclass(frozen=True)
class StructureConfig:
    """The spatially-correlative structure loss and its feature extractor.

    Attributes:
        layers: VGG16 taps.
        weight: lambda on the structure loss (10 in the paper).
        vgg_weights: ``imagenet`` (torch hub cache; an error when missing), ``auto`` (ImageNet
            when cached, else random weights with a notice), ``random``, or a local file path.
        augment: LSeSim's colour-jittered positive (needed when ``loss.learned``).
        identity_weight: pixel identity term |G(y) - y|_1 (0 = off).
        identity_structure_weight: structure loss between y and G(y) (0 = off).
        balance: 0 weighs the structure term by ``weight`` (the paper). A value r > 0 instead
            rescales, every step, the structure term's gradient at the generator's output to r
            times the norm of the GAN term's gradient there (``weight`` is then unused).
        gan_warmup: the generator's GAN term is weighted by step / gan_warmup over the first
            ``gan_warmup`` steps (0 = off), so that it first learns to carry the input's layout.
        weight_final: when > 0, the structure weight moves linearly from ``weight`` at the
            first adversarial step to ``weight_final`` at the last (0 = a constant ``weight``).
            Read by the single-modal SeSim recipe.
        colour_anchor: weight of an L1 term ``|G(x) - T(x)|_1`` that pulls each translation
            towards its input's per-channel histogram transfer to domain B
            (:class:`~sesim.data.colour.ChannelHistograms`, fitted on 256 training images of
            each domain; no labels): a global recolouring that says which input colour becomes
            which target colour, which the self-similarity loss leaves open (0 = off). Read by
            the single-modal SeSim recipe.
        loss: the loss settings (queries, window, similarity kind, comparison, learned heads).
    """

    layers: tuple[str, ...] = ("relu3_1", "relu4_1", "relu4_3")
    weight: float = 10.0
    vgg_weights: str = "imagenet"
    augment: bool = False
    identity_weight: float = 0.0
    identity_structure_weight: float = 0.0
    balance: float = 0.0
    gan_warmup: int = 0
    weight_final: float = 0.0
    colour_anchor: float = 0.0
    loss: SpatialLossConfig = field(default_factory=SpatialLossConfig)


@dataclass(frozen=True)
class OptimConfig:
    """Optimisation and schedule.

    Attributes:
        lr: Adam learning rate of G and D.
        d_lr_scale: the discriminators' learning rate is ``lr * d_lr_scale`` (1 = the same as
            the generator's, as the public code; > 1 is a two time-scale update, which lets the
            discriminator learn which texture belongs to which region before the generator
            settles on one; see docs/structure.md).
        lr_heads: learning rate of LSeSim's heads.
        beta1: Adam beta1.
        beta2: Adam beta2.
        gan_mode: ``lsgan``, ``vanilla``, ``hinge`` or ``nonsaturating``.
        pool_size: image pool of fakes shown to D (0 = off).
        decay_fraction: ``lr_policy`` ``linear``: the learning rate decays linearly to 0 over
            this last fraction of steps (set from ``epochs_decay`` when steps come from epochs).
        lr_policy: ``linear`` (constant, then linear decay; the public F-LSeSim code) or
            ``step`` (multiplied by ``lr_gamma`` every ``lr_step`` steps; MUNIT's trainer).
        lr_step: ``step`` policy: steps between two decays (MUNIT: 100,000).
        lr_gamma: ``step`` policy: factor of each decay (MUNIT: 0.5).
        weight_decay: Adam's (L2) weight decay of G and D in the ``munit`` recipe (MUNIT:
            1e-4); the single-modal recipes use none, as the public code.
        identity_warmup: before step 0, this many steps of L1 reconstruction of training
            images (both domains) initialise the generator to (nearly) the identity, so that
            adversarial training starts from a map that carries the input's layout (0 = off).
        identity_warmup_target: what the warm-up fits for domain A's images: ``input`` (the
            images themselves, the identity) or ``colour_transfer`` (the images
            histogram-matched channel by channel to domain B's, from 256 training images of
            each domain: the generator starts from a global recolouring towards the target;
            domain B's images are always fitted to themselves).
        ema: decay of an exponential moving average of the generator's weights (0 = off,
            as the public code). When on, checkpoints also hold the averaged generator, which
            sample grids, translation, evaluation and export use; the average spans about
            ``1 / (1 - ema)`` steps (``nets.ema.WeightAverage``).
    """

    lr: float = 1e-4
    lr_heads: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    gan_mode: Literal["lsgan", "vanilla", "hinge", "nonsaturating"] = "lsgan"
    pool_size: int = 50
    decay_fraction: float = 0.5
    identity_warmup: int = 0
    identity_warmup_target: Literal["input", "colour_transfer"] = "input"
    lr_policy: Literal["linear", "step"] = "linear"
    lr_step: int = 100_000
    lr_gamma: float = 0.5
    weight_decay: float = 0.0
    d_lr_scale: float = 1.0
    ema: float = 0.0

    @property
    def lr_d(self) -> float:
        """The discriminators' learning rate, ``lr * d_lr_scale``."""
        return self.lr * self.d_lr_scale


@dataclass(frozen=True)
class BaselineConfig:
    """Settings of the baseline recipes (CycleGAN, CUT, FastCUT, perceptual loss).

    The baselines share the run's generator, discriminator, data, step budget and ``optim``
    settings (learning rate, betas, GAN objective, image pool, schedule) with the SeSim recipe,
    so that only the objective differs between methods.

    Attributes:
        cycle_weight: CycleGAN's lambda on each cycle-consistency term (``--lambda_A`` and
            ``--lambda_B``, both 10).
        cycle_identity: CycleGAN's identity weight, relative to ``cycle_weight``
            (``--lambda_identity`` 0.5: the identity L1 is weighted 10 * 0.5 = 5); 0 = off.
        nce_weight: CUT's lambda on PatchNCE (1 for CUT, 10 for FastCUT).
        nce_identity: CUT's identity PatchNCE on target-domain images (off for FastCUT).
        nce_layers: generator layers for PatchNCE (indices into ``ResnetGenerator.model``);
            empty = the generator's CUT default (``ResnetGenerator.default_nce_layers``).
        nce_patches: patches sampled per layer (CUT's ``--num_patches``).
        nce_temperature: PatchNCE temperature (CUT's ``--nce_T``).
        nce_mlp_channels: output width of CUT's projection MLPs (``--netF_nc``).
        perceptual_weight: weight of the VGG-feature L1 between input and translation.
        identity_weight: weight of a pixel identity L1 ``|G(y) - y|_1`` on target images for
            the recipes that have no pixel identity term of their own (perceptual loss,
            DistanceGAN, CUT/FastCUT); 0 = off, as in their public code. CPU presets set it
            for the reason ``tiny`` does (``docs/structure.md``, section 6).
        distance_weight: DistanceGAN's weight on its distance terms (``--lambda_distance_A``).
        distance_self: DistanceGAN's self-distance term between the top and bottom halves of
            each image (the pair term is added whenever a batch holds two images or more).
        gc_weight: GcGAN's weight on geometry consistency (``lambda_AB * lambda_gc`` = 20).
        gc_identity: GcGAN's identity weight (``lambda_AB * identity`` = 10 * 0.5; 0 = off).
        gc_geometry: GcGAN's transform: ``rot`` (90 degrees, its default) or ``vf``.
        munit_recon_x_weight: two-sided MUNIT's image reconstruction weight (``recon_x_w``).
        munit_recon_c_weight: its content reconstruction weight (``recon_c_w``).
        munit_recon_s_weight: its style reconstruction weight (``recon_s_w``).
        munit_cycle_weight: its style-augmented cycle weight (``recon_x_cyc_w``; 0 = off).
    """

    cycle_weight: float = 10.0
    cycle_identity: float = 0.5
    nce_weight: float = 1.0
    nce_identity: bool = True
    nce_layers: tuple[int, ...] = ()
    nce_patches: int = 256
    nce_temperature: float = 0.07
    nce_mlp_channels: int = 256
    perceptual_weight: float = 10.0
    identity_weight: float = 0.0
    distance_weight: float = 1.0
    distance_self: bool = True
    gc_weight: float = 20.0
    gc_identity: float = 5.0
    gc_geometry: Literal["rot", "vf"] = "rot"
    munit_recon_x_weight: float = 10.0
    munit_recon_c_weight: float = 1.0
    munit_recon_s_weight: float = 1.0
    munit_cycle_weight: float = 10.0


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        preset: the preset this config started from (informational).
        method: training recipe (``sesim``: one-sided F/LSeSim; see ``sesim.methods``).
        mode: ``single`` (single-modal), ``multimodal`` (sampled style codes) or
            ``single-image`` (one source and one target image).
        steps: total optimisation steps; 0 = resolved from ``epochs + epochs_decay`` when the
            data is loaded (see the module docstring).
        batch: images per step.
        seed: seed of every random choice (data, initialisation, query points).
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32``, ``bf16`` (autocast) or ``fp16`` (autocast + grad scaler).
        channels_last: channels-last memory format for networks and batches (faster on GPUs).
        compile: ``torch.compile`` the trained networks.
        deterministic: deterministic algorithms (exact resume on the CPU).
        epochs: epochs at a constant learning rate; used when ``steps`` is 0.
        epochs_decay: epochs of linear learning-rate decay to zero that follow ``epochs``.
        save_every: checkpoint every this many steps (and at the end).
        keep_last: checkpoints kept on disk.
        snapshot_every: keep a generator-only snapshot (``snapshots/step_XXXXXXXX.pt``, never
            pruned) every this many steps; 0 = none unless ``snapshot_every_epochs`` is set.
        snapshot_every_epochs: the same in epochs, resolved with the data (the paper keeps a
            generator every 10 epochs and reports the best); used when ``snapshot_every`` is 0.
        log_every: scalars to TensorBoard and the progress bar every this many steps.
        sample_every: sample grid and index.html every this many steps.
        num_samples: test images shown in each sample grid.
        init_from: a run folder or checkpoint whose generator (and discriminator, when its
            shapes match) start this run, with fresh optimisers at step 0 and no identity
            warm-up; empty: random initialisation.
        logger: where scalars and sample grids go, a comma list of ``tensorboard`` (the run's
            ``tb/`` folder), ``wandb`` (Weights & Biases; needs the ``wandb`` package) or
            ``none``.
        data: data settings.
        model: network settings.
        structure: structure-loss settings.
        optim: optimisation settings.
        baseline: settings of the baseline recipes.
        munit: multi-modal networks.
        stylegan: single-image networks.
    """

    preset: str = "fsesim"
    method: str = "sesim"
    mode: Literal["single", "multimodal", "single-image"] = "single"
    steps: int = 400_000
    batch: int = 1
    seed: int = 0
    device: str = "auto"
    precision: Precision = "fp32"
    channels_last: bool = False
    compile: bool = False
    deterministic: bool = False
    epochs: int = 0
    epochs_decay: int = 0
    save_every: int = 5000
    keep_last: int = 3
    snapshot_every: int = 0
    snapshot_every_epochs: int = 0
    log_every: int = 100
    sample_every: int = 5000
    num_samples: int = 4
    init_from: str = ""
    logger: str = "tensorboard"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    structure: StructureConfig = field(default_factory=StructureConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    munit: MunitConfig = field(default_factory=MunitConfig)
    stylegan: StyleGANConfig = field(default_factory=StyleGANConfig)


# ---------------------------------------------------------------------------------------------
# Presets.


def _fsesim() -> TrainConfig:
    """FSeSim as the authors' public training script (source: public code,
    ``scripts/train_sc.sh``): relu3_1, relu4_1, relu4_3; 256 queries; window 64 (every query
    compared with its whole map at 256 px); ``cos`` comparison of tanh similarities (SmoothL1);
    lambda 10; ResNet-9 + PatchGAN; lsgan; Adam 1e-4 (0.5, 0.999); pool 50; resize 286, crop
    256, flip; batch 1; 200 + 200 epochs of max(|A|, |B|) steps, a generator snapshot every 10
    epochs. The paper's text names relu3_1 and relu4_1 only: see ``fsesim-paper``."""
    return TrainConfig(
        preset="fsesim", steps=0, epochs=200, epochs_decay=200, snapshot_every_epochs=10
    )


def _lsesim() -> TrainConfig:
    """LSeSim as the public code with ``--learned_attn --augment`` (source: public code), and
    window 32, which the authors advise on their issue tracker (their script's default stays at
    64): learned 1x1-conv heads trained by InfoNCE (tau 0.07) on the colour-jittered copy and
    the detached translation, other images as negatives; every other setting is ``fsesim``'s."""
    base = _fsesim()
    return replace(
        base,
        preset="lsesim",
        structure=replace(
            base.structure,
            augment=True,
            loss=replace(base.structure.loss, learned=True, window=32),
        ),
    )


#: The two VGG16 layers the paper's text names (Sec. 4, "relu3_1 and relu4_1").
PAPER_LAYERS = ("relu3_1", "relu4_1")

#: What each Table 3 row of the paper changes (source: the paper's text and Table 3).
TABLE3_ROWS = {
    "A": "STROTSS-style self-similarity among random points: relu3_1 + relu4_1, 256 points "
    "compared with each other (no dense maps), cosine similarity, L1 over whole maps",
    "B": "global maps on one layer: relu3_1, every position a query and a key, L1",
    "C": "local maps on one layer: relu3_1, 256 queries, window 32, L1",
    "D": "local maps on two layers: relu3_1 + relu4_1, 256 queries, window 32, L1",
    "E": "D compared with 1 - cos (FSeSim as in Tables 1-2: fsesim-paper)",
    "F": "E with learned heads and colour-jitter positives (LSeSim: lsesim-paper)",
}


def _table3_structure(row: str, base: StructureConfig) -> StructureConfig:
    """The structure-loss settings of one Table 3 row (A ... F) over ``base``."""
    loss = base.loss
    local_l1 = replace(loss, variant="local", window=32, mode="l1")
    rows = {
        "A": replace(
            base,
            layers=PAPER_LAYERS,
            loss=replace(loss, variant="pairwise", mode="l1", kind="cosine", mask="none"),
        ),
        "B": replace(base, layers=("relu3_1",), loss=replace(loss, variant="global", mode="l1")),
        "C": replace(base, layers=("relu3_1",), loss=local_l1),
        "D": replace(base, layers=PAPER_LAYERS, loss=local_l1),
        "E": replace(base, layers=PAPER_LAYERS, loss=replace(local_l1, mode="cos")),
        "F": replace(
            base,
            layers=PAPER_LAYERS,
            augment=True,
            loss=replace(local_l1, mode="cos", learned=True),
        ),
    }
    return rows[row]


def _table3(row: str) -> Callable[[], TrainConfig]:
    """The single-modal Table 3 row ``row`` (source: the paper's text)."""

    def build() -> TrainConfig:
        base = _fsesim()
        return replace(
            base, preset=f"table3-{row}", structure=_table3_structure(row, base.structure)
        )

    build.__doc__ = (
        f"Table 3 row {row} (source: the paper's text), single-modal: {TABLE3_ROWS[row]}. "
        "Everything else is fsesim's (the public code's training settings: tanh similarity, "
        "top-quarter masking, 200 + 200 epochs)."
    )
    return build


def _fsesim_paper() -> TrainConfig:
    """FSeSim as the paper's text describes it (source: the paper, Sec. 3-4 and Table 3 row E):
    relu3_1 and relu4_1, 256 random queries, local window 32, 1 - cos; the rest (networks,
    optimiser, tanh similarity and masking, 200 + 200 epochs) follows the public code
    (``fsesim``), which differs in its layers (adds relu4_3) and window (64)."""
    return replace(_table3("E")(), preset="fsesim-paper")


def _lsesim_paper() -> TrainConfig:
    """LSeSim as the paper's text describes it (source: the paper; Table 3 row F):
    ``fsesim-paper`` with learned 1x1-conv heads trained by InfoNCE and colour-jitter
    positives."""
    return replace(_table3("F")(), preset="lsesim-paper")


def _tiny() -> TrainConfig:
    """CPU preset for small images and random (or ImageNet) VGG weights: 64 px crops (resize
    72), 32 filters, 6 residual blocks, batch 2, lr 2e-4, VGG weights ``auto`` (ImageNet when
    cached, else random with a notice); 600 steps with saves every 200.

    It departs from the paper's settings where ``docs/structure.md`` measured that they fail at
    64 px: the loss reads relu1_2 and relu2_2 (64x64 and 32x32 maps; the paper's relu3_1 and
    relu4_x are 16x16 and 8x8 at this size, below the width of thin lines), with 256 queries
    half of which are placed where the input's similarity maps are distinctive (window 16);
    the generator downsamples once (its residual blocks work at 32x32) with strided
    convolutions, and starts from 100 steps of L1 reconstruction so that adversarial training
    begins from a map that carries the input's layout. An identity L1 on target images,
    ``|G(y) - y|_1`` with weight 2 (``structure.identity_weight``), pulls every run out of the
    input domain and carries the colour each class gets, which self-similarity leaves open
    (without it 2 of 3 ``shapes`` runs of the quick bench stayed in the input domain;
    ``docs/structure.md`` section 6). Samples, translation and export use an exponential
    moving average of the generator's weights (``optim.ema`` 0.99, about the last 100 steps):
    at this size a generator's structure moves by up to 0.13 mIoU between two saves 20 steps
    apart, and the average keeps the steady level (``docs/structure.md`` section 6)."""
    base = _fsesim()
    return replace(
        base,
        preset="tiny",
        steps=600,
        epochs=0,
        epochs_decay=0,
        snapshot_every_epochs=0,
        batch=2,
        save_every=200,
        log_every=20,
        sample_every=100,
        data=replace(base.data, load_size=72, crop_size=64, workers=0),
        model=replace(base.model, ngf=32, n_blocks=6, n_downsampling=1, antialias=False),
        structure=replace(
            base.structure,
            vgg_weights="auto",
            identity_weight=2.0,
            layers=("relu1_2", "relu2_2"),
            loss=replace(
                base.structure.loss, window=16, num_queries=256, query_strategy="structure"
            ),
        ),
        optim=replace(base.optim, lr=2e-4, pool_size=50, identity_warmup=100, ema=0.99),
    )


def _tiny_lsesim() -> TrainConfig:
    """The ``tiny`` CPU preset with LSeSim's learned heads and colour-jitter positives, the
    identity L1 on target images at weight 5 (the weight measured for LSeSim over three seeds of
    every quick-bench task) and a discriminator that learns twice as fast as the generator
    (``optim.d_lr_scale`` 2: ``layout`` mIoU higher in six of six seeds, ``maps`` and ``shapes``
    within the noise; ``docs/structure.md`` section 6). No image pool (``optim.pool_size`` 0, as
    CUT; the public F/LSeSim code keeps CycleGAN's 50): the discriminator sees only the current
    generator's fakes, which over six seeds steadied the colour each class takes on ``maps``
    (s.e. 0.004 against 0.015) and raised ``maps`` and ``shapes`` by about 0.02, at 0.017 of
    ``layout`` (section 6, "The image pool"). The identity warm-up fits domain A's images to
    their histogram transfer towards domain B (``optim.identity_warmup_target``
    ``colour_transfer``): training starts from a global recolouring, which raised ``layout``
    mIoU by 0.034 ± 0.013 over 14 runs against 8 (signs and bushes) and left ``maps`` and
    ``shapes`` within the noise (section 6, "A start recoloured towards the target"). Through
    training, an L1 anchor with weight 2 keeps the translations near that recolouring
    (``structure.colour_anchor``): ``maps`` mIoU higher in six of six seeds (paired +0.067 ±
    0.015; forest and water keep the colours the map gives them), ``layout`` and ``shapes``
    within the noise (section 6, "An anchor to the colour transfer")."""
    base = _tiny()
    return replace(
        base,
        preset="tiny-lsesim",
        structure=replace(
            base.structure,
            augment=True,
            identity_weight=5.0,
            colour_anchor=2.0,
            loss=replace(base.structure.loss, learned=True),
        ),
        optim=replace(
            base.optim, d_lr_scale=2.0, pool_size=0, identity_warmup_target="colour_transfer"
        ),
    )


def _baseline(name: str, method: str, **baseline: Any) -> TrainConfig:
    """``fsesim`` with another recipe and baseline settings (helper of the baseline presets)."""
    base = _fsesim()
    return replace(base, preset=name, method=method, baseline=replace(base.baseline, **baseline))


def _cyclegan() -> TrainConfig:
    """CycleGAN (Zhu et al. 2017) as ``models/cycle_gan_model.py``: a second generator B->A and a
    second PatchGAN for domain A; cycle L1 weight 10 on both cycles; identity L1 weight
    10 * 0.5; two image pools. Departure: the networks, data, schedule and ``optim`` (Adam 1e-4,
    pool 50) are those of ``fsesim`` for a like-for-like comparison (CycleGAN: lr 2e-4, no
    anti-aliasing); 200 + 200 epochs as ``fsesim``."""
    return _baseline("cyclegan", "cyclegan")


def _cut() -> TrainConfig:
    """CUT (Park et al. 2020) as ``models/cut_model.py --CUT_mode CUT``: PatchNCE (weight 1,
    tau 0.07, 256 patches) on the generator's layers 0,4,8,12,16 with 2-layer MLP heads (256
    channels), identity PatchNCE on target images. Departures: ``optim`` as ``fsesim`` (Adam
    1e-4 for G, D and the heads, pool 50; CUT: lr 2e-4, no pool); 200 + 200 epochs as
    ``fsesim``."""
    return _baseline("cut", "cut", nce_weight=1.0, nce_identity=True)


def _fastcut() -> TrainConfig:
    """FastCUT (``--CUT_mode FastCUT``): PatchNCE weight 10, no identity PatchNCE. Departures:
    those of ``cut``, and no flip-equivariance augmentation (FastCUT's ``--flip_equivariance``,
    an optional regulariser, is not implemented); CUT's shorter 150+50-epoch FastCUT schedule is
    not applied either (the same 200 + 200 epochs as every method)."""
    return _baseline("fastcut", "fastcut", nce_weight=10.0, nce_identity=False)


def _perceptual() -> TrainConfig:
    """One-sided GAN + perceptual loss: weight 10 on the L1 distance between the VGG16 features
    (relu3_1, relu4_1, relu4_3, as the structure loss) of the input and of its translation,
    averaged over layers: a content (perceptual) loss in the sense of Johnson et al. 2016 used as
    the structure term. No public code to follow; every other setting is that of ``fsesim``."""
    return _baseline("perceptual", "perceptual", perceptual_weight=10.0)


def _distancegan() -> TrainConfig:
    """One-sided DistanceGAN (Benaim & Wolf 2017; source: its public code,
    ``distance_gan_model.py``): GAN + weight 1 on standardised distance preservation, between
    the images of a batch (batch >= 2) and between each image's top and bottom halves.
    Departures: running mean/std of the distances instead of a 900-image estimate before
    training; both terms summed (the public code takes one); networks, data, ``optim`` and
    200 + 200 epochs as ``fsesim``."""
    return _baseline("distancegan", "distancegan", distance_weight=1.0, distance_self=True)


def _gcgan() -> TrainConfig:
    """One-sided GcGAN (Fu et al. 2019; source: its public code, ``gc_gan_share_model.py``):
    one generator for x and its 90-degree rotation, a second PatchGAN for the rotated branch,
    geometry consistency L1 weight 20 (lambda_AB 10 x lambda_gc 2), identity L1 weight 5.
    Departures: D is updated before G; networks, data, ``optim`` (GcGAN: lr 2e-4) and
    200 + 200 epochs as ``fsesim``."""
    return _baseline("gcgan", "gcgan", gc_weight=20.0, gc_identity=5.0, gc_geometry="rot")


def _tiny_baseline(
    name: str,
    paper: Callable[[], TrainConfig],
    identity_warmup: bool = True,
    why: str = "",
    **baseline: Any,
) -> Callable[[], TrainConfig]:
    """The ``tiny`` CPU preset trained with a baseline recipe and its paper preset's settings.

    Args:
        name: the preset's name.
        paper: the baseline's paper preset (its recipe and ``baseline`` settings).
        identity_warmup: keep ``tiny``'s identity warm-up (off where a recipe's runs stayed in
            the input domain when started at the identity).
        why: a sentence for the docstring that explains the departures below.
        **baseline: ``baseline`` settings that differ from the paper preset's.
    """

    def build() -> TrainConfig:
        cfg = paper()
        tiny = _tiny()
        return replace(
            tiny,
            preset=name,
            method=cfg.method,
            baseline=replace(cfg.baseline, **baseline),
            # the identity L1 is part of the F/LSeSim recipe; baselines keep their own terms
            structure=replace(tiny.structure, identity_weight=0.0),
            optim=tiny.optim if identity_warmup else replace(tiny.optim, identity_warmup=0),
        )

    build.__doc__ = (
        f"CPU variant of ``{paper().preset}``: the ``tiny`` networks, data and schedule (64 px, "
        f"32 filters, 6 blocks, one downsampling, batch 2, Adam 2e-4, pool 50, 600 steps) with "
        f"that recipe. {why} " + (paper.__doc__ or "")
    )
    return build


def _munit_trainer(cfg: TrainConfig) -> TrainConfig:
    """MUNIT's trainer defaults (``configs/edges2handbags_folder.yaml``): 1M iterations at batch
    1, Adam lr 1e-4 betas (0.5, 0.999) with weight decay 1e-4, the learning rate halved every
    100k iterations, images resized to 256 and cropped to 256, no image pool; generator
    snapshots every 10k iterations (MUNIT's ``snapshot_save_iter``), never pruned."""
    return replace(
        cfg,
        mode="multimodal",
        method="munit",
        steps=1_000_000,
        epochs=0,
        epochs_decay=0,
        snapshot_every=10_000,
        snapshot_every_epochs=0,
        save_every=10_000,
        data=replace(cfg.data, load_size=256, crop_size=256),
        optim=replace(
            cfg.optim,
            lr=1e-4,
            beta1=0.5,
            beta2=0.999,
            pool_size=0,
            lr_policy="step",
            lr_step=100_000,
            lr_gamma=0.5,
            weight_decay=1e-4,
        ),
        munit=replace(cfg.munit, style_encoder=False),
    )


_MUNIT_DOC = (
    "Multi-modal (one-sided MUNIT generator: content encoder + AdaIN decoder driven by an 8-d "
    "style code from N(0, I), 3-scale discriminator, lsgan) trained with eq. 4's objective, "
    "GAN + lambda * F/LSeSim (lambda 10), and MUNIT's trainer defaults (1M iterations, Adam "
    "1e-4, betas (0.5, 0.999), weight decay 1e-4, lr halved every 100k, load and crop 256, "
    "snapshots every 10k). No style encoder: ``--set munit.style_encoder=true`` adds one (and "
    "MUNIT's style reconstruction term) for ``sesim translate --style-image``, a departure from "
    "the paper."
)


def _munit_fsesim() -> TrainConfig:
    """Multi-modal FSeSim (source: structure loss as the public code's ``fsesim``: relu3_1,
    relu4_1, relu4_3, window 64)."""
    return replace(_munit_trainer(_fsesim()), preset="munit-fsesim")


def _munit_lsesim() -> TrainConfig:
    """Multi-modal LSeSim (source: the structure loss as the public code's ``lsesim``, learned
    heads, window 32, colour-jitter positives)."""
    return replace(_munit_trainer(_lsesim()), preset="munit-lsesim")


def _munit_table3(row: str) -> Callable[[], TrainConfig]:
    """The multi-modal Table 3 row ``row`` (source: the paper's text and MUNIT's trainer)."""

    def build() -> TrainConfig:
        return replace(_munit_trainer(_table3(row)()), preset=f"munit-table3-{row}")

    build.__doc__ = f"Table 3 row {row} (source: the paper's text), multi-modal: " + (
        f"{TABLE3_ROWS[row]}. " + _MUNIT_DOC
    )
    return build


_munit_fsesim.__doc__ = (_munit_fsesim.__doc__ or "") + " " + _MUNIT_DOC
_munit_lsesim.__doc__ = (_munit_lsesim.__doc__ or "") + " " + _MUNIT_DOC


def _munit_cycle() -> TrainConfig:
    """Two-sided MUNIT (Huang et al. 2018; source: its public code and
    ``configs/edges2handbags_folder.yaml``), the multi-modal baseline of Tables 1-2: one
    autoencoder per domain, two multi-scale discriminators, GAN + image (10), content (1) and
    style (1) reconstruction + the style-augmented cycle (10; that config sets 0, others 10);
    MUNIT's trainer (1M iterations, Adam 1e-4, weight decay 1e-4, lr halved every 100k, 256
    load and crop); no structure loss."""
    base = _munit_trainer(_fsesim())
    return replace(
        base,
        preset="munit-cycle",
        method="munit-cycle",
        munit=replace(base.munit, style_encoder=True),
    )


def _tiny_munit_cycle() -> TrainConfig:
    """CPU variant of ``munit-cycle``: the ``munit-tiny`` networks, data and schedule with the
    two-sided MUNIT recipe."""
    tiny = _munit_tiny()
    return replace(
        tiny,
        preset="tiny-munit-cycle",
        method="munit-cycle",
        baseline=_munit_cycle().baseline,
    )


def _munit_tiny() -> TrainConfig:
    """CPU multi-modal preset: the ``tiny`` data, window and schedule with small MUNIT networks
    (dim 16, 2 residual blocks, MLP 64, 2-scale discriminator of 3 layers). It keeps the
    paper's taps (relu3_1, relu4_1, relu4_3) with 64 random queries and no identity warm-up:
    the small-image settings of ``tiny`` (docs/structure.md) were measured on the single-modal
    mode only, and an L1 warm-up would teach the decoder to ignore its style code. Unlike the
    paper presets it builds the style encoder (with MUNIT's style reconstruction term, a
    departure from eq. 4) so that example-guided translation works on it, and keeps the
    ``tiny`` optimiser (Adam 2e-4, linear decay)."""
    tiny = _tiny()
    base = _munit_fsesim()
    return replace(
        tiny,
        preset="munit-tiny",
        mode="multimodal",
        method="munit",
        structure=replace(
            tiny.structure,
            layers=base.structure.layers,
            identity_weight=0.0,  # tiny's identity L1 was measured on the single-modal recipe
            loss=replace(tiny.structure.loss, num_queries=64, query_strategy="random"),
        ),
        # No averaged generator: measured for the single-modal recipes only, and the
        # multi-modal benchmark's numbers were taken without it.
        optim=replace(tiny.optim, pool_size=0, identity_warmup=0, ema=0.0),
        munit=replace(
            base.munit,
            dim=16,
            n_res=2,
            mlp_dim=64,
            d_dim=16,
            d_layers=3,
            num_scales=2,
            style_encoder=True,
        ),
    )


def _single_image() -> TrainConfig:
    """Single-image translation as the public ``sinsc`` model: StyleGAN2-based generator and
    discriminator (8 filters, 2 downsamplings), non-saturating GAN with a mixed real/fake
    gradient penalty (weight 1), Adam lr 1e-3 betas (0, 0.99), "zoom and patch" crops of 128
    from images loaded at up to 1024 px, batch 16, FSeSim (relu3_1, relu4_1, relu4_3; lambda
    10), no identity loss, no image pool. Departure: 20k steps with the last half decaying,
    instead of the public 4 + 4 epochs."""
    base = _fsesim()
    return replace(
        base,
        preset="single-image",
        mode="single-image",
        method="singleimage",
        steps=20_000,
        epochs=0,
        epochs_decay=0,
        snapshot_every_epochs=0,
        batch=16,
        save_every=2000,
        sample_every=1000,
        data=replace(base.data, load_size=1024, crop_size=128, flip=True, workers=0),
        optim=replace(
            base.optim, lr=1e-3, beta1=0.0, beta2=0.99, gan_mode="nonsaturating", pool_size=0
        ),
    )


def _single_image_tiny() -> TrainConfig:
    """CPU single-image preset: crops of 64 from images loaded at up to 256 px, batch 4,
    window 16 and 64 queries, VGG weights ``auto``; 300 steps."""
    base = _single_image()
    return replace(
        base,
        preset="single-image-tiny",
        steps=300,
        batch=4,
        save_every=100,
        log_every=10,
        sample_every=50,
        data=replace(base.data, load_size=256, crop_size=64),
        structure=replace(
            base.structure,
            vgg_weights="auto",
            loss=replace(base.structure.loss, window=16, num_queries=64),
        ),
    )


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "fsesim": _fsesim,
    "lsesim": _lsesim,
    "fsesim-paper": _fsesim_paper,
    "lsesim-paper": _lsesim_paper,
    **{f"table3-{r}": _table3(r) for r in "ABCDEF"},
    "tiny": _tiny,
    "tiny-lsesim": _tiny_lsesim,
    "cyclegan": _cyclegan,
    "cut": _cut,
    "fastcut": _fastcut,
    "perceptual": _perceptual,
    "distancegan": _distancegan,
    "gcgan": _gcgan,
    "tiny-cyclegan": _tiny_baseline("tiny-cyclegan", _cyclegan),
    "tiny-cut": _tiny_baseline("tiny-cut", _cut),
    "tiny-fastcut": _tiny_baseline(
        "tiny-fastcut",
        _fastcut,
        why=(
            "Its PatchNCE weight is 0.25, not FastCUT's 10: at 64 px the term on the generator's "
            "own features pins the input's colours (weight 10: 5 of 9 quick-bench runs stayed in "
            "the input domain; weight 1: two shapes runs at target rate 0.88 and 0.81; weight "
            "0.5: one shapes run at 0.00 on a second machine; docs/structure.md section 6)."
        ),
        nce_weight=0.25,
    ),
    "tiny-perceptual": _tiny_baseline(
        "tiny-perceptual",
        _perceptual,
        why=(
            "It weighs the perceptual term 1, not 10 (on tiny's relu1_2 and relu2_2 taps the "
            "features carry the colours), and adds tiny's identity L1 on target images, weight "
            "2 (``baseline.identity_weight``): without it, started at the identity, the "
            "discriminator won outright and quick-bench runs stayed in the input domain "
            "(docs/structure.md section 6)."
        ),
        perceptual_weight=1.0,
        identity_weight=2.0,
    ),
    "tiny-distancegan": _tiny_baseline(
        "tiny-distancegan",
        _distancegan,
        identity_warmup=False,
        why=(
            "It starts without the identity warm-up and adds tiny's identity L1 on target "
            "images, weight 2 (``baseline.identity_weight``): started at the identity, its "
            "discriminator won outright and runs stayed in the input domain, with the warm-up "
            "at identity weight 2 or 5 too, and without the warm-up and the term (three seeds "
            "of each; docs/structure.md section 6)."
        ),
        identity_weight=2.0,
    ),
    "tiny-gcgan": _tiny_baseline("tiny-gcgan", _gcgan),
    "munit-fsesim": _munit_fsesim,
    "munit-lsesim": _munit_lsesim,
    **{f"munit-table3-{r}": _munit_table3(r) for r in "ABCDEF"},
    "munit-tiny": _munit_tiny,
    "munit-cycle": _munit_cycle,
    "tiny-munit-cycle": _tiny_munit_cycle,
    "tiny-munit": _munit_tiny,
    "single-image": _single_image,
    "single-image-tiny": _single_image_tiny,
}

#: The preset used when only ``--mode`` is given.
DEFAULT_PRESET = {"single": "fsesim", "multimodal": "munit-fsesim", "single-image": "single-image"}


def preset(name: str) -> TrainConfig:
    """The named preset's config.

    Raises:
        UserError: for an unknown name (the message lists the known ones).
    """
    if name not in PRESETS:
        raise UserError(
            f"unknown preset {name!r}{did_you_mean(name, PRESETS)}; choose one of: "
            f"{', '.join(PRESETS)}"
        )
    return PRESETS[name]()


# ---------------------------------------------------------------------------------------------
# Conversions: dict <-> config, dotted overrides, YAML.


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML-friendly dict of a (nested) config dataclass."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert ``value`` (from YAML or a string flag) to the field's annotated type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except UserError as exc:
                errors.append(str(exc))
        raise UserError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is Literal:
        if value not in args:
            hint = did_you_mean(str(value), map(str, args))
            raise UserError(f"{where}: {value!r} is not one of {', '.join(map(str, args))}{hint}")
        return value
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise UserError(f"{where}: expected a list, got {value!r}")
        item_type = args[0] if args else str
        items = [v.strip() if isinstance(v, str) else v for v in items]
        return tuple(_coerce(v, item_type, where) for v in items if v != "")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise UserError(f"{where}: expected true or false, got {value!r}")
    if annotation is int:
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if isinstance(value, str) and "e" in value else int(value)
        except (TypeError, ValueError):
            raise UserError(f"{where}: expected a whole number, got {value!r}") from None
    if annotation is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserError(f"{where}: expected a number, got {value!r}") from None
    if annotation is str:
        return str(value)
    return value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build a config dataclass from a (partial) dict, filling the rest with defaults."""
    return update(cls(), data, where)


def update(cfg: Any, data: dict[str, Any], where: str = "") -> Any:
    """A copy of ``cfg`` with the (nested, partial) values of ``data`` applied and checked."""
    if not isinstance(data, dict):
        raise UserError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = _hints(type(cfg))
    names = {f.name for f in fields(cfg)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key).replace("-", "_")
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise UserError(
                f"unknown config field {path!r}{did_you_mean(key, names)}; known fields here: "
                f"{', '.join(sorted(names))}"
            )
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            changes[key] = update(current, value, path)
        else:
            changes[key] = _coerce(value, hints[key], path)
    try:
        return replace(cfg, **changes)
    except ValueError as exc:  # validation in __post_init__
        raise UserError(f"{where or 'config'}: {exc}") from None


def apply_overrides(cfg: TrainConfig, pairs: list[str]) -> TrainConfig:
    """Apply ``section.field=value`` strings, e.g. ``structure.loss.window=32``."""
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"--set expects section.field=value, got {pair!r}")
        key, value = pair.split("=", 1)
        nested: dict[str, Any] = {}
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
        cfg = update(cfg, nested)
    return cfg


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML config file (a nested mapping of config fields)."""
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"cannot parse {path}: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of config fields")
    return data


def dump_yaml(cfg: TrainConfig) -> str:
    """The config as YAML text."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check values that the types alone cannot; raise UserError with the fix.

    The method name is checked where the recipes are known (:func:`sesim.methods.get_method`):
    the configuration imports no recipe.
    """
    checks = [
        (
            cfg.steps >= 1 or (cfg.steps == 0 and cfg.epochs + cfg.epochs_decay >= 1),
            f"steps must be >= 1 (or 0 with epochs + epochs_decay >= 1), got {cfg.steps}",
        ),
        (
            cfg.mode != "single-image" or cfg.steps >= 1,
            "single-image mode counts steps (it has no epochs): give steps >= 1",
        ),
        (
            cfg.epochs >= 0 and cfg.epochs_decay >= 0,
            f"epochs and epochs_decay must be >= 0, got {cfg.epochs} and {cfg.epochs_decay}",
        ),
        (
            cfg.snapshot_every >= 0 and cfg.snapshot_every_epochs >= 0,
            "snapshot_every and snapshot_every_epochs must be >= 0 (0 = no snapshots)",
        ),
        (cfg.optim.lr_step >= 1, f"optim.lr_step must be >= 1, got {cfg.optim.lr_step}"),
        (cfg.optim.lr_gamma > 0, f"optim.lr_gamma must be > 0, got {cfg.optim.lr_gamma}"),
        (
            cfg.optim.weight_decay >= 0,
            f"optim.weight_decay must be >= 0, got {cfg.optim.weight_decay}",
        ),
        (cfg.batch >= 1, f"batch must be >= 1, got {cfg.batch}"),
        (cfg.save_every >= 1, f"save_every must be >= 1, got {cfg.save_every}"),
        (cfg.keep_last >= 1, f"keep_last must be >= 1, got {cfg.keep_last}"),
        (cfg.log_every >= 1, f"log_every must be >= 1, got {cfg.log_every}"),
        (cfg.sample_every >= 1, f"sample_every must be >= 1, got {cfg.sample_every}"),
        (
            0 <= cfg.model.n_downsampling <= 4,
            f"model.n_downsampling must lie in 0..4, got {cfg.model.n_downsampling}",
        ),
        (
            0 <= cfg.model.d_local_layers <= 3,
            f"model.d_local_layers must lie in 0..3 (0: no local discriminator), got "
            f"{cfg.model.d_local_layers}",
        ),
        (
            cfg.model.d_local_layers == 0 or cfg.mode == "single",
            f"model.d_local_layers applies to the single-modal PatchGAN only; set it to 0 for "
            f"mode {cfg.mode}",
        ),
        (
            cfg.data.crop_size >= 16
            and cfg.data.crop_size % max(4, 2 ** min(max(cfg.model.n_downsampling, 0), 4)) == 0,
            f"crop size must be >= 16 and a multiple of "
            f"{max(4, 2 ** min(max(cfg.model.n_downsampling, 0), 4))} (4, or 2 ** "
            f"model.n_downsampling when larger), got {cfg.data.crop_size}",
        ),
        (
            cfg.data.preprocess == "crop"
            or cfg.data.preprocess == "none"
            or cfg.data.load_size >= cfg.data.crop_size,
            f"load_size ({cfg.data.load_size}) must be >= crop_size ({cfg.data.crop_size})",
        ),
        (cfg.data.workers >= 0, f"workers must be >= 0, got {cfg.data.workers}"),
        (cfg.model.ngf >= 1 and cfg.model.ndf >= 1, "ngf and ndf must be >= 1"),
        (cfg.model.n_blocks >= 0, f"n_blocks must be >= 0, got {cfg.model.n_blocks}"),
        (cfg.optim.lr > 0, f"lr must be > 0, got {cfg.optim.lr}"),
        (
            cfg.optim.d_lr_scale > 0,
            f"optim.d_lr_scale must be > 0, got {cfg.optim.d_lr_scale}",
        ),
        (
            0 <= cfg.optim.ema < 1,
            f"optim.ema must lie in [0, 1) (0 = no averaged generator; 0.99 averages about "
            f"100 steps), got {cfg.optim.ema}",
        ),
        (0 <= cfg.optim.decay_fraction <= 1, "decay_fraction must lie in [0, 1]"),
        (
            cfg.structure.balance >= 0,
            f"structure.balance must be >= 0, got {cfg.structure.balance}",
        ),
        (
            cfg.structure.gan_warmup >= 0,
            f"structure.gan_warmup must be >= 0, got {cfg.structure.gan_warmup}",
        ),
        (
            cfg.structure.weight_final >= 0,
            f"structure.weight_final must be >= 0 (0 = constant weight), "
            f"got {cfg.structure.weight_final}",
        ),
        (
            cfg.structure.colour_anchor >= 0,
            f"structure.colour_anchor must be >= 0 (0 = off), got {cfg.structure.colour_anchor}",
        ),
        (
            cfg.baseline.identity_weight >= 0,
            f"baseline.identity_weight must be >= 0, got {cfg.baseline.identity_weight}",
        ),
        (
            cfg.optim.identity_warmup >= 0,
            f"optim.identity_warmup must be >= 0, got {cfg.optim.identity_warmup}",
        ),
        (cfg.optim.pool_size >= 0, f"pool_size must be >= 0, got {cfg.optim.pool_size}"),
        (cfg.structure.weight >= 0, "structure weight (lambda) must be >= 0"),
        (len(cfg.structure.layers) >= 1, "give at least one VGG16 layer"),
        (
            not cfg.structure.loss.learned or cfg.structure.augment,
            "learned heads (LSeSim) need augment=true: the colour-jittered copy is their positive",
        ),
        (
            cfg.device in ("auto", "cpu", "cuda", "mps") or cfg.device.startswith("cuda:"),
            f"device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    loggers = [name.strip() for name in cfg.logger.split(",") if name.strip()]
    odd = [name for name in loggers if name not in LOGGERS]
    if odd or not loggers:
        raise UserError(f"logger must be a comma list of {', '.join(LOGGERS)}, got {cfg.logger!r}")
    unknown = [name for name in cfg.structure.layers if name not in VGG16_LAYERS]
    if unknown:
        raise UserError(f"unknown VGG16 layer(s) {unknown}; e.g. relu3_1, relu4_1, relu4_3")
    return cfg


# ---------------------------------------------------------------------------------------------
# Epochs -> steps, and preset differences.


def steps_per_epoch(len_a: int, len_b: int, batch: int, world: int = 1) -> int:
    """Optimisation steps of one epoch: ``max(len_a, len_b) // (batch * world)``, at least 1.

    The public code's training loader walks the larger domain once per epoch and drops the last
    incomplete batch; with several ranks each step consumes ``batch`` images on every rank.
    """
    return max(1, max(len_a, len_b) // (batch * max(1, world)))


def resolve_epochs(cfg: TrainConfig, len_a: int, len_b: int, world: int = 1) -> TrainConfig:
    """Turn the epoch settings into steps once the dataset's sizes are known.

    ``steps`` 0 becomes ``(epochs + epochs_decay) * steps_per_epoch`` and the linear decay
    covers the ``epochs_decay`` part (``optim.decay_fraction``); ``snapshot_every`` 0 becomes
    ``snapshot_every_epochs * steps_per_epoch``. Settings given in steps are kept, so the
    result resolves to itself.

    Args:
        cfg: a config, possibly with ``steps`` 0.
        len_a: training images of the source domain.
        len_b: training images of the target domain.
        world: ranks training together.
    Returns:
        The config with ``steps`` (and ``snapshot_every``) in steps.
    """
    per_epoch = steps_per_epoch(len_a, len_b, cfg.batch, world)
    changes: dict[str, Any] = {}
    if cfg.steps == 0:
        total = cfg.epochs + cfg.epochs_decay
        if total < 1:
            raise UserError("steps is 0 but epochs + epochs_decay is 0: give one of them")
        changes["steps"] = total * per_epoch
        changes["optim"] = replace(cfg.optim, decay_fraction=cfg.epochs_decay / total)
    if cfg.snapshot_every == 0 and cfg.snapshot_every_epochs > 0:
        changes["snapshot_every"] = cfg.snapshot_every_epochs * per_epoch
    return replace(cfg, **changes)


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{"section.field": value}`` for every leaf of a (nested) config dataclass."""
    out: dict[str, Any] = {}
    for key, value in to_dict(cfg).items():
        out.update(_flatten_value(value, f"{prefix}{key}"))
    return out


def _flatten_value(value: Any, path: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten_value(inner, f"{path}.{key}"))
        return out
    return {path: value}


def config_diff(cfg: TrainConfig, ref: TrainConfig) -> list[tuple[str, Any, Any]]:
    """Fields where ``cfg`` differs from ``ref``: ``(dotted path, ref's value, cfg's value)``."""
    a, b = flatten(ref), flatten(cfg)
    return [(k, a[k], b[k]) for k in a if a[k] != b[k]]
