"""Synthetic unpaired datasets: determinism, pairing, domain gap, shared structure, safe writing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sesim.data import synthetic
from sesim.data.synthetic import (
    TASKS,
    SyntheticSample,
    label_to_color,
    palette,
    render_sample,
    write_synthetic_dataset,
)
from sesim.errors import UserError

SIZE = 48


def _structure_r2(img: np.ndarray, label: np.ndarray) -> float:
    """Share of the variance of local colour and texture (5x5 mean, std) explained by ``label``."""
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    mean = F.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
    sq = F.avg_pool2d(x * x, 5, 1, 2, count_include_pad=False)
    std = (sq - mean * mean).clamp(min=0).sqrt()
    feats = torch.cat([mean, 2 * std], 1)[0].permute(1, 2, 0).reshape(-1, 6).numpy()
    lab = label.reshape(-1)
    total = ((feats - feats.mean(0)) ** 2).sum()
    within = sum(((feats[lab == k] - feats[lab == k].mean(0)) ** 2).sum() for k in np.unique(lab))
    return float(1 - within / total)


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


# ---------------------------------------------------------------------------------------------
# Rendering


def test_registry() -> None:
    assert set(TASKS) == {"layout", "shapes", "maps", "multistyle"}
    for name, task in TASKS.items():
        assert task.name == name
        assert len(task.palette) == task.n_classes == len(task.class_names)
        assert len(task.style_names) == task.n_styles
    assert TASKS["multistyle"].n_styles == 3


@pytest.mark.parametrize("task", list(TASKS))
def test_render_sample_shapes_and_determinism(task: str) -> None:
    s = render_sample(task, 7, SIZE)
    assert isinstance(s, SyntheticSample)
    assert s.a.shape == s.b.shape == (SIZE, SIZE, 3)
    assert s.label.shape == (SIZE, SIZE)
    assert s.a.dtype == s.b.dtype == s.label.dtype == np.uint8
    assert s.label.max() < TASKS[task].n_classes
    again = render_sample(task, 7, SIZE)
    for x, y in ((s.a, again.a), (s.b, again.b), (s.label, again.label)):
        assert x.tobytes() == y.tobytes()
    assert s.style == again.style
    other = render_sample(task, 8, SIZE)
    assert not np.array_equal(s.label, other.label)


@pytest.mark.parametrize("task", list(TASKS))
def test_domains_differ_in_appearance_but_share_structure(task: str) -> None:
    for seed in range(3):
        s = render_sample(task, seed, 64)
        assert np.abs(s.a.astype(int) - s.b.astype(int)).mean() > 25
        # The label explains B's local colour/texture, and much better than a shifted label.
        r2 = _structure_r2(s.b, s.label)
        assert r2 > 0.3
        assert r2 > _structure_r2(s.b, np.roll(s.label, 16, axis=1)) + 0.05
        assert len(np.unique(s.label)) >= 2


def test_layout_domain_a_is_the_flat_palette() -> None:
    s = render_sample("layout", 3, SIZE)
    assert np.array_equal(s.a, label_to_color(s.label, "layout"))
    assert len(np.unique(s.label)) >= 4


def test_maps_has_thin_roads_and_small_buildings() -> None:
    names = TASKS["maps"].class_names
    road, building = names.index("road"), names.index("building")
    for seed in range(5):
        s = render_sample("maps", seed, 64)
        assert np.array_equal(s.a, label_to_color(s.label, "maps"))
        roads = s.label == road
        assert 0 < roads.mean() < 0.25
        # Thin: most road pixels have a non-road pixel within 2 px across some axis.
        near_edge = np.zeros_like(roads)
        for shift in (-2, -1, 1, 2):
            for axis in (0, 1):
                near_edge |= ~np.roll(roads, shift, axis=axis)
        assert (near_edge[roads]).mean() > 0.9
        # Small objects: the buildings together cover little of the map.
        assert 0 < (s.label == building).mean() < 0.1


def test_styles() -> None:
    styles = {render_sample("multistyle", seed, 16).style for seed in range(30)}
    assert styles == {0, 1, 2}
    assert {render_sample("layout", seed, 16).style for seed in range(5)} == {0}
    # The layout of a seed does not depend on the task's appearance.
    assert np.array_equal(
        render_sample("layout", 4, 32).label, render_sample("multistyle", 4, 32).label
    )


def test_palette_and_label_to_color() -> None:
    pal = palette("shapes")
    assert pal.shape == (4, 3) and pal.dtype == np.uint8
    label = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    assert np.array_equal(label_to_color(label, "shapes"), pal[label])
    with pytest.raises(ValueError, match=r"0\.\.3"):
        label_to_color(np.array([[4]]), "shapes")


def test_bad_arguments_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="choose one of layout, shapes, maps, multistyle"):
        render_sample("horses", 0, 32)
    with pytest.raises(UserError, match="at least 16"):
        render_sample("layout", 0, 8)
    with pytest.raises(UserError, match="n >= 1"):
        write_synthetic_dataset(tmp_path / "d", n=0)
    with pytest.raises(UserError, match="at least 16"):
        write_synthetic_dataset(tmp_path / "d", n=2, size=15)
    with pytest.raises(UserError, match="unknown synthetic task"):
        write_synthetic_dataset(tmp_path / "d", n=2, task="nope")
    assert not (tmp_path / "d").exists()


# ---------------------------------------------------------------------------------------------
# Writing datasets


def test_write_dataset_layout_and_meta(tmp_path: Path) -> None:
    out = write_synthetic_dataset(
        tmp_path / "ds", n=5, size=32, seed=3, task="multistyle", n_test=3
    )
    assert out == tmp_path / "ds"
    names = {
        split: sorted(p.name for p in (out / split).iterdir())
        for split in ("trainA", "trainB", "testA", "testB")
    }
    assert len(names["trainA"]) == len(names["trainB"]) == 5
    assert names["testA"] == names["testB"] and len(names["testA"]) == 3
    assert set(names["trainA"]).isdisjoint(names["trainB"])  # unpaired: not matched by name
    for split, files in names.items():
        assert sorted(p.name for p in (out / "labels" / split).iterdir()) == files
        for name in files:
            img, label = _png(out / split / name), _png(out / "labels" / split / name)
            assert img.shape == (32, 32, 3) and label.shape == (32, 32) and label.dtype == np.uint8
    # Test pairs show the same layout; train images of A and B do not.
    for name in names["testA"]:
        assert np.array_equal(_png(out / "labels/testA" / name), _png(out / "labels/testB" / name))
        assert not np.array_equal(_png(out / "testA" / name), _png(out / "testB" / name))
        assert np.array_equal(
            _png(out / "testA" / name),
            label_to_color(_png(out / "labels/testA" / name), "multistyle"),
        )
    labels_a = [_png(out / "labels/trainA" / n) for n in names["trainA"]]
    labels_b = [_png(out / "labels/trainB" / n) for n in names["trainB"]]
    assert not any(np.array_equal(a, b) for a, b in zip(labels_a, labels_b))

    meta = json.loads((out / "meta.json").read_text())
    assert meta["task"] == "multistyle" and meta["n"] == 5 and meta["n_test"] == 3
    assert meta["size"] == 32 and meta["seed"] == 3 and meta["num_classes"] == 6
    assert meta["class_names"] == list(TASKS["multistyle"].class_names)
    assert meta["palette"] == palette("multistyle").tolist()
    assert sorted(meta["styles"]["trainB"]) == names["trainB"]
    assert sorted(meta["styles"]["testB"]) == names["testB"]
    assert set(meta["styles"]["trainB"].values()) <= {0, 1, 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temporary left


def test_default_n_test(tmp_path: Path) -> None:
    out = write_synthetic_dataset(tmp_path / "ds", n=2, size=16, task="shapes")
    assert json.loads((out / "meta.json").read_text())["n_test"] == 8
    assert len(list((out / "testB").iterdir())) == 8


def test_write_is_deterministic(tmp_path: Path) -> None:
    def write(name: str, seed: int = 11) -> Path:
        return write_synthetic_dataset(
            tmp_path / name, n=3, size=24, seed=seed, task="shapes", n_test=2
        )

    a, b = write("a"), write("b")
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 2 * (3 + 3 + 2 + 2) + 1
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    c = write("c", seed=12)
    assert (a / "testA/test_00000.png").read_bytes() != (c / "testA/test_00000.png").read_bytes()


def test_refuses_non_empty_output_but_accepts_empty(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="choose another folder or delete it"):
        write_synthetic_dataset(out, n=1, size=16)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    (out / "keep.txt").unlink()
    write_synthetic_dataset(out, n=1, size=16, n_test=1)
    assert (out / "meta.json").is_file()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_nothing_half_written_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]
) -> None:
    real = synthetic._write_png
    calls = {"n": 0}

    def flaky(path: Path, array: np.ndarray) -> None:
        calls["n"] += 1
        if calls["n"] == 7:
            raise error("interrupted")
        real(path, array)

    monkeypatch.setattr(synthetic, "_write_png", flaky)
    with pytest.raises(error):
        write_synthetic_dataset(tmp_path / "ds", n=4, size=16, n_test=2)
    assert calls["n"] == 7
    assert list(tmp_path.iterdir()) == []  # neither the dataset nor its temporary folder


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_synthetic_dataset(tmp_path / "ds", n=2, size=16, n_test=1, progress=True)
    assert "writing layout" in capsys.readouterr().err
