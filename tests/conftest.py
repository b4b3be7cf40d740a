"""Shared test settings: small thread pools and no accidental downloads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sesim.config import preset
from sesim.data.synthetic import write_synthetic_dataset
from sesim.train import train
from tests.fixtures.munit import tiny

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_torch_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point TORCH_HOME at an empty folder so no test can find or fetch real weights (and
    SESIM_OFFLINE stops the paper presets from downloading the ImageNet VGG16 weights)."""
    home = tmp_path_factory.mktemp("torch_home")
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("SESIM_OFFLINE", "1")
    return home


@pytest.fixture(scope="session")
def tiny_lsesim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-step run of a tiny LSeSim model (learned heads), trained once per test session."""
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
        # The paper's generator (two blur-pool downsamplings, multiple 4), not the CPU preset's
        # one-downsampling generator: export and translation tests check padding to 4.
        model=replace(cfg.model, ngf=8, ndf=8, n_blocks=1, n_downsampling=2, antialias=True),
        structure=replace(cfg.structure, vgg_weights="random"),
        optim=replace(cfg.optim, identity_warmup=0),
    )
    run = base / "run"
    train(cfg, run, quiet=True)
    return run


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: tiny networks gain nothing from more, and on a busy machine spinning
    worker threads make each step many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def multistyle_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic ``multistyle`` task at 32 px: 6 training and 3 test images per domain."""
    root = tmp_path_factory.mktemp("munit") / "ds"
    return write_synthetic_dataset(root, n=6, size=32, seed=0, task="multistyle", n_test=3)


@pytest.fixture(scope="session")
def munit_run(multistyle_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step munit-tiny run through the training loop (on one thread)."""
    run = tmp_path_factory.mktemp("munit_run") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(tiny(preset("munit-tiny"), multistyle_dataset), run, quiet=True)
    finally:
        torch.set_num_threads(threads)
    return run
