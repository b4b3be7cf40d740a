"""The averaged generator (``optim.ema``): the average's arithmetic, checkpoints, inference."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from sesim.config import TrainConfig, preset, validate
from sesim.data.synthetic import write_synthetic_dataset
from sesim.errors import UserError
from sesim.nets.ema import WeightAverage
from sesim.runs import load_checkpoint, load_generator
from sesim.train import train
from tests.test_train import small


def test_average_is_the_bias_corrected_exponential_average() -> None:
    net = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(-7.0)  # the starting weights: they must count for nothing
    decay = 0.5
    avg = WeightAverage(net, decay=decay)
    targets = [1.0, 2.0, 3.0, 4.0]
    for n, target in enumerate(targets, start=1):
        with torch.no_grad():
            net.weight.fill_(target)
        avg.update(net)
        weights = [decay ** (n - k) for k in range(1, n + 1)]
        expected = sum(w * t for w, t in zip(weights, targets)) / sum(weights)
        assert avg.module.weight.flatten().tolist() == pytest.approx([expected, expected])
    assert int(avg.updates) == 4
    assert avg.current_decay() == pytest.approx(decay * (1 - decay**4) / (1 - decay**5))
    assert not any(p.requires_grad for p in avg.module.parameters())
    assert net.weight.requires_grad  # the live network is untouched


def test_average_copies_buffers_and_refuses_bad_decays() -> None:
    net = nn.BatchNorm2d(3)
    avg = WeightAverage(net, decay=0.9)
    with torch.no_grad():
        net.running_mean.fill_(2.0)
    avg.update(net)
    assert torch.equal(avg.module.running_mean, net.running_mean)
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="decay"):
            WeightAverage(net, decay=bad)


def test_config_refuses_an_ema_outside_zero_one() -> None:
    base = preset("tiny")
    for bad in (1.0, -0.1):
        with pytest.raises(UserError, match=r"optim\.ema"):
            validate(replace(base, optim=replace(base.optim, ema=bad)))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ema") / "ds"
    write_synthetic_dataset(root, n=6, size=32, seed=0, task="layout", n_test=2)
    return root


def _small(data: Path, ema: float) -> TrainConfig:
    cfg = small(preset("tiny"), data, steps=4)
    return replace(cfg, optim=replace(cfg.optim, identity_warmup=2, ema=ema))


def test_training_keeps_an_average_that_inference_uses(dataset: Path, tmp_path: Path) -> None:
    plain = train(_small(dataset, 0.0), tmp_path / "plain", quiet=True)
    averaged = train(_small(dataset, 0.9), tmp_path / "ema", quiet=True)
    a, b = load_checkpoint(plain), load_checkpoint(averaged)
    assert a["ema"] is None and int(b["ema"]["updates"]) == 4
    # Averaging reads the live weights and draws no random numbers: training is unchanged.
    for k, v in a["nets"]["G"].items():
        assert torch.equal(v, b["nets"]["G"][k]), k
    # Inference loads the average where the run kept one, the live weights otherwise.
    G_plain, _, _ = load_generator(None, plain, "cpu")
    G_avg, _, step = load_generator(None, averaged, "cpu")
    assert step == 4
    live, avg = b["nets"]["G"], {k.removeprefix("module."): v for k, v in b["ema"].items()}
    for k, v in G_plain.state_dict().items():
        assert torch.equal(v, a["nets"]["G"][k]), k
    differs = False
    for k, v in G_avg.state_dict().items():
        assert torch.equal(v, avg[k]), k
        differs = differs or not torch.equal(v, live[k])
    assert differs, "the average should differ from the live weights after 4 steps"
