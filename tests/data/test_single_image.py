"""Tests for sesim.data.single_image: zoom-and-patch crops of one source and one target image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sesim.data.single_image import SingleImagePair
from sesim.errors import UserError


def _coord_image(path: Path, width: int, height: int) -> Path:
    """RGB image whose red channel is the column and green channel the row (both < 256)."""
    ys, xs = np.mgrid[0:height, 0:width]
    arr = np.stack([xs, ys, np.full_like(xs, 77)], axis=-1).astype(np.uint8)
    Image.fromarray(arr, mode="RGB").save(path)
    return path


def _noise_image(path: Path, width: int, height: int, mode: str = "RGB", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    Image.fromarray(arr.squeeze(-1) if channels == 1 else arr, mode=mode).save(path)
    return path


def _coords(crop: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Columns and rows encoded in a (3, S, S) crop in [-1, 1]."""
    pixels = np.rint((crop.numpy() + 1.0) * 127.5).astype(int)
    return pixels[0], pixels[1]


def test_crops_are_contiguous_in_bounds_regions_at_zoom_one(tmp_path: Path) -> None:
    src = _coord_image(tmp_path / "a.png", 100, 70)
    tgt = _coord_image(tmp_path / "b.png", 64, 90)
    pair = SingleImagePair(src, tgt, crop_size=32, max_zoom=1.0, flip=False)
    batch = pair.sample(6, torch.Generator().manual_seed(0))
    assert set(batch) == {"A", "B"}
    for key, (width, height) in (("A", (100, 70)), ("B", (64, 90))):
        crops = batch[key]
        assert crops.shape == (6, 3, 32, 32) and crops.dtype == torch.float32
        assert crops.min() >= -1 and crops.max() <= 1
        corners = set()
        for crop in crops:
            xs, ys = _coords(crop)
            x0, y0 = xs[0, 0], ys[0, 0]
            assert np.array_equal(xs, x0 + np.arange(32)[None, :].repeat(32, 0))
            assert np.array_equal(ys, y0 + np.arange(32)[:, None].repeat(32, 1))
            assert 0 <= x0 <= width - 32 and 0 <= y0 <= height - 32
            corners.add((x0, y0))
        assert len(corners) > 1


def test_crops_of_a_batch_use_distinct_cells(tmp_path: Path) -> None:
    img = _coord_image(tmp_path / "a.png", 64, 64)  # exactly 2 x 2 cells of 32 px
    pair = SingleImagePair(img, img, crop_size=32, max_zoom=1.0, flip=False)
    batch = pair.sample(4, torch.Generator().manual_seed(3))
    corners = {tuple(int(c[0, 0]) for c in _coords(crop)) for crop in batch["A"]}
    assert corners == {(0, 0), (0, 32), (32, 0), (32, 32)}


def test_flip_mirrors_crops(tmp_path: Path) -> None:
    img = _coord_image(tmp_path / "a.png", 80, 80)
    pair = SingleImagePair(img, img, crop_size=16, max_zoom=1.0, flip=True)
    batch = pair.sample(16, torch.Generator().manual_seed(0))
    flipped = 0
    for crop in batch["A"]:
        xs, _ = _coords(crop)
        step = xs[0, 1] - xs[0, 0]
        assert step in (1, -1)
        assert np.array_equal(xs, xs[:1].repeat(16, 0))
        assert np.array_equal(np.diff(xs, axis=1), np.full((16, 15), step))
        assert xs.min() >= 0 and xs.max() < 80
        flipped += int(step == -1)
    assert 0 < flipped < 16


def test_zoom_shrinks_content(tmp_path: Path) -> None:
    img = _coord_image(tmp_path / "a.png", 120, 120)
    pair = SingleImagePair(img, img, crop_size=32, max_zoom=3.0, flip=False)
    gen = torch.Generator().manual_seed(0)
    spans = []
    for _ in range(8):
        crop = pair.sample(1, gen)["A"][0]
        xs, ys = _coords(crop)
        spans.append(xs[:, -1].mean() - xs[:, 0].mean())
        assert xs.min() >= 0 and xs.max() < 120 and ys.min() >= 0 and ys.max() < 120
    # Zoomed out by 1..3: a 32-px crop spans between ~31 and ~93 source columns, usually > 31.
    assert all(25 <= s <= 100 for s in spans)
    assert max(spans) > 40


def test_seeded_generator_is_deterministic(tmp_path: Path) -> None:
    src = _noise_image(tmp_path / "a.png", 90, 70, seed=1)
    tgt = _noise_image(tmp_path / "b.jpg", 70, 90, seed=2)
    pair = SingleImagePair(src, tgt, crop_size=32)
    a = pair.sample(4, torch.Generator().manual_seed(5))
    b = pair.sample(4, torch.Generator().manual_seed(5))
    c = pair.sample(4, torch.Generator().manual_seed(6))
    assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])
    assert not torch.equal(a["A"], c["A"])


def test_load_size_limits_the_longer_side(tmp_path: Path) -> None:
    src = _noise_image(tmp_path / "a.png", 200, 100)
    tgt = _noise_image(tmp_path / "b.png", 60, 150)
    pair = SingleImagePair(src, tgt, load_size=100, crop_size=32)
    assert pair.source.size == (100, 50)
    assert pair.target.size == (40, 100)
    assert pair.sample(2, torch.Generator().manual_seed(0))["A"].shape == (2, 3, 32, 32)


def test_grayscale_and_rgba_become_rgb(tmp_path: Path) -> None:
    src = _noise_image(tmp_path / "a.png", 40, 40, mode="L")
    tgt = _noise_image(tmp_path / "b.png", 40, 40, mode="RGBA")
    pair = SingleImagePair(src, tgt, crop_size=32)
    assert pair.source.mode == "RGB" and pair.target.mode == "RGB"
    batch = pair.sample(2, torch.Generator().manual_seed(0))
    assert batch["A"].shape == batch["B"].shape == (2, 3, 32, 32)
    # Gray stays gray: the three channels are equal.
    assert torch.equal(batch["A"][:, 0], batch["A"][:, 1])


def test_missing_file(tmp_path: Path) -> None:
    tgt = _noise_image(tmp_path / "b.png", 40, 40)
    with pytest.raises(UserError, match="does not exist"):
        SingleImagePair(tmp_path / "nope.png", tgt, crop_size=32)


def test_non_image_file(tmp_path: Path) -> None:
    bad = tmp_path / "a.png"
    bad.write_text("not an image at all")
    tgt = _noise_image(tmp_path / "b.png", 40, 40)
    with pytest.raises(UserError, match="cannot read image"):
        SingleImagePair(bad, tgt, crop_size=32)


def test_image_smaller_than_crop(tmp_path: Path) -> None:
    src = _noise_image(tmp_path / "a.png", 40, 40)
    tgt = _noise_image(tmp_path / "b.png", 100, 20)
    with pytest.raises(UserError, match=r"at least 32x32.*--crop-size") as info:
        SingleImagePair(src, tgt, crop_size=32)
    assert "\n" not in str(info.value)
    assert "target" in str(info.value)


def test_bad_settings(tmp_path: Path) -> None:
    img = _noise_image(tmp_path / "a.png", 40, 40)
    with pytest.raises(UserError, match="--max-zoom"):
        SingleImagePair(img, img, crop_size=32, max_zoom=0.5)
    with pytest.raises(UserError, match="--load-size"):
        SingleImagePair(img, img, load_size=16, crop_size=32)
    pair = SingleImagePair(img, img, crop_size=32)
    with pytest.raises(ValueError):
        pair.sample(0, torch.Generator())
