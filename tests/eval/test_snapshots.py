"""Generator snapshots: a run resolved from epochs keeps one every K epochs, never pruned, and
``sesim eval --run`` scores each of them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from sesim.config import preset
from sesim.data.synthetic import write_synthetic_dataset
from sesim.runs import list_checkpoints, list_generators, list_snapshots, load_generator
from sesim.train import train
from tests.eval.test_run import sesim_eval


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 A / 12 B images, batch 6: 2 steps per epoch; 1 + 1 epochs; a snapshot every epoch."""
    root = tmp_path_factory.mktemp("snap")
    write_synthetic_dataset(root / "ds", n=12, size=32, seed=0, task="layout", n_test=4)
    cfg = preset("tiny")
    cfg = replace(
        cfg,
        steps=0,
        epochs=1,
        epochs_decay=1,
        snapshot_every_epochs=1,
        batch=6,
        save_every=4,
        keep_last=1,
        log_every=1,
        sample_every=4,
        device="cpu",
        data=replace(cfg.data, root=str(root / "ds"), load_size=32, crop_size=32, workers=0),
        model=replace(cfg.model, ngf=8, n_blocks=1, ndf=8),
        optim=replace(cfg.optim, identity_warmup=0),
        structure=replace(
            cfg.structure,
            vgg_weights="random",
            loss=replace(cfg.structure.loss, num_queries=16, window=8),
        ),
    )
    train(cfg, root / "run", quiet=True)
    return root / "run"


def test_epochs_resolve_and_snapshots_are_kept(run: Path) -> None:
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["steps"] == 4 and saved["snapshot_every"] == 2
    assert saved["optim"]["decay_fraction"] == 0.5
    assert [p.name for p in list_snapshots(run)] == ["step_00000002.pt", "step_00000004.pt"]
    assert [p.name for p in list_checkpoints(run)] == ["step_00000004.pt"]
    gens = list_generators(run)
    assert [p.parent.name for p in gens] == ["snapshots", "checkpoints"]
    G, cfg, step = load_generator(None, gens[0], "cpu")
    assert step == 2 and cfg.steps == 4 and not G.training


def test_eval_scores_every_snapshot(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    argv = ["--run", str(run), "--extractor", "random", "--metrics", "fid", "--quiet"]
    status, stdout, stderr = sesim_eval([*argv, "--out", str(out)], capsys)
    assert status == 0, stderr
    report = json.loads((out / "metrics.json").read_text())
    assert sorted(report["steps"]) == ["2", "4"]
    assert "best (chosen on the test set)" in stdout
