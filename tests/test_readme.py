"""The README's code examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_training_loop_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = [b for b in _python_blocks() if "structure_loss" in b]
    assert blocks, "the README lost its training-loop example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert "structure loss" in capsys.readouterr().out


def test_functional_example_runs() -> None:
    import torch

    blocks = [b for b in _python_blocks() if "compare_similarity(s_x" in b]
    assert blocks
    scope = {"torch": torch, "h": 40, "w": 36, "feat_x": torch.randn(2, 8, 40, 36)}
    scope["feat_y"] = scope["feat_x"] + 0.1 * torch.randn(2, 8, 40, 36)
    exec(compile(blocks[0], "README.md", "exec"), scope)
    assert scope["s_x"].shape == (2, 256, 32 * 32)
    assert float(scope["loss"]) >= 0


def test_small_image_example_builds_a_working_loss() -> None:
    import warnings

    import torch

    from sesim.features import VGG16Features
    from sesim.losses import SpatialCorrelativeLoss, SpatialLossConfig

    blocks = [b for b in _python_blocks() if 'query_strategy="structure"' in b]
    assert blocks, "the README lost its small-image example"
    scope = {
        "VGG16Features": VGG16Features,
        "SpatialCorrelativeLoss": SpatialCorrelativeLoss,
        "SpatialLossConfig": SpatialLossConfig,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random VGG weights (nothing cached in tests)
        exec(compile(blocks[0], "README.md", "exec"), scope)
    vgg, crit = scope["vgg"], scope["crit"]
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        feats = vgg(x)
    assert [f.shape[-1] for f in feats] == [64, 32]
    gen = torch.Generator().manual_seed(0)
    same = float(crit.structure_loss(feats, feats, generator=gen))
    shifted = [torch.roll(f, (4 // (64 // f.shape[-1]),) * 2, (2, 3)) for f in feats]
    moved = float(crit.structure_loss(feats, shifted, generator=torch.Generator().manual_seed(0)))
    assert same < 1e-6 < moved


def test_translator_example_runs(
    tiny_lsesim_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from PIL import Image

    blocks = [b for b in _python_blocks() if "Translator.from_run" in b]
    assert blocks, "the README lost its Translator example"
    assert len(blocks[0].strip().splitlines()) == 3  # "in three lines"
    code = blocks[0].replace('"runs/h2z"', repr(str(tiny_lsesim_run)))
    rgb = np.random.default_rng(0).integers(0, 256, (30, 26, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "horse.jpg")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert Image.open(tmp_path / "zebra.png").size == (26, 30)


def test_quick_start_stays_at_the_top() -> None:
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert first_block is not None
    lines = first_block.group(1).strip().splitlines()
    assert [line.split("#")[0].strip() for line in lines] == ["make demo", "make test"]
    assert "arxiv.org/abs/2104.00854" in text and "github.com/lyndonzheng/F-LSeSim" in text
