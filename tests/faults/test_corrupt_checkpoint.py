"""A damaged newest checkpoint: resume, eval and translate skip it with one warning each."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from sesim.runs import list_checkpoints, load_checkpoint, record_path
from tests.faults.common import TINY, cli, dataset, digest, error_lines


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["nets"]["G"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-step tiny run with a checkpoint at every step (deterministic)."""
    root = tmp_path_factory.mktemp("corrupt")
    run = root / "run"
    code, _, err = cli("train", *TINY, "--data", str(dataset(root)), "--steps", "4",
                       "--save-every", "1", "--set", "keep_last=4", "--out", str(run))  # fmt: skip
    assert code == 0, err
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def test_resume_skips_a_truncated_newest_checkpoint(finished_run: Path, tmp_path: Path) -> None:
    run = _copy(finished_run, tmp_path)
    newest = list_checkpoints(run)[-1]
    reference = _weights(newest)
    older = {p: digest(p) for p in list_checkpoints(run)[:-1]}
    size = newest.stat().st_size
    with open(newest, "r+b") as fh:  # a copy cut short
        fh.truncate(size // 2)

    code, _, err = cli("train", "--resume", str(run), "--quiet")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, err
    assert "step_00000004.pt is truncated" in warnings[0]
    assert f"{size // 2:,} of {size:,} bytes" in warnings[0]
    # Continued from step 3 and wrote step 4 again, equal to the original.
    final = list_checkpoints(run)[-1]
    assert final.name == "step_00000004.pt"
    for key, value in _weights(final).items():
        assert torch.equal(value, reference[key]), key
    assert {p: digest(p) for p in list_checkpoints(run)[:-1]} == older


def test_a_foreign_file_is_told_apart_from_a_truncated_one(
    finished_run: Path, tmp_path: Path
) -> None:
    run = _copy(finished_run, tmp_path)
    newest = list_checkpoints(run)[-1]
    newest.write_bytes(b"not a checkpoint at all")
    record_path(newest).unlink()  # no record: sesim cannot know what was meant to be there
    code, _, err = cli("train", "--resume", str(run), "--quiet")
    assert code == 0, err
    (warning,) = [line for line in err.splitlines() if line.startswith("warning:")]
    assert "step_00000004.pt" in warning and "is it a sesim checkpoint?" in warning


def test_a_damaged_checkpoint_of_the_right_size_is_caught_by_its_checksum(
    finished_run: Path, tmp_path: Path
) -> None:
    run = _copy(finished_run, tmp_path)
    newest = list_checkpoints(run)[-1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte somewhere in the weights
    newest.write_bytes(bytes(data))
    code, _, err = cli("translate", "--run", str(run), "--input", str(_image(tmp_path)),
                       "--output", str(tmp_path / "out"), "--device", "cpu")  # fmt: skip
    assert code == 0, err
    (warning,) = [line for line in err.splitlines() if line.startswith("warning:")]
    assert "step_00000004.pt is damaged" in warning and "checksum" in warning
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


def test_eval_skips_the_damaged_newest_checkpoint(finished_run: Path, tmp_path: Path) -> None:
    run = _copy(finished_run, tmp_path)
    newest = list_checkpoints(run)[-1]
    with open(newest, "r+b") as fh:
        fh.truncate(1000)
    code, out, err = cli("eval", "--run", str(run), "--extractor", "random", "--metrics", "fid",
                         "--device", "cpu", "--quiet", "--out", str(tmp_path / "eval"))  # fmt: skip
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert any("step_00000004.pt is truncated" in w for w in warnings), err
    assert "last (step 3)" in out and "(step 4)" not in out, out  # the readable step 3 scored


def test_no_readable_checkpoint_is_one_error(finished_run: Path, tmp_path: Path) -> None:
    run = _copy(finished_run, tmp_path)
    for path in list_checkpoints(run):
        with open(path, "r+b") as fh:
            fh.truncate(10)
    code, _, err = cli("train", "--resume", str(run), "--quiet")
    assert code == 2 and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("warning:")]) == 4
    (error,) = error_lines(err)
    assert "none of the 4 checkpoints" in error and "can be read" in error


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (200, 100, 50)).save(path)
    return path
