"""``sesim train``: flags, a YAML file and ``--set`` pairs -> a config -> :func:`sesim.train.train`
(or ``--resume RUN_DIR`` -> :func:`sesim.train.resume`)."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
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
from sesim.data.stream import check_data
from sesim.errors import UserError
from sesim.loggers import check_loggers
from sesim.methods import get_method
from sesim.runs import config_of, list_checkpoints, load_checkpoint
from sesim.train import init_source, resolve_for_data, resume, train


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
    t.add_argument(
        "--data",
        "--dataroot",
        dest="data",
        type=Path,
        help="dataset folder with trainA/ and trainB/ (--dataroot: CycleGAN's name for it)",
    )
    t.add_argument(
        "--preset",
        default=None,
        help=f"named starting config (default fsesim): {', '.join(PRESETS)}",
    )
    t.add_argument("--out", type=Path, help="run folder for checkpoints, logs, samples")
    t.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue this run to its total steps; with --steps N, extend (or shorten) it to "
        "N steps in all, counted from its start: the learning rate then follows the schedule "
        "of an N-step run (constant, then linear decay to 0 over the last decay_fraction of N) "
        "from the run's current step on, so a finished run whose rate had reached 0 picks up "
        "the rate N steps give that step; resuming the extended run again is exact",
    )
    t.add_argument(
        "--init-from",
        type=Path,
        metavar="RUN_OR_CKPT",
        help="start a new run (step 0, fresh optimisers, no identity warm-up) from the "
        "generator of this run folder or checkpoint, and its discriminator when the shapes "
        "match; without --preset the new run starts from the source run's config",
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
        help="training recipe: sesim (default), cyclegan, cut, fastcut, perceptual, "
        "distancegan, gcgan; multimodal: munit, munit-cycle",
    )
    t.add_argument(
        "--steps",
        type=positive_int,
        help="total optimisation steps (overrides the paper presets' epochs, which resolve to "
        "(epochs + epochs_decay) * max(|A|, |B|) // batch steps); with --resume: the run's new "
        "total (see --resume)",
    )
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
    t.add_argument(
        "--logger",
        help="comma list of tensorboard (default: RUN_DIR/tb), wandb (Weights & Biases; needs "
        "the wandb package, honours WANDB_MODE=offline) or none",
    )
    t.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved config (with the steps resolved for --data) and stop",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run)
    return t


def resolve_train_config(args: argparse.Namespace) -> TrainConfig:
    """Preset (or the --init-from run's config) -> YAML -> named flags -> --set pairs,
    validated."""
    if args.init_from is not None and args.preset is None:
        cfg = config_of(load_checkpoint(init_source(args.init_from)))
        cfg = replace(cfg, init_from="")
    else:
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
        "logger",
    ):
        value = getattr(args, key)
        if value is not None:
            flat[key] = value
    for flag in ("deterministic", "channels_last", "compile"):
        if getattr(args, flag):
            flat[flag] = True
    if args.init_from is not None:
        init_source(args.init_from)  # a missing source fails before anything is printed
        flat["init_from"] = str(args.init_from)
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
    check_loggers(cfg.logger)
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
                ("--init-from", args.init_from),
                ("--logger", args.logger),
                ("--size", args.size),
                ("--batch", args.batch),
                ("--seed", args.seed),
                ("--set", args.set or None),
            )
            if value is not None
        ]
        if conflicting:
            raise UserError(
                f"--resume continues a run with its saved config (only --steps may change "
                f"it); drop {', '.join(conflicting)}"
            )
        run = args.resume
        if not run.is_dir():
            raise UserError(f"run folder {run} does not exist; give the --out folder of a run")
        final = resume(run, quiet=args.quiet, steps=args.steps)
        if os.environ.get("RANK", "0") == "0":
            print(f"done: {final}")
        return 0

    cfg = resolve_train_config(args)
    if cfg.data.root or cfg.mode == "single-image" or not args.dry_run:
        check_data(cfg)  # a missing or empty folder fails before the config is printed
    main_process = os.environ.get("RANK", "0") == "0"
    steps_line = None
    if cfg.mode != "single-image" and cfg.data.root:
        cfg, steps_line = resolve_for_data(cfg, int(os.environ.get("WORLD_SIZE", "1")))
    elif cfg.steps == 0:
        steps_line = (
            f"steps: from ({cfg.epochs} + {cfg.epochs_decay}) epochs of max(|A|, |B|) // batch "
            "steps, resolved when --data is given"
        )
    if main_process:
        print("# resolved config")
        print(dump_yaml(cfg), end="")
        if steps_line is not None:
            print(f"# {steps_line}")
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
