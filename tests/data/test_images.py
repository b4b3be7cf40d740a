"""Image files: listing, reading every mode as 8-bit RGB, spotting broken files."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from sesim.data.images import (
    IMAGE_EXTENSIONS,
    UnreadableImageWarning,
    check_images,
    filter_images,
    list_images,
    load_rgb,
    to_pil,
    to_rgb,
    to_tensor,
)
from sesim.errors import UserError


def _rgb(seed: int, h: int = 16, w: int = 20) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, img: Image.Image, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


# ---------------------------------------------------------------------------------------------
# list_images


def test_extensions_are_lower_case_with_dots() -> None:
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"} == set(
        IMAGE_EXTENSIONS
    )


def test_list_images_sorted_recursive_and_filtered(tmp_path: Path) -> None:
    img = Image.fromarray(_rgb(0))
    for rel in ["b.png", "a.JPG", "sub/c.bmp", ".hidden.png", ".cache/d.png"]:
        _save(tmp_path / rel, img, format="PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, "images")]
    assert found == ["a.JPG", "b.png", "sub/c.bmp"]


def test_list_images_missing_folder_names_it_and_the_layout(tmp_path: Path) -> None:
    folder = tmp_path / "x" / "trainA"
    with pytest.raises(UserError, match=r"trainA does not exist: expected the CycleGAN layout"):
        list_images(folder, "the CycleGAN layout trainA/ trainB/ testA/ testB/")


def test_list_images_empty_folder_and_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty contains no image files .*expected photos"):
        list_images(tmp_path / "empty", "photos")
    (tmp_path / "f.png").write_bytes(b"")
    with pytest.raises(UserError, match="not a folder"):
        list_images(tmp_path / "f.png", "photos")


# ---------------------------------------------------------------------------------------------
# load_rgb / to_rgb for every mode


def _loaded(path: Path) -> np.ndarray:
    img = load_rgb(path)
    assert img.mode == "RGB"
    return np.asarray(img)


def test_rgb_png_round_trip(tmp_path: Path) -> None:
    arr = _rgb(1)
    assert np.array_equal(_loaded(_save(tmp_path / "x.png", Image.fromarray(arr))), arr)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".webp", ".pgm"])
def test_grayscale_becomes_gray_rgb(tmp_path: Path, ext: str) -> None:
    gray = np.arange(16 * 20, dtype=np.uint8).reshape(16, 20)
    kw = {"lossless": True} if ext == ".webp" else {}
    out = _loaded(_save(tmp_path / f"g{ext}", Image.fromarray(gray, mode="L"), **kw))
    assert out.shape == (16, 20, 3)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert np.abs(out[..., 0].astype(int) - gray).max() <= 1


def test_one_bit_image(tmp_path: Path) -> None:
    bits = np.zeros((8, 8), dtype=bool)
    bits[:, 4:] = True
    out = _loaded(_save(tmp_path / "b.png", Image.fromarray(bits)))
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 7].tolist() == [255, 255, 255]


def test_palette_image_and_palette_transparency(tmp_path: Path) -> None:
    p = Image.new("P", (4, 2))
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.putdata([0, 1, 0, 1, 1, 0, 1, 0])
    out = _loaded(_save(tmp_path / "p.png", p))
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [0, 0, 255]
    # Index 1 transparent: composited on white.
    out = _loaded(_save(tmp_path / "pt.png", p, transparency=1))
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [255, 255, 255]


def test_rgba_and_la_are_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red
    rgba[0, 0, 3] = 255  # opaque
    rgba[0, 1, 3] = 0  # transparent
    rgba[0, 2, 3] = 128  # half
    out = _loaded(_save(tmp_path / "a.png", Image.fromarray(rgba, mode="RGBA")))
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[0, 1].tolist() == [255, 255, 255]
    assert out[0, 2, 0] == 255 and 120 <= out[0, 2, 1] <= 135
    la = np.stack([np.zeros((2, 2), np.uint8), np.array([[255, 0], [0, 255]], np.uint8)], -1)
    out = _loaded(_save(tmp_path / "la.png", Image.fromarray(la, mode="LA")))
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 1].tolist() == [255, 255, 255]


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
def test_cmyk(tmp_path: Path, ext: str) -> None:
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red
    out = _loaded(_save(tmp_path / f"c{ext}", cmyk))
    assert np.abs(out.reshape(-1, 3).mean(0) - [255, 0, 0]).max() < 8


def test_sixteen_bit_png_scaled_from_actual_range(tmp_path: Path) -> None:
    arr = np.linspace(1000, 3000, 16 * 8).reshape(8, 16).astype(np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    out = _loaded(_save(tmp_path / "x16.png", img))
    assert out[..., 0].min() == 0 and out[..., 0].max() == 255
    assert np.all(np.diff(out[0, :, 0].astype(int)) >= 0)  # monotone: a gradient stays one
    assert np.array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize(
    ("array", "mode"),
    [
        (np.array([[0, 100], [200, 400]], dtype=">u2"), "I;16B"),
        (np.array([[-5, 0], [5, 15]], dtype=np.int32), "I"),
        (np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32), "F"),
    ],
)
def test_high_depth_modes(array: np.ndarray, mode: str) -> None:
    img = Image.fromarray(array)
    assert img.mode == mode
    out = np.asarray(to_rgb(img))
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[0, 0, 0] == 0 and out[1, 1, 0] == 255
    assert out[0, 0, 0] < out[0, 1, 0] < out[1, 0, 0] < out[1, 1, 0]


def test_float_with_nan_and_constant_image() -> None:
    arr = np.array([[np.nan, 1.0], [2.0, np.inf]], dtype=np.float32)
    out = np.asarray(to_rgb(Image.fromarray(arr)))
    assert out[:, :, 0].tolist() == [[0, 0], [255, 0]]
    const = np.full((3, 3), 700, dtype=np.uint16)
    assert np.asarray(to_rgb(Image.fromarray(const))).max() == 0


# ---------------------------------------------------------------------------------------------
# Broken files


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_file_is_a_user_error(tmp_path: Path, ext: str) -> None:
    path = _truncate(_save(tmp_path / f"t{ext}", Image.fromarray(_rgb(2, 64, 64))))
    with pytest.raises(UserError, match=r"cannot read image .*t\.\w+: .*remove or replace"):
        load_rgb(path)


def test_empty_garbage_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(UserError, match="empty"):
        load_rgb(tmp_path / "e.png")
    (tmp_path / "g.jpg").write_bytes(b"this is not a jpeg at all")
    with pytest.raises(UserError, match="cannot read image"):
        load_rgb(tmp_path / "g.jpg")
    with pytest.raises(UserError, match="cannot read image"):
        load_rgb(tmp_path / "missing.png")


def _mixed_folder(tmp_path: Path) -> list[Path]:
    good = [_save(tmp_path / f"good{i}.png", Image.fromarray(_rgb(i))) for i in range(3)]
    trunc = _truncate(_save(tmp_path / "bad_trunc.png", Image.fromarray(_rgb(9, 64, 64))))
    (tmp_path / "bad_empty.jpg").write_bytes(b"")
    return sorted([*good, trunc, tmp_path / "bad_empty.jpg"])


@pytest.mark.parametrize("workers", [1, 4])
def test_check_images_splits_good_and_bad(tmp_path: Path, workers: int) -> None:
    paths = _mixed_folder(tmp_path)
    good, bad = check_images(paths, workers=workers)
    assert [p.name for p in good] == ["good0.png", "good1.png", "good2.png"]
    assert [p.name for p in bad] == ["bad_empty.jpg", "bad_trunc.png"]


def test_filter_images_warns_once_with_count(tmp_path: Path) -> None:
    paths = _mixed_folder(tmp_path)
    with pytest.warns(UnreadableImageWarning, match=r"skipped 2 unreadable files in X \(first: "):
        good = filter_images(paths, "X")
    assert len(good) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert filter_images(good, "X") == good  # nothing to say when all load


def test_filter_images_nothing_left(tmp_path: Path) -> None:
    bad = [p for p in _mixed_folder(tmp_path) if p.name.startswith("bad")]
    with pytest.raises(UserError, match=r"none of the 2 image files in X can be read"):
        filter_images(bad, "X")
    with pytest.raises(UserError, match="no image files in X"):
        filter_images([], "X")


# ---------------------------------------------------------------------------------------------
# Tensors and saving


def test_to_tensor_range_and_round_trip() -> None:
    arr = _rgb(3)
    arr[0, 0] = [0, 128, 255]
    t = to_tensor(Image.fromarray(arr))
    assert t.shape == (3, 16, 20) and t.dtype == torch.float32
    assert t[:, 0, 0].tolist() == pytest.approx([-1.0, 128 / 127.5 - 1, 1.0], abs=1e-6)
    assert np.array_equal(np.asarray(to_pil(t)), arr)
    assert np.array_equal(np.asarray(to_pil(t[None])), arr)


def test_to_tensor_converts_other_modes() -> None:
    t = to_tensor(Image.new("L", (5, 4), 255))
    assert t.shape == (3, 4, 5) and bool((t == 1).all())


def test_to_pil_clamps_and_checks_shape() -> None:
    t = torch.tensor([-3.0, 0.0, 3.0]).view(3, 1, 1).expand(3, 2, 2)
    assert np.asarray(to_pil(t))[0, 0].tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        to_pil(torch.zeros(4, 2, 2))
