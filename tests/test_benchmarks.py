"""The benchmark scripts run at a toy size on the CPU and print parseable JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
        assert r["torch"] and r["peak_memory_gb"] is None  # no CUDA memory on the CPU


def test_loss_speed_benchmark_runs() -> None:
    out = _run("benchmarks/loss_speed.py", "--device", "cpu", "--windows", "16", "--repeats", "1")
    doc = json.loads(out.strip().splitlines()[-1])
    (row,) = doc["results"]
    assert row["window"] == "16" and row["vectorised_ms"] > 0 and row["speedup"] > 1
