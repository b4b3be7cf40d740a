"""A multi-modal synthetic benchmark: structure and diversity of sampled styles (Table 2 style).

The ``"multistyle"`` task of :mod:`sesim.data.synthetic` renders street-like layouts in domain
A and, in domain B, the same kind of layout in one of three appearance families (day, night,
autumn). A multi-modal translator should keep the input's layout in every sampled style
(structure) while its styles spread over the families (diversity). Scores, for each row:

- **Structure** (higher is better): a :class:`~sesim.metrics.SmallSegmenter` trained on the
  real target training images (``trainB``, as ``sesim eval``'s ``seg`` metric and
  ``sesim bench quality``) labels each translation; pixel accuracy and mIoU against the input's
  true label map, averaged over ``n_styles`` style codes (each code shared by all inputs), with
  the std over the codes. Its score on the real target test images is the yardstick.
- **LPIPS diversity** (higher is more diverse): :func:`sesim.eval.multimodal.diversity_lpips`,
  ``pairs_per_input`` pairs of random codes per test input. With torchvision's AlexNet weights
  missing (they are never downloaded) the LPIPS backbone is a seeded random AlexNet: its numbers
  rank methods on this benchmark but are not comparable with published LPIPS values. The table
  says which backbone was used.
- **Families per input** (higher is more diverse, at most 3): a small classifier of the
  appearance family, trained here on the real ``trainB`` images and their families
  (``meta.json``), labels each of the ``n_styles`` translations of an input; the number of
  distinct families, averaged over inputs. Its accuracy on the real test images is reported.
- **FID over styles** (lower is better): mean and std over ``n_styles`` rounds, each input in its
  own random style, against held-out real target images, on the features of a fixed random
  conv net (:func:`sesim.metrics.random_conv_extractor`): a relative score for this benchmark
  only.

Rows: ``munit-fsesim`` (the ``munit-tiny`` preset: one-sided MUNIT + FSeSim),
``munit-lsesim`` (the same with LSeSim's learned heads) and ``munit-gan`` (the same networks and
objective with the structure weight lambda set to 0, i.e. GAN and style reconstruction only: what
the structure loss buys), and on request ``munit-cycle`` (``tiny-munit-cycle``: the paper's
two-sided MUNIT baseline, with a second autoencoder and discriminator, image, content and style
reconstruction and the cycle loss). Reference rows: *input A* (the untranslated
inputs) and *real B* (the true target renderings of the test scenes).

Outputs in ``out``: ``results.md``, ``results.json``, ``grid_<row>.png`` (inputs x sampled
styles), ``data/`` (the dataset, cached) and ``runs/<row>/`` (the training runs, reused when
finished with the same config).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.bench.jobs import train_run
from sesim.bench.presets import BENCH_PRESETS
from sesim.bench.report import format_markdown_table, write_results
from sesim.bench.tasks import prepare_data
from sesim.config import TrainConfig, preset, validate
from sesim.devices import resolve_device
from sesim.errors import UserError
from sesim.eval.multimodal import (
    diversity_lpips,
    features_over_styles,
    fid_over_rounds,
    make_diversity_lpips,
)
from sesim.features.vgg import imagenet_weights_available
from sesim.metrics import (
    evaluate_segmenter,
    extract_features,
    fid_from_features,
    random_conv_extractor,
    train_segmenter,
)
from sesim.report import write_sample_grid
from sesim.runs import load_generator
from sesim.translate import translate_styles

TASK = "multistyle"

#: bench row -> how its config differs from ``munit-tiny``.
ROWS: dict[str, str] = {
    "munit-fsesim": "munit-tiny: one-sided MUNIT + FSeSim (lambda 10)",
    "munit-lsesim": "munit-tiny with LSeSim's learned heads",
    "munit-gan": "munit-tiny with lambda = 0 (GAN + style reconstruction only)",
    "munit-cycle": "tiny-munit-cycle: two-sided MUNIT (reconstruction and cycle losses)",
}

ConfigTweak = Callable[[TrainConfig], TrainConfig]

# ---------------------------------------------------------------------------------------------
# Configs.


def row_config(
    row: str,
    data_root: Path,
    steps: int,
    size: int,
    batch: int,
    device: str,
    seed: int,
    vgg_weights: str,
) -> TrainConfig:
    """The training config of one bench row.

    The ``munit-tiny`` preset at ``size`` px (whole images, random flips), with the structure
    loss's window scaled by ``size / 64`` (the preset's crop), so it keeps its size relative to
    the image.

    Args:
        row: a key of :data:`ROWS`.
        data_root: the dataset folder.
        steps: optimisation steps.
        size: image side.
        batch: images per step.
        device: the run's device.
        seed: the run's seed (the same for every row).
        vgg_weights: ``imagenet`` or ``random``.
    Returns:
        The validated config.
    Raises:
        UserError: an unknown row.
    """
    if row not in ROWS:
        raise UserError(f"unknown bench row {row!r}; choose from: {', '.join(ROWS)}")
    base = preset("munit-tiny")
    s = base.structure
    window = s.loss.window
    if window is not None:
        window = max(1, round(window * size / base.data.crop_size))
    loss = replace(s.loss, window=window)
    structure = replace(s, vgg_weights=vgg_weights, loss=loss)
    if row == "munit-lsesim":
        structure = replace(structure, augment=True, loss=replace(loss, learned=True))
    elif row == "munit-gan":
        structure = replace(structure, weight=0.0)
    elif row == "munit-cycle":
        base = replace(base, method="munit-cycle", baseline=preset("tiny-munit-cycle").baseline)
    cfg = replace(
        base,
        preset=f"munit-tiny ({row})",
        steps=steps,
        batch=batch,
        seed=seed,
        device=device,
        precision="fp32",
        save_every=steps,
        keep_last=1,
        log_every=min(50, steps),
        sample_every=steps,
        num_samples=4,
        data=replace(
            base.data,
            root=str(data_root),
            direction="AtoB",
            load_size=size,
            crop_size=size,
            flip=True,
            preprocess="resize_and_crop",
            workers=0,
        ),
        structure=structure,
    )
    return validate(cfg)


# ---------------------------------------------------------------------------------------------
# The appearance-family classifier.


class FamilyNet(nn.Module):
    """A small CNN telling the appearance families of the target domain apart.

    Three stride-2 4x4 convolutions (group norm, LeakyReLU 0.2), global average pooling and a
    linear layer.

    Args:
        num_families: number of families (outputs).
        width: channels of the first convolution (doubled at each of the next two).
    """

    def __init__(self, num_families: int, width: int = 16) -> None:
        super().__init__()
        widths = [3, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            layers += [
                nn.Conv2d(c_in, c_out, 4, stride=2, padding=1),
                nn.GroupNorm(math.gcd(8, c_out), c_out),
                nn.LeakyReLU(0.2),
            ]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(4 * width, num_families)

    def forward(self, images: Tensor) -> Tensor:
        """Map (B, 3, H, W) images in [-1, 1] to (B, num_families) logits."""
        out: Tensor = self.head(self.body(images).mean(dim=(2, 3)))
        return out


def train_family_net(
    images: Tensor,
    families: Tensor,
    num_families: int,
    steps: int = 300,
    batch_size: int = 16,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> FamilyNet:
    """Fit a :class:`FamilyNet` (Adam 2e-3, cross-entropy, random horizontal flips).

    Args:
        images: (N, 3, H, W) real target images in [-1, 1].
        families: (N,) int64 family of each image.
        num_families: number of families.
        steps: optimiser steps.
        batch_size: images per step, drawn with replacement.
        seed: seeds the weights and the batches (global RNG untouched).
        device: where to train.
    Returns:
        The classifier, in eval mode on ``device``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FamilyNet(num_families)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(images.shape[0], (batch_size,), generator=g)
        flip = torch.rand(batch_size, generator=g) < 0.5
        x = images[idx].clone()
        x[flip] = x[flip].flip(-1)
        loss = F.cross_entropy(model(x.to(device)), families[idx].to(device))

        # Update weights.
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def predict_families(model: nn.Module, images: Tensor, batch_size: int = 64) -> Tensor:
    """(N,) predicted family of (N, 3, H, W) images (on the CPU)."""
    device = next(model.parameters()).device
    preds = [model(x.to(device)).argmax(1).cpu() for x in images.split(batch_size)]
    return torch.cat(preds)


