"""``sesim serve``: flags -> :func:`sesim.serve.serve_run`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sesim.serve import DEFAULT_MAX_SIDE, DEFAULT_PORT, MAX_UPLOAD_BYTES, serve_run


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 0..65535, got {value}")
    return value


def _side(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 16:
        raise argparse.ArgumentTypeError(f"expected a side >= 16, got {value}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to the CLI's subcommands.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers``.

    Returns:
        The ``serve`` parser.
    """
    s = subparsers.add_parser(
        "serve",
        help="a local web page: translate an image and click to see its self-similarity maps",
        description="Serve a small web page for a run, bound to 127.0.0.1 by default: choose a "
        "test image or upload one (checked: type, size), see its translation, click a point "
        "to see its self-similarity maps in input and output. Stop with Ctrl-C.",
    )
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="run folder (its newest checkpoint is used)")
    src.add_argument("--checkpoint", type=Path, help="a checkpoint file")
    s.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port (0 = any free one)")
    s.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; the page has no authentication)",
    )
    s.add_argument("--images", type=Path, help="folder of images to list (default: test set)")
    s.add_argument(
        "--max-side",
        type=_side,
        default=DEFAULT_MAX_SIDE,
        help=f"shrink images to this longer side before translating (default {DEFAULT_MAX_SIDE})",
    )
    s.add_argument(
        "--max-upload-mb",
        type=float,
        default=MAX_UPLOAD_BYTES / 1e6,
        help="largest accepted upload in MB (default 10)",
    )
    s.add_argument("--layer", help="VGG16 layer of the maps (default relu3_1)")
    s.add_argument("--vgg-weights", help="VGG16 weights of the maps (default: the run's)")
    s.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    s.add_argument("--quiet", action="store_true", help="no request log")
    s.set_defaults(func=run)
    return s


def run(args: argparse.Namespace) -> int:
    """Run ``sesim serve`` until Ctrl-C; returns the exit status."""
    serve_run(
        run=args.run,
        checkpoint=args.checkpoint,
        host=args.host,
        port=args.port,
        device=args.device,
        images=args.images,
        vgg_weights=args.vgg_weights,
        layer=args.layer,
        max_side=args.max_side,
        max_upload_mb=args.max_upload_mb,
        quiet=args.quiet,
    )
    return 0
