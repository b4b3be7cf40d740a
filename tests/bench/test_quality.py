"""``sesim bench quality``: deterministic tasks, sound judges, every method, the whole command."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from sesim.bench import (
    BENCH_PRESETS,
    AppearanceNet,
    BenchPreset,
    Judges,
    TaskData,
    aggregate_seeds,
    available_methods,
    colour_transfer,
    mean_and_se,
    prepare_data,
    prepare_judges,
    run_config,
    score_translations,
    structure_oracle,
    target_rate,
    train_appearance_net,
    train_run,
    translate_all,
)
from sesim.cli.bench import add_parser as add_bench_parser
from sesim.cli.bench import resolve_args
from sesim.config import PRESETS, preset
from sesim.data.synthetic import TASKS, render_sample, write_synthetic_dataset
from sesim.errors import UserError
from sesim.methods import METHODS
from sesim.metrics import evaluate_segmenter, extract_features, fid_from_features, train_segmenter
from sesim.runs import load_generator

#: the quick preset shrunk to a few seconds: 32 px, 2 steps, tiny networks and judges
TOY: BenchPreset = replace(
    BENCH_PRESETS["quick"],
    size=32,
    steps=2,
    batch=2,
    ngf=8,
    n_blocks=1,
    identity_warmup=2,
    ndf=8,
    num_queries=16,
    n_train=8,
    n_test=6,
    aux_steps=5,
    seg_steps=5,
    seg_width=8,
    app_width=8,
)


def _stack(task: str, seeds: range, size: int) -> dict[str, torch.Tensor]:
    """Render scenes straight into tensors: images (N, 3, H, W) in [-1, 1], labels (N, H, W)."""
    samples = [render_sample(task, s, size) for s in seeds]

    def images(key: str) -> torch.Tensor:
        arr = np.stack([getattr(s, key) for s in samples])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1

    labels = torch.from_numpy(np.stack([s.label for s in samples])).long()
    return {"a": images("a"), "b": images("b"), "label": labels}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One intra-op thread: these small convolutions on two threads stall for seconds per
    step when another process holds a core (the threads wait for each other at every op)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> TaskData:
    return prepare_data(tmp_path_factory.mktemp("bench"), "layout", TOY, seed=0)


@pytest.fixture(scope="module")
def toy_judges(toy_data: TaskData) -> Judges:
    return prepare_judges(toy_data, TOY, seed=0, device=torch.device("cpu"))


# ---------------------------------------------------------------------------------------------
# Tasks.


@pytest.mark.parametrize("task", ["layout", "shapes"])
def test_tasks_are_deterministic_for_a_seed(task: str, tmp_path: Path) -> None:
    one, two, other = (render_sample(task, s, 32) for s in (3, 3, 4))
    for key in ("a", "b", "label"):
        assert getattr(one, key).tobytes() == getattr(two, key).tobytes()
    assert one.b.tobytes() != other.b.tobytes()

    # Written datasets: byte-identical files.
    roots = [tmp_path / f"ds{i}" for i in range(2)]
    for root in roots:
        write_synthetic_dataset(root, n=3, size=32, seed=7, task=task, n_test=2)
    files = sorted(p.relative_to(roots[0]) for p in roots[0].rglob("*.png"))
    assert len(files) == 2 * 2 * (3 + 2)  # images + labels, both domains, train + test
    for rel in files:
        assert (roots[0] / rel).read_bytes() == (roots[1] / rel).read_bytes()


def test_prepare_data_is_cached_and_paired(toy_data: TaskData) -> None:
    again = prepare_data(toy_data.root.parents[2], "layout", TOY, seed=0)
    assert again.root == toy_data.root
    assert torch.equal(again.test_b, toy_data.test_b)
    n, size = TOY.n_test, TOY.size
    assert toy_data.test_a.shape == toy_data.test_b.shape == (n, 3, size, size)
    assert toy_data.labels_test.shape == (n, size, size)
    assert toy_data.train_b.shape == (TOY.n_train, 3, size, size)
    # The reference set shows other scenes than the test set.
    assert toy_data.reference.shape == toy_data.test_b.shape
    assert not torch.equal(toy_data.reference, toy_data.test_b)


# ---------------------------------------------------------------------------------------------
# Judges.


def test_segmenter_is_accurate_on_real_target_images() -> None:
    train = _stack("layout", range(0, 64), 32)
    test = _stack("layout", range(1000, 1016), 32)
    num_classes = TASKS["layout"].n_classes
    model = train_segmenter(
        train["b"], train["label"], num_classes, steps=150, batch_size=8, width=8, seed=0
    )
    scores = evaluate_segmenter(model, test["b"], test["label"], num_classes)
    assert scores["pixel_acc"] > 0.85, scores
    # Domain-A images (flat palette colours) are not what it was trained on.
    assert evaluate_segmenter(model, test["a"], test["label"], num_classes)["pixel_acc"] < 0.85


def test_appearance_net_separates_the_domains() -> None:
    train = _stack("shapes", range(0, 48), 32)
    test = _stack("shapes", range(1000, 1024), 32)
    num_classes = TASKS["shapes"].n_classes
    args = (train["a"], train["b"], train["label"], train["label"], num_classes)
    model = train_appearance_net(*args, steps=60, batch_size=8, width=8, seed=0)
    assert target_rate(model, test["b"]) > 0.9
    assert target_rate(model, test["a"]) < 0.1

    # Features: 20 * width texture statistics; real B is closer to real B than A is.
    reference = _stack("shapes", range(2000, 2024), 32)["b"]
    ref = extract_features(model.features, reference)
    assert ref.shape == (24, 20 * 8)
    fid_b = fid_from_features(ref, extract_features(model.features, test["b"]))
    fid_a = fid_from_features(ref, extract_features(model.features, test["a"]))
    assert fid_b < fid_a / 5


def test_appearance_net_shapes() -> None:
    model = AppearanceNet(num_classes=6, width=4)
    domain, coverage = model(torch.zeros(2, 3, 24, 40))
    assert domain.shape == (2, 2) and coverage.shape == (2, 6)
    assert model.features(torch.zeros(2, 3, 24, 40)).shape == (2, model.num_features)


# ---------------------------------------------------------------------------------------------
# Methods and configs.


def test_every_row_shares_networks_data_and_budget(toy_data: TaskData) -> None:
    rows = available_methods()
    assert {"fsesim", "lsesim", *(f"table3-{r}" for r in "ABCDEF")} <= set(rows)
    configs = {m: run_config(m, TOY, toy_data.root, 0, "cpu", "random") for m in rows}
    shared = {
        (
            c.steps,
            c.batch,
            c.model,
            c.data,
            c.optim.lr,
            c.optim.ema,
            c.structure.loss.num_queries,
        )
        for c in configs.values()
    }
    assert len(shared) == 1
    assert next(iter(configs.values())).optim.ema > 0  # every row scored by its averaged G
    # The bench's identity warm-up, except for the CPU preset tuned to start without it.
    cold = {m for m, c in configs.items() if c.optim.identity_warmup == 0}
    assert cold == {"distancegan"}
    assert all(configs[m].optim.identity_warmup == TOY.identity_warmup for m in set(rows) - cold)
    # The identity L1 on target images is F/LSeSim's structure term; the baselines that have
    # no pixel identity term of their own and stayed in the input domain without one carry it
    # as a baseline setting; CycleGAN and GcGAN keep their own identity terms.
    assert configs["fsesim"].structure.identity_weight > 0
    assert configs["lsesim"].structure.identity_weight > 0
    assert all(c.structure.identity_weight == 0 for c in configs.values() if c.method != "sesim")
    carried = {m for m, c in configs.items() if c.baseline.identity_weight > 0}
    assert carried == {"perceptual", "distancegan"}
    # Windows keep their size relative to the image: tiny is at 64 px, Table 3 at 256 px.
    quick = BENCH_PRESETS["quick"]
    assert (
        run_config("fsesim", quick, toy_data.root, 0, "cpu", "random").structure.loss.window == 16
    )
    c = run_config("table3-C", quick, toy_data.root, 0, "cpu", "random")
    assert c.structure.loss.window == 8
    assert run_config(
        "table3-B", quick, toy_data.root, 0, "cpu", "random"
    ).structure.loss.variant == ("global")


def _row_of(method: str) -> str | None:
    """The first bench row trained with a registered method."""
    for row, preset_name in available_methods().items():
        if preset(preset_name).method == method:
            return row
    return None


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_two_steps_in_the_bench(
    method: str, toy_data: TaskData, toy_judges: Judges, tmp_path: Path
) -> None:
    row = _row_of(method)
    if row is None:
        modes = {f().mode for f in PRESETS.values() if f().method == method}
        if modes and "single" not in modes:
            pytest.skip(f"{method} is {'/'.join(sorted(modes))}: not a two-domain bench method")
    assert row is not None, f"method {method!r} has no bench row: add a tiny-{method} preset"
    cfg = run_config(row, TOY, toy_data.root, 0, "cpu", "random")
    final, reused = train_run(cfg, tmp_path / row)
    assert not reused
    G, _, step = load_generator(None, final, torch.device("cpu"))
    assert step == TOY.steps
    fakes = translate_all(G, toy_data.test_a, torch.device("cpu"))
    assert fakes.shape == toy_data.test_a.shape and torch.isfinite(fakes).all()
    scores = score_translations(fakes, toy_data, toy_judges, 0, torch.device("cpu"))
    assert 0 <= scores["miou"] <= 1 and scores["fid"] >= 0 and 0 <= scores["target_rate"] <= 1

    # A finished run with the same config is reused; another config is refused.
    assert train_run(cfg, tmp_path / row) == (final, True)
    with pytest.raises(UserError, match="another config"):
        train_run(replace(cfg, steps=3), tmp_path / row)


# ---------------------------------------------------------------------------------------------
# The command.


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sesim")
    add_bench_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_unknown_method_lists_the_valid_ones(tmp_path: Path) -> None:
    args = _parse(["bench", "quality", "--methods", "fsesim,nope", "--out", str(tmp_path)])
    with pytest.raises(UserError, match=r"unknown method\(s\) nope; choose from: fsesim, lsesim"):
        args.func(args)
    args = _parse(["bench", "quality", "--tasks", "cityscapes", "--out", str(tmp_path)])
    with pytest.raises(UserError, match="layout, shapes"):
        args.func(args)


def test_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    argv = ["bench", "quality", "--steps", "2", "--size", "32", "--methods", "fsesim,table3-B"]
    argv += ["--tasks", "layout", "--out", str(out), "--n-train", "8", "--n-test", "6"]
    argv += ["--aux-steps", "5", "--seeds", "0,1", "--jobs", "2", "--quiet"]
    args = _parse(argv)
    assert args.func(args) == 0

    printed = capsys.readouterr().out
    assert "| fsesim |" in printed and str(out / "results.md") in printed
    md = (out / "results.md").read_text()
    assert "## layout" in md and "| table3-B |" in md and "*input A*" in md and "*oracle*" in md
    assert "*colour transfer*" in md
    assert "| method | pixel acc | mIoU | FID | KID | target rate | ms/step | peak mem |" in md
    assert "--jobs 2" in md and "--seeds 0,1" in md and "training seeds 0, 1" in md
    assert "Lowest target rate of a run:" in md
    results = json.loads((out / "results.json").read_text())
    assert results["jobs"] == 2 and results["preset"]["size"] == 32
    assert results["seeds"] == [0, 1] and results["data_seed"] == 0
    layout = results["tasks"]["layout"]
    rows = {r["method"]: r for r in layout["rows"]}
    assert set(rows) == {"input A", "real B", "oracle", "colour transfer", "fsesim", "table3-B"}
    # Method rows: mean and standard error over the two seeds' runs.
    runs = [r for r in layout["runs"] if r["method"] == "fsesim"]
    assert [r["seed"] for r in runs] == [0, 1]
    miou = [r["miou"] for r in runs]
    assert rows["fsesim"]["miou_runs"] == pytest.approx(miou)
    assert rows["fsesim"]["miou"] == pytest.approx(sum(miou) / 2)
    assert rows["fsesim"]["miou_se"] == pytest.approx(abs(miou[0] - miou[1]) / 2)
    assert f"{rows['fsesim']['miou']:.3f} ± {rows['fsesim']['miou_se']:.3f}" in md
    assert rows["fsesim"]["steps"] == 2 and rows["fsesim"]["median_step_ms"] > 0
    assert rows["fsesim"]["peak_memory_bytes"] is None  # CPU: n/a
    assert rows["fsesim"]["min_target_rate"] == min(r["target_rate"] for r in runs)
    assert all(r["train_s"] > 0 for r in layout["runs"])
    # The oracle keeps the layout exactly: the segmenter scores it far above the input.
    assert rows["oracle"]["pixel_acc"] > rows["input A"]["pixel_acc"]
    # Per-class IoU: one value per class for every run and row; mIoU is their mean.
    classes = layout["classes"]
    for r in [*layout["runs"], *layout["rows"][:4]]:
        present = [v for v in r["class_iou"] if v is not None]
        assert len(r["class_iou"]) == len(classes) and present
        assert r["miou"] == pytest.approx(sum(present) / len(present))
    first = [r["class_iou"][0] for r in runs]
    assert rows["fsesim"]["class_iou"][0] == pytest.approx(sum(first) / 2)
    assert rows["fsesim"]["class_iou_se"][0] == pytest.approx(abs(first[0] - first[1]) / 2)
    assert "| method | " + " | ".join(classes) + " |" in md
    assert f"{rows['fsesim']['class_iou'][0]:.3f} ± {rows['fsesim']['class_iou_se'][0]:.3f}" in md
    for name in ("layout_fsesim_seed0.png", "layout_fsesim_seed1.png", "layout_table3-B_seed1.png"):
        assert (out / "samples" / name).stat().st_size > 0
    assert (out / "structure_vs_appearance.png").stat().st_size > 0
    for seed in (0, 1):
        assert (out / "runs" / "layout" / "fsesim" / f"seed{seed}" / "train_summary.json").is_file()

    # Again, in this process: the runs and judges are reused and score the same.
    args = _parse([*argv[:-3], "--jobs", "1", "--quiet"])
    assert args.func(args) == 0
    again = json.loads((out / "results.json").read_text())["tasks"]["layout"]
    assert all(r["train_s"] is None for r in again["runs"])
    assert [r["miou"] for r in again["rows"]] == pytest.approx([r["miou"] for r in rows.values()])


def test_seed_flags(tmp_path: Path) -> None:
    args = resolve_args(_parse(["bench", "quality", "--seeds", "2,0,2", "--out", str(tmp_path)]))
    assert args.seeds == [2, 0] and args.data_seed == 0
    assert resolve_args(_parse(["bench", "quality", "--seed", "3"])).seeds == [3]
    assert resolve_args(_parse(["bench", "quality"])).seeds == [0]
    with pytest.raises(UserError, match="either --seeds or --seed"):
        resolve_args(_parse(["bench", "quality", "--seeds", "1", "--seed", "2"]))
    with pytest.raises(SystemExit):
        _parse(["bench", "quality", "--seeds", "0,x"])


def test_aux_steps_sets_the_steps_of_both_judges(tmp_path: Path) -> None:
    quick = BENCH_PRESETS["quick"]
    default = resolve_args(_parse(["bench", "quality", "--out", str(tmp_path)])).bench
    assert (default.aux_steps, default.seg_steps) == (quick.aux_steps, quick.seg_steps)
    args = resolve_args(_parse(["bench", "quality", "--aux-steps", "7", "--out", str(tmp_path)]))
    assert (args.bench.aux_steps, args.bench.seg_steps) == (7, 7)


def test_mean_and_standard_error() -> None:
    assert mean_and_se([0.5]) == (0.5, None)
    mean, se = mean_and_se([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    assert se == pytest.approx(float(torch.tensor([1.0, 2.0, 4.0]).std() / 3**0.5))
    row = aggregate_seeds(
        [
            {
                "method": "m",
                "kind": "method",
                "seed": 0,
                "miou": 0.2,
                "target_rate": 1.0,
                "run": "a",
            },
            {
                "method": "m",
                "kind": "method",
                "seed": 1,
                "miou": 0.4,
                "target_rate": 0.5,
                "run": "b",
            },
        ]
    )
    assert row["miou"] == pytest.approx(0.3) and row["miou_se"] == pytest.approx(0.1)
    assert row["min_target_rate"] == 0.5 and row["seeds"] == [0, 1] and row["runs"] == ["a", "b"]
    assert row["fid"] is None and row["fid_runs"] == []
    assert "class_iou" not in row  # runs without per-class scores (an older results.json)


def test_per_class_iou_is_averaged_over_the_seeds_that_have_the_class() -> None:
    runs = [
        {"method": "m", "kind": "method", "seed": s, "run": str(s), "class_iou": iou}
        for s, iou in enumerate([[1.0, 0.2, None], [0.5, 0.4, None], [0.0, None, None]])
    ]
    row = aggregate_seeds(runs)
    assert row["class_iou"][:2] == pytest.approx([0.5, 0.3])
    assert row["class_iou"][2] is None and row["class_iou_se"][2] is None
    assert row["class_iou_se"][0] == pytest.approx(0.5 / 3**0.5)
    assert row["class_iou_se"][1] == pytest.approx(0.1)


def test_structure_oracle_paints_class_means(toy_data: TaskData) -> None:
    oracle = structure_oracle(toy_data)
    assert oracle.shape == toy_data.test_a.shape
    pixels = toy_data.train_b.permute(0, 2, 3, 1)
    for k in toy_data.labels_test.unique().tolist():
        where = toy_data.labels_test == k
        painted = oracle.permute(0, 2, 3, 1)[where]
        expected = (
            pixels[toy_data.labels_train_b == k].mean(0)
            if (toy_data.labels_train_b == k).any()
            else pixels.reshape(-1, 3).mean(0)
        )
        assert torch.allclose(painted, expected.expand_as(painted), atol=1e-5)


def test_a_run_folder_from_an_older_version_counts_missing_fields_as_defaults(
    tmp_path: Path,
) -> None:
    # A folder saved before a config field existed (here optim.d_lr_scale and
    # structure.loss.center) is the same run as today's config with those fields at their
    # defaults; a real difference is still refused.
    import yaml

    from sesim.bench.jobs import check_run_dir
    from sesim.config import to_dict

    cfg = preset("tiny")
    saved = to_dict(cfg)
    del saved["optim"]["d_lr_scale"]
    del saved["structure"]["loss"]["center"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    check_run_dir(cfg, tmp_path)
    with pytest.raises(UserError, match=r"another config \(differs in optim.d_lr_scale\)"):
        check_run_dir(replace(cfg, optim=replace(cfg.optim, d_lr_scale=2.0)), tmp_path)
    # A field this version does not know means another config too.
    saved["optim"]["retired_option"] = 1
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(UserError, match=r"another config \(.*retired_option"):
        check_run_dir(cfg, tmp_path)


def test_colour_transfer_recolours_inputs_with_target_values(toy_data: TaskData) -> None:
    moved = colour_transfer(toy_data)
    assert moved.shape == toy_data.test_a.shape
    for c in range(3):
        # Every value is one of the target domain's, and each flat input colour stays one colour.
        assert torch.isin(moved[:, c], toy_data.train_b[:, c].unique()).all()
        for value in toy_data.test_a[:, c].unique()[:5]:
            assert moved[:, c][toy_data.test_a[:, c] == value].unique().numel() == 1
