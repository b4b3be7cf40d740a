"""LPIPS distance and the diversity protocol, on a random backbone (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from sesim.errors import UserError
from sesim.metrics.lpips import (
    ALEXNET_WEIGHTS_FILE,
    lpips_distance,
    lpips_diversity,
    lpips_model,
)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return lpips_model(random_backbone=True)


def _images(n: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1


def test_lpips_is_zero_for_identical_images_and_positive_otherwise(model: nn.Module) -> None:
    x, y = _images(3, 0), _images(3, 1)
    same = lpips_distance(model, x, x)
    different = lpips_distance(model, x, y)
    assert same.shape == different.shape == (3,)
    assert torch.all(same.abs() < 1e-6)
    assert torch.all(different > 1e-3)
    with pytest.raises(ValueError, match="differ in shape"):
        lpips_distance(model, x, y[:2])


def test_diversity_of_a_deterministic_translator_is_zero(model: nn.Module) -> None:
    calls: list[int] = []

    def identity(x: Tensor, generator: torch.Generator) -> Tensor:
        calls.append(x.shape[0])
        return x.clone()

    mean, std = lpips_diversity(model, identity, _images(4, 2), pairs_per_input=3)
    assert mean == pytest.approx(0.0, abs=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    assert calls == [3] * 8  # two calls per input, one row per pair


def test_diversity_of_a_random_translator_is_positive_and_reproducible(model: nn.Module) -> None:
    def noisy(x: Tensor, generator: torch.Generator) -> Tensor:
        style = torch.rand(x.shape[0], 3, 1, 1, generator=generator) - 0.5
        return (x * 0.5 + style).clamp(-1, 1)

    inputs = list(_images(3, 3))  # a sequence of (3, H, W) inputs
    first = lpips_diversity(model, noisy, inputs, pairs_per_input=5)
    again = lpips_diversity(model, noisy, inputs, pairs_per_input=5)
    other = lpips_diversity(
        model, noisy, inputs, pairs_per_input=5, generator=torch.Generator().manual_seed(9)
    )
    assert first[0] > 1e-3 and first[1] > 0
    assert first == again
    assert first != other


def test_backbone_weights_load_from_a_torchvision_state_dict(
    model: nn.Module, tmp_path: Path
) -> None:
    # torchvision AlexNet keys: features.<i>.weight/bias; random values stand in for ImageNet.
    g = torch.Generator().manual_seed(4)
    state = {}
    for name, value in model.get_submodule("net").state_dict().items():
        _, index, param = name.split(".")
        state[f"features.{index}.{param}"] = torch.randn(value.shape, generator=g)
    state["classifier.1.weight"] = torch.zeros(2, 2)  # ignored
    path = tmp_path / ALEXNET_WEIGHTS_FILE
    torch.save(state, path)
    loaded = lpips_model(path)
    conv = loaded.get_submodule("net.slice3.6")
    torch.testing.assert_close(conv.weight, state["features.6.weight"])
    assert not any(p.requires_grad for p in loaded.parameters())

    torch.save({"something": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(UserError, match="not a torchvision AlexNet state dict"):
        lpips_model(tmp_path / "wrong.pth")


def test_missing_alexnet_weights_is_a_one_line_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError) as info:
        lpips_model()
    message = str(info.value)
    assert "\n" not in message
    assert ALEXNET_WEIGHTS_FILE in message
    assert str(tmp_path / "hub" / "checkpoints") in message
