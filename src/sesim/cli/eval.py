"""``sesim eval``: flags -> :class:`sesim.eval.run.EvalOptions` -> :func:`sesim.eval.run.evaluate`."""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import fields
from pathlib import Path
from typing import Any

from sesim.cli.common import positive_int
from sesim.eval.run import EvalOptions, evaluate
from sesim.eval.scoring import DEFAULT_SEG_STEPS
from sesim.metrics import METRICS
from sesim.metrics.prdc import DEFAULT_NEAREST_K


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to an ``argparse`` subparsers object.

    The parsed arguments get ``func=run``. The parser class is the one the subparsers object
    was created with (:class:`sesim.cli.common.Parser` in the CLI: one-line errors, exit 2).

    Args:
        subparsers: what ``ArgumentParser.add_subparsers`` returned.
    Returns:
        The ``eval`` parser.
    """
    names = ", ".join(METRICS)
    e = subparsers.add_parser(
        "eval",
        help="score a run's checkpoints (or two image folders) with FID, KID, LPIPS, "
        "density/coverage and segmentation",
        description=textwrap.fill(
            "Score translations. With --run, every saved generator (the never-pruned "
            "snapshots and the last checkpoints, one row per step; or every K-th, or chosen "
            "steps) translates the run's test inputs (testA/, testB/ for BtoA runs) at their "
            "own size and is scored against the real target-domain test images; OUT gets "
            "metrics.json, metrics.csv and one PNG per metric over training, and a table of the "
            "last and the best checkpoint is printed, with the run's training peak memory and "
            "median step time. With --real and --fake, two image folders are scored the same "
            "way. Images are resized to the feature extractor's input (299x299 for Inception); "
            "any other resize is announced by one printed line.",
            width=88,
        ),
        epilog="examples:\n"
        "  sesim eval --run runs/h2z --every 4\n"
        "  sesim eval --run runs/demo --metrics fid,kid,seg --select-on data/demo-val\n"
        "  sesim eval --real data/h2z/testB --fake results/cut_h2z --out eval_cut\n"
        "  sesim eval --run runs/demo --extractor random   (smoke test, no weights needed)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = e.add_argument_group("what to score (give --run, or --real and --fake)")
    mode.add_argument(
        "--run",
        type=Path,
        metavar="RUN_DIR",
        help="a training run folder: its checkpoints translate the test set of its dataset",
    )
    mode.add_argument(
        "--real", type=Path, metavar="DIR", help="folder of real target-domain images"
    )
    mode.add_argument(
        "--fake",
        type=Path,
        metavar="DIR",
        help="folder of translated images (e.g. from another tool) scored against --real",
    )

    ck = e.add_argument_group("checkpoints (--run only)")
    ck.add_argument(
        "--every",
        type=positive_int,
        metavar="K",
        help="score every K-th saved checkpoint (the K-th, 2K-th, ...), always with the last",
    )
    ck.add_argument(
        "--checkpoints",
        metavar="STEP,STEP",
        help="score only the checkpoints of these training steps (default: all saved ones)",
    )
    ck.add_argument(
        "--select-on",
        type=Path,
        metavar="DIR",
        help="a held-out dataset in the CycleGAN layout (testA/ testB/ [labels/]) used only "
        "to choose the best checkpoint; the numbers reported stay those of the run's test "
        "set. Without it the best checkpoint is chosen on the test set (the paper's protocol: "
        "the best FID over the generators saved every 10 epochs), and the table says so",
    )
    ck.add_argument(
        "--data",
        "--dataroot",
        dest="data",
        type=Path,
        metavar="DIR",
        help="the run's dataset folder, when it has moved (default: the one it trained on)",
    )

    m = e.add_argument_group("metrics")
    m.add_argument(
        "--metrics",
        metavar="NAMES",
        help=f"comma-separated, from: {names}. Default with --run: fid,kid,dc, plus seg when "
        "the test inputs have label maps; with --real/--fake: fid,kid,dc, plus lpips when "
        "the file names pair up. lpips here is the mean LPIPS distance between each "
        "translation and its paired real target (paired test sets only, lower is better); "
        "seg scores the translations against the inputs' label maps",
    )
    m.add_argument(
        "--extractor",
        choices=("inception", "random"),
        default="inception",
        help="features for fid/kid/dc: 'inception' (default; the standard FID Inception-v3, "
        "needs its weights file) or 'random', a fixed random conv net whose numbers mean "
        "nothing outside smoke tests (it also gives lpips a random AlexNet unless "
        "--lpips-weights is given)",
    )
    m.add_argument(
        "--inception-weights",
        type=Path,
        metavar="PATH",
        help="weights-inception-2015-12-05-6726825d.pth (default: looked up in "
        "$TORCH_HOME/hub/checkpoints/; never downloaded)",
    )
    m.add_argument(
        "--lpips-weights",
        type=Path,
        metavar="PATH",
        help="torchvision's AlexNet alexnet-owt-7be5be79.pth for lpips (default: looked up in "
        "$TORCH_HOME/hub/checkpoints/; never downloaded)",
    )
    m.add_argument(
        "--seg-weights",
        type=Path,
        metavar="PATH",
        help="drn_d_22_cityscapes.pth: score seg with the Cityscapes DRN-D-22 instead of a "
        "small segmenter trained on the run's data; needs train-id label maps of the test "
        "inputs (see --seg-labels)",
    )
    m.add_argument(
        "--seg-labels",
        type=Path,
        metavar="DIR",
        help="label maps of the test inputs, one single-channel PNG of class ids per input "
        "with the input's name (255 = ignore); default DATA/labels/testA (testB for BtoA)",
    )
    m.add_argument(
        "--seg-steps",
        type=positive_int,
        default=DEFAULT_SEG_STEPS,
        metavar="N",
        help=f"training steps of the small segmenter (default {DEFAULT_SEG_STEPS}); it is "
        "cached as OUT/segmenter.pt and reused while the dataset and settings match",
    )
    m.add_argument(
        "--seg-size",
        default="128x256",
        metavar="HxW",
        help="with --seg-weights: the size translations (bilinear) and label maps (nearest) "
        "are resized to before DRN-D-22; 128x256 (default) is CUT's Cityscapes protocol, "
        "which the paper follows; 'native' keeps their size",
    )
    m.add_argument(
        "--nearest-k",
        type=positive_int,
        default=DEFAULT_NEAREST_K,
        metavar="K",
        help=f"k of density/coverage (default {DEFAULT_NEAREST_K}, as the public F-LSeSim "
        "evaluation); each set then needs at least k+2 images, else dc shows n/a",
    )
    m.add_argument(
        "--rounds",
        type=positive_int,
        default=19,
        metavar="R",
        help="multi-modal runs (Table 2's protocol): R rounds of up to 100 inputs, each in a "
        "fresh random style; FID is the mean and std over the rounds, density/coverage is "
        "computed once over all R x 100 outputs, LPIPS diversity over R pairs per input "
        "(default 19: 1,900 outputs, as the paper)",
    )
    m.add_argument(
        "--max-images",
        type=positive_int,
        metavar="N",
        help="use only the first N images (sorted by name) of each folder",
    )

    o = e.add_argument_group("running and output")
    o.add_argument(
        "--batch-size",
        type=positive_int,
        default=16,
        metavar="N",
        help="images per generator / feature-extractor call (default 16); images of one size "
        "are batched together",
    )
    o.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    o.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where metrics.json, metrics.csv and the PNGs go (default RUN/eval with --run, "
        "./eval_<name of the --fake folder> with --real/--fake)",
    )
    o.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=run)
    return e


def run(args: argparse.Namespace) -> int:
    """Run ``sesim eval``; returns the exit status."""
    return evaluate(EvalOptions(**{f.name: getattr(args, f.name) for f in fields(EvalOptions)}))
