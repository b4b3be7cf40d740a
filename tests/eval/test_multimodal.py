"""The paper's Table 2 protocol for multi-modal runs (sesim.eval.multimodal)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sesim.errors import UserError
from sesim.eval.multimodal import (
    MULTIMODAL_COLUMNS,
    MULTIMODAL_SCORES,
    MultimodalSettings,
    density_coverage_over_styles,
    density_coverage_pooled,
    diversity_lpips,
    evaluate_multimodal,
    features_over_styles,
    fid_over_styles,
)
from sesim.metrics import density_coverage, lpips_model, random_conv_extractor
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
    assert {"density", "coverage", "precision", "recall"} <= set(dc)
    assert 0.0 <= dc["coverage"] <= 1.0
    # Table 2: density/coverage once over every round's outputs pooled (here 2 x 5 = 10),
    # not a mean over rounds: k = 6 needs 8 samples, more than one round's 5 outputs.
    real8 = extract_features(extractor, _images(8, seed=5))
    rounds = features_over_styles(G, x, extractor, n_styles=2, generator=torch.Generator())
    assert [r.shape[0] for r in rounds] == [5, 5]
    pooled = density_coverage_pooled(real8, rounds, nearest_k=6)
    assert pooled == density_coverage(real8, torch.cat(rounds), nearest_k=6)
    with pytest.raises(UserError):
        density_coverage(real8, rounds[0], nearest_k=6)

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
    assert report["rounds"] == 19 and report["num_outputs"] == 57
    assert MultimodalSettings().n_styles == MultimodalSettings().pairs_per_input == 19
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


def test_eval_run_uses_the_rounds_flag(
    munit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tests.eval.test_run import sesim_eval

    argv = ["--run", str(munit_run), "--extractor", "random", "--metrics", "fid,dc"]
    status, out, err = sesim_eval(
        [*argv, "--rounds", "2", "--out", str(tmp_path), "--quiet"], capsys
    )
    assert status == 0, err
    assert "2 rounds of 3 inputs" in out and "once over the 6 outputs" in out
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["multimodal"] == {"rounds": 2, "inputs": 3, "outputs": 6, "lpips_pairs": 6}
