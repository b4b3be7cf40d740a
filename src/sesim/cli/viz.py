"""``sesim viz selfsim``: flags -> :func:`sesim.viz.draw_selfsim`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sesim.cli.common import print_help
from sesim.viz import DEFAULT_MAX_SIDE, Point, draw_selfsim, parse_point


def _point_arg(text: str) -> Point:
    try:
        return parse_point(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _window_arg(text: str) -> int:
    if text.lower() in ("none", "global", "full", "0"):
        return 0
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a window side or 'global', got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a window side >= 1 or 'global', got {value}")
    return value


def _max_side_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 16 and value != 0:
        raise argparse.ArgumentTypeError(f"expected 0 (no limit) or a side >= 16, got {value}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``viz`` (with its ``selfsim`` subcommand) to the CLI's subcommands.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers``.

    Returns:
        The ``viz`` parser.
    """
    v = subparsers.add_parser(
        "viz",
        help="pictures of self-similarity (heat maps of query points, error maps)",
        description="Pictures that show what the spatially-correlative loss compares.",
    )
    vsub = v.add_subparsers(dest="viz_command", metavar="WHAT", parser_class=type(v))
    v.set_defaults(func=lambda args: print_help(v))
    s = vsub.add_parser(
        "selfsim",
        help="heat maps of query points' self-similarity in an input and its translation",
        description="Write a PNG: the input and its translation with the query points; the "
        "per-query error map between them (fixed and learned maps); and per point its "
        "self-similarity map over the whole feature map (global), inside the local window "
        "(local) and on the run's learned features (LSeSim), in input and translation. With "
        "--pair A B the two images are compared directly, no run needed.",
    )
    src = s.add_mutually_exclusive_group()
    src.add_argument("--run", type=Path, help="run folder (its newest checkpoint)")
    src.add_argument("--checkpoint", type=Path, help="a checkpoint file")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--image", type=Path, help="input image, translated with the run")
    what.add_argument(
        "--pair",
        nargs=2,
        type=Path,
        metavar=("A", "B"),
        help="two images to compare (B plays the translation; resized to A's size)",
    )
    s.add_argument("--output", type=Path, required=True, help="output PNG file")
    s.add_argument(
        "--points",
        nargs="+",
        type=_point_arg,
        metavar="X,Y",
        help="query points in pixels of the input image (default: 3 spread points)",
    )
    s.add_argument("--layer", help="VGG16 layer (default relu3_1)")
    s.add_argument(
        "--window",
        type=_window_arg,
        help="local window side in feature positions, or 'global' (default: the run's, else 16)",
    )
    s.add_argument(
        "--kind",
        choices=("cosine", "tanh"),
        default="cosine",
        help="similarity shown (default cosine: the query itself is 1, the maximum)",
    )
    s.add_argument(
        "--vgg-weights",
        help="imagenet, auto, random or a .pth file (default: the run's, falling back to "
        "random weights with a notice when ImageNet's are not cached)",
    )
    s.add_argument(
        "--max-side",
        type=_max_side_arg,
        default=DEFAULT_MAX_SIDE,
        help=f"shrink images to this longer side first (default {DEFAULT_MAX_SIDE}; 0 = none)",
    )
    s.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    s.set_defaults(func=run_selfsim)
    return v


def run_selfsim(args: argparse.Namespace) -> int:
    """Run ``sesim viz selfsim``; returns the exit status."""
    n_points, layer = draw_selfsim(
        args.output,
        run=args.run,
        checkpoint=args.checkpoint,
        image=args.image,
        pair=args.pair,
        points=args.points,
        layer=args.layer,
        window=args.window,
        kind=args.kind,
        vgg_weights=args.vgg_weights,
        max_side=args.max_side,
        device=args.device,
    )
    print(f"wrote {args.output} ({n_points} point(s), layer {layer})")
    return 0
