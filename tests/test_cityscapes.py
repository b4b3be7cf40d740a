"""``sesim data cityscapes`` on a tiny fake Cityscapes tree, and the CUT-style seg protocol."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sesim.cityscapes import prepare_cityscapes, train_ids
from sesim.cli.main import main
from sesim.config import preset
from sesim.metrics.segmentation import CITYSCAPES_CLASSES, DRNSeg
from sesim.train import train
from tests.eval.test_run import sesim_eval

CITIES = {"train": ["aachen", "bochum"], "val": ["frankfurt"]}


def _fake_tree(root: Path) -> tuple[Path, Path]:
    """leftImg8bit/ and gtFine/ with two train images per city and two val images."""
    rng = np.random.default_rng(0)
    images, labels = root / "leftImg8bit", root / "gtFine"
    for split, cities in CITIES.items():
        for city in cities:
            for k in range(2):
                stem = f"{city}_{k:06d}_000019"
                photo = rng.integers(0, 256, size=(64, 128, 3), dtype=np.uint8)
                ids = np.zeros((64, 128), dtype=np.uint8)
                ids[:32] = 23  # sky -> 10
                ids[32:, :64] = 7  # road -> 0
                ids[32:, 64:] = 26  # car -> 13
                ids[60:, :4] = 4  # an ignored id
                color = np.stack([ids * 7, ids * 3, ids], axis=-1).astype(np.uint8)
                for folder, name, arr in (
                    (images, f"{stem}_leftImg8bit.png", photo),
                    (labels, f"{stem}_gtFine_color.png", color),
                    (labels, f"{stem}_gtFine_labelIds.png", ids),
                ):
                    path = folder / split / city / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(arr).save(path)
    return images, labels


def _zip(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(folder.rglob("*.png")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    return out


def test_train_ids_follow_the_official_table() -> None:
    ids = np.array([[7, 8, 26, 33], [0, 4, 23, 255]], dtype=np.uint8)
    assert train_ids(ids).tolist() == [[0, 1, 13, 18], [255, 255, 10, 255]]


@pytest.mark.parametrize("packed", [False, True])
def test_prepare_from_folders_or_zips(tmp_path: Path, packed: bool) -> None:
    images, labels = _fake_tree(tmp_path / "src")
    if packed:
        images = _zip(images, tmp_path / "leftImg8bit_trainvaltest.zip")
        labels = _zip(labels, tmp_path / "gtFine_trainvaltest.zip")
    out = tmp_path / "cs"
    done = prepare_cityscapes(images, labels, out, size=32)
    assert (done.train, done.test) == (4, 2)
    for split, n in (("trainA", 4), ("trainB", 4), ("testA", 2), ("testB", 2)):
        files = sorted((out / split).glob("*.png"))
        assert len(files) == n
        with Image.open(files[0]) as img:
            assert img.size == (32, 32) and img.mode == "RGB"
    names = sorted(p.name for p in (out / "testA").glob("*.png"))
    assert names == sorted(p.name for p in (out / "labels" / "testA").glob("*.png"))
    with Image.open(out / "labels" / "testA" / names[0]) as img:
        arr = np.asarray(img)
    assert arr.shape == (128, 256)
    assert set(np.unique(arr).tolist()) == {0, 10, 13, 255}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["num_classes"] == 19


def test_cli_and_cut_style_seg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    images, labels = _fake_tree(tmp_path / "src")
    out = tmp_path / "cs"
    argv = ["data", "cityscapes", "--images", str(images), "--labels", str(labels)]
    assert main([*argv, "--out", str(out), "--size", "32"]) == 0
    assert "2 test" in capsys.readouterr().out
    assert main([*argv, "--out", str(out)]) == 2  # refuses to overwrite
    assert "already holds a dataset" in capsys.readouterr().err
    assert main(["data", "cityscapes", "--images", str(tmp_path / "x.zip"), "--labels",
                 str(labels), "--out", str(tmp_path / "o")]) == 2  # fmt: skip

    # A one-step run on it and random DRN-D-22 weights (not the paper's).
    cfg = preset("tiny")
    cfg = replace(
        cfg,
        steps=1,
        save_every=1,
        batch=1,
        device="cpu",
        data=replace(cfg.data, root=str(out), load_size=32, crop_size=32, workers=0),
        model=replace(cfg.model, ngf=8, n_blocks=1, ndf=8),
        optim=replace(cfg.optim, identity_warmup=0),
        structure=replace(
            cfg.structure,
            vgg_weights="random",
            loss=replace(cfg.structure.loss, num_queries=16, window=8),
        ),
    )
    train(cfg, tmp_path / "run", quiet=True)
    weights = tmp_path / "drn_d_22_cityscapes.pth"
    torch.save(DRNSeg(CITYSCAPES_CLASSES, seed=0).state_dict(), weights)
    seen: list[tuple[int, ...]] = []
    real_forward = DRNSeg.forward

    def spy(self: DRNSeg, x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape[-2:]))
        return real_forward(self, x)

    monkeypatch.setattr(DRNSeg, "forward", spy)
    base = ["--run", str(tmp_path / "run"), "--metrics", "seg", "--seg-weights", str(weights)]
    status, stdout, stderr = sesim_eval([*base, "--out", str(tmp_path / "ev"), "--quiet"], capsys)
    assert status == 0, stderr
    assert set(seen) == {(128, 256)}  # CUT's protocol: translations resized to 128x256
    assert "not comparable to the paper's" in stdout + stderr
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert "seg_miou" in report["steps"]["1"]
