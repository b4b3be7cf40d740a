"""Extending a run (``--resume RUN --steps N``) and fine-tuning from one (``--init-from``)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sesim.cli.main import main
from sesim.config import TrainConfig, load_yaml, preset
from sesim.data.synthetic import write_synthetic_dataset
from sesim.errors import UserError
from sesim.methods import get_method
from sesim.runs import config_of, list_checkpoints, load_checkpoint
from sesim.train import init_weights, lr_lambda, resume, train


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("extend") / "ds"
    write_synthetic_dataset(root, n=4, size=32, seed=0, task="layout", n_test=2)
    return root


def tiny_cfg(data: Path, steps: int = 2, **model: int) -> TrainConfig:
    """The ``tiny`` preset at 32 px on the CPU, deterministic, every step checkpointed."""
    cfg = preset("tiny")
    return replace(
        cfg,
        steps=steps,
        batch=1,
        save_every=1,
        keep_last=10,
        log_every=1,
        sample_every=100,
        num_samples=1,
        device="cpu",
        deterministic=True,
        data=replace(cfg.data, root=str(data), load_size=36, crop_size=32, workers=0),
        model=replace(cfg.model, **{"ngf": 8, "ndf": 8, "n_blocks": 1, **model}),
        structure=replace(
            cfg.structure,
            vgg_weights="random",
            loss=replace(cfg.structure.loss, num_queries=16),
        ),
        optim=replace(cfg.optim, identity_warmup=0, decay_fraction=0.5),
    )


@pytest.fixture(scope="module")
def source_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("source") / "run"
    train(tiny_cfg(dataset), run, quiet=True)
    return run


def _nets(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    return load_checkpoint(path)["nets"]


def test_resume_with_steps_extends_a_finished_run_exactly(
    source_run: Path, tmp_path: Path, one_thread: None
) -> None:
    run = tmp_path / "run"
    shutil.copytree(source_run, run)
    lr = config_of(load_checkpoint(list_checkpoints(run)[-1])).optim.lr
    final = resume(run, quiet=True, steps=4)
    state = load_checkpoint(final)
    assert state["step"] == 4 and state["config"]["steps"] == 4
    assert load_yaml(run / "config.yaml")["steps"] == 4
    # From step 2 on, the learning rate is the one a 4-step schedule gives each step (the
    # finished 2-step run had decayed to 0).
    for step in (3, 4):
        ckpt = load_checkpoint(list_checkpoints(run)[step - 1])
        assert ckpt["step"] == step
        for group in ckpt["optimizers"]["G"]["param_groups"]:
            assert group["lr"] == pytest.approx(lr * lr_lambda(step, 4, 0.5))
    # Resuming the extended run after a loss of its last checkpoint is bit-identical.
    again = tmp_path / "again"
    shutil.copytree(run, again)
    list_checkpoints(again)[-1].unlink()
    assert load_checkpoint(resume(again, quiet=True))["step"] == 4
    a, b = _nets(final), _nets(list_checkpoints(again)[-1])
    for net in a:
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs"
    # A finished run asked for the steps it already has does nothing more.
    assert resume(run, quiet=True, steps=4) == final


def test_resume_with_fewer_steps_than_reached_is_refused(
    source_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UserError, match="already reached step 2"):
        resume(source_run, quiet=True, steps=1)
    assert main(["train", "--resume", str(source_run), "--steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give --steps 2 or more" in err
    assert main(["train", "--resume", str(source_run), "--steps", "3", "--seed", "1"]) == 2
    assert "only --steps may change it" in capsys.readouterr().err
    # Through the command line, the extension itself.
    run = tmp_path / "run"
    shutil.copytree(source_run, run)
    assert main(["train", "--resume", str(run), "--steps", "3", "--quiet"]) == 0
    assert load_checkpoint(list_checkpoints(run)[-1])["step"] == 3


def test_init_weights_loads_the_generator_and_a_fitting_discriminator(
    source_run: Path, dataset: Path
) -> None:
    saved = _nets(list_checkpoints(source_run)[-1])
    cfg = replace(tiny_cfg(dataset), seed=7)
    nets = get_method(cfg.method).build(cfg)
    assert init_weights(nets, source_run) == []
    for name in ("G", "D"):
        for key, value in getattr(nets, name).state_dict().items():
            assert torch.equal(value, saved[name][key]), f"{name}.{key} not loaded"

    # Another discriminator: a notice, and D keeps its fresh weights; G is still loaded.
    other = tiny_cfg(dataset, ndf=16)
    nets = get_method(other.method).build(other)
    fresh = {k: v.clone() for k, v in nets.D.state_dict().items()}
    notices = init_weights(nets, list_checkpoints(source_run)[-1])
    assert len(notices) == 1 and notices[0].startswith("D of ") and "from scratch" in notices[0]
    assert all(torch.equal(v, fresh[k]) for k, v in nets.D.state_dict().items())
    assert torch.equal(next(iter(nets.G.state_dict().values())), next(iter(saved["G"].values())))


def test_init_weights_errors(source_run: Path, dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(dataset, ngf=16)
    nets = get_method(cfg.method).build(cfg)
    with pytest.raises(UserError, match="does not fit this run's generator"):
        init_weights(nets, source_run)
    with pytest.raises(UserError, match="does not exist"):
        init_weights(nets, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no checkpoint"):
        init_weights(nets, tmp_path / "empty")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        init_weights(nets, junk)


def test_cli_init_from_starts_a_new_run_from_the_source(
    source_run: Path, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fine"
    args = ["train", "--init-from", str(source_run), "--steps", "1", "--out", str(out)]
    assert main([*args, "--data", str(dataset), "--quiet"]) == 0
    state = load_checkpoint(list_checkpoints(out)[-1])
    assert state["step"] == 1  # a new run at step 0, one step taken
    cfg = config_of(state)
    source_cfg = config_of(load_checkpoint(list_checkpoints(source_run)[-1]))
    assert cfg.model == source_cfg.model and cfg.init_from == str(source_run)
    assert all(s["step"] == 1 for s in state["optimizers"]["G"]["state"].values())
    # The generator of another preset does not fit: one line, exit status 2.
    capsys.readouterr()
    code = main(
        [
            *args[:-1],
            str(tmp_path / "bad"),
            "--preset",
            "tiny",
            "--set",
            "model.ngf=16",
            "--dry-run",
        ]
    )
    assert code == 0  # a dry run only prints the config
    assert main([*args[:-1], str(tmp_path / "bad"), "--set", "model.ngf=16", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "does not fit this run's generator" in err and "Traceback" not in err
    assert main(["train", "--init-from", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
