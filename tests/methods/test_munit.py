"""The multi-modal recipe (one-sided MUNIT + F/LSeSim)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sesim.config import TrainConfig, preset
from sesim.errors import UserError
from sesim.losses.adversarial import ImagePool
from sesim.methods import METHODS, StepContext, get_method
from sesim.methods import munit as recipe
from sesim.nets.munit import MunitGenerator
from sesim.translate import translate_styles
from tests.fixtures.munit import munit_generator as _generator
from tests.fixtures.munit import random_images as _images
from tests.fixtures.munit import tiny

pytestmark = [
    pytest.mark.filterwarnings("ignore:VGG16Features uses random weights"),
    pytest.mark.usefixtures("one_thread"),
]


# ---------------------------------------------------------------------------------------------
# Registry and networks.


def test_registered_and_built_from_the_config() -> None:
    assert METHODS["munit"] is recipe and recipe.__name__ == "sesim.methods.munit"
    cfg = tiny(preset("munit-lsesim"))
    nets = get_method("munit").build(cfg)
    assert isinstance(nets.G, MunitGenerator)
    assert nets.G.style_dim == cfg.munit.style_dim
    # The paper preset trains eq. 4 (no style encoder); the encoder is an option.
    assert nets.G.enc_style is None
    with_encoder = replace(cfg, munit=replace(cfg.munit, style_encoder=True))
    assert get_method("munit").build(with_encoder).G.enc_style is not None
    assert nets.D.num_scales == cfg.munit.num_scales
    assert set(nets.trainable()) == {"G", "D", "heads"}
    # Deterministic initialisation from cfg.seed; another seed gives other weights.
    again = recipe.build_generator(cfg)
    for a, b in zip(nets.G.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    other = recipe.build_generator(replace(cfg, seed=1))
    assert not torch.equal(other.mlp.model[0].fc.weight, nets.G.mlp.model[0].fc.weight)


def test_a_crop_too_small_for_the_discriminator_is_a_user_error() -> None:
    cfg = tiny(preset("munit-tiny"))
    cfg = replace(cfg, munit=replace(cfg.munit, num_scales=3, d_layers=4))
    with pytest.raises(UserError, match=r"munit\.num_scales"):
        recipe.build(cfg)


def test_style_codes_change_the_output_and_the_same_code_repeats_it() -> None:
    G = _generator()
    x = _images(2)
    g = torch.Generator().manual_seed(0)
    s1, s2 = G.sample_style(2, g), G.sample_style(2, g)
    with torch.no_grad():
        y1, y1_again, y2 = G(x, s1), G(x, s1), G(x, s2)
        mean_style = G(x)
        zero = G(x, torch.zeros_like(s1))
    assert torch.equal(y1, y1_again)
    assert (y1 - y2).abs().mean() > 1e-3
    # Without a code, the prior's mean (the zero code) is used: sample grids and evaluation.
    assert torch.equal(mean_style, zero)


# ---------------------------------------------------------------------------------------------
# Training.


def _context(cfg: TrainConfig, nets: recipe.MunitNets) -> StepContext:
    optimizers = recipe.build_optimizers(cfg, nets)
    pools = {name: ImagePool(cfg.optim.pool_size) for name in recipe.POOLS}
    return StepContext(cfg, optimizers, pools, torch.Generator().manual_seed(4))


def test_lsesim_step_updates_every_network() -> None:
    cfg = tiny(preset("munit-lsesim"), batch=2)
    nets = recipe.build(cfg)
    ctx = _context(cfg, nets)
    assert set(ctx.optimizers) == {"G", "D", "heads"}
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in nets.trainable().items()}
    batch = {k: _images(2, seed=i) for i, k in enumerate(("A", "B", "A_aug", "B_aug"))}
    logs = recipe.train_step(nets, ctx, batch)
    # eq. 4: GAN + lambda * LSeSim; the style term only with the optional style encoder.
    assert set(logs) == {"heads_nce", "D_real", "D_fake", "G_gan", "G_struct"}
    cfg_s = replace(cfg, munit=replace(cfg.munit, style_encoder=True))
    nets_s = recipe.build(cfg_s)
    assert "G_style" in recipe.train_step(nets_s, _context(cfg_s, nets_s), batch)
    assert all(v.ndim == 0 and torch.isfinite(v) and not v.requires_grad for v in logs.values())
    for key, module in nets.trainable().items():
        changed = any(not torch.equal(a, b) for a, b in zip(before[key], module.parameters()))
        assert changed, key
    assert not any(p.requires_grad for p in nets.vgg.parameters())


def test_structure_loss_stays_low_across_styles(multistyle_dataset: Path) -> None:
    """Every sampled style keeps the input's self-similarity: on a briefly trained tiny model
    the structure loss of the worst style is well below that of a translation of another
    scene, and training lowered it, while the styles still differ."""
    from sesim.data.stream import make_dataset

    cfg = tiny(preset("munit-tiny"), multistyle_dataset, batch=2)
    nets = recipe.build(cfg)
    ctx = _context(cfg, nets)
    ds = make_dataset(cfg)
    x = torch.stack([ds[(i, 0, 0)]["A"] for i in range(4)])
    with torch.no_grad():
        feats_x = nets.vgg(x)
    idx = nets.crit.sample_indices(feats_x, torch.Generator().manual_seed(2))

    def losses(y: torch.Tensor) -> list[float]:
        """Structure loss between x and each style's translations y[:, j]."""
        with torch.no_grad():
            return [
                float(nets.crit.structure_loss(feats_x, nets.vgg(y[:, j]), indices=idx))
                for j in range(y.shape[1])
            ]

    def translations() -> torch.Tensor:
        out = translate_styles(nets.G.eval(), x, 4, torch.Generator().manual_seed(1))
        nets.G.train()
        return out

    at_init = losses(translations())
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        keys = [(int(i), int(j), 0) for i, j in torch.randint(6, (2, 2), generator=g)]
        items = [ds[k] for k in keys]
        recipe.train_step(nets, ctx, {k: torch.stack([it[k] for it in items]) for k in ("A", "B")})

    fakes = translations()
    kept = losses(fakes)
    other_scene = losses(fakes.roll(1, dims=0))  # image i against the translation of i - 1
    assert max(kept) < 0.75 * min(other_scene), (kept, other_scene)
    assert sum(kept) < 0.9 * sum(at_init), (kept, at_init)
    assert (fakes[:, 0] - fakes[:, 1]).abs().mean() > 1e-2


def test_smoke_train_load_and_translate(munit_run: Path) -> None:
    from sesim.runs import list_checkpoints, load_checkpoint, load_generator

    ckpts = list_checkpoints(munit_run)
    state = load_checkpoint(ckpts[-1])
    assert state["step"] == 2 and state["mode"] == "multimodal" and state["method"] == "munit"
    assert set(state["nets"]) == {"G", "D"}
    assert list((munit_run / "samples").glob("*.png"))
    G, cfg, step = load_generator(None, ckpts[-1], "cpu")
    assert isinstance(G, MunitGenerator) and not G.training and step == 2
    assert cfg.munit.dim == 8
    x = _images(1)
    a = translate_styles(G, x, 3, torch.Generator().manual_seed(5))
    b = translate_styles(G, x, 3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (1, 3, 3, 32, 32)
