"""Shared helpers of the fault-injection tests: a tiny run through the real command line."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from sesim.cli.main import main
from sesim.data.synthetic import write_synthetic_dataset

TINY = [
    "--preset", "tiny", "--size", "32", "--batch", "1", "--device", "cpu",
    "--vgg-weights", "random", "--queries", "16", "--quiet", "--deterministic",
    "--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.n_blocks=1",
    "--set", "data.workers=0", "--set", "optim.identity_warmup=0",
]  # fmt: skip


def dataset(root: Path) -> Path:
    """A small synthetic layout dataset (8 + 8 training images of 32 px)."""
    data = root / "ds"
    if not data.is_dir():
        write_synthetic_dataset(data, n=8, size=32, seed=0, task="layout", n_test=2)
    return data


def cli(*args: str) -> tuple[int, str, str]:
    """Run ``sesim ARGS`` in this process; returns (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def cli_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sesim ARGS`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "sesim", *args],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temporaries(folder: Path) -> list[Path]:
    """Temporary files left anywhere under ``folder``."""
    return sorted(p for p in folder.rglob("*.tmp"))


def error_lines(stderr: str) -> list[str]:
    """The ``error: ...`` lines of a command's stderr (notices about random weights aside)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]
