"""Training: a smoke test per preset, exact resume after SIGKILL, Ctrl-C, and bad data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from sesim.config import PRESETS, TrainConfig, preset
from sesim.data.synthetic import write_synthetic_dataset
from sesim.devices import StepTimer
from sesim.runs import list_checkpoints, load_checkpoint, save_checkpoint
from sesim.train import lr_lambda, resume, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train") / "ds"
    write_synthetic_dataset(root, n=8, size=32, seed=0, task="layout", n_test=4)
    return root


def small(cfg: TrainConfig, data: Path, steps: int = 2, **kw: object) -> TrainConfig:
    """Shrink any preset to a 32 px CPU run (random VGG weights: no download possible)."""
    return replace(
        cfg,
        steps=steps,
        batch=1,
        save_every=1,
        log_every=1,
        sample_every=1,
        num_samples=2,
        device="cpu",
        data=replace(cfg.data, root=str(data), load_size=36, crop_size=32, workers=0),
        model=replace(cfg.model, ngf=8, ndf=8, n_blocks=min(cfg.model.n_blocks, 2)),
        structure=replace(
            cfg.structure,
            vgg_weights="random",
            loss=replace(cfg.structure.loss, num_queries=16),
        ),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("name", [n for n in PRESETS if PRESETS[n]().method == "sesim"])
def test_every_preset_trains_a_few_steps(name: str, dataset: Path, tmp_path: Path) -> None:
    cfg = small(preset(name), dataset)
    final = train(cfg, tmp_path / "run", quiet=True)
    state = load_checkpoint(final)
    assert state["step"] == 2
    assert set(state["nets"]) >= {"G", "D"}
    assert ("heads" in state["nets"]) == cfg.structure.loss.learned
    times = state["history"]["step_times"]
    assert len(times) == 2 and all(v > 0 for v in times)  # every step timed, none lost
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file() and (run / "index.html").is_file()
    assert list((run / "samples").glob("*.png"))
    # VGG never appears in a checkpoint: it is frozen and rebuilt from the config.
    assert not any(k.startswith("vgg") for k in state["nets"])


def test_step_timer_reports_each_step_once() -> None:
    timer = StepTimer(torch.device("cpu"))
    for pause in (0.0, 0.02, 0.0):
        timer.start()
        time.sleep(pause)
        timer.stop()
    times = timer.flush()
    assert len(times) == 3 and times[1] >= 0.02 and min(times) >= 0
    assert timer.flush() == []


def test_lr_schedule_constant_then_linear() -> None:
    assert lr_lambda(0, 100, 0.5) == 1.0
    assert lr_lambda(49, 100, 0.5) == 1.0
    assert lr_lambda(75, 100, 0.5) == pytest.approx(0.5)
    assert lr_lambda(100, 100, 0.5) == 0.0


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path)
    flat = {}
    for net, sd in state["nets"].items():
        for k, v in sd.items():
            flat[f"{net}.{k}"] = v
    for k, v in (state.get("ema") or {}).items():  # the averaged generator, where kept
        flat[f"ema.{k}"] = v
    for name, opt in state["optimizers"].items():
        for pid, st in opt["state"].items():
            for k, v in st.items():
                if isinstance(v, torch.Tensor):
                    flat[f"opt.{name}.{pid}.{k}"] = v
    return flat


def _sesim_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sesim", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "ignore"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.mark.parametrize("preset_name", ["tiny", "tiny-lsesim"])
def test_resume_after_sigkill_is_bit_identical(
    preset_name: str, dataset: Path, tmp_path: Path
) -> None:
    steps = 8
    base = [
        "train", "--data", str(dataset), "--preset", preset_name, "--steps", str(steps),
        "--size", "32", "--batch", "2", "--save-every", "1", "--device", "cpu",
        "--vgg-weights", "random", "--queries", "16", "--deterministic", "--quiet",
        "--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.n_blocks=1",
        "--set", "data.workers=0", "--set", "sample_every=3", "--set", "keep_last=2",
    ]  # fmt: skip
    # The uninterrupted reference run.
    ref = tmp_path / "ref"
    subprocess.run(
        _sesim_cmd(*base, "--out", str(ref)), check=True, env=_env(), capture_output=True
    )

    # The same run killed with SIGKILL at several moments (also mid-write), then resumed.
    run = tmp_path / "killed"
    for delay in (0.0, 0.35, 0.7):
        if list_checkpoints(run) and load_checkpoint(list_checkpoints(run)[-1])["step"] >= steps:
            break
        args = (
            ["train", "--resume", str(run), "--quiet"]
            if list_checkpoints(run)
            else [*base, "--out", str(run)]
        )
        proc = subprocess.Popen(
            _sesim_cmd(*args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        seen = len(list_checkpoints(run))
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            ckpts = list_checkpoints(run)
            if ckpts and (len(ckpts) > seen or seen == 0):
                break
            time.sleep(0.02)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    subprocess.run(
        _sesim_cmd("train", "--resume", str(run), "--quiet"),
        check=True,
        env=_env(),
        capture_output=True,
    )
    a, b = _weights(list_checkpoints(ref)[-1]), _weights(list_checkpoints(run)[-1])
    assert load_checkpoint(list_checkpoints(run)[-1])["step"] == steps
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    # No temporary files are left behind and only keep_last checkpoints stay.
    assert not list((run / "checkpoints").glob(".*tmp"))
    assert len(list_checkpoints(run)) == 2


def test_partial_checkpoint_file_is_ignored_and_removed(dataset: Path, tmp_path: Path) -> None:
    cfg = small(preset("tiny"), dataset, steps=3)
    run = tmp_path / "run"
    train(replace(cfg, steps=2), run, quiet=True)
    junk = run / "checkpoints" / ".step_00000003.pt.999.tmp"
    junk.write_bytes(b"half a checkpoint")
    assert list_checkpoints(run)[-1].name == "step_00000002.pt"
    state = load_checkpoint(list_checkpoints(run)[-1])
    state["config"]["steps"] = 3  # continue one more step
    save_checkpoint(list_checkpoints(run)[-1], state)
    resume(run, quiet=True)
    assert not junk.exists()
    assert list_checkpoints(run)[-1].name == "step_00000003.pt"


def test_ctrl_c_writes_a_checkpoint_and_exits_cleanly(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _sesim_cmd(
            "train",
            "--data",
            str(dataset),
            "--preset",
            "tiny",
            "--steps",
            "100000",
            "--size",
            "32",
            "--save-every",
            "100000",
            "--device",
            "cpu",
            "--vgg-weights",
            "random",
            "--set",
            "model.ngf=8",
            "--set",
            "model.n_blocks=1",
            "--set",
            "data.workers=0",
            "--out",
            str(run),
            "--quiet",
        ),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (run / "samples").is_dir() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "checkpoint written" in err and "Traceback" not in err
    ckpts = list_checkpoints(run)
    assert len(ckpts) == 1 and 0 < load_checkpoint(ckpts[0])["step"] < 100000


def test_unreadable_and_odd_images_are_handled(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for folder in ("trainA", "trainB"):
        (root / folder).mkdir(parents=True)
    g = torch.Generator().manual_seed(0)

    def rand_img(h: int, w: int) -> Image.Image:
        arr = (torch.rand(h, w, 3, generator=g) * 255).to(torch.uint8).numpy()
        return Image.fromarray(arr)

    rand_img(40, 40).convert("L").save(root / "trainA" / "gray.png")
    rand_img(40, 50).convert("RGBA").save(root / "trainA" / "rgba.png")
    rand_img(20, 24).convert("CMYK").save(root / "trainA" / "cmyk.jpg")  # smaller than the crop
    Image.fromarray(
        (torch.rand(40, 40, generator=g) * 65535).to(torch.int32).numpy(), mode="I"
    ).convert("I;16").save(root / "trainB" / "sixteen.png")
    rand_img(40, 40).save(root / "trainB" / "ok.jpg")
    good = root / "trainB" / "ok.jpg"
    (root / "trainB" / "truncated.jpg").write_bytes(
        good.read_bytes()[: len(good.read_bytes()) // 3]
    )
    (root / "trainB" / "empty.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        final = train(small(preset("tiny"), root), tmp_path / "run", quiet=True)
    assert load_checkpoint(final)["step"] == 2


def test_compiled_training_runs_and_saves_plain_weights(dataset: Path, tmp_path: Path) -> None:
    """``--compile`` trains the same networks (torch 2.14 once failed in the generator's
    replicate padding under compilation); checkpoints hold the plain, uncompiled names."""
    cfg = small(preset("tiny"), dataset, compile=True, channels_last=True)
    final = train(cfg, tmp_path / "run", quiet=True)
    state = load_checkpoint(final)
    eager = load_checkpoint(train(replace(cfg, compile=False), tmp_path / "eager", quiet=True))
    for name in ("G", "D"):
        assert state["nets"][name].keys() == eager["nets"][name].keys()
        for key, value in state["nets"][name].items():
            assert torch.isfinite(value.float()).all()
            # Two steps from the same start: compiled and eager weights stay close.
            torch.testing.assert_close(value, eager["nets"][name][key], atol=1e-3, rtol=1e-3)
