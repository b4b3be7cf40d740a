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
