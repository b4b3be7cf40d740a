"""``sesim bench multimodal`` at a toy size (sesim.bench.multimodal)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from sesim.config import TrainConfig
from sesim.errors import UserError

pytestmark = [
    pytest.mark.filterwarnings("ignore:VGG16Features uses random weights"),
    pytest.mark.usefixtures("one_thread"),
]


def test_bench_multimodal_toy(tmp_path: Path) -> None:
    from sesim.bench.multimodal import ROWS, row_config, run_multimodal_bench

    def shrink(cfg: TrainConfig) -> TrainConfig:
        return replace(
            cfg,
            munit=replace(cfg.munit, dim=8, n_res=1, mlp_dim=16, d_dim=8),
            structure=replace(cfg.structure, loss=replace(cfg.structure.loss, num_queries=16)),
        )

    results = run_multimodal_bench(
        tmp_path / "bench",
        steps=1,
        size=32,
        device="cpu",
        seed=0,
        rows=("munit-fsesim",),
        batch=1,
        n_train=4,
        n_test=3,
        n_styles=2,
        pairs_per_input=1,
        aux_steps=2,
        grid_inputs=2,
        tweak=shrink,
    )
    names = [r["method"] for r in results["rows"]]
    assert names == ["input A", "real B", "munit-fsesim"]
    row = results["rows"][-1]
    for key in ("miou", "pixel_acc", "diversity_lpips", "families", "fid"):
        assert isinstance(row[key], float), key
    assert 1.0 <= row["families"] <= 3.0
    text = (tmp_path / "bench" / "results.md").read_text()
    assert "| method | mIoU ↑ |" in text and "random-weight AlexNet" in text
    with Image.open(results["grids"]["munit-fsesim"]) as grid:
        # input row + 2 style rows of 32 px images, 2 columns (plus padding and labels).
        assert grid.size[1] == 3 * (32 + 2) + 2
    with pytest.raises(UserError, match="unknown bench row"):
        run_multimodal_bench(tmp_path / "x", rows=("nope",))
    # Every row has a valid config: LSeSim with its heads, the GAN-only row without lambda.
    for name in ROWS:
        cfg = row_config(name, tmp_path, 10, 64, 4, "cpu", 0, "random")
        assert cfg.method == ("munit-cycle" if name == "munit-cycle" else "munit")
        assert cfg.data.crop_size == 64
        assert cfg.structure.loss.learned == (name == "munit-lsesim")
        assert (cfg.structure.weight == 0) == (name == "munit-gan")
