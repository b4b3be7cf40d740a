"""A full disk while sesim writes: one line that names the file, the cause and what was kept."""

from __future__ import annotations

import errno
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from sesim.runs import (
    WriteError,
    atomic_write,
    list_checkpoints,
    load_checkpoint,
    record_path,
    save_checkpoint,
)
from tests.faults.common import TINY, cli, dataset, digest, error_lines, temporaries

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def _fail_on_call(n: int, real: Any, partial: bool = True) -> Any:
    """A stand-in for a writer that fails on its n-th call as a full disk makes torch fail: some
    bytes land, then torch's RuntimeError is raised while an OSError(ENOSPC) is handled."""
    calls = {"n": 0}

    def writer(obj: Any, f: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] != n:
            return real(obj, f, *args, **kwargs)
        if partial and hasattr(f, "write"):
            f.write(b"PK\x03\x04" + b"\0" * 4096)
        try:
            raise ENOSPC
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos") from None

    return writer


def test_training_stops_with_one_line_when_a_checkpoint_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, run = dataset(tmp_path), tmp_path / "run"
    # Checkpoints at steps 1, 2, 3; the third write meets a full disk.
    monkeypatch.setattr(torch, "save", _fail_on_call(3, torch.save))
    code, _, err = cli("train", *TINY, "--data", str(data), "--steps", "5", "--save-every", "1",
                       "--out", str(run))  # fmt: skip
    assert code == 2, err
    assert "Traceback" not in err
    (message,) = error_lines(err)
    assert message.startswith("error: could not write ")
    assert "step_00000003.pt: No space left on device" in message
    assert f"the last complete checkpoint is {run / 'checkpoints' / 'step_00000002.pt'}" in message
    assert f"sesim train --resume {run}" in message
    # Nothing partial, nothing earlier lost: steps 1 and 2 load and match their records.
    assert [p.name for p in list_checkpoints(run)] == ["step_00000001.pt", "step_00000002.pt"]
    assert temporaries(run) == []
    for path in list_checkpoints(run):
        assert load_checkpoint(path)["step"] in (1, 2)
        assert record_path(path).is_file()

    # Space is back: the run continues from step 2 and finishes.
    monkeypatch.undo()
    code, _, err = cli("train", "--resume", str(run), "--quiet")
    assert code == 0, err
    assert load_checkpoint(list_checkpoints(run)[-1])["step"] == 5


def test_a_sample_grid_that_cannot_be_written_keeps_the_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, run = dataset(tmp_path), tmp_path / "run"
    real_save = Image.Image.save
    calls = {"n": 0}

    def save(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        if str(fp).endswith(".tmp") and "samples" in str(fp):
            calls["n"] += 1
            if calls["n"] == 2:
                raise ENOSPC
        real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    code, _, err = cli("train", *TINY, "--data", str(data), "--steps", "4", "--save-every", "1",
                       "--set", "sample_every=2", "--out", str(run))  # fmt: skip
    assert code == 2 and "Traceback" not in err, err
    assert len(error_lines(err)) == 1, err
    assert "samples/step_00000004.png: No space left on device" in err
    assert "the last complete checkpoint is" in err and "step_00000003.pt" in err
    assert [p.name for p in (run / "samples").glob("*.png")] == ["step_00000002.png"]
    assert temporaries(run) == []


def test_pruning_never_removes_the_last_complete_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, run = dataset(tmp_path), tmp_path / "run"
    # keep_last 1: the new checkpoint must be complete before the old one goes.
    monkeypatch.setattr(torch, "save", _fail_on_call(2, torch.save))
    code, _, err = cli("train", *TINY, "--data", str(data), "--steps", "3", "--save-every", "1",
                       "--set", "keep_last=1", "--out", str(run))  # fmt: skip
    assert code == 2, err
    assert [p.name for p in list_checkpoints(run)] == ["step_00000001.pt"]
    assert load_checkpoint(list_checkpoints(run)[0])["step"] == 1


def test_translations_that_cannot_be_written_leave_no_partial_file(
    tiny_lsesim_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = tmp_path / "in"
    images.mkdir()
    for i in range(3):
        Image.new("RGB", (32, 32), (40 * i, 90, 200)).save(images / f"{i}.png")
    out = tmp_path / "out"
    real_save = Image.Image.save
    calls = {"n": 0}

    def save(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            if hasattr(fp, "write"):
                fp.write(b"\x89PNG half")
            else:
                Path(fp).write_bytes(b"\x89PNG half")
            raise ENOSPC
        real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    code, _, err = cli("translate", "--run", str(tiny_lsesim_run), "--input", str(images),
                       "--output", str(out), "--device", "cpu")  # fmt: skip
    assert code == 2 and "Traceback" not in err, err
    assert "No space left on device" in err and str(out) in err
    assert temporaries(out) == []
    for png in out.glob("*.png"):  # what was written is whole
        Image.open(png).load()


def test_an_export_into_a_folder_that_cannot_be_made_says_so(
    tiny_lsesim_run: Path, tmp_path: Path
) -> None:
    checkpoints_before = {p: digest(p) for p in list_checkpoints(tiny_lsesim_run)}
    blocker = tmp_path / "exports"
    blocker.write_text("a file where the export folder should go")
    target = blocker / "g.pt"
    code, _, err = cli("export", "--run", str(tiny_lsesim_run), "--format", "pt2",
                       "--output", str(target))  # fmt: skip
    assert code == 2 and "Traceback" not in err, err
    assert len(error_lines(err)) == 1, err
    assert f"could not write {target}" in err
    assert blocker.read_text().startswith("a file") and temporaries(tmp_path) == []
    assert {p: digest(p) for p in list_checkpoints(tiny_lsesim_run)} == checkpoints_before


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (needs the right to mount, e.g. root in a container; else skipped)."""
    mount = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0 or shutil.which("mount") is None:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()[:80]}); the patched-writer "
                    "tests above cover the same path")  # fmt: skip
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_real_full_disk_raises_a_write_error_and_keeps_the_old_file(small_disk: Path) -> None:
    old = small_disk / "checkpoints" / "step_00000001.pt"
    save_checkpoint(old, {"format": 1, "w": torch.zeros(1000)})
    before = digest(old)
    big = {"format": 1, "w": torch.zeros(200_000)}  # 800 kB: more than the disk holds
    with pytest.raises(WriteError) as info:
        save_checkpoint(small_disk / "checkpoints" / "step_00000002.pt", big)
    assert "step_00000002.pt: No space left on device" in str(info.value)
    assert digest(old) == before
    assert sorted(p.name for p in (small_disk / "checkpoints").iterdir()) == [
        "step_00000001.json",
        "step_00000001.pt",
    ]
    with pytest.raises(WriteError, match=r"report\.json: No space left on device"):
        atomic_write(small_disk / "report.json", b"x" * 400_000)
    assert not (small_disk / "report.json").exists()
