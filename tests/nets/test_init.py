"""Tests for sesim.nets.init: weight initialisation."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from sesim.nets.init import init_weights
from sesim.nets.resnet import BlurDownsample, ResnetGenerator


def _gen(**kwargs: Any) -> ResnetGenerator:
    torch.manual_seed(0)
    return ResnetGenerator(**{"ngf": 8, "n_blocks": 2, **kwargs})


def test_init_weights_normal_statistics_and_biases() -> None:
    conv, bn, lin = nn.Conv2d(16, 64, 3), nn.BatchNorm2d(64), nn.Linear(64, 64)
    net = nn.Sequential(conv, bn, lin)
    init_weights(net, "normal", gain=0.02, generator=torch.Generator().manual_seed(0))
    assert abs(conv.weight.std().item() - 0.02) < 0.002
    assert abs(conv.weight.mean().item()) < 0.002
    for bias in (conv.bias, lin.bias):
        assert bias is not None and not bias.any()
    assert abs(bn.weight.mean().item() - 1.0) < 0.01
    assert torch.all(bn.bias == 0)


@pytest.mark.parametrize("kind", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_weights_reproducible_with_generator(kind: str) -> None:
    a, b = _gen(), _gen()
    init_weights(a, kind, generator=torch.Generator().manual_seed(3))  # type: ignore[arg-type]
    init_weights(b, kind, generator=torch.Generator().manual_seed(3))  # type: ignore[arg-type]
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_init_weights_leaves_blur_filters_alone() -> None:
    g = _gen()
    blur = g.model[7]
    assert isinstance(blur, BlurDownsample)
    before = blur.filt.clone()
    init_weights(g, "xavier")
    assert torch.equal(blur.filt, before)


def test_init_weights_bad_kind() -> None:
    with pytest.raises(ValueError, match="init kind"):
        init_weights(nn.Linear(2, 2), "uniform")  # type: ignore[arg-type]
