"""Inference (sesim.translate): tiled translation, multi-modal styles, saving images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from sesim.data.images import load_rgb, to_tensor
from sesim.errors import UserError
from sesim.nets.stylegan2 import StyleGAN2Generator
from sesim.translate import (
    default_overlap,
    save_image,
    tile_starts,
    translate_full,
    translate_random,
    translate_styles,
    translate_tiled,
    translate_with_style,
)
from tests.fixtures.munit import munit_generator as _generator
from tests.fixtures.munit import random_images as _images

pytestmark = pytest.mark.usefixtures("one_thread")


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
# Multi-modal styles.


def test_translate_styles_shapes_dtypes_and_reproducibility() -> None:
    G = _generator()
    x = _images(3, 30, 34)  # not multiples of 4: padded and cropped back
    out = translate_styles(G, x, 4, torch.Generator().manual_seed(7))
    assert out.shape == (3, 4, 3, 30, 34) and out.dtype == torch.float32
    assert out.abs().max() <= 1.0
    again = translate_styles(G, x, 4, torch.Generator().manual_seed(7))
    assert torch.equal(out, again)
    other = translate_styles(G, x, 4, torch.Generator().manual_seed(8))
    assert (out - other).abs().mean() > 1e-3
    # Style j is one code for every image, whatever the batch.
    alone = translate_styles(G, x[1:2], 4, torch.Generator().manual_seed(7))
    torch.testing.assert_close(alone[0], out[1], atol=1e-5, rtol=1e-4)
    assert (out[:, 0] - out[:, 1]).abs().mean() > 1e-3
    # Double precision in, double precision out.
    out64 = translate_styles(G.double(), x.double(), 2, torch.Generator().manual_seed(7))
    assert out64.dtype == torch.float64 and out64.shape == (3, 2, 3, 30, 34)
    with pytest.raises(UserError, match="number of styles"):
        translate_styles(G, x, 0, torch.Generator())


def test_translate_random_and_with_style() -> None:
    G = _generator()
    x = _images(2, 20, 28)
    y = translate_random(G, x, torch.Generator().manual_seed(0))
    assert y.shape == (2, 3, 20, 28)
    # Example-guided: one example image for the whole batch, of another size.
    styled = translate_with_style(G, x, _images(1, 40, 24, seed=1))
    assert styled.shape == (2, 3, 20, 28) and styled.dtype == torch.float32
    other = translate_with_style(G, x, _images(1, 40, 24, seed=2))
    assert not torch.equal(styled, other)
    with pytest.raises(UserError, match="16"):
        translate_with_style(G, x, _images(1, 8, 8))
    with pytest.raises(UserError, match="no style encoder"):
        translate_with_style(_generator(style_encoder=False), x, _images(1))


# ---------------------------------------------------------------------------------------------
# Saving images.


def _rgb(seed: int, h: int = 16, w: int = 20) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_save_image_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = to_tensor(Image.fromarray(_rgb(4)))
    out = tmp_path / "sub" / "x.png"
    save_image(t, out)
    assert np.array_equal(np.asarray(load_rgb(out)), _rgb(4))
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.png"]
    save_image(t, tmp_path / "x.jpg")
    assert load_rgb(tmp_path / "x.jpg").size == (20, 16)
    with pytest.raises(UserError, match="unknown extension"):
        save_image(t, tmp_path / "x.nope")

    def broken_save(self: Image.Image, fp: object, *args: object, **kw: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(t, tmp_path / "y.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "x.jpg"]
