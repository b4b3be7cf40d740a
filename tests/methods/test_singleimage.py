"""Single-image translation: the ``singleimage`` recipe."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sesim.config import TrainConfig, preset
from sesim.errors import UserError
from sesim.methods import get_method
from sesim.methods import singleimage as recipe
from sesim.methods.common import StepContext
from sesim.nets.stylegan2 import StyleGAN2Generator
from sesim.runs import load_checkpoint, load_generator
from sesim.train import train
from sesim.translate import translate_full

pytestmark = pytest.mark.usefixtures("one_thread")


def _image(path: Path, width: int, height: int, mode: str = "RGB", seed: int = 0) -> Path:
    """A smooth random picture (blurred noise) saved in the given Pillow mode."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 4), dtype=np.uint8)
    img = Image.fromarray(small, mode="RGBA").resize((width, height), Image.Resampling.BICUBIC)
    img.convert(mode).save(path)
    return path


def _tiny(tmp_path: Path, source: Path | None = None, target: Path | None = None) -> TrainConfig:
    """``single-image-tiny`` shrunk to a 2-step, 32-px CPU run on generated images."""
    cfg = preset("single-image-tiny")
    source = source or _image(tmp_path / "source.png", 80, 64, seed=1)
    target = target or _image(tmp_path / "target.png", 64, 72, seed=2)
    return replace(
        cfg,
        steps=2,
        batch=2,
        save_every=1,
        log_every=1,
        sample_every=2,
        num_samples=2,
        device="cpu",
        data=replace(cfg.data, source=str(source), target=str(target), load_size=64, crop_size=32),
        stylegan=replace(cfg.stylegan, ngf=4, ndf=4),
        structure=replace(
            cfg.structure, vgg_weights="random", loss=replace(cfg.structure.loss, num_queries=16)
        ),
    )


def test_presets_use_the_recipe() -> None:
    for name in ("single-image", "single-image-tiny"):
        cfg = preset(name)
        assert cfg.mode == "single-image" and cfg.method == "singleimage"
        assert get_method(cfg.method) is recipe
    assert recipe.POOLS == ()


def test_smoke_train_reload_and_translate(tmp_path: Path) -> None:
    # A grayscale source and an RGBA target: channel counts differ, both load as RGB.
    source = _image(tmp_path / "gray.png", 80, 64, mode="L", seed=1)
    target = _image(tmp_path / "rgba.png", 64, 72, mode="RGBA", seed=2)
    cfg = _tiny(tmp_path, source, target)
    final = train(cfg, tmp_path / "run", quiet=True)
    state = load_checkpoint(final)
    assert state["step"] == 2 and state["method"] == "singleimage"
    assert set(state["nets"]) == {"G", "D"}
    assert list((tmp_path / "run" / "samples").glob("*.png"))

    G, cfg2, step = load_generator(None, final, "cpu")
    assert isinstance(G, StyleGAN2Generator) and not G.training and step == 2
    assert cfg2.stylegan == cfg.stylegan
    for k, v in G.state_dict().items():
        assert torch.equal(v, state["nets"]["G"][k]), k

    image = torch.rand(1, 3, 50, 70, generator=torch.Generator().manual_seed(0)) * 2 - 1
    full = translate_full(G, image)
    tiled = translate_full(G, image, tile=32)
    assert full.shape == tiled.shape == (1, 3, 50, 70)
    assert torch.isfinite(tiled).all() and full.abs().max() <= 1


def test_init_is_deterministic_and_leaves_the_global_rng(tmp_path: Path) -> None:
    cfg = _tiny(tmp_path)
    before = torch.get_rng_state()
    for build in (recipe.build_generator, recipe.build_discriminator):
        a, b = build(cfg).state_dict(), build(cfg).state_dict()
        assert all(torch.equal(v, b[k]) for k, v in a.items())
        other = build(replace(cfg, seed=1)).state_dict()
        assert not all(torch.equal(v, other[k]) for k, v in a.items())
    assert torch.equal(before, torch.get_rng_state())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> recipe.SingleImageNets:
    """The tiny run's networks, built once (VGG16 is slow to construct)."""
    nets = recipe.build(_tiny(tmp_path_factory.mktemp("built")))
    reference = recipe.build_generator(_tiny(tmp_path_factory.mktemp("ref"))).state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in nets.G.state_dict().items())
    return nets


@pytest.mark.parametrize("gp", ["mixed", "r1", "none"])
def test_train_step_with_each_penalty(
    gp: str, built: recipe.SingleImageNets, tmp_path: Path
) -> None:
    cfg = _tiny(tmp_path)
    cfg = replace(cfg, stylegan=replace(cfg.stylegan, gp=gp, gp_weight=2.0))
    nets = copy.deepcopy(built)
    opts = recipe.build_optimizers(cfg, nets)
    ctx = StepContext(cfg, opts, {}, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    batch = {k: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for k in ("A", "B")}
    d0 = [p.detach().clone() for p in nets.D.parameters()]
    g0 = [p.detach().clone() for p in nets.G.parameters()]
    logs = recipe.train_step(nets, ctx, batch)
    assert set(logs) == {"D_real", "D_fake", "D_gp", "G_gan", "G_struct"}
    assert all(torch.isfinite(v) and v.ndim == 0 for v in logs.values())
    assert (logs["D_gp"] > 0) == (gp != "none")
    assert any(not torch.equal(p, q) for p, q in zip(nets.D.parameters(), d0))
    assert any(not torch.equal(p, q) for p, q in zip(nets.G.parameters(), g0))
    assert all(p.requires_grad for p in nets.D.parameters())
    if gp == "r1":  # gamma / 2 * mean ||grad D(real)||^2 with gamma = gp_weight
        real = batch["B"].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(nets.D(real).sum(), real)
        _, penalty = recipe.gradient_penalty(nets, ctx, batch["B"], batch["A"])
        expected = 0.5 * 2.0 * grad.pow(2).flatten(1).sum(1).mean()
        assert torch.allclose(penalty, expected, rtol=1e-4)


def test_build_rejects_unsupported_settings(tmp_path: Path) -> None:
    cfg = _tiny(tmp_path)
    with pytest.raises(UserError, match="power-of-two"):
        recipe.build(replace(cfg, data=replace(cfg.data, crop_size=48)))
    learned = replace(cfg.structure, augment=True, loss=replace(cfg.structure.loss, learned=True))
    with pytest.raises(UserError, match="FSeSim only"):
        recipe.build(replace(cfg, structure=learned))
    with pytest.raises(UserError, match="double backward"):
        recipe.build(replace(cfg, compile=True))


def test_bad_images_fail_before_anything_is_written(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    cfg = _tiny(tmp_path)
    with pytest.raises(UserError) as bad:
        train(replace(cfg, data=replace(cfg.data, source=str(text))), tmp_path / "r1", quiet=True)
    assert "notes.png" in str(bad.value) and "\n" not in str(bad.value)

    small = _image(tmp_path / "small.png", 40, 24)  # 24 px high, crops are 32
    with pytest.raises(UserError, match="smaller than the crop") as tiny:
        train(replace(cfg, data=replace(cfg.data, target=str(small))), tmp_path / "r2", quiet=True)
    assert "\n" not in str(tiny.value)
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()
