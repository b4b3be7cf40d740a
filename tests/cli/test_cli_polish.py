"""CLI polish: --version, "did you mean", early data checks, --dataroot."""

from __future__ import annotations

from pathlib import Path

import pytest

from sesim import __version__
from sesim.data.synthetic import write_synthetic_dataset
from tests.cli.test_cli import assert_user_error, run_cli


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"sesim {__version__}"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--preset", "fsesm"], ["unknown preset", "did you mean 'fsesim'"]),
        (["--method", "cyclgan"], ["unknown method", "did you mean 'cyclegan'"]),
        (["--set", "optim.lrr=1"], ["optim.lrr", "did you mean 'lr'"]),
        (["--set", "structur.weight=1"], ["structur", "did you mean 'structure'"]),
        (["--set", "data.direction=AtB"], ["did you mean 'AtoB'"]),
    ],
)
def test_did_you_mean(args: list[str], needles: list[str], tmp_path: Path) -> None:
    assert_user_error(run_cli("train", *args, "--dry-run", cwd=tmp_path), *needles)


def test_data_is_checked_before_the_config_is_printed(tmp_path: Path) -> None:
    proc = run_cli("train", "--dataroot", str(tmp_path / "nowhere"), "--dry-run")
    assert_user_error(proc, "nowhere", "does not exist")
    assert "resolved config" not in proc.stdout
    (tmp_path / "empty" / "trainA").mkdir(parents=True)
    proc = run_cli("train", "--data", str(tmp_path / "empty"), "--dry-run")
    assert_user_error(proc, "no image files")
    assert proc.stdout == ""
    proc = run_cli("train", "--out", str(tmp_path / "run"))
    assert_user_error(proc, "no dataset given")
    assert proc.stdout == ""


def test_dataroot_is_an_alias_of_data(tmp_path: Path) -> None:
    data = write_synthetic_dataset(tmp_path / "ds", n=2, size=32, seed=0, task="layout", n_test=1)
    proc = run_cli("train", "--dataroot", str(data), "--preset", "tiny", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"root: {data}" in proc.stdout
    assert "--dataroot" in run_cli("eval", "--help").stdout
