"""The judges of a task: a segmenter (structure) and an appearance network (domain classifier and
feature space), trained once per task and cached; the scores of a set of translations."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.bench.presets import BenchPreset
from sesim.bench.tasks import TaskData
from sesim.metrics import (
    SmallSegmenter,
    class_iou_values,
    evaluate_segmenter,
    extract_features,
    fid_from_features,
    kid_from_features,
    scores_from_confusion,
    segmenter_confusion,
    train_segmenter,
)
from sesim.runs import atomic_path

# ---------------------------------------------------------------------------------------------
# The appearance network: domain classifier + class-coverage predictor, trained here.


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 4 if stride == 2 else 3, stride=stride, padding=1),
        nn.GroupNorm(math.gcd(8, c_out), c_out),
        nn.LeakyReLU(0.2, inplace=True),
    )


class AppearanceNet(nn.Module):
    """A small conv net trained on both domains; its texture statistics are the FID/KID space.

    Four conv blocks (widths w, 2w, 4w, 4w; the first three of stride 2). The heads read the
    globally average-pooled last block: domain logits (A = 0, B = 1) and class-coverage logits
    (which share of the image each label class covers). The *features* are the per-channel mean
    and standard deviation of the last three blocks (``20 * width`` numbers): texture
    statistics in the sense of Gatys et al., which respond to blur, noise and colour shifts
    that the pooled last block alone ignores. Works on any image size.

    Args:
        num_classes: C, label classes of the task.
        width: base channels w.
    """

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        w = width
        self.blocks = nn.ModuleList(
            [_block(3, w, 2), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2), _block(4 * w, 4 * w, 1)]
        )
        self.domain = nn.Linear(4 * w, 2)
        self.coverage = nn.Linear(4 * w, num_classes)
        self.num_features = 20 * w

    def _maps(self, images: Tensor) -> list[Tensor]:
        """The output of every block for (N, 3, H, W) images in [-1, 1]."""
        maps, x = [], images
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return maps

    def features(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) images in [-1, 1] -> (N, 20 * width) texture statistics."""
        maps = self._maps(images)[1:]
        return torch.cat([m.mean(dim=(2, 3)) for m in maps] + [m.std(dim=(2, 3)) for m in maps], 1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(N, 3, H, W) in [-1, 1] -> domain logits (N, 2) and coverage logits (N, C)."""
        pooled = self._maps(images)[-1].mean(dim=(2, 3))
        return self.domain(pooled), self.coverage(pooled)


def class_coverage(labels: Tensor, num_classes: int) -> Tensor:
    """(N, H, W) class ids -> (N, C) share of the pixels of each class (rows sum to 1)."""
    onehot = F.one_hot(labels.to(torch.int64), num_classes).to(torch.float32)
    return onehot.mean(dim=(1, 2))


def train_appearance_net(
    images_a: Tensor,
    images_b: Tensor,
    labels_a: Tensor,
    labels_b: Tensor,
    num_classes: int,
    steps: int = 300,
    batch_size: int = 16,
    lr: float = 2e-3,
    width: int = 16,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> AppearanceNet:
    """Fit an :class:`AppearanceNet` to real images of both domains.

    Each step draws ``batch_size`` images from A and as many from B (with replacement, random
    horizontal flips) and minimises the domain cross-entropy plus the soft cross-entropy between
    the predicted and the true class coverage.

    Args:
        images_a: (N_a, 3, H, W) real domain-A images in [-1, 1].
        images_b: (N_b, 3, H, W) real domain-B images.
        labels_a: (N_a, H, W) their label maps.
        labels_b: (N_b, H, W) their label maps.
        num_classes: C.
        steps: optimiser steps.
        batch_size: images per domain per step.
        lr: Adam learning rate.
        width: base channels.
        seed: seeds the initial weights and the draws (the global RNG is untouched).
        device: where to train.
    Returns:
        The trained network, in eval mode on ``device``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AppearanceNet(num_classes, width)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    images = torch.cat([images_a, images_b])
    coverage = torch.cat(
        [class_coverage(labels_a, num_classes), class_coverage(labels_b, num_classes)]
    )
    domain = torch.cat(
        [
            torch.zeros(len(images_a), dtype=torch.int64),
            torch.ones(len(images_b), dtype=torch.int64),
        ]
    )
    for _ in range(steps):
        # Draw a balanced batch and flip half of it.
        idx = torch.cat(
            [
                torch.randint(len(images_a), (batch_size,), generator=generator),
                len(images_a) + torch.randint(len(images_b), (batch_size,), generator=generator),
            ]
        )
        flip = torch.rand(len(idx), generator=generator) < 0.5
        x = images[idx].clone()
        x[flip] = x[flip].flip(-1)
        x, y, c = x.to(device), domain[idx].to(device), coverage[idx].to(device)

        # Update weights.
        domain_logits, coverage_logits = model(x)
        loss = F.cross_entropy(domain_logits, y) + F.cross_entropy(coverage_logits, c)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def target_rate(model: AppearanceNet, images: Tensor, batch_size: int = 64) -> float:
    """Share of ``images`` (N, 3, H, W) that the domain head calls B (the target domain)."""
    device = next(model.parameters()).device
    calls = [model(x.to(device))[0].argmax(1).cpu() for x in images.split(batch_size)]
    return float(torch.cat(calls).float().mean())


# ---------------------------------------------------------------------------------------------
# Judges: the segmenter and the appearance network of a task, trained once and cached.


@dataclass
class Judges:
    """The trained scorers of one task.

    Attributes:
        segmenter: labels images (structure score).
        appearance: domain classifier and feature space (appearance scores).
        reference_features: (N_ref, D) features of the held-out real B images.
        yardstick: the segmenter's scores on the real B test images.
        classifier_accuracy: the domain head's accuracy on the real test images, per domain.
    """

    segmenter: SmallSegmenter
    appearance: AppearanceNet
    reference_features: Tensor
    yardstick: dict[str, float]
    classifier_accuracy: dict[str, float]


def _cached(path: Path, model: nn.Module, key: dict[str, Any]) -> bool:
    """Load ``model``'s weights from ``path`` when the file was saved with the same ``key``."""
    if not path.is_file():
        return False
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a corrupt or foreign file is replaced by the caller
        return False
    if not isinstance(saved, dict) or saved.get("key") != key:
        return False
    model.load_state_dict(saved["state_dict"])
    return True


def _save(path: Path, model: nn.Module, key: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save({"key": key, "state_dict": model.state_dict()}, tmp)


def judge_paths(data: TaskData) -> dict[str, Path]:
    """Where `prepare_judges` caches the task's judges, by name (``segmenter``, ``appearance``)."""
    folder = data.root.parent / "judges"
    return {"segmenter": folder / "segmenter.pt", "appearance": folder / "appearance.pt"}


def prepare_judges(data: TaskData, bench: BenchPreset, seed: int, device: torch.device) -> Judges:
    """Train (or load from ``data.root/../judges``) the segmenter and the appearance network.

    Args:
        data: the task's images.
        bench: the judges' settings (``aux_*``, widths).
        seed: their seed.
        device: where they train and run.
    """
    paths = judge_paths(data)
    key = {"batch": bench.aux_batch, "seed": seed}
    seg_key = {
        **key,
        "steps": bench.seg_steps,
        "width": bench.seg_width,
        "levels": bench.seg_levels,
        "what": "segmenter",
    }
    segmenter = SmallSegmenter(data.num_classes, width=bench.seg_width, levels=bench.seg_levels)
    if _cached(paths["segmenter"], segmenter, seg_key):
        segmenter = segmenter.to(device).eval()
    else:
        segmenter = train_segmenter(
            data.train_b,
            data.labels_train_b,
            data.num_classes,
            steps=bench.seg_steps,
            batch_size=bench.aux_batch,
            width=bench.seg_width,
            levels=bench.seg_levels,
            seed=seed,
            device=device,
        )
        _save(paths["segmenter"], segmenter, seg_key)

    app_key = {**key, "steps": bench.aux_steps, "width": bench.app_width, "what": "appearance"}
    appearance = AppearanceNet(data.num_classes, width=bench.app_width)
    if _cached(paths["appearance"], appearance, app_key):
        appearance = appearance.to(device).eval()
    else:
        appearance = train_appearance_net(
            data.train_a,
            data.train_b,
            data.labels_train_a,
            data.labels_train_b,
            data.num_classes,
            steps=bench.aux_steps,
            batch_size=bench.aux_batch,
            width=bench.app_width,
            seed=seed + 1,
            device=device,
        )
        _save(paths["appearance"], appearance, app_key)

    yardstick = evaluate_segmenter(
        segmenter, data.test_b, data.labels_test, data.num_classes, device=device
    )
    return Judges(
        segmenter=segmenter,
        appearance=appearance,
        reference_features=extract_features(appearance.features, data.reference, device=device),
        yardstick=yardstick,
        classifier_accuracy={
            "A": 1.0 - target_rate(appearance, data.test_a),
            "B": target_rate(appearance, data.test_b),
        },
    )


def score_translations(
    fakes: Tensor, data: TaskData, judges: Judges, seed: int, device: torch.device
) -> dict[str, Any]:
    """Structure and appearance scores of translations of ``data.test_a``.

    Args:
        fakes: (N, 3, H, W) translations in [-1, 1], in the order of ``data.test_a``.
        data: the task (labels of the inputs).
        judges: the trained scorers.
        seed: seeds KID's subsets.
        device: where the judges run.
    Returns:
        ``pixel_acc``, ``mean_class_acc``, ``miou``, ``fid``, ``kid``, ``kid_std``,
        ``target_rate``, and ``class_iou``: the IoU of each class of ``data.class_names``
        (None for a class neither labelled nor predicted), whose mean over the present classes
        is ``miou``.
    """
    matrix = segmenter_confusion(
        judges.segmenter, fakes, data.labels_test, data.num_classes, device=device
    )
    class_iou = class_iou_values(matrix)
    feats = extract_features(judges.appearance.features, fakes, device=device)
    ref = judges.reference_features
    kid, kid_std = kid_from_features(
        ref,
        feats,
        subsets=100,
        subset_size=min(100, len(ref), len(feats)),
        generator=torch.Generator().manual_seed(seed),
    )
    return {
        **scores_from_confusion(matrix),
        "class_iou": class_iou,
        "fid": fid_from_features(ref, feats),
        "kid": kid,
        "kid_std": kid_std,
        "target_rate": target_rate(judges.appearance, fakes),
    }
