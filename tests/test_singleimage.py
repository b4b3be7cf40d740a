"""Single-image translation: the ``singleimage`` recipe, tiled inference and the demo images."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from sesim.config import TrainConfig, preset
from sesim.data.sample_images import sample_images
from sesim.data.single_image import SingleImagePair
from sesim.errors import UserError
from sesim.methods import get_method
from sesim.methods import singleimage as recipe
from sesim.methods.common import StepContext
from sesim.nets.stylegan2 import StyleGAN2Generator
from sesim.runs import load_checkpoint, load_generator
from sesim.train import train
from sesim.translate import default_overlap, tile_starts, translate_full, translate_tiled


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: these small networks run several times faster than with two
    threads competing for busy cores (the double backward of the penalties especially)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


# ---------------------------------------------------------------------------------------------
# Tiled inference.


def _interior_edges(length: int, tile: int, overlap: int) -> list[int]:
    """Tile borders inside the image (where a tile's missing context distorts its output)."""
    starts = tile_starts(length, tile, tile - overlap)
    return sorted({s for s in starts if s > 0} | {s + tile for s in starts if s + tile < length})


def test_tiles_agree_with_the_full_image_away_from_tile_borders() -> None:
    torch.manual_seed(0)  # StyleGAN2 layers draw their weights from the global RNG
    G = StyleGAN2Generator(3, 3, ngf=4, n_blocks=2, resolution=128).eval()
    image = torch.rand(1, 3, 288, 288, generator=torch.Generator().manual_seed(1)) * 2 - 1
    full = translate_full(G, image)
    tiled = translate_tiled(G, image, tile=160, overlap=32, multiple=G.multiple)
    assert tiled.shape == full.shape == image.shape

    # Farther than the receptive field's reach from every tile border: identical.
    far = torch.ones(288, dtype=torch.bool)
    for edge in _interior_edges(288, 160, 32):
        far[max(0, edge - 40) : edge + 40] = False
    assert far.sum() > 100
    mask = far[:, None] & far[None, :]
    assert torch.allclose(tiled[..., mask], full[..., mask], atol=1e-5)
    # Near the borders the blend stays close to the full image: no seams.
    assert (tiled - full).abs().max() < 0.05


def test_tile_as_large_as_the_image_is_the_full_translation() -> None:
    torch.manual_seed(0)
    G = StyleGAN2Generator(3, 3, ngf=4, n_blocks=2, resolution=128).eval()
    image = torch.rand(1, 3, 45, 61, generator=torch.Generator().manual_seed(2)) * 2 - 1
    assert torch.equal(translate_full(G, image, tile=64), translate_full(G, image))


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap"), [(97, 130, 32, 8), (50, 33, 24, 12)]
)
def test_blend_weights_sum_to_one(height: int, width: int, tile: int, overlap: int) -> None:
    # With an identity "generator" any correct blend returns the input unchanged.
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(3))
    out = translate_tiled(nn.Identity(), image, tile=tile, overlap=overlap, multiple=4)
    assert torch.allclose(out, image, atol=1e-6)


def test_default_overlap_and_tile_positions() -> None:
    assert [default_overlap(t, 4) for t in (32, 128, 256, 1024)] == [16, 64, 64, 256]
    assert tile_starts(288, 160, 128) == [0, 128]
    assert tile_starts(300, 128, 96) == [0, 96, 172]  # the last tile is shifted inside
    assert tile_starts(100, 128, 96) == [0]


def test_bad_tile_settings() -> None:
    image = torch.zeros(1, 3, 64, 64)
    with pytest.raises(UserError, match="at most half"):
        translate_tiled(nn.Identity(), image, tile=32, overlap=20, multiple=4)
    with pytest.raises(UserError, match="at least 4"):
        translate_full(nn.Identity(), image, tile=3)


# ---------------------------------------------------------------------------------------------
# Demo images.


def test_sample_images_ship_with_matplotlib(tmp_path: Path) -> None:
    source, target = sample_images()
    assert source.is_file() and target.is_file()
    copies = sample_images(tmp_path / "demo")
    assert [p.name for p in copies] == [source.name, target.name]
    assert all(p.parent == tmp_path / "demo" and p.is_file() for p in copies)
    pair = SingleImagePair(*copies, load_size=256, crop_size=64)  # the tiny preset's sizes
    batch = pair.sample(2, torch.Generator().manual_seed(0))
    assert batch["A"].shape == batch["B"].shape == (2, 3, 64, 64)
