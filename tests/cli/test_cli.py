"""The command line through subprocesses: normal use and every user mistake (one line, exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from sesim.config import preset
from sesim.data.synthetic import write_synthetic_dataset
from sesim.runs import list_checkpoints
from sesim.train import train


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "sesim", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "ds"
    write_synthetic_dataset(root, n=6, size=32, seed=0, task="layout", n_test=3)
    return root


@pytest.fixture(scope="module")
def run_dir(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = preset("tiny")
    cfg = replace(
        cfg,
        steps=2,
        batch=1,
        save_every=1,
        device="cpu",
        data=replace(cfg.data, root=str(dataset), load_size=32, crop_size=32, workers=0),
        model=replace(cfg.model, ngf=8, ndf=8, n_blocks=1),
        structure=replace(cfg.structure, vgg_weights="random"),
    )
    run = tmp_path_factory.mktemp("cli") / "run"
    train(cfg, run, quiet=True)
    return run


def test_help_explains_every_command() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("train", "translate", "data", "demo", "presets"):
        assert command in proc.stdout
    proc = run_cli("train", "--help")
    assert proc.returncode == 0 and "--resume" in proc.stdout and "--set" in proc.stdout


def test_dry_run_prints_the_resolved_config(dataset: Path, tmp_path: Path) -> None:
    yaml_file = tmp_path / "cfg.yaml"
    yaml_file.write_text("optim:\n  lr: 0.0003\nstructure:\n  loss:\n    window: 8\n")
    proc = run_cli(
        "train", "--data", str(dataset), "--preset", "lsesim", "--config", str(yaml_file),
        "--set", "structure.loss.num_queries=32", "--steps", "7", "--window", "global",
        "--dry-run",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "preset: lsesim" in out and "lr: 0.0003" in out and "num_queries: 32" in out
    assert "steps: 7" in out and "window: null" in out and "learned: true" in out


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["train", "--preset", "nope", "--dry-run"], ["unknown preset", "fsesim"]),
        (["train", "--steps", "0"], ["--steps"]),
        (["train", "--set", "optim.lr=abc", "--dry-run"], ["optim.lr", "number"]),
        (["train", "--set", "model.nope=1", "--dry-run"], ["unknown config field"]),
        (["train", "--set", "structure.loss.mode=l7", "--dry-run"], ["mode"]),
        (["train", "--size", "30", "--dry-run"], ["multiple of 4"]),
        (["train", "--resume", "x", "--preset", "tiny"], ["--resume", "--preset"]),
        (
            ["translate", "--run", "missing_run", "--input", "x", "--output", "y"],
            ["does not exist"],
        ),
        (["train", "--config", "missing.yaml", "--dry-run"], ["missing.yaml"]),
    ],
)
def test_bad_flags_give_one_line(args: list[str], needles: list[str], tmp_path: Path) -> None:
    assert_user_error(run_cli(*args, cwd=tmp_path), *needles)


def test_missing_and_empty_data_folders(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert_user_error(
        run_cli("train", "--data", str(tmp_path / "nowhere"), "--out", str(out)), "nowhere"
    )
    (tmp_path / "empty" / "trainA").mkdir(parents=True)
    (tmp_path / "empty" / "trainB").mkdir(parents=True)
    assert_user_error(
        run_cli("train", "--data", str(tmp_path / "empty"), "--out", str(out)), "trainA"
    )
    assert not out.exists()  # nothing half-written


def test_refuses_to_overwrite_a_run(run_dir: Path, dataset: Path) -> None:
    proc = run_cli("train", "--data", str(dataset), "--preset", "tiny", "--out", str(run_dir))
    assert_user_error(proc, "already holds a run", "--resume")


def test_translate_keeps_any_input_size(run_dir: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    sizes = [(37, 50), (32, 32), (61, 29)]
    for i, (h, w) in enumerate(sizes):
        arr = (torch.rand(h, w, 3) * 255).to(torch.uint8).numpy()
        Image.fromarray(arr).save(inputs / f"img{i}.png")
    proc = run_cli(
        "translate",
        "--run",
        str(run_dir),
        "--input",
        str(inputs),
        "--output",
        str(tmp_path / "out"),
        "--device",
        "cpu",
    )
    assert proc.returncode == 0, proc.stderr
    for i, (h, w) in enumerate(sizes):
        with Image.open(tmp_path / "out" / f"img{i}.png") as img:
            assert img.size == (w, h)
    # A single file and an explicit checkpoint work too.
    ckpt = list_checkpoints(run_dir)[-1]
    proc = run_cli(
        "translate",
        "--checkpoint",
        str(ckpt),
        "--input",
        str(inputs / "img0.png"),
        "--output",
        str(tmp_path / "one"),
    )
    assert proc.returncode == 0 and (tmp_path / "one" / "img0.png").is_file()


def test_translate_rejects_foreign_checkpoints(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    proc = run_cli(
        "translate",
        "--checkpoint",
        str(foreign),
        "--input",
        "x.png",
        "--output",
        str(tmp_path / "o"),
    )
    assert_user_error(proc, "not a sesim checkpoint")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 100)
    proc = run_cli(
        "translate",
        "--checkpoint",
        str(garbage),
        "--input",
        "x.png",
        "--output",
        str(tmp_path / "o"),
    )
    assert_user_error(proc, "cannot read checkpoint")


def test_data_synthetic(tmp_path: Path) -> None:
    out = tmp_path / "syn"
    proc = run_cli("data", "synthetic", str(out), "--n", "3", "--size", "32", "--task", "shapes")
    assert proc.returncode == 0, proc.stderr
    assert len(list((out / "trainA").glob("*.png"))) == 3 and (out / "meta.json").is_file()
    assert_user_error(run_cli("data", "synthetic", str(out), "--n", "3"), "choose another folder")
    assert_user_error(run_cli("data", "synthetic", str(tmp_path / "x"), "--task", "zebra"), "zebra")
    assert_user_error(run_cli("data", "synthetic", str(tmp_path / "y"), "--n", "0"), "--n")


def test_presets_lists_every_preset() -> None:
    proc = run_cli("presets")
    assert proc.returncode == 0
    for name in ("fsesim", "lsesim", "table3-A", "table3-F", "tiny"):
        assert name in proc.stdout


def test_single_image_train_and_translate(tmp_path: Path) -> None:
    proc = run_cli("data", "sample-images", str(tmp_path / "img"))
    assert proc.returncode == 0, proc.stderr
    source = tmp_path / "img" / "grace_hopper.jpg"
    target = tmp_path / "img" / "Minduka_Present_Blue_Pack.png"
    run = tmp_path / "si"
    proc = run_cli(
        "train", "--mode", "single-image", "--preset", "single-image-tiny",
        "--source", str(source), "--target", str(target), "--out", str(run),
        "--steps", "2", "--size", "32", "--batch", "2", "--device", "cpu",
        "--vgg-weights", "random", "--queries", "16", "--quiet",
        "--set", "stylegan.ngf=4", "--set", "stylegan.ndf=4", "--set", "data.load_size=96",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    proc = run_cli(
        "translate",
        "--run",
        str(run),
        "--input",
        str(source),
        "--output",
        str(out),
        "--tile",
        "128",
    )
    assert proc.returncode == 0, proc.stderr
    with Image.open(out / "grace_hopper.png") as img, Image.open(source) as src:
        assert img.size == src.size
    # Mode mistakes.
    assert_user_error(
        run_cli("train", "--mode", "single-image", "--data", "x", "--dry-run"), "--source"
    )
    assert_user_error(
        run_cli("train", "--mode", "multimodal", "--preset", "tiny", "--dry-run"), "conflicts"
    )
    assert_user_error(
        run_cli(
            "translate",
            "--run",
            str(run),
            "--input",
            str(source),
            "--output",
            str(out),
            "--styles",
            "3",
        ),
        "multimodal",
    )
    assert_user_error(
        run_cli(
            "translate",
            "--run",
            str(run),
            "--input",
            str(source),
            "--output",
            str(out),
            "--tile",
            "30",
        ),
        "multiple of 4",
    )


def test_multimodal_train_and_translate_styles(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    write_synthetic_dataset(data, n=4, size=32, seed=0, task="multistyle", n_test=2)
    run = tmp_path / "mm"
    proc = run_cli(
        "train", "--mode", "multimodal", "--preset", "munit-tiny", "--data", str(data),
        "--out", str(run), "--steps", "2", "--size", "32", "--batch", "1", "--device", "cpu",
        "--vgg-weights", "random", "--queries", "16", "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    image = data / "testA" / "test_00000.png"
    out = tmp_path / "out"
    common = ["translate", "--run", str(run), "--input", str(image), "--output"]
    assert run_cli(*common, str(out), "--styles", "3", "--seed", "1").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == [f"test_00000_style{i}.png" for i in range(3)]
    again = tmp_path / "again"
    assert run_cli(*common, str(again), "--styles", "3", "--seed", "1").returncode == 0
    for i in range(3):
        a = Image.open(out / f"test_00000_style{i}.png").tobytes()
        b = Image.open(again / f"test_00000_style{i}.png").tobytes()
        assert a == b  # reproducible with --seed
    guided = tmp_path / "guided"
    style = data / "testB" / "test_00001.png"
    assert run_cli(*common, str(guided), "--style-image", str(style)).returncode == 0
    assert (guided / "test_00000.png").is_file()
    for bad in ("0", "-2", "many"):
        assert_user_error(run_cli(*common, str(out), "--styles", bad), "--styles")
    assert_user_error(
        run_cli(*common, str(out), "--styles", "2", "--style-image", str(style)), "not both"
    )
