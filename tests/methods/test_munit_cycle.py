"""Two-sided MUNIT (``--method munit-cycle``): presets, a two-step run, its bench row."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sesim.config import TrainConfig, preset, validate
from sesim.methods import METHODS
from sesim.runs import load_checkpoint, load_generator
from sesim.train import train
from sesim.translate import translate_styles
from tests.fixtures.munit import tiny

pytestmark = [
    pytest.mark.filterwarnings("ignore:VGG16Features uses random weights"),
    pytest.mark.usefixtures("one_thread"),
]


def test_presets() -> None:
    assert "munit-cycle" in METHODS
    for name in ("munit-cycle", "tiny-munit-cycle"):
        cfg = validate(preset(name))
        assert cfg.method == "munit-cycle" and cfg.mode == "multimodal"
        b = cfg.baseline
        assert (b.munit_recon_x_weight, b.munit_recon_c_weight, b.munit_recon_s_weight) == (
            10.0,
            1.0,
            1.0,
        )
        assert b.munit_cycle_weight == 10.0
    cfg = preset("munit-cycle")
    assert (cfg.steps, cfg.optim.lr_policy, cfg.optim.weight_decay) == (1_000_000, "step", 1e-4)


def test_trains_and_translates(multistyle_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny(preset("tiny-munit-cycle"), multistyle_dataset)
    final = train(cfg, tmp_path / "run", quiet=True)
    state = load_checkpoint(final)
    assert set(state["nets"]) == {"G", "G_B", "D", "D_A"}
    G, _, step = load_generator(None, final, "cpu")
    assert step == 2
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        outs = translate_styles(G, x, 3, torch.Generator().manual_seed(0))
    assert outs.shape == (2, 3, 3, 32, 32) and torch.isfinite(outs).all()


def test_bench_row(tmp_path: Path) -> None:
    from sesim.bench.multimodal import row_config, run_multimodal_bench

    cfg = row_config("munit-cycle", tmp_path, 10, 64, 4, "cpu", 0, "random")
    assert cfg.method == "munit-cycle"

    def shrink(c: TrainConfig) -> TrainConfig:
        return replace(c, munit=replace(c.munit, dim=8, n_res=1, mlp_dim=16, d_dim=8))

    results = run_multimodal_bench(
        tmp_path / "bench",
        steps=1,
        size=32,
        device="cpu",
        seed=0,
        rows=("munit-cycle",),
        batch=1,
        n_train=4,
        n_test=3,
        n_styles=2,
        pairs_per_input=1,
        aux_steps=2,
        grid_inputs=2,
        tweak=shrink,
    )
    assert [r["method"] for r in results["rows"]][-1] == "munit-cycle"
    assert isinstance(results["rows"][-1]["fid"], float)
