"""The paper's Table 2 protocol for multi-modal runs: diversity, and quality over style samples.

For a multi-modal generator (:mod:`sesim.methods.munit`) one input has many translations, so
the single-modal scores are complemented by:

- **LPIPS diversity** (higher is more diverse): for each of up to 100 test inputs, R = 19 pairs
  of independent random style codes; the mean (and std) LPIPS distance between the two outputs
  of a pair, over the 1,900 pairs (MUNIT's and DRIT's protocol, via
  :func:`sesim.metrics.lpips_diversity`);
- **FID over style samples** (lower is better): R = 19 rounds (``n_styles``); in each round
  every input is translated in its own random style and the FID of those 100 outputs against
  the real target test images is computed; mean and std over the rounds;
- **density and coverage over style samples** (higher is better): computed once, over all the
  rounds' outputs pooled (19 x 100 = 1,900) against the real test set, with k = 95
  (:func:`sesim.metrics.density_coverage`). Coverage depends on the number of samples, so a
  mean over rounds of 100 outputs would not be the paper's number.

This is the paper's Table 2 protocol (100 inputs sampled 19 times); ``sesim eval --rounds R``
changes R (pairs per input and rounds together).

Every function takes an explicit ``torch.Generator`` (a fresh one seeded with 0 when None), so
two checkpoints are scored on the same style codes. ``sesim eval`` calls
:func:`multimodal_scores` once per checkpoint (see :data:`MULTIMODAL_SCORES` and
:data:`MULTIMODAL_COLUMNS` for its columns); :func:`evaluate_multimodal` scores one checkpoint of
a run on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sesim.devices import resolve_device
from sesim.errors import UserError
from sesim.eval.scoring import Scorer, Unavailable, make_extractor
from sesim.eval.sets import TEST_SET, Split, load_split
from sesim.metrics import density_coverage, extract_features, fid_from_features, lpips_diversity
from sesim.metrics import lpips_model as _lpips_model
from sesim.metrics.fid import FeatureExtractor
from sesim.metrics.prdc import DEFAULT_NEAREST_K
from sesim.runs import load_generator, newest_readable_checkpoint
from sesim.translate import translate_random

#: Column -> (metric tag, higher is better), in the form of ``sesim.eval.report.SCORES``.
MULTIMODAL_SCORES: dict[str, tuple[str, bool]] = {
    "diversity_lpips": ("multimodal", True),
    "fid_styles": ("multimodal", False),
    "density_styles": ("multimodal", True),
    "coverage_styles": ("multimodal", True),
}

#: Every stored column, in file order (the ``*_std`` columns are stored, not ranked).
MULTIMODAL_COLUMNS: tuple[str, ...] = (
    "diversity_lpips",
    "diversity_lpips_std",
    "fid_styles",
    "fid_styles_std",
    "density_styles",
    "coverage_styles",
)

Inputs = Sequence[Tensor] | Tensor


@dataclass(frozen=True)
class MultimodalSettings:
    """How many inputs, pairs and style rounds the protocol uses.

    Attributes:
        max_inputs: inputs used (the first ones, in name order); the paper uses 100.
        pairs_per_input: LPIPS pairs per input (19: 1,900 pairs for 100 inputs).
        n_styles: style rounds R of FID (mean and std over rounds) and of density/coverage
            (once over the pooled outputs of all rounds); the paper uses 19.
        seed: seed of the style codes (the same for every checkpoint).
        batch_size: images per generator / extractor call.
    """

    max_inputs: int = 100
    pairs_per_input: int = 19
    n_styles: int = 19
    seed: int = 0
    batch_size: int = 16


def _generator(generator: torch.Generator | None) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(0)


def _as_list(inputs: Inputs) -> list[Tensor]:
    """(3, H, W) images from a (N, 3, H, W) tensor or a sequence of (3, H, W) / (1, 3, H, W)."""
    items = list(inputs.unbind(0)) if isinstance(inputs, Tensor) else list(inputs)
    out = [x[0] if x.dim() == 4 and x.shape[0] == 1 else x for x in items]
    for x in out:
        if x.dim() != 3:
            raise ValueError(f"each input must be (3, H, W) or (1, 3, H, W), got {tuple(x.shape)}")
    if not out:
        raise UserError("no test inputs to translate; check the image folder")
    return out


def _size_batches(images: list[Tensor], batch_size: int) -> list[list[int]]:
    """Indices grouped by image size (first-seen order), in chunks of at most ``batch_size``."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(images):
        groups.setdefault(tuple(x.shape), []).append(i)
    return [
        idx[start : start + batch_size]
        for idx in groups.values()
        for start in range(0, len(idx), batch_size)
    ]