# ---------------------------------------------------------------------------------------------
# Scores.


@torch.no_grad()
def styled_translations(
    G: nn.Module, images: Tensor, k: int, generator: torch.Generator, batch_size: int = 16
) -> Tensor:
    """Every image in the same ``k`` sampled styles, in chunks of ``batch_size`` inputs.

    Args:
        G: a MUNIT generator in eval mode.
        images: (N, 3, H, W) in [-1, 1] (any device).
        k: styles.
        generator: source of the codes (the same ``k`` codes for every chunk).
        batch_size: inputs per generator call.
    Returns:
        (N, k, 3, H, W) translations on the CPU, clamped to [-1, 1].
    """
    device = next(G.parameters()).device
    state = generator.get_state()
    outs = []
    for x in images.split(batch_size):
        generator.set_state(state)
        outs.append(translate_styles(G, x.to(device), k, generator).clamp(-1, 1).cpu())
    return torch.cat(outs)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    t = torch.tensor(list(values), dtype=torch.float64)
    return float(t.mean()), float(t.std(correction=0))


def structure_scores(
    segmenter: nn.Module, fakes: Tensor, labels: Tensor, num_classes: int
) -> dict[str, float]:
    """Segmentation scores of (N, k, 3, H, W) translations, mean and std over the k styles."""
    device = next(segmenter.parameters()).device
    per_style = [
        evaluate_segmenter(segmenter, fakes[:, j], labels, num_classes, device=device)
        for j in range(fakes.shape[1])
    ]
    out: dict[str, float] = {}
    for key in ("pixel_acc", "miou"):
        out[key], out[f"{key}_std"] = _mean_std([s[key] for s in per_style])
    return out


