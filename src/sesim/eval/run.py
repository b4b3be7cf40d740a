"""``sesim eval``: score a run's checkpoints, or any two image folders, with the metrics.

Two modes:

``sesim eval --run RUN_DIR``
    Each saved generator (the never-pruned snapshots of ``snapshot_every`` and the last full
    checkpoints, one row per step; all of them, every K-th, or chosen steps) translates the run's test
    inputs (``testA/``, or ``testB/`` for a ``BtoA`` run) at their own size, and the
    translations are scored against the real target-domain test images (``testB/`` or
    ``testA/``):

    - ``fid``, ``kid`` (lower is better) and ``dc`` (density and coverage, higher is better) on
      the features of one extractor: the FID Inception-v3, or a fixed random conv net that is
      only good for smoke tests;
    - ``lpips`` (lower is better): the mean LPIPS distance between each translation and its
      paired real target. Only paired test sets have one (the synthetic datasets, whose
      ``testA/x.png`` and ``testB/x.png`` show one scene); other runs skip it with a notice;
    - ``seg`` (higher is better): a segmenter labels the translations and its maps are compared
      with the label maps of the *inputs* (pixel accuracy, mean class accuracy, mean IoU, and
      the IoU of each class, which shows which parts of the layout were lost). On
      the synthetic datasets a :class:`~sesim.metrics.SmallSegmenter` is trained on the real
      target-domain training images (cached as ``OUT/segmenter.pt``); its score on the real
      target test images is reported as the yardstick. With ``--seg-weights`` the Cityscapes
      DRN-D-22 is used instead.

    Written to ``OUT`` (default ``RUN/eval``): ``metrics.json``, ``metrics.csv`` and one PNG
    per metric over training steps; the scores also go to the run's TensorBoard log (``RUN/tb``:
    ``eval/fid``, ``eval/kid``, ..., at each checkpoint's step). A table of the last checkpoint and
    the best one per score is
    printed, with the run's training peak memory and median step time. The best checkpoint is
    chosen on the test set itself unless ``--select-on DIR`` names a held-out split; the table
    says which. Choosing the best snapshot on the test set is the paper's protocol (the best
    FID over the generators saved every 10 epochs); ``--select-on`` chooses it on held-out data
    and reports that generator's test-set numbers instead, which is the unbiased choice.

``sesim eval --real DIR --fake DIR``
    FID, KID and density/coverage between two folders (and LPIPS when every fake image has a
    real one with the same file stem), so outputs of other tools are scored the same way.

Sizes are never matched silently. The feature extractor resizes every image to its own input
(299x299 for Inception, 64x64 for the random extractor; anti-aliased bilinear), so sets of
different sizes are compared after that resize. For LPIPS a translation is resized to its
target's size (anti-aliased bilinear); for ``seg`` the segmenter's logits are resized to the
label map's size (bilinear). Each of these prints one line when it happens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from sesim.cityscapes import TRAIN_CLASSES
from sesim.devices import resolve_device
from sesim.errors import UserError
from sesim.eval.multimodal import MultimodalSettings, make_diversity_lpips, multimodal_scores
from sesim.eval.report import (
    COLUMNS,
    SCORES,
    best_checkpoints,
    class_iou_table,
    fmt,
    format_table,
    label,
    plot_metric,
    run_table,
    training_line,
    training_stats,
    write_csv,
)
from sesim.eval.scoring import (
    DEFAULT_SEG_STEPS,
    SEG_CLASS_PREFIX,
    Notices,
    Scorer,
    Unavailable,
    Values,
    feature_scores,
    make_extractor,
    make_lpips,
    score_generator,
    segmentation_yardstick,
    small_segmenter,
)
from sesim.eval.sets import (
    HELD_OUT,
    TEST_SET,
    Split,
    batches,
    load_image_set,
    load_split,
    pairs_by_stem,
    read_meta,
    resize,
    size_text,
    splits,
)
from sesim.loggers import tensorboard_writer
from sesim.metrics import METRICS, load_drn_d_22, lpips_distance
from sesim.metrics.prdc import DEFAULT_NEAREST_K
from sesim.runs import (
    config_of,
    list_checkpoints,
    list_generators,
    load_generator,
    newest_readable_checkpoint,
    write_json,
)

_NOTHING_LEFT = (
    "none of the requested metrics can be computed here (see the notices above); choose "
    "others with --metrics"
)

# ---------------------------------------------------------------------------------------------
# Options.


@dataclass(frozen=True)
class EvalOptions:
    """What ``sesim eval`` scores and how (one field per flag; see the module docstring).

    Attributes:
        run: a training run whose checkpoints are scored (or None with ``real``/``fake``).
        real: folder of real target-domain images (with ``fake``).
        fake: folder of translated images scored against ``real``.
        every: score every K-th checkpoint (always with the last).
        checkpoints: comma-separated training steps to score.
        select_on: a held-out dataset used only to choose the best checkpoint.
        data: the run's dataset folder, when it has moved.
        metrics: comma-separated metric names (None: the defaults of the mode).
        extractor: ``inception`` or ``random`` (smoke tests only).
        inception_weights: the FID Inception weights file.
        lpips_weights: torchvision's AlexNet weights for LPIPS.
        seg_weights: the Cityscapes DRN-D-22 weights (instead of a small segmenter).
        seg_labels: label maps of the test inputs.
        seg_steps: training steps of the small segmenter.
        seg_size: ``HxW`` the translations are resized to before DRN-D-22 (``128x256``, CUT's
            protocol), or ``native``.
        nearest_k: k of density/coverage.
        rounds: multi-modal runs: R rounds of (up to) 100 inputs in fresh styles; FID mean and
            std over the rounds, density/coverage once over the R x 100 outputs, LPIPS over
            R pairs per input (the paper: 19, i.e. 1,900 outputs and pairs).
        max_images: use only the first N images of each folder.
        batch_size: images per generator / extractor call.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        out: the output folder (default ``RUN/eval`` or ``./eval_<fake folder>``).
        quiet: no progress bars.
    """

    run: Path | None = None
    real: Path | None = None
    fake: Path | None = None
    every: int | None = None
    checkpoints: str | None = None
    select_on: Path | None = None
    data: Path | None = None
    metrics: str | None = None
    extractor: str = "inception"
    inception_weights: Path | None = None
    lpips_weights: Path | None = None
    seg_weights: Path | None = None
    seg_labels: Path | None = None
    seg_steps: int = DEFAULT_SEG_STEPS
    seg_size: str = "128x256"
    nearest_k: int = DEFAULT_NEAREST_K
    rounds: int = 19
    max_images: int | None = None
    batch_size: int = 16
    device: str = "auto"
    out: Path | None = None
    quiet: bool = False


def _check_mode(opts: EvalOptions) -> None:
    """Refuse mixed or incomplete modes, and flags that do not apply to the chosen mode."""
    folders = opts.real is not None or opts.fake is not None
    if opts.run is not None and folders:
        raise UserError(
            "--run scores a run's checkpoints and --real/--fake two image folders: give one "
            "of the two"
        )
    if opts.run is None and not folders:
        raise UserError("nothing to score: give --run RUN_DIR, or --real DIR --fake DIR")
    if folders and (opts.real is None or opts.fake is None):
        given, missing = ("--real", "--fake") if opts.fake is None else ("--fake", "--real")
        raise UserError(f"{given} needs {missing} too: give --real DIR --fake DIR")
    if folders:
        run_only = [
            flag
            for flag, value in (
                ("--every", opts.every),
                ("--checkpoints", opts.checkpoints),
                ("--select-on", opts.select_on),
                ("--data", opts.data),
                ("--seg-weights", opts.seg_weights),
                ("--seg-labels", opts.seg_labels),
            )
            if value is not None
        ]
        if run_only:
            verb = "applies" if len(run_only) == 1 else "apply"
            raise UserError(
                f"{', '.join(run_only)} only {verb} to --run; drop it with --real/--fake"
            )
    if opts.every is not None and opts.checkpoints is not None:
        raise UserError("give --every K or --checkpoints STEP,STEP, not both")


def parse_metrics(text: str) -> list[str]:
    """Metric names of a ``--metrics`` value, checked against :data:`sesim.metrics.METRICS`.

    Args:
        text: comma-separated names, e.g. ``"fid,kid"``.
    Returns:
        The names in the order given, without duplicates.
    Raises:
        UserError: an unknown name, or none at all.
    """
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        if name not in METRICS:
            raise UserError(f"unknown metric {raw.strip()!r}; choose from {', '.join(METRICS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise UserError(f"--metrics names no metric; choose from {', '.join(METRICS)}")
    return names


def parse_seg_size(text: str) -> tuple[int, int] | None:
    """``"128x256"`` -> (128, 256) (height x width); ``"native"`` -> None (no resize)."""
    if text.strip().lower() == "native":
        return None
    parts = text.lower().split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"--seg-size takes HxW such as 128x256, or native; got {text!r}") from None
    if h < 1 or w < 1:
        raise UserError(f"--seg-size must be positive, got {text!r}")
    return h, w


def _select_checkpoints(
    run: Path, ckpts: list[Path], every: int | None, chosen: str | None
) -> list[Path]:
    """All checkpoints, every K-th (with the last), or those of the chosen steps."""
    steps = {int(p.stem.removeprefix("step_")): p for p in ckpts}
    if chosen is not None:
        wanted: list[int] = []
        for raw in chosen.split(","):
            text = raw.strip().removeprefix("step_").removesuffix(".pt")
            if not text:
                continue
            try:
                wanted.append(int(text))
            except ValueError:
                raise UserError(
                    f"--checkpoints takes training steps such as 500,1000; got {raw.strip()!r}"
                ) from None
        if not wanted:
            raise UserError("--checkpoints names no step; give e.g. --checkpoints 500,1000")
        absent = [s for s in wanted if s not in steps]
        if absent:
            have = ", ".join(str(s) for s in sorted(steps))
            raise UserError(
                f"no checkpoint of step {absent[0]} in {run / 'checkpoints'} (saved: {have})"
            )
        return [steps[s] for s in sorted(set(wanted))]
    if every is not None:
        picked = ckpts[every - 1 :: every]
        if ckpts[-1] not in picked:
            picked.append(ckpts[-1])
        return picked
    return ckpts


# ---------------------------------------------------------------------------------------------
# The command.


def evaluate(opts: EvalOptions) -> int:
    """Run ``sesim eval`` (see the module docstring); returns the exit status."""
    _check_mode(opts)
    if opts.metrics is not None:
        parse_metrics(opts.metrics)  # a typo fails before any work
    if opts.run is not None:
        return evaluate_run(opts)
    return evaluate_folders(opts)


def evaluate_run(opts: EvalOptions) -> int:
    """``sesim eval --run RUN_DIR``: score checkpoints, write OUT, print the table."""
    notice = Notices()
    run = opts.run
    if run is None:
        raise UserError("nothing to score: give --run RUN_DIR")
    if not run.is_dir():
        raise UserError(f"run folder {run} does not exist; give the --out folder of a training run")
    full = list_checkpoints(run)
    if not full:
        raise UserError(f"{run} holds no checkpoint yet (looked in {run / 'checkpoints'})")
    # Newer checkpoints that cannot be read are skipped (one warning each); the generator
    # snapshots (never pruned) and the readable full checkpoints are scored, one per step.
    newest_path, newest = newest_readable_checkpoint(run)
    ckpts = list_generators(run, skip=[c for c in full if c > newest_path])
    chosen = _select_checkpoints(run, ckpts, opts.every, opts.checkpoints)
    cfg = config_of(newest)
    root = opts.data if opts.data is not None else Path(cfg.data.root)
    if not root.is_dir():
        raise UserError(
            f"the run's dataset {root} does not exist (moved?); pass its folder with --data DIR"
        )
    direction = cfg.data.direction
    src, dst = splits(direction)
    labels_dir = opts.seg_labels if opts.seg_labels is not None else root / "labels" / src
    if opts.metrics is not None:
        metrics = parse_metrics(opts.metrics)
    else:
        metrics = ["fid", "kid", "dc"] + (["seg"] if labels_dir.is_dir() else [])
    out: Path = opts.out if opts.out is not None else run / "eval"
    device = resolve_device(opts.device)

    # Networks of the metrics first: a missing weights file fails before any work is done.
    extractor = make_extractor(opts.extractor, opts.inception_weights, device, metrics)
    scorer = Scorer(metrics, extractor, device, opts.batch_size, opts.nearest_k)
    seg_labels = labels_dir if "seg" in metrics else None
    test = load_split(root, direction, TEST_SET, opts.max_images, seg_labels, "lpips" in metrics)
    if "lpips" in metrics:
        if test.targets is None:
            notice(
                f"lpips skipped: the test set of {root} is not paired (no meta.json pairing "
                "testA/ and testB/ by name); lpips compares each translation with its real "
                "counterpart"
            )
            metrics.remove("lpips")
        else:
            scorer.lpips = make_lpips(opts.extractor, opts.lpips_weights, device)
    yardstick = None
    if "seg" in metrics:
        _setup_segmentation(opts, scorer, root, direction, labels_dir, test, out, notice)
        if scorer.segmenter is None:
            metrics.remove("seg")
        else:
            yardstick = segmentation_yardstick(test, scorer)
            if yardstick is None:
                notice(
                    f"no segmenter yardstick: {root / 'labels' / dst} (label maps of the real "
                    "target images) does not exist"
                )

    if not metrics:
        raise UserError(_NOTHING_LEFT)

    held: Split | None = None
    if opts.select_on is not None:
        held_labels = opts.select_on / "labels" / src
        held = load_split(
            opts.select_on,
            direction,
            HELD_OUT,
            opts.max_images,
            held_labels if "seg" in metrics else None,
            "lpips" in metrics,
        )
        held.real_features = scorer.features(held.reals)
        if "seg" in metrics and held.labels is None:
            notice(f"seg on the held-out split needs {held_labels}; seg is chosen on the test set")
        if "lpips" in metrics and held.targets is None:
            notice("the held-out split is not paired; lpips is chosen on the test set")
    test.real_features = scorer.features(test.reals)
    mm_lpips = None
    mm_settings = MultimodalSettings(n_styles=opts.rounds, pairs_per_input=opts.rounds)
    if cfg.mode == "multimodal":
        n_mm = min(len(test.inputs.names), mm_settings.max_inputs)
        print(
            f"multi-modal protocol (Table 2): {opts.rounds} rounds of {n_mm} inputs in fresh "
            f"styles; FID mean and std over the rounds, density/coverage once over the "
            f"{opts.rounds * n_mm} outputs (k = {opts.nearest_k}), LPIPS over "
            f"{opts.rounds * n_mm} pairs"
        )
        mm_lpips, backbone = make_diversity_lpips(
            opts.lpips_weights, opts.extractor == "random", device
        )
        if mm_lpips is None:
            notice(backbone)

    print(
        f"scoring {len(chosen)} checkpoint(s) of {run} on {len(test.inputs.names)} test inputs "
        f"({root / src}) against {len(test.reals.names)} real images ({root / dst}); "
        f"metrics: {', '.join(metrics)}; extractor: {opts.extractor}"
    )
    if opts.extractor == "random":
        notice("--extractor random: the numbers are for smoke tests only, not comparable")
    if yardstick is not None:
        parts = ", ".join(
            f"{k} {v:.3f}"
            for k, v in yardstick.items()
            if v is not None and not k.startswith(SEG_CLASS_PREFIX)
        )
        print(f"segmenter yardstick on the real {dst} images: {parts}")

    results: dict[int, Values] = {}
    heldout: dict[int, Values] = {}
    missing: dict[str, Unavailable] = {}
    bar = tqdm(chosen, desc="eval", unit="ckpt", disable=opts.quiet, dynamic_ncols=True)
    for path in bar:
        G, _, step = load_generator(None, path, device)
        values, why = score_generator(G, test, scorer, notice)
        if cfg.mode == "multimodal":
            mm_values, mm_why = multimodal_scores(G, test, scorer, mm_lpips, mm_settings)
            values.update(mm_values)
            why.update(mm_why)
        results[step] = values
        if held is not None:
            heldout[step], held_why = score_generator(G, held, scorer, notice)
            why = {**held_why, **why}
        for column, reason in why.items():
            missing.setdefault(column, reason)
            notice(f"n/a: {reason.reason}")
        shown = {k: fmt(k, v) for k, v in values.items() if k in ("fid", "kid")}
        bar.set_postfix({"step": step, **shown}, refresh=False)
        del G
    bar.close()

    selected_on = TEST_SET if held is None else f"{HELD_OUT} ({opts.select_on})"
    best = best_checkpoints(results, heldout if held is not None else results, selected_on)
    last_step = max(results)
    stats = training_stats(run, newest)

    # Files.
    columns = [c for c in COLUMNS if any(c in v for v in results.values())]
    report: dict[str, Any] = {
        "mode": "run",
        "run": str(run),
        "dataset": str(root),
        "direction": direction,
        "inputs": str(root / src),
        "reals": str(root / dst),
        "num_inputs": len(test.inputs.names),
        "num_reals": len(test.reals.names),
        "extractor": opts.extractor,
        "nearest_k": opts.nearest_k,
        "metrics": metrics,
        "selected_on": selected_on,
        "steps": {str(s): results[s] for s in sorted(results)},
        "last": {"step": last_step, "values": results[last_step]},
        "best": best,
        "unavailable": {k: v.reason for k, v in missing.items()},
        "training": stats,
    }
    if cfg.mode == "multimodal":
        n_mm = min(len(test.inputs.names), mm_settings.max_inputs)
        report["multimodal"] = {
            "rounds": opts.rounds,
            "inputs": n_mm,
            "outputs": opts.rounds * n_mm,
            "lpips_pairs": opts.rounds * n_mm,
        }
    if held is not None:
        report["held_out"] = {
            "dataset": str(opts.select_on),
            "num_inputs": len(held.inputs.names),
            "num_reals": len(held.reals.names),
            "steps": {str(s): heldout[s] for s in sorted(heldout)},
        }
    if yardstick is not None:
        report["segmenter_yardstick"] = {"images": str(root / dst), **yardstick}
    names = None
    if f"{SEG_CLASS_PREFIX}0" in results[last_step]:
        names = seg_class_names(scorer.num_classes, read_meta(root))
        report["seg_classes"] = names
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", report)
    header = ["step", *columns]
    if held is not None:
        header += [f"heldout_{c}" for c in columns]
    rows = []
    for s in sorted(results):
        row: list[Any] = [s, *(results[s].get(c) for c in columns)]
        if held is not None:
            row += [heldout[s].get(c) for c in columns]
        rows.append(row)
    write_csv(header, rows, out / "metrics.csv")
    _log_scores(run, results, heldout if held is not None else None)
    plots = []
    for metric in METRICS:
        path = out / f"{metric}.png"
        heldout_values = heldout if held is not None else None
        seg_yardstick = yardstick if metric == "seg" else None
        if metric in metrics and plot_metric(
            metric, results, heldout_values, best, seg_yardstick, path
        ):
            plots.append(path)
        else:
            path.unlink(missing_ok=True)  # a figure of an earlier evaluation would mislead

    # Tables.
    print()
    print(run_table(last_step, results[last_step], best, missing, held is not None))
    print()
    if names is not None:
        checkpoints = [(f"last (step {last_step})", results[last_step])]
        best_seg = best.get("seg_miou")
        if best_seg is not None and best_seg["step"] != last_step:
            step = best_seg["step"]
            checkpoints.append((f"best seg_miou (step {step})", results[step]))
        if yardstick is not None:
            checkpoints.append((f"real {dst} (yardstick)", yardstick))
        print("seg: IoU of each class (the seg_miou above is their mean)")
        print(class_iou_table(names, checkpoints))
        print()
    print(training_line(stats))
    written = ", ".join(p.name for p in [out / "metrics.json", out / "metrics.csv", *plots])
    print(f"wrote {written} to {out}")
    return 0


def _log_scores(
    run: Path, results: dict[int, dict[str, Any]], heldout: dict[int, dict[str, Any]] | None
) -> None:
    """Add the scores to the run's TensorBoard log (``eval/fid``, ``eval_heldout/fid``, ...) at
    the step of their checkpoint; nothing without the tensorboard package."""
    writer = tensorboard_writer(run)
    if writer is None:
        return
    for prefix, table in (("eval", results), ("eval_heldout", heldout or {})):
        for step in sorted(table):
            for column, value in table[step].items():
                if isinstance(value, int | float) and math.isfinite(value):
                    writer.add_scalar(f"{prefix}/{column}", value, step)
    writer.close()


def seg_class_names(num_classes: int, meta: dict[str, Any]) -> list[str]:
    """Names of the segmenter's classes, index = class id.

    From the dataset's ``meta.json`` (``class_names`` as the synthetic datasets write it,
    ``classes`` as ``sesim data cityscapes`` does) when it names every class; the Cityscapes
    train ids for a 19-class segmenter (DRN-D-22) otherwise; else ``class k``.

    Args:
        num_classes: classes of the segmenter.
        meta: the dataset's ``meta.json`` (empty when it has none).
    Returns:
        ``num_classes`` names.
    """
    for key in ("class_names", "classes"):
        names = meta.get(key)
        if isinstance(names, list) and len(names) == num_classes:
            return [str(n) for n in names]
    if num_classes == len(TRAIN_CLASSES):
        return list(TRAIN_CLASSES)
    return [f"class {k}" for k in range(num_classes)]


def _setup_segmentation(
    opts: EvalOptions,
    scorer: Scorer,
    root: Path,
    direction: str,
    labels_dir: Path,
    test: Split,
    out: Path,
    notice: Notices,
) -> None:
    """Put the segmenter of ``seg`` into ``scorer``, or leave it ``None`` with a notice."""
    _, dst = splits(direction)
    if opts.seg_weights is not None:
        if test.labels is None:
            raise UserError(
                f"seg with DRN-D-22 needs the Cityscapes label maps (train ids, 255 = ignore) "
                f"of the test inputs as single-channel PNGs named like them in {labels_dir}, "
                "or another folder given with --seg-labels"
            )
        drn = load_drn_d_22(opts.seg_weights)
        scorer.segmenter = drn.to(scorer.device)
        scorer.num_classes = drn.num_classes
        scorer.seg_size = parse_seg_size(opts.seg_size)
        where = (
            "at their own size"
            if scorer.seg_size is None
            else f"resized to {scorer.seg_size[0]}x{scorer.seg_size[1]} (HxW; CUT's protocol)"
        )
        notice(
            f"seg: DRN-D-22 from {opts.seg_weights} labels the translations {where}. The "
            "paper's Cityscapes numbers come from a DRN-D-22 trained at 128x256 (CUT's "
            "evaluation); sesim cannot check which weights it was given, and the public "
            "drn_d_22_cityscapes.pth of the drn repository was trained at full resolution, so "
            "with it the scores are not comparable to the paper's"
        )
        return
    if test.labels is None:
        notice(
            f"seg skipped: no label maps of the test inputs in {labels_dir} (the synthetic "
            "datasets have them; for Cityscapes give --seg-weights and --seg-labels)"
        )
        return
    num_classes = read_meta(root).get("num_classes")
    if not isinstance(num_classes, int) or num_classes < 1:
        notice(
            f"seg skipped: {root / 'meta.json'} with num_classes is needed to train a "
            "segmenter (or give --seg-weights for Cityscapes)"
        )
        return
    train_split = "trainB" if dst == "testB" else "trainA"
    if not (root / "labels" / train_split).is_dir():
        notice(
            f"seg skipped: the segmenter is trained on {root / train_split} and needs its "
            f"label maps in {root / 'labels' / train_split}"
        )
        return
    scorer.num_classes = num_classes
    scorer.segmenter = small_segmenter(
        root, train_split, num_classes, opts.seg_steps, out, scorer.device, opts.quiet, notice
    )


def evaluate_folders(opts: EvalOptions) -> int:
    """``sesim eval --real DIR --fake DIR``: score two folders, write OUT, print the table."""
    if opts.real is None or opts.fake is None:
        raise UserError("nothing to score: give --real DIR --fake DIR")
    notice = Notices()
    explicit = opts.metrics is not None
    metrics = (
        parse_metrics(opts.metrics) if opts.metrics is not None else ["fid", "kid", "dc", "lpips"]
    )
    if "seg" in metrics:
        raise UserError(
            "seg needs the label maps of the inputs and a segmenter for the target domain: "
            "use it with --run RUN_DIR"
        )
    device = resolve_device(opts.device)
    extractor = make_extractor(opts.extractor, opts.inception_weights, device, metrics)
    reals = load_image_set(opts.real, "real images", opts.max_images)
    fakes = load_image_set(opts.fake, "translated (fake) images", opts.max_images)
    out: Path = opts.out if opts.out is not None else Path(f"eval_{opts.fake.resolve().name}")
    scorer = Scorer(metrics, extractor, device, opts.batch_size, opts.nearest_k)

    pairs = pairs_by_stem(reals, fakes) if "lpips" in metrics else None
    if "lpips" in metrics:
        if pairs is None:
            if explicit:
                notice(
                    f"lpips skipped: not every image of {opts.fake} has a real image with the "
                    f"same file name (stem) in {opts.real}"
                )
            metrics.remove("lpips")
        else:
            try:
                scorer.lpips = make_lpips(opts.extractor, opts.lpips_weights, device)
            except UserError as exc:
                if explicit:
                    raise
                notice(f"lpips skipped: {exc}")
                metrics.remove("lpips")

    if not metrics:
        raise UserError(_NOTHING_LEFT)
    if extractor is not None and fakes.sizes() != reals.sizes():
        side = getattr(extractor, "input_size", None)
        notice(
            f"the fake images are {size_text(fakes.sizes())} but the real ones are "
            f"{size_text(reals.sizes())} (WxH); the feature extractor resizes both to "
            f"{side}x{side} (anti-aliased bilinear) before comparing them"
        )
    if opts.extractor == "random":
        notice("--extractor random: the numbers are for smoke tests only, not comparable")
    print(
        f"scoring {len(fakes.names)} images of {opts.fake} against {len(reals.names)} real "
        f"images of {opts.real}; metrics: {', '.join(metrics)}; extractor: {opts.extractor}"
    )
    values: Values = {}
    missing: dict[str, Unavailable] = {}
    real_feats, fake_feats = scorer.features(reals), scorer.features(fakes)
    if real_feats is not None and fake_feats is not None:
        values, missing = feature_scores(real_feats, fake_feats, metrics, opts.nearest_k)
    for reason in missing.values():
        notice(f"n/a: {reason.reason}")
    if scorer.lpips is not None and pairs is not None:
        keys = [(tuple(fakes.images[j].shape), tuple(reals.images[i].shape)) for j, i in pairs]
        distances = []
        resized = False
        with torch.no_grad():
            for idx in batches(keys, opts.batch_size):
                fake = torch.stack([fakes.images[pairs[k][0]] for k in idx]).to(device)
                real = torch.stack([reals.images[pairs[k][1]] for k in idx]).to(device)
                size = (int(real.shape[2]), int(real.shape[3]))
                resized |= tuple(fake.shape[-2:]) != size
                fake = resize(fake, size).clamp(-1, 1)
                distances.append(lpips_distance(scorer.lpips, fake, real).to("cpu", torch.float64))
        if resized:
            notice("some fakes differ in size from their real image; resized to it for lpips")
        values["lpips"] = float(torch.cat(distances).mean())

    columns = [c for c in COLUMNS if c in values]
    report = {
        "mode": "folders",
        "real": str(opts.real),
        "fake": str(opts.fake),
        "num_real": len(reals.names),
        "num_fake": len(fakes.names),
        "lpips_pairs": len(pairs) if pairs is not None and "lpips" in values else None,
        "extractor": opts.extractor,
        "nearest_k": opts.nearest_k,
        "metrics": metrics,
        "values": values,
        "unavailable": {k: v.reason for k, v in missing.items()},
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", report)
    write_csv(
        ["real", "fake", *columns],
        [[str(opts.real), str(opts.fake), *(values[c] for c in columns)]],
        out / "metrics.csv",
    )
    rows = [["metric", f"{opts.fake} vs {opts.real}"]]
    for column in SCORES:
        if column not in values:
            continue
        if values[column] is None:
            cell = f"n/a ({missing[column].short})" if column in missing else "n/a"
        else:
            cell = fmt(column, values[column])
            if column == "kid" and values.get("kid_std") is not None:
                cell += f" +/- {fmt('kid', values['kid_std'])}"
        rows.append([label(column), cell])
    print()
    print(format_table(rows))
    print()
    print(f"wrote metrics.json, metrics.csv to {out}")
    return 0
