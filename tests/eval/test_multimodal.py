"""The paper's Table 2 protocol for multi-modal runs (sesim.eval.multimodal)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sesim.errors import UserError
from sesim.eval.multimodal import (
    MULTIMODAL_COLUMNS,
    MULTIMODAL_SCORES,
    density_coverage_over_styles,
    diversity_lpips,
    evaluate_multimodal,
    fid_over_styles,
)
from sesim.metrics import lpips_model, random_conv_extractor
from tests.fixtures.munit import munit_generator as _generator
from tests.fixtures.munit import random_images as _images

pytestmark = [
    pytest.mark.filterwarnings("ignore:VGG16Features uses random weights"),
    pytest.mark.usefixtures("one_thread"),
]


def _random_lpips() -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return lpips_model(None, random_backbone=True)


def test_diversity_fid_and_coverage_over_styles() -> None:
    G = _generator()
    x = _images(5, seed=3)
    net = _random_lpips()
    mean, std = diversity_lpips(G, x, net, pairs_per_input=2, generator=torch.Generator())
    assert mean > 0 and std >= 0
    extractor = random_conv_extractor(seed=0, dim=16)
    from sesim.metrics import extract_features

    real = extract_features(extractor, _images(6, seed=4))
    fid, fid_std = fid_over_styles(G, x, real, extractor, n_styles=3, generator=torch.Generator())
    assert fid > 0 and fid_std > 0
    dc = density_coverage_over_styles(
        G, x, real, extractor, n_styles=2, generator=torch.Generator(), nearest_k=2
    )
    assert {"density", "coverage", "density_std", "coverage_std"} <= set(dc)
    assert 0.0 <= dc["coverage"] <= 1.0

    # A generator that ignores its style code is not diverse at all.
    with torch.no_grad():
        G.mlp.model[-1].fc.weight.zero_()
    mean, _ = diversity_lpips(G, x, net, pairs_per_input=2, generator=torch.Generator())
    assert mean == pytest.approx(0.0, abs=1e-6)
    _, fid_std = fid_over_styles(G, x, real, extractor, n_styles=2, generator=torch.Generator())
    assert fid_std == pytest.approx(0.0, abs=1e-6)


def test_evaluate_multimodal_on_a_run(munit_run: Path) -> None:
    from sesim.eval.report import COLUMNS, SCORES

    report = evaluate_multimodal(
        munit_run, extractor="random", device="cpu", nearest_k=95, settings=None
    )
    assert report["step"] == 2 and report["num_inputs"] == 3
    assert report["lpips_backbone"] == "random"
    assert report["diversity_lpips"] is not None and report["diversity_lpips"] > 0
    assert report["fid_styles"] is not None and report["fid_styles"] >= 0
    # 3 test images are too few for density/coverage with k = 95: n/a with the reason.
    assert report["density_styles"] is None and "density_styles" in report["unavailable"]
    assert set(MULTIMODAL_COLUMNS) >= set(MULTIMODAL_SCORES)
    # The Table 2 columns are wired into `sesim eval`.
    assert set(MULTIMODAL_COLUMNS) <= set(COLUMNS) and set(MULTIMODAL_SCORES) <= set(SCORES)


def test_evaluate_multimodal_needs_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no checkpoint"):
        evaluate_multimodal(tmp_path, extractor="random", device="cpu")
