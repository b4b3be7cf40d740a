"""``sesim presets [NAME]`` and ``sesim train --dry-run`` of the paper presets (in-process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from sesim.cli.main import main
from tests.test_config import TABLE3


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 A and 20 B training images (and a small test split)."""
    root = tmp_path_factory.mktemp("dry") / "ds"
    rng = np.random.default_rng(0)
    for split, n in (("trainA", 12), ("trainB", 20), ("testA", 2), ("testB", 2)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / f"{i:02d}.png")
    return root


def _dry_run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[dict, str]:
    assert main(["train", *argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    return yaml.safe_load(out), out


def test_fsesim_resolves_400_epochs_of_the_larger_domain(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, out = _dry_run(capsys, "--preset", "fsesim", "--data", str(data))
    assert cfg["steps"] == 8000 and cfg["snapshot_every"] == 200
    assert "# steps: 8,000 = (200 + 200) epochs x 20 steps per epoch" in out
    cfg, out = _dry_run(capsys, "--preset", "fsesim", "--data", str(data), "--steps", "50")
    assert cfg["steps"] == 50 and "given in steps" in out
    cfg, out = _dry_run(capsys, "--preset", "fsesim", "--data", str(data), "--batch", "4")
    assert cfg["steps"] == 2000
    cfg, out = _dry_run(capsys, "--preset", "fsesim")
    assert cfg["steps"] == 0 and "resolved when --data is given" in out


@pytest.mark.parametrize("row", sorted(TABLE3))
def test_table3_dry_run_shows_the_row(
    row: str, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, _ = _dry_run(capsys, "--preset", f"table3-{row}", "--data", str(data))
    layers, variant, window, mode, learned = TABLE3[row]
    loss = cfg["structure"]["loss"]
    assert tuple(cfg["structure"]["layers"]) == layers
    assert (loss["variant"], loss["mode"], loss["learned"]) == (variant, mode, learned)
    if window is not None:
        assert loss["window"] == window


def test_presets_lists_one_line_each_and_shows_one_in_full(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert "table3-C" in names and "munit-table3-F" in names and "fsesim-paper" in names
    assert len(names) == len(set(names))
    assert main(["presets", "table3-C"]) == 0
    out = capsys.readouterr().out
    assert "row C" in out and "differences from fsesim" in out
    assert "structure.loss.window: 64 -> 32" in out
    assert "structure.loss.mode: cos -> l1" in out
    assert main(["presets", "nope"]) == 2
    assert "unknown preset" in capsys.readouterr().err
