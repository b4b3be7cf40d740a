"""One-sided DistanceGAN and GcGAN baselines: presets, loss invariants, two-step training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from sesim.config import preset, validate
from sesim.data.synthetic import write_synthetic_dataset
from sesim.methods import METHODS
from sesim.methods.distancegan import (
    DistanceStats,
    distance_loss,
    pair_distances,
    self_distances,
)
from sesim.methods.gcgan import geometry, geometry_consistency
from sesim.runs import load_checkpoint, load_generator
from sesim.train import train
from tests.methods.test_baselines import _record_logs, small

NEW = ("distancegan", "gcgan")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dg") / "ds"
    write_synthetic_dataset(root, n=6, size=32, seed=0, task="layout", n_test=2)
    return root


def test_presets_share_everything_but_the_objective() -> None:
    ref = preset("fsesim")
    for name in NEW:
        assert name in METHODS
        for preset_name in (name, f"tiny-{name}"):
            cfg = validate(preset(preset_name))
            assert cfg.method == name and cfg.preset == preset_name
        cfg = preset(name)
        assert (cfg.model, cfg.optim, cfg.data, cfg.steps, cfg.epochs) == (
            ref.model,
            ref.optim,
            ref.data,
            ref.steps,
            ref.epochs,
        )
    assert preset("gcgan").baseline.gc_weight == 20.0
    assert preset("distancegan").baseline.distance_weight == 1.0


def test_distances_and_running_statistics() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 8, 8, generator=g)
    d = pair_distances(x)
    assert d.shape == (6,)
    assert d[0] == pytest.approx(float((x[0] - x[1]).abs().mean()))
    assert d[-1] == pytest.approx(float((x[2] - x[3]).abs().mean()))
    s = self_distances(x)
    assert s[1] == pytest.approx(float((x[1, :, :4] - x[1, :, 4:]).abs().mean()))
    stats = DistanceStats()
    values = torch.rand(10, generator=g, dtype=torch.float64)
    stats.update("A_pair", values[:3])
    stats.update("A_pair", values[3:])
    z = stats.standardise("A_pair", values)
    ref = (values - values.mean()) / values.std(correction=0)
    assert torch.allclose(z, ref)
    # The identity translation between two domains with equal statistics costs nothing.
    stats = DistanceStats()
    for key in ("A_pair", "B_pair"):
        stats.update(key, pair_distances(x))
    for key in ("A_self", "B_self"):
        stats.update(key, self_distances(x))
    terms = distance_loss(stats, x, x.clone())
    assert set(terms) == {"pair", "self"}
    assert all(float(v) == pytest.approx(0.0, abs=1e-6) for v in terms.values())
    assert set(distance_loss(stats, x[:1], x[:1])) == {"self"}  # batch 1: no pairs


def test_geometry_consistency_is_zero_for_commuting_maps() -> None:
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    for kind in ("rot", "vf"):
        assert torch.equal(geometry(geometry(x, kind), kind, inverse=True), x)
        # The identity (and any pixel-wise map) commutes with f.
        assert geometry_consistency(x, geometry(x, kind), kind).item() == 0.0
        assert geometry_consistency(x, geometry(x.flip(3), kind), kind).item() > 0
    assert not torch.equal(geometry(x, "rot"), x)
    with pytest.raises(ValueError):
        geometry(x, "shear")


@pytest.mark.parametrize("name", NEW)
def test_trains_two_steps(
    name: str, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = small(name, dataset, batch=2)
    seen = _record_logs(monkeypatch, METHODS[name])
    final = train(cfg, tmp_path / "run", quiet=True)
    assert len(seen) == 2
    for logs in seen:
        assert all(torch.isfinite(v) and v.ndim == 0 for v in logs.values()), logs
    if name == "distancegan":
        assert {"G_dist_pair", "G_dist_self"} <= set(seen[0])
    else:
        assert {"G_gc", "G_gan_gc", "D_gc_fake", "G_idt"} <= set(seen[0])
    state = load_checkpoint(final)
    expected = {"distancegan": {"G", "D", "stats"}, "gcgan": {"G", "D", "D_gc"}}[name]
    assert set(state["nets"]) == expected
    if name == "distancegan":
        assert float(state["nets"]["stats"]["A_self_n"]) == 4.0  # 2 steps x 2 images
    G, _, _ = load_generator(None, final, "cpu")
    assert isinstance(G, nn.Module)
