"""``sesim translate``: a file or folder of images -> :func:`sesim.translator.translate_files`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sesim.cli.common import nonneg_int, positive_int
from sesim.translator import translate_files


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``translate`` to the CLI's sub-commands."""
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
        type=positive_int,
        default=None,
        help="multimodal runs: write K variants per input from sampled style codes",
    )
    tr.add_argument(
        "--style-image", type=Path, help="multimodal runs: take the style of this target image"
    )
    tr.add_argument("--seed", type=nonneg_int, default=0, help="seed of the sampled styles")
    tr.add_argument(
        "--tile",
        type=positive_int,
        default=None,
        help="translate in overlapping tiles of this side (large images that do not fit)",
    )
    tr.add_argument(
        "--overlap",
        type=nonneg_int,
        default=None,
        help="tile overlap in pixels (default: a quarter of the tile, at least 64)",
    )
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=run)
    return tr


def run(args: argparse.Namespace) -> int:
    """Run ``sesim translate``; returns the exit status."""
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