def families_per_input(family_net: nn.Module, fakes: Tensor) -> tuple[float, list[float]]:
    """Distinct predicted families per input (mean) and the share of each family.

    Args:
        family_net: the family classifier.
        fakes: (N, k, 3, H, W) translations.
    Returns:
        ``(mean distinct families per input, share of each family over all N * k images)``.
    """
    n, k = fakes.shape[:2]
    preds = predict_families(family_net, fakes.flatten(0, 1)).view(n, k)
    distinct = torch.tensor([float(len(set(row.tolist()))) for row in preds])
    num = (
        family_net.head.out_features if isinstance(family_net, FamilyNet) else int(preds.max()) + 1
    )
    shares = torch.bincount(preds.flatten(), minlength=num).double() / preds.numel()
    return float(distinct.mean()), [float(v) for v in shares]


# ---------------------------------------------------------------------------------------------
# Report.

#: (key, header, format, higher is better); ``*_std`` keys are shown after a +/-.
COLUMNS: tuple[tuple[str, str, str, bool], ...] = (
    ("miou", "mIoU ↑", "{:.3f}", True),
    ("pixel_acc", "pixel acc ↑", "{:.3f}", True),
    ("diversity_lpips", "LPIPS diversity ↑", "{:.3f}", True),
    ("families", "families/input ↑", "{:.2f}", True),
    ("fid", "FID ↓", "{:.2f}", False),
)


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "n/a"
    text = fmt.format(value)
    std = row.get(f"{key}_std")
    if isinstance(std, int | float) and math.isfinite(std):
        text += " ± " + fmt.format(std)
    return text


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of rows (``method``, ``kind``, the keys of :data:`COLUMNS`)."""
    return format_markdown_table(
        ["method", *(c[1] for c in COLUMNS)],
        rows,
        lambda r: [_cell(r, key, fmt) for key, _, fmt, _ in COLUMNS],
    )


def results_markdown(results: dict[str, Any]) -> str:
    """The ``results.md`` text of a results dict."""
    s = results["settings"]
    y, fam = results["yardstick"], results["family_classifier"]
    backbone = results["lpips_backbone"]
    lpips_note = (
        "LPIPS with torchvision's AlexNet"
        if backbone == "alexnet"
        else "LPIPS with a **random-weight AlexNet** backbone (AlexNet weights not cached): "
        "meaningful only to rank rows of this table"
    )
    names = ", ".join(results["family_names"])
    lines = [
        "# sesim multi-modal benchmark (synthetic `multistyle`)",
        "",
        f"{s['steps']} steps of batch {s['batch']} at {s['size']} px per row; "
        f"{s['n_train']} training images per domain, {s['n_test']} test scenes; "
        f"{s['n_styles']} style codes per input for structure, families and FID; "
        f"{s['pairs_per_input']} LPIPS pairs per input. Device {results['device']}, "
        f"VGG16 weights: {results['vgg_weights']}, seed {s['seed']}, wall time "
        f"{results['elapsed_s'] / 60:.1f} min.",
        "",
        "Structure: a segmenter trained on real target images labels each translation; mIoU and "
        "pixel accuracy against the input's layout, mean ± std over style codes. "
        f"Diversity: {lpips_note}; families/input = distinct appearance families ({names}) "
        "among an input's sampled styles, by a classifier trained on real target images "
        "(at most 3). FID: mean ± std over style rounds, random-conv features, against "
        "held-out real target images (relative to this table only).",
        "",
        f"Segmenter yardstick on real target test images: mIoU {y['miou']:.3f}, pixel acc "
        f"{y['pixel_acc']:.3f}. Family classifier accuracy on real target test images: "
        f"{fam['accuracy']:.2f}.",
        "",
        markdown_table(results["rows"]),
        "",
        "Not run: the MUNIT cycle baseline (two generators and two discriminators), which "
        "sesim does not implement.",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The benchmark.


def _families(root: Path, split: str) -> Tensor:
    """(N,) families of the images of ``root/split`` in file-name order, from ``meta.json``."""
    meta = json.loads((root / "meta.json").read_text())
    styles: dict[str, int] = meta["styles"][split]
    names = sorted(p.name for p in (root / split).glob("*.png"))
    return torch.tensor([int(styles[n]) for n in names], dtype=torch.int64)


def run_multimodal_bench(
    out: Path,
    steps: int = 150,
    size: int = 64,
    device: str = "cpu",
    seed: int = 0,
    *,
    rows: Sequence[str] = ("munit-fsesim", "munit-gan"),
    batch: int = 4,
    n_train: int = 200,
    n_test: int = 24,
    n_styles: int = 6,
    pairs_per_input: int = 19,
    aux_steps: int = 300,
    grid_inputs: int = 6,
    tweak: ConfigTweak | None = None,
    quiet: bool = True,
) -> dict[str, Any]:
    """Train the rows on the ``multistyle`` task, score structure and diversity, write a report.

    Args:
        out: the results folder (data and runs are cached in it).
        steps: training steps per row.
        size: image side in pixels.
        device: ``cpu``, ``auto``, ``cuda`` or ``cuda:N``.
        seed: seed of the data, the runs, the judges and the style codes.
        rows: keys of :data:`ROWS`, in table order.
        batch: images per training step.
        n_train: training images per domain.
        n_test: test scenes (and held-out reference images).
        n_styles: style codes per input for structure, families and FID rounds.
        pairs_per_input: LPIPS pairs per test input.
        aux_steps: training steps of the segmenter and of the family classifier.
        grid_inputs: inputs shown in each grid (with ``n_styles`` style rows).
        tweak: applied to every row's config after :func:`row_config` (tests shrink networks).
        quiet: no progress bars.
    Returns:
        The ``results.json`` dict: ``rows`` (one dict of scores per row), ``yardstick``,
        ``family_classifier``, ``lpips_backbone``, ``grids`` (row -> PNG path), settings.
    """
    start = time.perf_counter()
    dev = resolve_device(device)
    vgg_weights = "imagenet" if imagenet_weights_available() else "random"
    if vgg_weights == "random" and not quiet:
        print(
            "notice: ImageNet VGG16 weights are not cached; runs use random VGG weights",
            file=sys.stderr,
        )
    for row in rows:  # a bad row or value fails before any work
        row_config(row, out / "data", steps, size, batch, str(dev), seed, vgg_weights)

    # Data and judges.
    spec = replace(BENCH_PRESETS["quick"], size=size, n_train=n_train, n_test=n_test)
    data = prepare_data(out, TASK, spec, seed)
    meta = json.loads((data.root / "meta.json").read_text())
    family_names = list(meta["style_names"])
    seg_batch = min(16, n_train)
    segmenter = train_segmenter(
        data.train_b,
        data.labels_train_b,
        data.num_classes,
        steps=aux_steps,
        batch_size=seg_batch,
        width=16,
        seed=seed,
        device=dev,
    )
    yardstick = evaluate_segmenter(
        segmenter, data.test_b, data.labels_test, data.num_classes, device=dev
    )
    family_net = train_family_net(
        data.train_b,
        _families(data.root, "trainB"),
        len(family_names),
        steps=aux_steps,
        batch_size=seg_batch,
        seed=seed + 1,
        device=dev,
    )
    test_families = _families(data.root, "testB")
    family_acc = float((predict_families(family_net, data.test_b) == test_families).double().mean())
    extractor = random_conv_extractor(seed=0, dim=64).to(dev)
    ref_feats = extract_features(extractor, data.reference, device=dev)
    lpips_net, backbone = make_diversity_lpips(None, True, dev)
    assert lpips_net is not None

    # Reference rows.
    table: list[dict[str, Any]] = []
    for name, images in (("input A", data.test_a), ("real B", data.test_b)):
        seg = evaluate_segmenter(segmenter, images, data.labels_test, data.num_classes, device=dev)
        feats = extract_features(extractor, images, device=dev)
        ref_row: dict[str, Any] = {
            "method": name,
            "kind": "reference",
            "miou": seg["miou"],
            "pixel_acc": seg["pixel_acc"],
            "diversity_lpips": 0.0 if name == "input A" else None,
            "families": None,
            "fid": fid_from_features(ref_feats, feats),
        }
        if name == "real B":
            counts = torch.bincount(test_families, minlength=len(family_names)).double()
            ref_row["family_shares"] = [float(v) for v in counts / counts.sum()]
        table.append(ref_row)

    # Methods.
    grids: dict[str, str] = {}
    for row in rows:
        cfg = row_config(row, data.root, steps, size, batch, str(dev), seed, vgg_weights)
        if tweak is not None:
            cfg = validate(tweak(cfg))
        run_dir = out / "runs" / row
        t0 = time.perf_counter()
        final, reused = train_run(cfg, run_dir)
        train_s = time.perf_counter() - t0
        G, _, step = load_generator(None, final, dev)

        g = torch.Generator().manual_seed(seed)
        fakes = styled_translations(G, data.test_a, n_styles, g)
        scores = structure_scores(segmenter, fakes, data.labels_test, data.num_classes)
        div, div_std = diversity_lpips(
            G, data.test_a, lpips_net, pairs_per_input, torch.Generator().manual_seed(seed + 1)
        )
        families, shares = families_per_input(family_net, fakes)
        rounds = features_over_styles(
            G, data.test_a, extractor, n_styles, torch.Generator().manual_seed(seed + 2)
        )
        fid, fid_std = fid_over_rounds(ref_feats, rounds)
        summary_path = run_dir / "train_summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        table.append(
            {
                "method": row,
                "kind": "method",
                "description": ROWS[row],
                **scores,
                "diversity_lpips": div,
                "diversity_lpips_std": div_std,
                "families": families,
                "family_shares": shares,
                "fid": fid,
                "fid_std": fid_std,
                "steps": step,
                "median_step_ms": summary.get("median_step_ms"),
                "train_s": None if reused else train_s,
                "run": str(run_dir),
            }
        )
        n = min(grid_inputs, len(data.test_a))
        grid = write_sample_grid(
            data.test_a[:n],
            [fakes[:n, j] for j in range(n_styles)],
            out / f"grid_{row}.png",
            labels=["input", *(f"style {j + 1}" for j in range(n_styles))],
        )
        grids[row] = str(grid)

    results: dict[str, Any] = {
        "task": TASK,
        "settings": {
            "steps": steps,
            "size": size,
            "batch": batch,
            "n_train": n_train,
            "n_test": n_test,
            "n_styles": n_styles,
            "pairs_per_input": pairs_per_input,
            "aux_steps": aux_steps,
            "seed": seed,
        },
        "device": str(dev),
        "vgg_weights": vgg_weights,
        "lpips_backbone": backbone,
        "family_names": family_names,
        "yardstick": yardstick,
        "family_classifier": {"accuracy": family_acc},
        "rows": table,
        "grids": grids,
        "elapsed_s": time.perf_counter() - start,
    }
    write_results(out, results, results_markdown(results))
    return results
