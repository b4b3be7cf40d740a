"""``sesim train``: flags, a YAML file and ``--set`` pairs -> a config -> :func:`sesim.train.train`
(or ``--resume RUN_DIR`` -> :func:`sesim.train.resume`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from sesim.cli.common import nonneg_int, positive_float, positive_int
from sesim.config import (
    DEFAULT_PRESET,
    PRESETS,
    TrainConfig,
    apply_overrides,
    dump_yaml,
    load_yaml,
    preset,
    update,
    validate,
)
from sesim.errors import UserError
from sesim.methods import get_method
from sesim.runs import list_checkpoints
from sesim.train import resume, train


def _window(text: str) -> int:
    """A window side; 0 stands for the whole map (``global``)."""
    if text.lower() in ("none", "global", "full"):
        return 0
    return positive_int(text)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``train`` to the CLI's sub-commands."""
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
    t.add_argument("--steps", type=positive_int, help="total optimisation steps")
    t.add_argument(
        "--size", type=positive_int, help="crop size in pixels (load size scales with it)"
    )
    t.add_argument("--batch", type=positive_int, help="images per step")
    t.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    t.add_argument("--seed", type=nonneg_int, help="seed of all randomness")
    t.add_argument("--save-every", type=positive_int, help="checkpoint every K steps")
    t.add_argument("--keep-last", type=positive_int, help="checkpoints kept on disk")
    t.add_argument("--log-every", type=positive_int, help="log losses every K steps")
    t.add_argument("--sample-every", type=positive_int, help="sample grid every K steps")
    t.add_argument("--lr", type=positive_float, help="learning rate of G and D")
    t.add_argument("--lambda", dest="lambda_", type=float, help="weight of the structure loss")
    t.add_argument("--window", type=_window, help="local key window side, or 'global'")
    t.add_argument("--queries", type=positive_int, help="query points per layer")
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
    t.add_argument("--workers", type=nonneg_int, help="data-loading worker processes")
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
    t.set_defaults(func=run)
    return t


def resolve_train_config(args: argparse.Namespace) -> TrainConfig:
    """Preset -> YAML -> named flags -> --set pairs, validated."""
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


def run(args: argparse.Namespace) -> int:
    """Run ``sesim train``; returns the exit status."""
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
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if list_checkpoints(args.out) and restarts > 0:
        # torchrun restarted the group after a rank died: go on from the newest checkpoint.
        if main_process:
            print(
                f"notice: torchrun restart {restarts}: continuing {args.out} from its newest "
                "readable checkpoint"
            )
        final = resume(args.out, quiet=args.quiet)
        if main_process:
            print(f"done: {final}\nreport: {args.out / 'index.html'}")
        return 0
    if list_checkpoints(args.out):
        raise UserError(
            f"{args.out} already holds a run; continue it with 'sesim train --resume {args.out}' "
            f"or choose another --out"
        )
    final = train(cfg, args.out, quiet=args.quiet)
    if main_process:
        print(f"done: {final}\nreport: {args.out / 'index.html'}")
    return 0
