"""``sesim export``: flags -> :func:`sesim.export.export_run`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sesim.cli.common import positive_float, positive_int
from sesim.export import (
    DEFAULT_OPSET,
    DEFAULT_TOLERANCE,
    FORMATS,
    REMOVED_FORMATS,
    export_run,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``export`` to the CLI's subcommands.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers``.

    Returns:
        The ``export`` parser.
    """
    e = subparsers.add_parser(
        "export",
        help="export a run's generator to ONNX, torch.export or a shareable folder (checked)",
        description="Export the generator of a run (its newest checkpoint) or of a checkpoint "
        "file. The exported file is run on random images next to PyTorch; the largest "
        "absolute difference is printed and must stay below --tolerance, else nothing is "
        "written. onnx and pt2 inputs: (B, 3, H, W) float32 RGB in [-1, 1], H and W multiples "
        "of the generator's size multiple (4 for the ResNet generator). hf writes a folder "
        "(model.safetensors, config.json, README.md model card) for "
        "sesim.Translator.from_pretrained(DIR), any image size.",
    )
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="run folder (its newest checkpoint is used)")
    src.add_argument("--checkpoint", type=Path, help="a checkpoint file")
    e.add_argument(
        "--format",
        choices=(*FORMATS, *REMOVED_FORMATS),
        required=True,
        help="onnx (torch.onnx dynamo exporter), pt2 (torch.export program) or hf (a folder: "
        "safetensors weights, config and model card); torchscript was removed",
    )
    e.add_argument(
        "--output", type=Path, required=True, help="output file (.onnx, .pt2) or folder (hf)"
    )
    e.add_argument(
        "--dynamic",
        action="store_true",
        help="free batch size, height and width (checked at a second size too; hf always is)",
    )
    e.add_argument(
        "--size",
        nargs=2,
        type=positive_int,
        metavar=("H", "W"),
        help="example input size (default: the run's crop size)",
    )
    e.add_argument(
        "--opset",
        type=positive_int,
        default=DEFAULT_OPSET,
        help=f"ONNX opset version (default {DEFAULT_OPSET})",
    )
    e.add_argument(
        "--tolerance",
        type=positive_float,
        default=DEFAULT_TOLERANCE,
        help=f"largest allowed absolute difference from PyTorch (default {DEFAULT_TOLERANCE:g})",
    )
    e.set_defaults(func=run)
    return e


def run(args: argparse.Namespace) -> int:
    """Run ``sesim export``; returns the exit status."""
    checks, step, size = export_run(
        args.output,
        args.format,
        run=args.run,
        checkpoint=args.checkpoint,
        size=tuple(args.size) if args.size else None,
        dynamic=args.dynamic,
        opset=args.opset,
        tolerance=args.tolerance,
    )
    if args.format == "hf":
        shape_text = "any size"
    elif args.dynamic:
        shape_text = "dynamic batch/height/width"
    else:
        shape_text = f"fixed 1x3x{size[0]}x{size[1]}"
    for c in checks:
        shape = "x".join(str(s) for s in c.shape)
        print(f"check {shape}: max abs difference vs PyTorch {c.max_abs_diff:.3g}")
    print(
        f"wrote {args.output} ({args.format}, step-{step} generator, "
        f"{shape_text}; "
        f"bound {args.tolerance:g})"
    )
    return 0
