"""``--logger``: TensorBoard by default, Weights & Biases on request (offline here)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from sesim.cli.main import main
from sesim.config import TrainConfig, preset, validate
from sesim.data.synthetic import write_synthetic_dataset
from sesim.errors import UserError
from sesim.loggers import RunLogger
from sesim.train import train


def _cfg(data: Path, logger: str) -> TrainConfig:
    cfg = preset("tiny")
    return replace(
        cfg,
        steps=2,
        batch=1,
        save_every=2,
        log_every=1,
        sample_every=2,
        num_samples=1,
        device="cpu",
        logger=logger,
        data=replace(cfg.data, root=str(data), load_size=32, crop_size=32, workers=0),
        model=replace(cfg.model, ngf=8, ndf=8, n_blocks=1),
        structure=replace(
            cfg.structure, vgg_weights="random", loss=replace(cfg.structure.loss, num_queries=16)
        ),
    )


def test_wandb_offline_run_and_tensorboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    pytest.importorskip("wandb", reason="the wandb package is not installed")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wandb").mkdir()
    data = write_synthetic_dataset(tmp_path / "ds", n=2, size=32, seed=0, n_test=1)
    run = tmp_path / "run"
    train(_cfg(data, "tensorboard,wandb"), run, quiet=True)
    run_id = (run / "wandb_id").read_text().strip()
    offline = list((tmp_path / "wandb" / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))
    assert list((run / "tb").glob("events.out.tfevents.*"))


def test_wandb_missing_and_bad_names_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now fails
    with pytest.raises(UserError, match="pip install wandb"):
        RunLogger(tmp_path, "wandb")
    data = write_synthetic_dataset(tmp_path / "ds", n=2, size=32, seed=0, n_test=1)
    argv = ["train", "--data", str(data), "--preset", "tiny", "--out", str(tmp_path / "r")]
    assert main([*argv, "--logger", "tensorboard,wandb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install wandb" in err
    assert not (tmp_path / "r").exists()  # refused before anything was written
    with pytest.raises(UserError, match="comma list of tensorboard, wandb, none"):
        validate(replace(preset("tiny"), logger="tensorbored"))
    none = RunLogger(tmp_path / "quiet", "none")
    none.scalars({"a": 1.0}, 1)
    none.close()
    assert not (tmp_path / "quiet" / "tb").exists()
