"""``sesim data``: write the synthetic datasets, prepare Cityscapes, copy the single-image
sample pictures."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sesim.cityscapes import prepare_cityscapes
from sesim.cli.common import Parser, nonneg_int, positive_int, print_help
from sesim.data.sample_images import sample_images
from sesim.data.synthetic import write_synthetic_dataset
from sesim.download import BASE_URL_ENV, DATASETS, RECORD_FILE, download_dataset


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``data`` (with ``synthetic`` and ``sample-images``) to the CLI's sub-commands."""
    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="data_command", metavar="TOOL", parser_class=Parser)
    syn = dsub.add_parser(
        "synthetic",
        help="write a synthetic unpaired dataset with ground-truth labels",
        description="Write OUT/trainA trainB testA testB (+ labels/ and meta.json). testA and "
        "testB are paired by construction; trainA/trainB are unpaired.",
    )
    syn.add_argument("out", type=Path, help="output folder (must not exist or be empty)")
    syn.add_argument("--n", type=positive_int, default=500, help="training images per domain")
    syn.add_argument("--n-test", type=positive_int, default=None, help="test images per domain")
    syn.add_argument("--size", type=positive_int, default=128, help="image side in pixels")
    syn.add_argument("--seed", type=nonneg_int, default=0, help="random seed")
    syn.add_argument("--task", default="layout", help="layout, shapes or multistyle")
    syn.set_defaults(func=run_synthetic)
    smp = dsub.add_parser(
        "sample-images",
        help="copy two sample images that ship with matplotlib (single-image mode demo)",
        description="Copy a photograph (source) and a clip-art image (target) that ship with "
        "matplotlib into OUT, for trying the single-image mode without downloading anything.",
    )
    smp.add_argument("out", type=Path, help="output folder")
    smp.set_defaults(func=run_sample_images)
    cs = dsub.add_parser(
        "cityscapes",
        help="prepare Cityscapes labels->photos from the official archives",
        description="Write OUT/trainA (colour label maps) trainB (photos) testA testB (the "
        "validation split), labels/testA and labels/testB (train ids at 128x256 for "
        "'sesim eval --metrics seg') and meta.json, from leftImg8bit_trainvaltest.zip and "
        "gtFine_trainvaltest.zip (or the folders they extract to).",
    )
    cs.add_argument("--images", type=Path, required=True, help="leftImg8bit_trainvaltest.zip")
    cs.add_argument("--labels", type=Path, required=True, help="gtFine_trainvaltest.zip")
    cs.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    cs.add_argument(
        "--size", type=positive_int, default=256, help="side of the square images (256)"
    )
    cs.add_argument("--max-images", type=positive_int, help="only the first N images of each split")
    cs.set_defaults(func=run_cityscapes)
    dl = dsub.add_parser(
        "download",
        help="download a CycleGAN/pix2pix unpaired dataset (horse2zebra, maps, ...)",
        description="Download NAME.zip of the CycleGAN datasets and unpack it to OUT/NAME "
        "(trainA trainB testA testB). A cut transfer continues where it stopped when the "
        "command is run again; the archive's SHA-256 is checked against --sha256, else against "
        f"the one recorded in OUT/{RECORD_FILE} by an earlier download (the first download "
        "records and prints it); a failure leaves no half-unpacked folder; a complete dataset "
        f"is left alone. Datasets: {', '.join(DATASETS)}; cityscapes needs a login at its own "
        "site (the command says how).",
    )
    dl.add_argument("name", metavar="NAME", help="dataset name, e.g. horse2zebra")
    dl.add_argument(
        "--out", type=Path, default=Path("datasets"), help="parent folder (default: datasets)"
    )
    dl.add_argument(
        "--base-url",
        help=f"where the NAME.zip archives are (default: ${BASE_URL_ENV}, else the CycleGAN site)",
    )
    dl.add_argument("--sha256", help="the archive's expected SHA-256")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    dl.set_defaults(func=run_download)
    d.set_defaults(func=lambda args: print_help(d))
    return d


def run_synthetic(args: argparse.Namespace) -> int:
    """Run ``sesim data synthetic``; returns the exit status."""
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


def run_sample_images(args: argparse.Namespace) -> int:
    """Run ``sesim data sample-images``; returns the exit status."""
    source, target = sample_images(args.out)
    print(f"source: {source}\ntarget: {target}")
    return 0


def run_cityscapes(args: argparse.Namespace) -> int:
    """Run ``sesim data cityscapes``; returns the exit status."""
    done = prepare_cityscapes(
        args.images, args.labels, args.out, args.size, args.max_images, progress=print
    )
    print(f"wrote Cityscapes labels->photos ({done.train} train, {done.test} test) to {done.out}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Run ``sesim data download``; returns the exit status."""
    result = download_dataset(
        args.name, args.out, base_url=args.base_url, sha256=args.sha256, quiet=args.quiet
    )
    if not result.downloaded:
        print(f"{result.folder} is already complete; nothing to do")
        return 0
    print(f"sha256 of {args.name}.zip: {result.sha256} (recorded in {args.out / RECORD_FILE})")
    print(f"dataset: {result.folder}  (train with: sesim train --data {result.folder} ...)")
    return 0
