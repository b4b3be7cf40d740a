"""The single-image demo pair that ships with matplotlib (sesim.data.sample_images)."""

from __future__ import annotations

from pathlib import Path

import torch

from sesim.data.sample_images import sample_images
from sesim.data.single_image import SingleImagePair


def test_sample_images_ship_with_matplotlib(tmp_path: Path) -> None:
    source, target = sample_images()
    assert source.is_file() and target.is_file()
    copies = sample_images(tmp_path / "demo")
    assert [p.name for p in copies] == [source.name, target.name]
    assert all(p.parent == tmp_path / "demo" and p.is_file() for p in copies)
    pair = SingleImagePair(*copies, load_size=256, crop_size=64)  # the tiny preset's sizes
    batch = pair.sample(2, torch.Generator().manual_seed(0))
    assert batch["A"].shape == batch["B"].shape == (2, 3, 64, 64)
