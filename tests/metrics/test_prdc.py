"""Density and coverage on feature sets with known answers."""

from __future__ import annotations

import pytest
import torch

from sesim.errors import UserError
from sesim.metrics.prdc import density_coverage


def _features(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 8, generator=torch.Generator().manual_seed(seed))


def test_identical_sets_are_fully_covered_with_unit_density() -> None:
    real = _features(120, 0)
    scores = density_coverage(real, real.clone(), nearest_k=5)
    assert set(scores) == {"precision", "recall", "density", "coverage"}
    assert scores["coverage"] == 1.0
    assert scores["density"] == pytest.approx(1.0, abs=0.02)
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0


def test_a_far_shifted_set_has_zero_density_and_coverage() -> None:
    real = _features(120, 1)
    scores = density_coverage(real, real + 100.0, nearest_k=5)
    assert scores == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_a_fake_set_on_half_the_modes_covers_about_half() -> None:
    # Two well separated clusters of real samples; the fakes sit on one of them only.
    real = torch.cat([_features(100, 2), _features(100, 3) + 50.0])
    fake = _features(100, 4)
    scores = density_coverage(real, fake, nearest_k=5)
    assert 0.35 < scores["coverage"] < 0.55
    assert scores["precision"] > 0.8


def test_default_k_is_95_and_too_few_samples_is_a_user_error() -> None:
    few = _features(96, 5)
    with pytest.raises(UserError, match="needs at least 97 real and 97 fake"):
        density_coverage(few, few)
    enough = _features(97, 6)
    assert density_coverage(enough, enough)["coverage"] == 1.0
    with pytest.raises(ValueError, match="differ in size"):
        density_coverage(enough, enough[:, :4])