def diversity_lpips(
    G: nn.Module,
    inputs: Inputs,
    lpips_model: nn.Module,
    pairs_per_input: int = 19,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """LPIPS diversity of a multi-modal generator (Table 2's LPIPS column).

    Args:
        G: a MUNIT generator in eval mode, on the LPIPS model's device.
        inputs: (N, 3, H, W) images in [-1, 1], or a sequence of (3, H, W) images of any sizes.
        lpips_model: from :func:`sesim.metrics.lpips_model`.
        pairs_per_input: pairs of independent style codes per input.
        generator: source of the style codes; None uses a fresh one seeded with 0.
    Returns:
        (mean, std) LPIPS distance over the ``N * pairs_per_input`` pairs.
    """
    return lpips_diversity(
        lpips_model,
        partial(translate_random, G),
        _as_list(inputs),
        pairs_per_input=pairs_per_input,
        generator=_generator(generator),
    )


def features_over_styles(
    G: nn.Module,
    inputs: Inputs,
    extractor: FeatureExtractor,
    n_styles: int = 19,
    generator: torch.Generator | None = None,
    batch_size: int = 16,
) -> list[Tensor]:
    """Features of ``n_styles`` translated copies of the inputs, each input in its own style.

    Args:
        G: a MUNIT generator in eval mode.
        inputs: (N, 3, H, W) images in [-1, 1], or a sequence of (3, H, W) images.
        extractor: maps (B, 3, H, W) in [-1, 1] to (B, D), on ``G``'s device.
        n_styles: rounds; round r draws one fresh style code per input.
        generator: source of the style codes; None uses a fresh one seeded with 0.
        batch_size: images per call.
    Returns:
        ``n_styles`` (N, D) float64 feature sets on the CPU, rows in input order.
    """
    if n_styles < 1:
        raise ValueError(f"n_styles must be >= 1, got {n_styles}")
    g = _generator(generator)
    images = _as_list(inputs)
    device = next(G.parameters()).device
    rounds = []
    for _ in range(n_styles):
        fakes: list[Tensor] = [images[0]] * len(images)
        for idx in _size_batches(images, batch_size):
            x = torch.stack([images[i] for i in idx])
            out = translate_random(G, x, g).float().clamp(-1, 1)
            for i, y in zip(idx, out):
                fakes[i] = y
        rounds.append(extract_features(extractor, fakes, batch_size, device))
    return rounds


def fid_over_rounds(real_feats: Tensor, rounds: Sequence[Tensor]) -> tuple[float, float]:
    """Mean and std (correction 0) of the FID of each round's features against the reals."""
    values = torch.tensor([fid_from_features(real_feats, f) for f in rounds], dtype=torch.float64)
    return float(values.mean()), float(values.std(correction=0))


def density_coverage_pooled(
    real_feats: Tensor, rounds: Sequence[Tensor], nearest_k: int = DEFAULT_NEAREST_K
) -> dict[str, float]:
    """Density, coverage, precision and recall once over every round's outputs (Table 2).

    Args:
        real_feats: (M, D) features of the real target test images.
        rounds: R (N, D) feature sets of the outputs, pooled into one (R * N, D) set.
        nearest_k: k of the nearest-neighbour balls (95 as the public evaluation).
    Returns:
        ``density``, ``coverage``, ``precision``, ``recall``.
    """
    return density_coverage(real_feats, torch.cat(list(rounds)), nearest_k=nearest_k)


def density_coverage_over_rounds(
    real_feats: Tensor, rounds: Sequence[Tensor], nearest_k: int = DEFAULT_NEAREST_K
) -> dict[str, float]:
    """Density, coverage, precision and recall of each round; mean and ``*_std`` over rounds
    (not the paper's protocol, which pools the rounds: :func:`density_coverage_pooled`)."""
    scores = [density_coverage(real_feats, f, nearest_k=nearest_k) for f in rounds]
    out: dict[str, float] = {}
    for key in ("density", "coverage", "precision", "recall"):
        values = torch.tensor([s[key] for s in scores], dtype=torch.float64)
        out[key] = float(values.mean())
        out[f"{key}_std"] = float(values.std(correction=0))
    return out


def fid_over_styles(
    G: nn.Module,
    inputs: Inputs,
    real_feats: Tensor,
    extractor: FeatureExtractor,
    n_styles: int = 19,
    generator: torch.Generator | None = None,
    batch_size: int = 16,
) -> tuple[float, float]:
    """FID mean and std over style samples (Table 2's FID column).

    Args:
        G: a MUNIT generator in eval mode.
        inputs: (N, 3, H, W) images in [-1, 1], or a sequence of (3, H, W) images.
        real_feats: (M, D) features of real target images, from the same ``extractor``.
        extractor: the feature network, on ``G``'s device.
        n_styles: rounds; each translates every input in its own fresh style.
        generator: source of the style codes; None uses a fresh one seeded with 0.
        batch_size: images per call.
    Returns:
        (mean, std) of the per-round FIDs.
    Raises:
        UserError: fewer than 2 inputs or real images.
    """
    rounds = features_over_styles(G, inputs, extractor, n_styles, generator, batch_size)
    return fid_over_rounds(real_feats, rounds)


def density_coverage_over_styles(
    G: nn.Module,
    inputs: Inputs,
    real_feats: Tensor,
    extractor: FeatureExtractor,
    n_styles: int = 19,
    generator: torch.Generator | None = None,
    nearest_k: int = DEFAULT_NEAREST_K,
    batch_size: int = 16,
) -> dict[str, float]:
    """Density and coverage (with precision and recall) once over all style samples pooled.

    Args:
        G: a MUNIT generator in eval mode.
        inputs: (N, 3, H, W) images in [-1, 1], or a sequence of (3, H, W) images.
        real_feats: (M, D) features of real target images, from the same ``extractor``.
        extractor: the feature network, on ``G``'s device.
        n_styles: rounds; each translates every input in its own fresh style.
        generator: source of the style codes; None uses a fresh one seeded with 0.
        nearest_k: k of the nearest-neighbour balls (95 as the public evaluation).
        batch_size: images per call.
    Returns:
        ``density``, ``coverage``, ``precision``, ``recall`` over the ``n_styles * N`` outputs.
    Raises:
        UserError: fewer than ``nearest_k + 2`` outputs or real images.
    """
    rounds = features_over_styles(G, inputs, extractor, n_styles, generator, batch_size)
    return density_coverage_pooled(real_feats, rounds, nearest_k)


# ---------------------------------------------------------------------------------------------
# ``sesim eval`` integration.


def make_diversity_lpips(
    weights: Path | None, allow_random: bool, device: torch.device | str
) -> tuple[nn.Module | None, str]:
    """The LPIPS network of the diversity score, or None when its AlexNet weights are missing.

    Args:
        weights: torchvision's ``alexnet-owt-7be5be79.pth``; None looks in the torch hub cache.
        allow_random: fall back to a seeded random AlexNet when the weights are missing (smoke
            tests; ``sesim eval --extractor random``).
        device: where it runs.
    Returns:
        ``(model, backbone)``: ``backbone`` is ``"alexnet"``, ``"random"`` or the reason the
        model is None.
    """
    try:
        model = _lpips_model(weights)
        return model.to(device), "alexnet"
    except UserError as exc:
        if weights is not None or not allow_random:
            return None, f"diversity_lpips skipped: {exc}"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _lpips_model(None, random_backbone=True)
    return model.to(device), "random"


def multimodal_scores(
    G: nn.Module,
    split: Split,
    scorer: Scorer,
    lpips_net: nn.Module | None,
    settings: MultimodalSettings | None = None,
) -> tuple[dict[str, float | None], dict[str, Unavailable]]:
    """Table 2's scores of one checkpoint, for ``sesim eval --run`` on a multi-modal run.

    Diversity needs ``lpips_net``; ``fid_styles`` needs ``fid`` in ``scorer.metrics`` and
    ``density_styles``/``coverage_styles`` need ``dc`` (both with the scorer's extractor and
    ``split.real_features``). Scores that cannot be computed are None with a reason, as in
    :func:`sesim.eval.scoring.feature_scores`.

    Args:
        G: the MUNIT generator, in eval mode on ``scorer.device``.
        split: the test inputs and the real images' features.
        scorer: the evaluation's extractor, device and metric names.
        lpips_net: from :func:`make_diversity_lpips`; None skips diversity.
        settings: inputs, pairs, rounds and seed (defaults: the paper's 100 x 19 pairs).
    Returns:
        ``(values, unavailable)`` keyed by :data:`MULTIMODAL_COLUMNS`.
    """
    s = settings if settings is not None else MultimodalSettings()
    inputs = split.inputs.images[: s.max_inputs]
    values: dict[str, float | None] = {}
    missing: dict[str, Unavailable] = {}
    if lpips_net is not None:
        g = torch.Generator().manual_seed(s.seed)
        values["diversity_lpips"], values["diversity_lpips_std"] = diversity_lpips(
            G, inputs, lpips_net, s.pairs_per_input, g
        )
    want_fid = "fid" in scorer.metrics
    want_dc = "dc" in scorer.metrics
    real = split.real_features
    if scorer.extractor is None or real is None or not (want_fid or want_dc):
        return values, missing
    g = torch.Generator().manual_seed(s.seed + 1)
    rounds = features_over_styles(G, inputs, scorer.extractor, s.n_styles, g, s.batch_size)
    if want_fid:
        try:
            values["fid_styles"], values["fid_styles_std"] = fid_over_rounds(real, rounds)
        except UserError as exc:
            for column in ("fid_styles", "fid_styles_std"):
                values[column] = None
                missing[column] = Unavailable("needs 2 images", str(exc))
    if want_dc:
        try:
            dc = density_coverage_pooled(real, rounds, scorer.nearest_k)
            for key in ("density", "coverage"):
                values[f"{key}_styles"] = dc[key]
        except UserError as exc:
            for column in ("density_styles", "coverage_styles"):
                values[column] = None
                missing[column] = Unavailable(f"needs {scorer.nearest_k + 2} images", str(exc))
    return values, missing


def evaluate_multimodal(
    run_dir: Path,
    *,
    checkpoint: Path | None = None,
    data: Path | None = None,
    extractor: str = "inception",
    inception_weights: Path | None = None,
    lpips_weights: Path | None = None,
    settings: MultimodalSettings | None = None,
    nearest_k: int = DEFAULT_NEAREST_K,
    device: str = "auto",
) -> dict[str, Any]:
    """Table 2's scores of one checkpoint of a multi-modal run (the newest by default).

    The run's test inputs (``testA/``, or ``testB/`` for ``BtoA``) are translated in random
    styles and compared with the real target test images.

    Args:
        run_dir: the run folder.
        checkpoint: a checkpoint file of the run; None takes the newest.
        data: the run's dataset folder when it has moved.
        extractor: ``inception`` (needs its weights) or ``random`` (smoke tests only; LPIPS
            then falls back to a random AlexNet when its weights are missing).
        inception_weights: the Inception weights file (default: the torch hub cache).
        lpips_weights: the AlexNet weights file (default: the torch hub cache).
        settings: inputs, pairs, rounds and seed.
        nearest_k: k of density/coverage.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    Returns:
        ``step``, ``checkpoint``, ``num_inputs``, ``rounds``, ``num_outputs`` (rounds x
        inputs: the outputs density/coverage is computed on), ``num_reals``, ``extractor``,
        ``lpips_backbone``, the :data:`MULTIMODAL_COLUMNS` values (None when not computable)
        and ``unavailable`` (column -> reason).
    Raises:
        UserError: not a multi-modal run, no checkpoint, or missing data or weights.
    """
    if checkpoint is None:
        checkpoint, _ = newest_readable_checkpoint(run_dir)
    dev = resolve_device(device)
    G, cfg, step = load_generator(None, checkpoint, dev)
    if cfg.mode != "multimodal":
        raise UserError(
            f"{run_dir} is a {cfg.mode} run; the multi-modal scores need a multimodal run"
        )
    root = data if data is not None else Path(cfg.data.root)
    if not root.is_dir():
        raise UserError(f"the run's dataset {root} does not exist (moved?); pass data=DIR")
    s = settings if settings is not None else MultimodalSettings()
    metrics = ["fid", "dc"]
    net = make_extractor(extractor, inception_weights, dev, metrics)
    scorer = Scorer(metrics, net, dev, s.batch_size, nearest_k)
    split = load_split(root, cfg.data.direction, TEST_SET, None, None, False)
    split.real_features = scorer.features(split.reals)
    lpips_net, backbone = make_diversity_lpips(lpips_weights, extractor == "random", dev)
    values, missing = multimodal_scores(G, split, scorer, lpips_net, s)
    if lpips_net is None:
        values["diversity_lpips"] = values["diversity_lpips_std"] = None
    num_inputs = min(len(split.inputs.images), s.max_inputs)
    return {
        "run": str(run_dir),
        "checkpoint": str(checkpoint),
        "step": step,
        "num_inputs": num_inputs,
        "rounds": s.n_styles,
        "num_outputs": s.n_styles * num_inputs,
        "num_reals": len(split.reals.images),
        "extractor": extractor,
        "lpips_backbone": backbone,
        **{c: values.get(c) for c in MULTIMODAL_COLUMNS},
        "unavailable": {k: v.reason for k, v in missing.items()},
    }
