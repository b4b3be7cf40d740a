"""The ``sesim`` command line: flags or a YAML file -> config -> train / translate / demo.

User mistakes (a missing folder, a bad value, a foreign checkpoint) end with one line on stderr,
``error: ...`` saying what is wrong and what to do, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sesim.argtypes import nonneg_int as _nonneg_int
from sesim.argtypes import positive_float as _positive_float
from sesim.argtypes import positive_int as _positive_int
from sesim.errors import UserError
from sesim.methods import get_method

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


# ---------------------------------------------------------------------------------------------
# Argument parsing.


def _window(text: str) -> int:
    """A window side; 0 stands for the whole map (``global``)."""
    if text.lower() in ("none", "global", "full"):
        return 0
    return _positive_int(text)


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exits with status 2."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USER_ERROR, f"error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from sesim.config import PRESETS

    parser = _Parser(
        prog="sesim",
        description="Structure-preserving unpaired image translation with the "
        "spatially-correlative loss (F/LSeSim, CVPR 2021).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # train
    t = sub.add_parser(
        "train",
        help="train a translation model (or continue one with --resume)",
        description="Train a one-sided F/LSeSim translator on a CycleGAN-layout folder "
        "(trainA/ trainB/ [testA/ testB/]). Every config field can be set with --set or a "
        "YAML file; the resolved config is printed and saved as RUN_DIR/config.yaml.",
    )
    t.add_argument("--data", type=Path, help="dataset folder with trainA/ and trainB/")
    t.add_argument(
        "--preset",
        default=None,
        help=f"named starting config (default fsesim): {', '.join(PRESETS)}",
    )
    t.add_argument("--out", type=Path, help="run folder for checkpoints, logs, samples")
    t.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="continue this run to its total steps"
    )
    t.add_argument(
        "--config", type=Path, help="YAML file of config fields (applied after --preset)"
    )
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="set any config field, e.g. --set structure.loss.window=32 (repeatable)",
    )
    t.add_argument(
        "--method",
        help="training recipe: sesim (default), cyclegan, cut, fastcut or perceptual",
    )
    t.add_argument("--steps", type=_positive_int, help="total optimisation steps")
    t.add_argument(
        "--size", type=_positive_int, help="crop size in pixels (load size scales with it)"
    )
    t.add_argument("--batch", type=_positive_int, help="images per step")
    t.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    t.add_argument("--seed", type=_nonneg_int, help="seed of all randomness")
    t.add_argument("--save-every", type=_positive_int, help="checkpoint every K steps")
    t.add_argument("--keep-last", type=_positive_int, help="checkpoints kept on disk")
    t.add_argument("--log-every", type=_positive_int, help="log losses every K steps")
    t.add_argument("--sample-every", type=_positive_int, help="sample grid every K steps")
    t.add_argument("--lr", type=_positive_float, help="learning rate of G and D")
    t.add_argument("--lambda", dest="lambda_", type=float, help="weight of the structure loss")
    t.add_argument("--window", type=_window, help="local key window side, or 'global'")
    t.add_argument("--queries", type=_positive_int, help="query points per layer")
    t.add_argument(
        "--gan-mode", choices=("lsgan", "vanilla", "hinge", "nonsaturating"), help="GAN objective"
    )
    t.add_argument(
        "--vgg-weights",
        help="imagenet (torch hub cache), auto (ImageNet if cached, else random), random, "
        "or a .pth file",
    )
    t.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        help="training precision: fp32 (default), bf16 (autocast; fastest on recent GPUs and "
        "AVX512-BF16 CPUs) or fp16 (autocast with a gradient scaler); the structure losses "
        "always compute in float32",
    )
    t.add_argument("--direction", choices=("AtoB", "BtoA"), help="translation direction")
    t.add_argument(
        "--mode",
        choices=("single", "multimodal", "single-image"),
        help="single-modal (default), multimodal (sampled styles) or single-image; picks the "
        "mode's default preset when --preset is not given",
    )
    t.add_argument("--source", type=Path, help="single-image mode: the source image")
    t.add_argument("--target", type=Path, help="single-image mode: the target (style) image")
    t.add_argument("--workers", type=_nonneg_int, help="data-loading worker processes")
    t.add_argument(
        "--channels-last", action="store_true", help="channels-last memory format (GPU speed)"
    )
    t.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the trained networks (slow first steps, then faster ones; not "
        "with the single-image mode's gradient penalty)",
    )
    t.add_argument(
        "--deterministic", action="store_true", help="deterministic algorithms (exact resume)"
    )
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and stop")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    # translate
    tr = sub.add_parser(
        "translate",
        help="translate images with a trained run",
        description="Translate a file or a folder of images at their own size (padded to the "
        "network's multiple, cropped back) and write PNGs to --output.",
    )
    src = tr.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="run folder (its newest checkpoint is used)")
    src.add_argument("--checkpoint", type=Path, help="a checkpoint file")
    tr.add_argument("--input", type=Path, required=True, help="an image file or a folder")
    tr.add_argument("--output", type=Path, required=True, help="output folder")
    tr.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    tr.add_argument(
        "--styles",
        type=_positive_int,
        default=None,
        help="multimodal runs: write K variants per input from sampled style codes",
    )
    tr.add_argument(
        "--style-image", type=Path, help="multimodal runs: take the style of this target image"
    )
    tr.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the sampled styles")
    tr.add_argument(
        "--tile",
        type=_positive_int,
        default=None,
        help="translate in overlapping tiles of this side (large images that do not fit)",
    )
    tr.add_argument(
        "--overlap",
        type=_nonneg_int,
        default=None,
        help="tile overlap in pixels (default: a quarter of the tile, at least 64)",
    )
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_translate)

    # data
    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="data_command", metavar="TOOL", parser_class=_Parser)
    syn = dsub.add_parser(
        "synthetic",
        help="write a synthetic unpaired dataset with ground-truth labels",
        description="Write OUT/trainA trainB testA testB (+ labels/ and meta.json). testA and "
        "testB are paired by construction; trainA/trainB are unpaired.",
    )
    syn.add_argument("out", type=Path, help="output folder (must not exist or be empty)")
    syn.add_argument("--n", type=_positive_int, default=500, help="training images per domain")
    syn.add_argument("--n-test", type=_positive_int, default=None, help="test images per domain")
    syn.add_argument("--size", type=_positive_int, default=128, help="image side in pixels")
    syn.add_argument("--seed", type=_nonneg_int, default=0, help="random seed")
    syn.add_argument("--task", default="layout", help="layout, shapes or multistyle")
    syn.set_defaults(func=cmd_data_synthetic)
    smp = dsub.add_parser(
        "sample-images",
        help="copy two sample images that ship with matplotlib (single-image mode demo)",
        description="Copy a photograph (source) and a clip-art image (target) that ship with "
        "matplotlib into OUT, for trying the single-image mode without downloading anything.",
    )
    smp.add_argument("out", type=Path, help="output folder")
    smp.set_defaults(func=cmd_data_sample_images)
    d.set_defaults(func=lambda args: _print_help(d))

    # eval, bench, viz, export, serve
    from sesim.bench import add_bench_parser
    from sesim.evaluate import add_eval_parser
    from sesim.export import add_export_parser
    from sesim.serve import add_serve_parser
    from sesim.viz import add_viz_parser

    add_eval_parser(sub)
    bench_sub = add_bench_parser(sub)
    mm = bench_sub.add_parser(
        "multimodal",
        help="multi-modal translation on the multistyle task: structure and diversity",
        description="Train the multi-modal rows (munit-fsesim, munit-lsesim, munit-gan with no "
        "structure loss) on the synthetic 'multistyle' task (three appearance families) and "
        "score structure (segmentation against the true labels) and diversity (LPIPS over "
        "19 style pairs per input, appearance families per input, FID over styles), as the "
        "paper's Table 2. Writes results.md, results.json and a grid of inputs by styles.",
    )
    mm.add_argument("--out", type=Path, default=Path("runs/bench-multimodal"), help="folder")
    mm.add_argument("--steps", type=_positive_int, default=1000, help="training steps per row")
    mm.add_argument("--size", type=_positive_int, default=64, help="image side in pixels")
    mm.add_argument(
        "--rows", default="munit-fsesim,munit-gan", help="comma-separated rows to train"
    )
    mm.add_argument("--device", default="cpu", help="cpu, auto, cuda or cuda:N")
    mm.add_argument("--seed", type=_nonneg_int, default=0, help="seed of data, runs and styles")
    mm.set_defaults(func=cmd_bench_multimodal)
    add_viz_parser(sub)
    add_export_parser(sub)
    add_serve_parser(sub)

    # presets
    pr = sub.add_parser("presets", help="list the named presets")
    pr.set_defaults(func=cmd_presets)

    # demo
    dm = sub.add_parser(
        "demo",
        help="synthetic data -> tiny FSeSim training on the CPU -> report (a few minutes)",
        description="Generate the synthetic dataset, train the tiny FSeSim preset, translate "
        "the test set and write RUN/index.html. Re-running continues or reuses the run.",
    )
    dm.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder")
    dm.add_argument("--data", type=Path, default=Path("data/demo"), help="dataset folder")
    dm.add_argument("--steps", type=_positive_int, default=None, help="override training steps")
    dm.add_argument("--device", default="cpu", help="device (default cpu)")
    dm.add_argument("--quiet", action="store_true", help="no progress bar")
    dm.set_defaults(func=cmd_demo)
    return parser


# ---------------------------------------------------------------------------------------------
# Commands.


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USER_ERROR


def resolve_train_config(args: argparse.Namespace) -> Any:
    """Preset -> YAML -> named flags -> --set pairs, validated."""
    from sesim.config import DEFAULT_PRESET, apply_overrides, load_yaml, preset, update, validate

    cfg = preset(args.preset or DEFAULT_PRESET[args.mode or "single"])
    if args.mode is not None and cfg.mode != args.mode:
        raise UserError(
            f"--mode {args.mode} conflicts with preset {cfg.preset!r} (a {cfg.mode} preset); "
            f"drop one of them"
        )
    single_image = cfg.mode == "single-image"
    if single_image and args.data is not None:
        raise UserError("single-image mode takes --source and --target, not --data")
    if not single_image and (args.source is not None or args.target is not None):
        raise UserError("--source/--target are for --mode single-image; use --data DIR here")
    if args.config is not None:
        cfg = update(cfg, load_yaml(args.config))
    flat: dict[str, Any] = {}
    data: dict[str, Any] = {}
    loss: dict[str, Any] = {}
    structure: dict[str, Any] = {}
    optim: dict[str, Any] = {}
    for key in (
        "method",
        "steps",
        "batch",
        "device",
        "seed",
        "save_every",
        "keep_last",
        "log_every",
        "sample_every",
        "precision",
    ):
        value = getattr(args, key)
        if value is not None:
            flat[key] = value
    for flag in ("deterministic", "channels_last", "compile"):
        if getattr(args, flag):
            flat[flag] = True
    if args.data is not None:
        data["root"] = str(args.data)
    if args.size is not None and single_image:
        data["crop_size"] = args.size
    elif args.size is not None:
        data["crop_size"] = args.size
        data["load_size"] = max(args.size, round(args.size * 286 / 256))
    for key in ("source", "target"):
        if getattr(args, key) is not None:
            data[key] = str(getattr(args, key))
    if args.direction is not None:
        data["direction"] = args.direction
    if args.workers is not None:
        data["workers"] = args.workers
    if args.window is not None:
        loss["window"] = args.window or None
    if args.queries is not None:
        loss["num_queries"] = args.queries
    if args.lambda_ is not None:
        structure["weight"] = args.lambda_
    if args.vgg_weights is not None:
        structure["vgg_weights"] = args.vgg_weights
    if args.lr is not None:
        optim["lr"] = args.lr
    if args.gan_mode is not None:
        optim["gan_mode"] = args.gan_mode
    if loss:
        structure["loss"] = loss
    nested: dict[str, Any] = dict(flat)
    for name, part in (("data", data), ("structure", structure), ("optim", optim)):
        if part:
            nested[name] = part
    cfg = update(cfg, nested)
    cfg = apply_overrides(cfg, args.set)
    cfg = validate(cfg)
    get_method(cfg.method)  # an unknown --method fails here, before anything is printed
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from sesim.config import dump_yaml
    from sesim.runs import list_checkpoints
    from sesim.train import resume, train

    if args.resume is not None:
        conflicting = [
            flag
            for flag, value in (
                ("--data", args.data),
                ("--preset", args.preset),
                ("--method", args.method),
                ("--out", args.out),
                ("--config", args.config),
                ("--steps", args.steps),
                ("--size", args.size),
                ("--batch", args.batch),
                ("--seed", args.seed),
                ("--set", args.set or None),
            )
            if value is not None
        ]
        if conflicting:
            raise UserError(
                f"--resume continues a run with its saved config; drop {', '.join(conflicting)}"
            )
        run = args.resume
        if not run.is_dir():
            raise UserError(f"run folder {run} does not exist; give the --out folder of a run")
        final = resume(run, quiet=args.quiet)
        if os.environ.get("RANK", "0") == "0":
            print(f"done: {final}")
        return 0

    cfg = resolve_train_config(args)
    main_process = os.environ.get("RANK", "0") == "0"
    if main_process:
        print("# resolved config")
        print(dump_yaml(cfg), end="")
    if args.dry_run:
        return 0
    if args.out is None:
        raise UserError("give --out RUN_DIR, the folder for this run's checkpoints and reports")
    if list_checkpoints(args.out):
        raise UserError(
            f"{args.out} already holds a run; continue it with 'sesim train --resume {args.out}' "
            f"or choose another --out"
        )
    final = train(cfg, args.out, quiet=args.quiet)
    if main_process:
        print(f"done: {final}\nreport: {args.out / 'index.html'}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from sesim.translate import translate_files

    written, step = translate_files(
        args.input,
        args.output,
        run=args.run,
        checkpoint=args.checkpoint,
        device=args.device,
        styles=args.styles,
        style_image=args.style_image,
        seed=args.seed,
        tile=args.tile,
        overlap=args.overlap,
        quiet=args.quiet,
    )
    print(f"wrote {written} image(s) from the step-{step} generator into {args.output}")
    return 0


def cmd_data_synthetic(args: argparse.Namespace) -> int:
    from sesim.data.synthetic import write_synthetic_dataset

    out = write_synthetic_dataset(
        args.out,
        n=args.n,
        size=args.size,
        seed=args.seed,
        task=args.task,
        n_test=args.n_test,
        progress=True,
    )
    print(f"wrote the {args.task!r} synthetic dataset to {out}")
    return 0


def cmd_data_sample_images(args: argparse.Namespace) -> int:
    from sesim.data.sample_images import sample_images

    source, target = sample_images(args.out)
    print(f"source: {source}\ntarget: {target}")
    return 0


def cmd_bench_multimodal(args: argparse.Namespace) -> int:
    from sesim.bench_multimodal import run_multimodal_bench

    rows = tuple(r.strip() for r in args.rows.split(",") if r.strip())
    run_multimodal_bench(
        args.out,
        steps=args.steps,
        size=args.size,
        device=args.device,
        seed=args.seed,
        rows=rows,
        quiet=False,
    )
    print(f"results: {args.out / 'results.md'}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from sesim.config import PRESETS

    for name, fn in PRESETS.items():
        doc = " ".join((fn.__doc__ or "").split())
        print(f"{name:<12} {doc[:150]}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from sesim.demo import run_demo

    run_demo(args.out, args.data, steps=args.steps, device=args.device, quiet=args.quiet)
    return 0


# ---------------------------------------------------------------------------------------------
# Entry point.


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USER_ERROR
    warnings.filterwarnings("default", category=UserWarning, module="sesim")
    try:
        return int(func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
