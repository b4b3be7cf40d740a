"""The benchmark scripts run at a toy size on the CPU and print parseable JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
