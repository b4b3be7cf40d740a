"""Self-similarity pictures: heat maps peak at their query, error maps, and ``sesim viz selfsim``."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sesim.cli.viz import add_parser as add_viz_parser
from sesim.data.synthetic import render_sample
from sesim.errors import UserError
from sesim.viz import (
    MapExtractor,
    check_points,
    compute_selfsim_maps,
    default_points,
    feature_indices,
    parse_point,
    per_query_error,
    query_error,
    query_maps,
    scale_points,
    selfsim_figure_size,
)


@pytest.fixture(scope="module")
def run_dir(tiny_lsesim_run: Path) -> Path:
    return tiny_lsesim_run


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sesim")
    add_viz_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def _synthetic_png(path: Path, seed: int, size: int = 48) -> Path:
    Image.fromarray(render_sample("layout", seed, size).a).save(path)
    return path


# ---------------------------------------------------------------------------------------------
# Array functions.


def test_heat_map_peaks_at_the_query_with_cosine_similarity() -> None:
    feat = torch.randn(2, 16, 7, 9, generator=torch.Generator().manual_seed(0))
    idx = torch.tensor([0, 20, 62])
    maps = query_maps(feat, idx, None, "cosine")
    assert maps.shape == (2, 3, 7, 9)
    flat = maps.flatten(2)
    assert torch.allclose(flat[:, torch.arange(3), idx], torch.ones(2, 3), atol=1e-5)
    assert torch.equal(flat.argmax(-1), idx.expand(2, 3))


def test_heat_map_peaks_at_the_query_point_of_a_synthetic_image() -> None:
    img = torch.from_numpy(render_sample("layout", 3, 64).a).permute(2, 0, 1).float() / 127.5 - 1
    extractor = MapExtractor("relu3_1", "random")
    points = [(5, 7), (40, 30), (60, 60)]
    maps = compute_selfsim_maps(extractor, img, img.flip(-1), points, 5, "cosine", with_error=False)
    h, w = maps.global_x.shape[1:]
    idx = feature_indices(points, (64, 64), (h, w))
    for i, q in enumerate(idx.tolist()):
        for m in (maps.global_x[i], maps.local_x[i]):
            flat = torch.nan_to_num(m.flatten(), nan=-2.0)
            assert flat[q] == pytest.approx(1.0, abs=1e-5)
            assert int(flat.argmax()) == q
    assert maps.learned_x is None and maps.error is None


def test_local_maps_are_the_global_maps_inside_the_window() -> None:
    feat = torch.randn(1, 8, 10, 10, generator=torch.Generator().manual_seed(1))
    idx = torch.tensor([0, 55])
    full = query_maps(feat, idx, None)
    local = query_maps(feat, idx, 3)
    inside = ~torch.isnan(local)
    assert inside.flatten(2).sum(-1).tolist() == [[9, 9]]
    assert torch.allclose(local[inside], full[inside], atol=1e-6)
    # Query 55 (row 5, col 5): its window covers rows/cols 4..6.
    assert bool(inside[0, 1, 4:7, 4:7].all())


@pytest.mark.parametrize("window", [None, 3])
def test_chunked_error_matches_per_query_error(window: int | None) -> None:
    gen = torch.Generator().manual_seed(2)
    fx, fy = torch.randn(2, 8, 6, 5, generator=gen), torch.randn(2, 8, 6, 5, generator=gen)
    ref = per_query_error(fx, fy, window)
    assert torch.allclose(query_error(fx, fy, window, chunk=7), ref, atol=1e-5)
    assert torch.allclose(query_error(fx, fx, window), torch.zeros(2, 6, 5), atol=1e-5)


def test_points_parse_scale_and_check() -> None:
    assert parse_point("12,30") == (12, 30)
    assert parse_point(" 3 , 4 ") == (3, 4)
    for bad in ("12", "1,2,3", "a,b", "1.5,2"):
        with pytest.raises(ValueError):
            parse_point(bad)
    assert scale_points([(0, 0), (99, 49)], (50, 100), (25, 50)) == [(0, 0), (49, 24)]
    pts = default_points(40, 60)
    assert len(pts) == 3 and len(set(pts)) == 3
    check_points(pts, 40, 60)
    with pytest.raises(UserError, match="outside the 60x40 image"):
        check_points([(60, 3)], 40, 60)
    with pytest.raises(UserError):
        check_points([(-1, 3)], 40, 60)
    assert feature_indices([(0, 0), (63, 63), (32, 8)], (64, 64), (16, 16)).tolist() == [
        0,
        255,
        2 * 16 + 8,
    ]


# ---------------------------------------------------------------------------------------------
# The command.


def test_selfsim_with_a_run_writes_the_figure(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _synthetic_png(tmp_path / "in.png", 5, 40)
    out = tmp_path / "viz" / "selfsim.png"
    argv = ["--run", str(run_dir), "--image", str(image), "--output", str(out)]
    args = _parse(["viz", "selfsim", *argv, "--points", "3,4", "30,20", "--window", "4"])
    assert args.func(args) == 0
    with Image.open(out) as png:
        assert png.size == selfsim_figure_size(2)
    assert not list(out.parent.glob("*.tmp*"))
    captured = capsys.readouterr()
    assert "wrote" in captured.out
    # The run's ImageNet setting is "random" here: no fallback notice.
    assert "notice" not in captured.err


def test_selfsim_pair_mode_needs_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _synthetic_png(tmp_path / "a.png", 1, 48)
    b = _synthetic_png(tmp_path / "b.png", 2, 32)  # another size: resized to A's
    out = tmp_path / "pair.png"
    args = _parse(["viz", "selfsim", "--pair", str(a), str(b), "--output", str(out)])
    assert args.func(args) == 0
    with Image.open(out) as png:
        assert png.size == selfsim_figure_size(3)
        assert np.asarray(png.convert("L")).std() > 10  # not a blank picture
    # Without cached ImageNet weights "auto" falls back to random ones, with a notice.
    assert "notice: ImageNet VGG16 weights are not cached" in capsys.readouterr().err


def test_selfsim_rejects_a_point_outside_the_image(tmp_path: Path) -> None:
    a = _synthetic_png(tmp_path / "a.png", 1, 32)
    out = tmp_path / "bad.png"
    args = _parse(
        ["viz", "selfsim", "--pair", str(a), str(a), "--output", str(out), "--points", "32,5"]
    )
    with pytest.raises(UserError, match="outside the 32x32 image"):
        args.func(args)
    assert not out.exists()


def test_selfsim_argument_errors(tmp_path: Path) -> None:
    a = _synthetic_png(tmp_path / "a.png", 1, 32)
    with pytest.raises(SystemExit):
        _parse(["viz", "selfsim", "--pair", str(a), str(a), "--output", "o.png", "--points", "1"])
    args = _parse(["viz", "selfsim", "--image", str(a), "--output", str(tmp_path / "o.png")])
    with pytest.raises(UserError, match="--run"):
        args.func(args)
    args = _parse(["viz", "selfsim", "--pair", str(a), str(a), "--output", "o.jpg"])
    with pytest.raises(UserError, match=r"\.png"):
        args.func(args)
