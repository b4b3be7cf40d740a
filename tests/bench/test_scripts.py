"""The benchmark scripts run at a toy size on the CPU and print parseable JSON."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from sesim.bench.tasks import class_mean_colours

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_train_step_benchmark_toy_size() -> None:
    out = _run(
        "benchmarks/train_step.py", "--preset", "fsesim-w32,lsesim", "--size", "32",
        "--steps", "1", "--warmup", "0", "--device", "cpu", "--precision", "fp32,bf16",
    )  # fmt: skip
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(r["preset"], r["precision"]) for r in lines] == [
        ("fsesim-w32", "fp32"), ("fsesim-w32", "bf16"), ("lsesim", "fp32"), ("lsesim", "bf16"),
    ]  # fmt: skip
    for r in lines:
        assert r["median_ms"] > 0 and r["images_per_s"] > 0 and r["tflop_per_step"] > 0
        assert r["torch"] and r["memory_source"].startswith("cpu estimate")
        # Weights, gradients and Adam states alone (G, D, VGG) exceed 0.2 GB at any size.
        assert 0.2 < r["peak_memory_gb"] < 2
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(lines) and "| fsesim-w32 | 32 | 1 | bf16 |" in out


def test_loss_speed_benchmark_runs() -> None:
    out = _run("benchmarks/loss_speed.py", "--device", "cpu", "--windows", "16", "--repeats", "1")
    doc = json.loads(out.strip().splitlines()[-1])
    (row,) = doc["results"]
    assert row["window"] == "16" and row["vectorised_ms"] > 0 and row["speedup"] > 1


def test_precision_quality_benchmark_toy_size(tmp_path: Path) -> None:
    toy = ["--methods", "fsesim", "--tasks", "layout", "--steps", "2", "--size", "32",
           "--n-train", "8", "--n-test", "6", "--aux-steps", "5", "--quiet"]  # fmt: skip
    out = _run("benchmarks/precision_quality.py", *toy, "--seeds", "0,1", "--out", str(tmp_path))
    doc = json.loads(out.strip().splitlines()[-1])
    assert doc["precisions"] == ["fp32", "bf16"] and doc["seeds"] == [0, 1]
    (row,) = doc["rows"]
    assert (row["task"], row["method"]) == ("layout", "fsesim")
    for metric in ("miou", "pixel_acc", "fid", "kid", "target_rate"):
        fp32, bf16 = row[metric]["fp32"], row[metric]["bf16"]
        assert len(fp32["values"]) == len(bf16["values"]) == 2 and fp32["std"] is not None
        paired = [b - a for a, b in zip(fp32["values"], bf16["values"])]
        assert abs(row[metric]["diff"]["bf16"] - sum(paired) / 2) < 1e-9
        assert doc["summary"][metric]["bf16"]["n"] == 2
    # Each precision trained its runs as asked, and both were judged by the same fp32 judges.
    for seed in (0, 1):
        runs = {p: json.loads((tmp_path / f"{p}-seed{seed}" / "results.json").read_text())
                for p in ("fp32", "bf16")}  # fmt: skip
        assert [runs[p]["precision"] for p in ("fp32", "bf16")] == ["fp32", "bf16"]
        assert (
            runs["fp32"]["tasks"]["layout"]["yardstick"]
            == runs["bf16"]["tasks"]["layout"]["yardstick"]
        )
        cfg = (
            tmp_path
            / f"bf16-seed{seed}"
            / "runs"
            / "layout"
            / "fsesim"
            / f"seed{seed}"
            / "config.yaml"
        ).read_text()
        assert "precision: bf16" in cfg
    assert "| fsesim |" in (tmp_path / "comparison.md").read_text()
    # A second call reads the finished folders instead of training again.
    proc = subprocess.run(
        [sys.executable, "benchmarks/precision_quality.py", *toy, "--seeds", "0,1", "--out",
         str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env=dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert proc.returncode == 0 and "==" not in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["rows"] == doc["rows"]


def test_structure_diagnosis_toy_size(tmp_path: Path) -> None:
    toy = ["--tasks", "layout", "--size", "32", "--n", "4", "--n-train", "6", "--n-test", "4",
           "--vgg-seeds", "0,1", "--train-steps", "2", "--out", str(tmp_path)]  # fmt: skip
    out = _run("benchmarks/structure_diagnosis.py", *toy)
    doc = json.loads(out.strip().splitlines()[-1])
    assert [r["tap"] for r in doc["static"]] == [
        "relu1_2",
        "relu2_2",
        "relu3_1",
        "relu4_1",
        "relu4_3",
    ]
    sides = [r["side"] for r in doc["static"]]
    assert sides == [32, 16, 8, 4, 4]
    for row in doc["static"]:
        assert 0 <= row["p_true_lt_shift4"] <= 1 and row["loss_true"] >= 0
        assert row["p_true_lt_shift4_se"] is not None  # two VGG seeds
    assert len(doc["spread"]) == 5 and all(r["arg_std"] > 0 for r in doc["spread"])
    variants = {r["variant"] for r in doc["training"]}
    assert len(variants) == 2
    for r in doc["training"]:
        assert r["grad_gan"] > 0 and r["grad_struct_weighted"] > 0
    assert (tmp_path / "diagnosis.json").is_file()
    assert "| relu1_2 |" in out


def _load_script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_oracle_gap_repaint_and_blur() -> None:
    gap = _load_script("oracle_gap")
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (2, 8, 8))
    images = torch.rand(2, 3, 8, 8) * 2 - 1
    painted = gap.repaint(images, labels, 3)
    for i in range(2):
        for k in range(3):
            region = painted[i][:, labels[i] == k]
            if region.numel():
                expected = images[i][:, labels[i] == k].mean(1, keepdim=True)
                assert torch.allclose(region, expected.expand_as(region), atol=1e-6)
    # An image that is already flat on every region is its own repainting (the oracle is).
    assert torch.allclose(gap.repaint(painted, labels, 3), painted, atol=1e-6)
    # Class colours: the mean over every image's pixels of the class; NaN for an absent class.
    colours = class_mean_colours(painted, labels, 4)
    for k in range(3):
        expected = images.permute(0, 2, 3, 1)[labels == k].mean(0)
        assert torch.allclose(colours[k], expected, atol=1e-5)
    assert torch.isnan(colours[3]).all()
    flat = torch.full((1, 3, 9, 9), 0.3)
    assert torch.allclose(gap.gaussian_blur(flat, 1.0), flat, atol=1e-6)
    step = torch.zeros(1, 3, 9, 9)
    step[..., 5:] = 1.0
    soft = gap.gaussian_blur(step, 1.0)
    assert 0 < soft[0, 0, 4, 4] < 0.5 < soft[0, 0, 4, 5] < 1
    assert torch.allclose(soft[..., 0], step[..., 0]) and torch.allclose(
        soft[..., -1], step[..., -1]
    )


def test_oracle_gap_on_a_toy_bench(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    _run("-m", "sesim", "bench", "quality", "--steps", "2", "--size", "32", "--methods", "fsesim",
         "--tasks", "layout", "--out", str(bench), "--n-train", "8", "--n-test", "6",
         "--aux-steps", "5", "--seeds", "0,1", "--jobs", "1", "--quiet")  # fmt: skip
    out = _run("benchmarks/oracle_gap.py", "--bench", str(bench), "--sigmas", "0.5,2")
    doc = json.loads(out.strip().splitlines()[-1])
    layout = doc["tasks"]["layout"]
    assert list(layout["references"]) == ["oracle", "oracle, blur 0.5 px", "oracle, blur 2 px"]
    results = json.loads((bench / "results.json").read_text())["tasks"]["layout"]
    rows = {r["method"]: r for r in results["rows"]}
    # The same judges as the bench: the oracle and every translation score as they did there.
    assert layout["references"]["oracle"]["miou"] == pytest.approx(rows["oracle"]["miou"])
    entry = layout["methods"]["fsesim"]
    assert entry["seeds"] == [0, 1]
    bench_runs = [r["miou"] for r in results["runs"] if r["method"] == "fsesim"]
    assert [s["miou"] for s in entry["translation"]] == pytest.approx(bench_runs)
    assert entry["translation_miou"] == pytest.approx(rows["fsesim"]["miou"])
    assert len(entry["repainted"]) == 2 and entry["repainted_miou_se"] is not None
    assert len(entry["repainted_class_iou"]) == len(layout["classes"])
    assert "| fsesim, repainted |" in out and "| *oracle, blur 2 px* |" in out
    assert len(entry["from_input"]) == len(entry["from_oracle"]) == 2
    assert len(entry["colour_from_oracle"]) == len(layout["classes"])
    present = [v for v in entry["colour_from_input"] if v is not None]
    assert present and all(0 <= v <= 2 * 3**0.5 for v in present)
    assert "Mean colour of each class" in out
    assert json.loads((bench / "oracle_gap.json").read_text()) == doc
    picture = Image.open(bench / "oracle_gap_layout.png")
    assert layout["picture"] == str(bench / "oracle_gap_layout.png") and picture.width > 6 * 32
    # Judges deleted since the bench ran: the script says it retrains them before it does.
    (segmenter,) = bench.glob("data/**/judges/segmenter.pt")
    segmenter.unlink()
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "benchmarks/oracle_gap.py", "--bench", str(bench), "--sigmas", "1"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "segmenter.pt not in" in proc.stderr and "training the bench's judges" in proc.stderr
    assert "appearance.pt" not in proc.stderr and segmenter.is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bench", "nowhere"], "results.json not found"),
        (["--bench", "BENCH", "--sigmas", "1,x"], "--sigmas must be positive numbers"),
        (["--bench", "BENCH", "--tasks", "mars"], "unknown task"),
        (["--bench", "BENCH", "--grid-images", "0"], "--grid-images must be at least 1"),
        (["--bench", "BROKEN"], "is not a bench result"),
        (["--bench", "BENCH"], "lacks the bench settings"),
    ],
)
def test_oracle_gap_user_errors(tmp_path: Path, args: list[str], message: str) -> None:
    bench = tmp_path / "b"
    bench.mkdir()
    (bench / "results.json").write_text(json.dumps({"tasks": {"layout": {"runs": []}}}))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text('{"tasks": ')  # cut short
    names = {"BENCH": str(bench), "BROKEN": str(broken), "nowhere": str(tmp_path / "nowhere")}
    argv = [names.get(a, a) for a in args]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "benchmarks/oracle_gap.py", *argv],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (bench / "oracle_gap.json").exists() and not (broken / "oracle_gap.json").exists()
