"""``sesim eval`` end to end on a tiny run, with the random feature extractor."""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from sesim.cli.common import Parser
from sesim.cli.eval import add_parser as add_eval_parser
from sesim.config import preset
from sesim.data.synthetic import write_synthetic_dataset
from sesim.errors import UserError
from sesim.eval.run import seg_class_names
from sesim.metrics.fid import INCEPTION_WEIGHTS_FILE
from sesim.runs import list_checkpoints
from sesim.train import train

ROOT = Path(__file__).resolve().parents[2]
STEPS = 4
N_TEST = 12


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval") / "ds"
    write_synthetic_dataset(root, n=12, size=32, seed=0, task="layout", n_test=N_TEST)
    return root


@pytest.fixture(scope="module")
def run(dataset: Path) -> Path:
    """A 4-step tiny run with a checkpoint at every step."""
    cfg = preset("tiny")
    cfg = replace(
        cfg,
        steps=STEPS,
        save_every=1,
        keep_last=STEPS,
        batch=1,
        log_every=1,
        sample_every=2,
        device="cpu",
        data=replace(cfg.data, root=str(dataset), load_size=32, crop_size=32, workers=0),
        model=replace(cfg.model, ngf=8, n_blocks=1, ndf=8),
        structure=replace(
            cfg.structure,
            vgg_weights="random",
            loss=replace(cfg.structure.loss, num_queries=16, window=8),
        ),
    )
    run_dir = dataset.parent / "run"
    train(cfg, run_dir, quiet=True)
    assert len(list_checkpoints(run_dir)) == STEPS
    return run_dir


@pytest.fixture(scope="module")
def held_out(dataset: Path) -> Path:
    root = dataset.parent / "held"
    write_synthetic_dataset(root, n=1, size=32, seed=1, task="layout", n_test=8)
    return root


def _parser() -> argparse.ArgumentParser:
    """The CLI's one-line-error parser with only the ``eval`` subcommand."""
    parser = Parser(prog="sesim")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    add_eval_parser(sub)
    return parser


