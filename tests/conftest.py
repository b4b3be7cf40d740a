"""Shared test settings: small thread pools and no accidental downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_torch_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point TORCH_HOME at an empty folder so no test can find or fetch real weights."""
    home = tmp_path_factory.mktemp("torch_home")
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_lsesim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-step run of a tiny LSeSim model (learned heads), trained once per test session."""
    from dataclasses import replace

    from sesim.config import preset
    from sesim.data.synthetic import write_synthetic_dataset
    from sesim.train import train

    base = tmp_path_factory.mktemp("shared-tiny-lsesim")
    ds = base / "ds"
    write_synthetic_dataset(ds, n=6, size=32, seed=0, task="layout", n_test=3)
    cfg = preset("tiny-lsesim")
    cfg = replace(
        cfg,
        steps=2,
        batch=1,
        save_every=1,
        device="cpu",
        data=replace(cfg.data, root=str(ds), load_size=32, crop_size=32, workers=0),
        model=replace(cfg.model, ngf=8, ndf=8, n_blocks=1),
        structure=replace(cfg.structure, vgg_weights="random"),
    )
    run = base / "run"
    train(cfg, run, quiet=True)
    return run
