"""Unpaired datasets: explicit randomness, crops, augmentation, direction, broken files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from sesim.data.images import UnreadableImageWarning
from sesim.data.synthetic import write_synthetic_dataset
from sesim.data.unpaired import (
    ImageFolder,
    Preprocess,
    UnpairedDataset,
    UnpairedSampler,
    collate_images,
    preprocess_size,
)
from sesim.errors import UserError


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4+4 image layout dataset of 40 px (domain A is flat colours: exact regions)."""
    out = tmp_path_factory.mktemp("data") / "layout"
    return write_synthetic_dataset(out, n=4, size=40, seed=0, task="layout", n_test=2)


def _write(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _noise(seed: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _folders(tmp_path: Path, n_a: int, n_b: int, h: int = 24, w: int = 30) -> Path:
    for i in range(n_a):
        _write(tmp_path / "trainA" / f"a{i}.png", _noise(i, h, w))
    for i in range(n_b):
        _write(tmp_path / "trainB" / f"b{i}.png", _noise(100 + i, h, w))
    return tmp_path


# ---------------------------------------------------------------------------------------------
# Keys and randomness


def test_sample_shapes_and_paths(root: Path) -> None:
    ds = UnpairedDataset(root, load_size=36, crop_size=32)
    assert ds.len_a == ds.len_b == len(ds) == 4
    x = ds[(1, 2, 123)]
    assert set(x) == {"A", "B", "A_path", "B_path"}
    for name in ("A", "B"):
        assert x[name].shape == (3, 32, 32) and x[name].dtype == torch.float32
        assert float(x[name].min()) >= -1.0 and float(x[name].max()) <= 1.0
    assert x["A_path"].endswith("trainA/train_a_00001.png")
    assert x["B_path"].endswith("trainB/train_b_00002.png")


def test_same_key_same_tensors_regardless_of_global_rng(root: Path) -> None:
    ds = UnpairedDataset(root, load_size=48, crop_size=32, augment=True)
    torch.manual_seed(0)
    first = ds[(0, 1, 5)]
    torch.manual_seed(999)
    torch.rand(10)
    second = ds[(0, 1, 5)]
    for k in ("A", "B", "A_aug", "B_aug"):
        assert torch.equal(first[k], second[k])


def test_different_seeds_give_different_crops(root: Path) -> None:
    ds = UnpairedDataset(root, load_size=48, crop_size=32, flip=False)
    crops = [ds[(0, 0, seed)]["A"] for seed in range(6)]
    assert sum(not torch.equal(crops[0], c) for c in crops[1:]) >= 4


def test_a_and_b_get_independent_crops(tmp_path: Path) -> None:
    img = _noise(0, 48, 48)
    _write(tmp_path / "trainA" / "x.png", img)
    _write(tmp_path / "trainB" / "x.png", img)
    ds = UnpairedDataset(tmp_path, crop_size=32, preprocess="crop")
    different = [not torch.equal(ds[(0, 0, s)]["A"], ds[(0, 0, s)]["B"]) for s in range(5)]
    assert sum(different) >= 4


def test_crop_is_a_window_of_the_image(tmp_path: Path) -> None:
    arr = _noise(3, 40, 50)
    _write(tmp_path / "trainA" / "x.png", arr)
    _write(tmp_path / "trainB" / "y.png", arr)
    ds = UnpairedDataset(tmp_path, crop_size=16, preprocess="crop", flip=False)
    crop = ((ds[(0, 0, 7)]["A"] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    hits = [
        (y, x)
        for y in range(40 - 16 + 1)
        for x in range(50 - 16 + 1)
        if np.array_equal(arr[y : y + 16, x : x + 16], crop)
    ]
    assert len(hits) == 1


@pytest.mark.parametrize(
    ("preprocess", "load", "crop"),
    [
        ("resize_and_crop", 48, 32),
        ("resize_and_crop", 20, 32),  # load below crop: scaled up so the crop fits
        ("crop", 1, 16),
        ("crop", 1, 64),  # image (40 px) smaller than the crop
        ("scale_width_and_crop", 24, 32),
    ],
)
def test_crops_have_the_requested_size(
    root: Path, preprocess: Preprocess, load: int, crop: int
) -> None:
    ds = UnpairedDataset(root, load_size=load, crop_size=crop, preprocess=preprocess)
    x = ds[(3, 0, 1)]
    assert x["A"].shape == x["B"].shape == (3, crop, crop)


def test_small_non_square_images(tmp_path: Path) -> None:
    root = _folders(tmp_path, 2, 2, h=10, w=24)
    modes: list[Preprocess] = ["crop", "scale_width_and_crop", "resize_and_crop"]
    for mode in modes:
        ds = UnpairedDataset(root, load_size=16, crop_size=20, preprocess=mode)
        assert ds[(1, 1, 0)]["A"].shape == (3, 20, 20)


def test_preprocess_none_keeps_whole_images_multiple_of_four(tmp_path: Path) -> None:
    root = _folders(tmp_path, 1, 1, h=22, w=31)
    ds = UnpairedDataset(root, preprocess="none")
    assert ds[(0, 0, 0)]["A"].shape == (3, 24, 32)
    assert preprocess_size(31, 22, "none", 0, 0) == (32, 24)
    assert preprocess_size(100, 50, "scale_width_and_crop", 40, 16) == (40, 20)
    assert preprocess_size(100, 50, "scale_width_and_crop", 40, 32) == (64, 32)
    assert preprocess_size(10, 30, "crop", 0, 20) == (20, 60)


def test_flip_mirrors(tmp_path: Path) -> None:
    root = _folders(tmp_path, 1, 1, h=16, w=16)
    plain = UnpairedDataset(root, crop_size=16, preprocess="crop", flip=False)
    flipping = UnpairedDataset(root, crop_size=16, preprocess="crop", flip=True)
    flipped = 0
    for seed in range(8):
        a, b = plain[(0, 0, seed)]["A"], flipping[(0, 0, seed)]["A"]
        assert torch.equal(a, b) or torch.equal(a.flip(-1), b)
        flipped += int(not torch.equal(a, b))
    assert 0 < flipped < 8


# ---------------------------------------------------------------------------------------------
# Augmentation


def test_augment_same_structure_different_colours(root: Path) -> None:
    plain = UnpairedDataset(root, load_size=48, crop_size=32)
    ds = UnpairedDataset(root, load_size=48, crop_size=32, augment=True)
    changed = 0
    for seed in range(4):
        x = ds[(seed, seed, seed)]
        # Augmentation does not change the crop itself.
        assert torch.equal(x["A"], plain[(seed, seed, seed)]["A"])
        assert x["A_aug"].shape == x["A"].shape and x["B_aug"].shape == x["B"].shape
        assert float(x["A_aug"].abs().max()) <= 1.0
        changed += int(float((x["A_aug"] - x["A"]).abs().mean()) > 0.02)
        # A colour jitter is a global per-pixel colour map: equal colours stay equal.
        a = x["A"].reshape(3, -1).T
        aug = x["A_aug"].reshape(3, -1).T
        _, inverse = torch.unique(a, dim=0, return_inverse=True)
        for k in range(int(inverse.max()) + 1):
            region = aug[inverse == k]
            assert float((region - region[0]).abs().max()) < 1e-5
    assert changed >= 3


# ---------------------------------------------------------------------------------------------
# Folders and direction


def test_b_to_a_swaps_folders(tmp_path: Path) -> None:
    root = _folders(tmp_path, 3, 2)
    ab = UnpairedDataset(root, crop_size=16, preprocess="crop")
    ba = UnpairedDataset(root, crop_size=16, preprocess="crop", direction="BtoA")
    assert (ab.len_a, ab.len_b) == (3, 2) and (ba.len_a, ba.len_b) == (2, 3)
    x = ba[(1, 2, 0)]
    assert Path(x["A_path"]).parent.name == "trainB" and Path(x["A_path"]).name == "b1.png"
    assert Path(x["B_path"]).parent.name == "trainA" and Path(x["B_path"]).name == "a2.png"
    assert len(ba) == 2


def test_test_phase(root: Path) -> None:
    ds = UnpairedDataset(root, phase="test", load_size=40, crop_size=40, flip=False)
    x = ds[(1, 1, 0)]
    assert Path(x["A_path"]).name == Path(x["B_path"]).name == "test_00001.png"


def test_missing_folder_message(tmp_path: Path) -> None:
    _folders(tmp_path, 1, 0)
    with pytest.raises(UserError, match=r"trainB does not exist: expected the CycleGAN layout"):
        UnpairedDataset(tmp_path)
    with pytest.raises(UserError, match=r"dataset folder .*nowhere does not exist"):
        UnpairedDataset(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"direction": "AtoC"}, "AtoB"),
        ({"preprocess": "zoom"}, "resize_and_crop"),
        ({"crop_size": 0}, "positive"),
        ({"phase": ""}, "train"),
    ],
)
def test_bad_settings(tmp_path: Path, kw: dict[str, object], match: str) -> None:
    root = _folders(tmp_path, 1, 1)
    with pytest.raises(UserError, match=match):
        UnpairedDataset(root, **kw)  # type: ignore[arg-type]


def test_bad_keys(root: Path) -> None:
    ds = UnpairedDataset(root, load_size=40, crop_size=32)
    with pytest.raises(TypeError, match="UnpairedSampler"):
        ds[0]  # type: ignore[index]
    with pytest.raises(IndexError):
        ds[(4, 0, 0)]


# ---------------------------------------------------------------------------------------------
# Unreadable files


def test_unreadable_files_skipped_at_construction(tmp_path: Path) -> None:
    root = _folders(tmp_path, 3, 1)
    (root / "trainA" / "a1.png").write_bytes(b"")
    with pytest.warns(UnreadableImageWarning, match=r"skipped 1 unreadable files in .*trainA"):
        ds = UnpairedDataset(root, crop_size=16)
    assert [p.name for p in ds.paths_a] == ["a0.png", "a2.png"]


def test_nothing_readable_is_a_user_error(tmp_path: Path) -> None:
    root = _folders(tmp_path, 0, 1)
    (root / "trainA").mkdir()
    (root / "trainA" / "x.png").write_bytes(b"junk")
    with pytest.raises(UserError, match=r"none of the 1 image files in .*trainA can be read"):
        UnpairedDataset(root)


def test_file_broken_after_listing_uses_next_file(tmp_path: Path) -> None:
    root = _folders(tmp_path, 3, 1)
    ds = UnpairedDataset(root, crop_size=16, preprocess="crop", verify=False)
    data = (root / "trainA" / "a1.png").read_bytes()
    (root / "trainA" / "a1.png").write_bytes(data[: len(data) // 2])
    with pytest.warns(UnreadableImageWarning, match="a1.png"):
        x = ds[(1, 0, 0)]
    assert Path(x["A_path"]).name == "a2.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per file
        assert Path(ds[(1, 0, 0)]["A_path"]).name == "a2.png"
    (root / "trainA" / "a2.png").write_bytes(b"")
    with pytest.warns(UnreadableImageWarning):
        assert Path(ds[(2, 0, 0)]["A_path"]).name == "a0.png"  # wraps around


# ---------------------------------------------------------------------------------------------
# Sampler and loaders


def test_sampler_is_a_function_of_position() -> None:
    s = UnpairedSampler(5, 3, seed=1)
    it = iter(s)
    keys = [next(it) for _ in range(12)]
    assert keys == [s.key(k) for k in range(12)]
    assert sorted(k[0] for k in keys[:5]) == [0, 1, 2, 3, 4]  # each epoch visits A once
    assert sorted(k[0] for k in keys[5:10]) == [0, 1, 2, 3, 4]
    assert all(0 <= k[1] < 3 for k in keys)
    assert len({k[2] for k in keys}) == 12
    resumed = iter(UnpairedSampler(5, 3, seed=1, start=7))
    assert [next(resumed) for _ in range(5)] == keys[7:]
    assert UnpairedSampler(5, 3, seed=2).key(0) != s.key(0)
    plain = UnpairedSampler(2, 3, shuffle=False)
    assert [plain.key(k)[:2] for k in range(4)] == [(0, 0), (1, 1), (0, 2), (1, 0)]


def test_dataloader_batches(root: Path) -> None:
    ds = UnpairedDataset(root, load_size=40, crop_size=32, augment=True)
    loader = DataLoader(ds, batch_size=3, sampler=UnpairedSampler(ds.len_a, ds.len_b, seed=0))
    batch = next(iter(loader))
    assert batch["A"].shape == batch["B_aug"].shape == (3, 3, 32, 32)
    assert len(batch["A_path"]) == 3


def test_image_folder_and_collate(tmp_path: Path) -> None:
    paths = [
        _write(tmp_path / "a.png", _noise(0, 10, 12)),
        _write(tmp_path / "b.png", _noise(1, 10, 12)),
        _write(tmp_path / "c.png", _noise(2, 7, 9)),
    ]
    folder = ImageFolder(paths)
    item = folder[2]
    assert item["image"].shape == (3, 7, 9) and item["size"] == (7, 9)
    assert item["path"] == str(paths[2])
    batch = collate_images([folder[0], folder[1]])
    assert batch["image"].shape == (2, 3, 10, 12)
    assert batch["path"] == [str(paths[0]), str(paths[1])] and batch["size"] == [(10, 12)] * 2
    with pytest.raises(ValueError, match="batch_size=1"):
        collate_images([folder[0], folder[2]])
    with pytest.raises(UserError):
        ImageFolder([])