def sesim_eval(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``sesim eval ARGV`` as the CLI does; returns (exit status, stdout, stderr)."""
    try:
        args = _parser().parse_args(["eval", *argv])
        try:
            status = int(args.func(args))
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _one_line_error(status: int, err: str) -> str:
    assert status == 2
    line = err.strip()
    assert line.startswith("error: ") and "\n" not in line, err
    return line


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_run_writes_table_json_csv_and_plots(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    argv = ["--run", str(run), "--extractor", "random", "--metrics", "fid,kid,dc"]
    status, stdout, stderr = sesim_eval([*argv, "--out", str(out), "--quiet"], capsys)
    assert status == 0, stderr
    # The table: last and best checkpoints, density/coverage n/a on 12 images with k=95.
    assert f"last (step {STEPS})" in stdout
    assert "best (chosen on the test set)" in stdout
    lines = {line.split("  ")[0]: line for line in stdout.splitlines()}
    assert "(step " in lines["fid (lower)"] and "(step " in lines["kid (lower)"]
    assert "n/a (needs 97 images)" in lines["density (higher)"]
    assert "n/a (needs 97 images)" in lines["coverage (higher)"]
    assert stderr.count("needs at least 97") == 1  # the reason is printed once
    assert "median step" in stdout and "train_summary.json" in stdout

    report = json.loads((out / "metrics.json").read_text())
    assert list(report["steps"]) == [str(s) for s in range(1, STEPS + 1)]
    assert report["last"]["step"] == STEPS
    assert report["num_inputs"] == report["num_reals"] == N_TEST
    for step_values in report["steps"].values():
        assert step_values["fid"] >= 0 and step_values["kid"] is not None
        assert step_values["density"] is None and step_values["coverage"] is None
    fid_best = report["best"]["fid"]
    assert fid_best["selected_on"] == "test set"
    assert fid_best["value"] == min(v["fid"] for v in report["steps"].values())
    assert fid_best["value"] == report["steps"][str(fid_best["step"])]["fid"]
    assert (
        "density" not in report["best"] and "needs at least 97" in report["unavailable"]["density"]
    )
    assert report["training"]["median_step_ms"] > 0
    assert report["training"]["peak_memory_bytes"] == 0  # a CPU run

    rows = _read_csv(out / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    assert float(rows[-1]["fid"]) == pytest.approx(report["steps"][str(STEPS)]["fid"])
    assert rows[0]["density"] == ""
    for name in ("fid.png", "kid.png"):
        with Image.open(out / name) as img:
            assert img.format == "PNG" and img.width > 100
    assert not (out / "dc.png").exists()  # no value at any step: nothing to draw


def test_every_and_chosen_checkpoints(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--run", str(run), "--extractor", "random", "--metrics", "fid", "--quiet"]
    # Every 3rd checkpoint (step 3), always with the last (step 4).
    status, _, err = sesim_eval([*base, "--every", "3", "--out", str(tmp_path / "a")], capsys)
    assert status == 0, err
    assert list(json.loads((tmp_path / "a" / "metrics.json").read_text())["steps"]) == ["3", "4"]

    status, stdout, err = sesim_eval(
        [*base, "--checkpoints", "2,1", "--out", str(tmp_path / "b")], capsys
    )
    assert status == 0, err
    report = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert list(report["steps"]) == ["1", "2"] and report["last"]["step"] == 2
    assert "last (step 2)" in stdout

    status, _, err = sesim_eval([*base, "--checkpoints", "9"], capsys)
    assert "step 9" in _one_line_error(status, err) and "1, 2, 3, 4" in err


def test_nearest_k(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--run", str(run), "--extractor", "random", "--metrics", "dc", "--quiet"]
    base += ["--checkpoints", str(STEPS)]
    # k + 2 = 13 > 12 images: n/a with the number needed, not a crash.
    status, stdout, err = sesim_eval([*base, "--nearest-k", "11", "--out", str(tmp_path)], capsys)
    assert status == 0, err
    assert "n/a (needs 13 images)" in stdout
    # A k the set allows gives numbers.
    status, stdout, err = sesim_eval([*base, "--nearest-k", "3", "--out", str(tmp_path)], capsys)
    assert status == 0, err
    values = json.loads((tmp_path / "metrics.json").read_text())["steps"][str(STEPS)]
    assert values["density"] >= 0 and 0 <= values["coverage"] <= 1
    assert (tmp_path / "dc.png").is_file()


def test_seg_with_yardstick_lpips_and_cached_segmenter(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--run", str(run), "--extractor", "random", "--metrics", "seg,lpips"]
    argv += ["--seg-steps", "5", "--checkpoints", f"1,{STEPS}", "--out", str(tmp_path), "--quiet"]
    status, stdout, err = sesim_eval(argv, capsys)
    assert status == 0, err
    assert "segmenter yardstick on the real testB images" in stdout
    for name in ("seg_pixel_acc (higher)", "seg_miou (higher)", "lpips (lower)"):
        assert name in stdout
    report = json.loads((tmp_path / "metrics.json").read_text())
    yardstick = report["segmenter_yardstick"]
    assert 0 <= yardstick["seg_miou"] <= 1 and 0 <= yardstick["seg_pixel_acc"] <= 1
    for values in report["steps"].values():
        assert 0 <= values["seg_mean_class_acc"] <= 1
        assert values["lpips"] > 0
    assert report["best"]["seg_miou"]["step"] in (1, STEPS)
    # The IoU of each class: named from the dataset's meta.json; seg_miou is their mean over
    # the classes present (labelled or predicted).
    names = ["sky", "ground", "building", "object", "pole", "sign"]
    assert report["seg_classes"] == names
    for values in [*report["steps"].values(), yardstick]:
        ious = [values[f"seg_iou_{k}"] for k in range(len(names))]
        present = [v for v in ious if v is not None]
        assert present and all(0 <= v <= 1 for v in present)
        assert sum(present) / len(present) == pytest.approx(values["seg_miou"])
    assert "seg: IoU of each class" in stdout
    table = stdout.split("seg: IoU of each class")[1]
    assert "real testB (yardstick)" in table and f"last (step {STEPS})" in table
    for k, name in enumerate(names):
        assert f"{k} {name}" in table
    assert (tmp_path / "seg.png").is_file() and (tmp_path / "lpips.png").is_file()
    assert (tmp_path / "segmenter.pt").is_file()

    # The cached segmenter is reused: same scores, no training.
    status, _, err = sesim_eval(argv, capsys)
    assert status == 0, err
    assert "reusing the segmenter" in err
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert again["segmenter_yardstick"] == yardstick
    assert again["steps"] == report["steps"]


def test_select_on_held_out_split(
    run: Path, held_out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--run", str(run), "--extractor", "random", "--metrics", "fid,kid"]
    argv += ["--checkpoints", f"2,{STEPS}", "--select-on", str(held_out)]
    status, stdout, err = sesim_eval([*argv, "--out", str(tmp_path), "--quiet"], capsys)
    assert status == 0, err
    assert "best (chosen on held-out split)" in stdout
    report = json.loads((tmp_path / "metrics.json").read_text())
    held = report["held_out"]["steps"]
    best = report["best"]["fid"]
    assert best["selected_on"].startswith("held-out split")
    assert best["selection_value"] == min(v["fid"] for v in held.values())
    assert best["value"] == report["steps"][str(best["step"])]["fid"]  # reported on the test set
    assert "heldout_fid" in _read_csv(tmp_path / "metrics.csv")[0]


def test_real_and_fake_folders(
    dataset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["--real", str(dataset / "testB"), "--fake", str(dataset / "testA")]
    argv += ["--extractor", "random", "--nearest-k", "4", "--quiet"]
    status, stdout, err = sesim_eval(argv, capsys)
    assert status == 0, err
    out = tmp_path / "eval_testA"  # the default: ./eval_<fake folder name>
    report = json.loads((out / "metrics.json").read_text())
    values = report["values"]
    assert values["fid"] > 0 and values["density"] is not None
    assert report["lpips_pairs"] == N_TEST and values["lpips"] > 0  # the names pair up
    for name in ("fid (lower)", "kid (lower)", "density (higher)", "lpips (lower)"):
        assert name in stdout
    assert _read_csv(out / "metrics.csv")[0]["fid"]

    # Identical folders: FID ~0 and LPIPS exactly 0.
    same = tmp_path / "same"
    argv = ["--real", str(dataset / "testB"), "--fake", str(dataset / "testB")]
    argv += ["--extractor", "random", "--metrics", "fid,lpips", "--out", str(same), "--quiet"]
    status, _, err = sesim_eval(argv, capsys)
    assert status == 0, err
    values = json.loads((same / "metrics.json").read_text())["values"]
    assert values["fid"] == pytest.approx(0.0, abs=1e-6) and values["lpips"] == 0.0


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--metrics", "fid,bogus"],
            "unknown metric 'bogus'; choose from fid, kid, lpips, dc, seg",
        ),
        (["--real", "x"], "give --real DIR --fake DIR"),
        ([], "nothing to score"),
        (["--every", "2", "--checkpoints", "1"], "not both"),
        (["--metrics", "seg", "--seg-weights", "nope.pth"], "drn_d_22_cityscapes.pth"),
    ],
)
def test_user_errors_are_one_line(
    run: Path, argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    full = ["--extractor", "random", *argv]
    if "--real" not in argv and argv:
        full = ["--run", str(run), *full]
    status, _, err = sesim_eval(full, capsys)
    assert expected in _one_line_error(status, err)


def test_mixed_modes_and_run_only_flags(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = sesim_eval(["--run", str(run), "--real", "a", "--fake", "b"], capsys)
    assert "give one of the two" in _one_line_error(status, err)
    status, _, err = sesim_eval(["--real", "a", "--fake", "b", "--every", "2"], capsys)
    assert "--every only applies to --run" in _one_line_error(status, err)


def test_training_stats_from_checkpoint_history(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A run still training has no train_summary.json: the newest checkpoint's history is used.
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("eval", "train_summary.json"))
    argv = ["--run", str(copy), "--extractor", "random", "--metrics", "fid", "--quiet"]
    status, stdout, err = sesim_eval([*argv, "--checkpoints", str(STEPS)], capsys)
    assert status == 0, err
    assert f"history in checkpoint step {STEPS}" in stdout and "median step" in stdout
    training = json.loads((copy / "eval" / "metrics.json").read_text())["training"]
    assert training["median_step_ms"] > 0


def test_missing_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = sesim_eval(["--run", str(tmp_path / "nope"), "--extractor", "random"], capsys)
    assert str(tmp_path / "nope") in _one_line_error(status, err)


def test_inception_without_weights_names_the_file(
    run: Path, _isolated_torch_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, stdout, err = sesim_eval(["--run", str(run), "--quiet"], capsys)
    line = _one_line_error(status, err)
    assert INCEPTION_WEIGHTS_FILE in line and str(_isolated_torch_home) in line
    assert stdout == ""  # failed before any work


def test_help_explains_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["eval", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    flags = ["--run", "--real", "--fake", "--every", "--checkpoints", "--select-on", "--metrics"]
    flags += ["--extractor", "--inception-weights", "--lpips-weights", "--seg-weights"]
    flags += ["--seg-labels", "--seg-steps", "--nearest-k", "--max-images", "--device", "--out"]
    flags += ["--quiet", "--batch-size", "--data"]
    for flag in flags:
        assert flag in text
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices["eval"]._actions:
        assert action.help, f"{action.option_strings} has no help"


def _cli_has_eval() -> bool:
    from sesim.cli.main import build_parser

    sub = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return bool(sub) and "eval" in sub[0].choices


@pytest.mark.skipif(not _cli_has_eval(), reason="sesim.cli does not wire 'eval' yet")
def test_python_m_sesim_eval(run: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TORCH_HOME": str(tmp_path / "th")}
    cmd = [sys.executable, "-m", "sesim", "eval", "--run", str(run)]
    bad = subprocess.run([*cmd, "--metrics", "bogus"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0, bad.stderr
    assert "unknown metric 'bogus'" in bad.stderr
    argv = ["--extractor", "random", "--metrics", "fid", "--every", "4", "--quiet"]
    argv += ["--out", str(tmp_path / "out")]
    good = subprocess.run([*cmd, *argv], capture_output=True, text=True, env=env)
    assert good.returncode == 0, good.stderr
    assert f"last (step {STEPS})" in good.stdout and (tmp_path / "out" / "fid.png").is_file()


def test_scores_go_to_the_runs_tensorboard_log(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    argv = ["--run", str(run), "--extractor", "random", "--metrics", "fid,kid", "--quiet"]
    status, _, err = sesim_eval([*argv, "--out", str(tmp_path / "tb")], capsys)
    assert status == 0, err
    report = json.loads((tmp_path / "tb" / "metrics.json").read_text())
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    fid = events.Scalars("eval/fid")
    assert [e.step for e in fid][-STEPS:] == [1, 2, 3, 4]
    assert fid[-1].value == pytest.approx(report["steps"]["4"]["fid"], rel=1e-5)
    assert "eval/kid" in events.Tags()["scalars"]


def test_seg_class_names_from_meta_cityscapes_or_numbers() -> None:
    assert seg_class_names(2, {"class_names": ["land", "water"]}) == ["land", "water"]
    assert seg_class_names(2, {"classes": ["a", "b"]}) == ["a", "b"]
    # A meta.json that does not name every class of the segmenter is not used.
    assert seg_class_names(3, {"class_names": ["land", "water"]}) == [
        "class 0",
        "class 1",
        "class 2",
    ]
    cityscapes = seg_class_names(19, {})
    assert cityscapes[0] == "road" and cityscapes[-1] == "bicycle" and len(cityscapes) == 19
