"""FID/KID: closed forms for Gaussians, parity with torchmetrics, feature extraction, weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import Tensor, nn

from sesim.errors import UserError
from sesim.metrics.fid import (
    INCEPTION_WEIGHTS_FILE,
    extract_features,
    fid_from_features,
    inception_extractor,
    kid_from_features,
    random_conv_extractor,
)


def _gaussian(n: int, mean: Tensor, cov: Tensor, generator: torch.Generator) -> Tensor:
    z = torch.randn(n, mean.shape[0], generator=generator, dtype=torch.float64)
    return mean + z @ torch.linalg.cholesky(cov).T


def _random_spd(d: int, generator: torch.Generator) -> Tensor:
    a = torch.randn(d, d, generator=generator, dtype=torch.float64)
    return a @ a.T / d + 0.5 * torch.eye(d, dtype=torch.float64)


def _closed_form_fid(mu1: Tensor, s1: Tensor, mu2: Tensor, s2: Tensor) -> float:
    root = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    trace = np.trace(s1.numpy() + s2.numpy() - 2 * root)
    return float(((mu1 - mu2) ** 2).sum()) + float(trace)


class _Identity(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, x: Tensor) -> Tensor:
        return x


def test_fid_matches_gaussian_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    d = 4
    mu1, mu2 = torch.zeros(d, dtype=torch.float64), torch.randn(d, generator=g).double()
    s1, s2 = _random_spd(d, g), _random_spd(d, g)
    real, fake = _gaussian(50_000, mu1, s1, g), _gaussian(50_000, mu2, s2, g)
    expected = _closed_form_fid(mu1, s1, mu2, s2)
    assert fid_from_features(real, fake) == pytest.approx(expected, rel=0.03, abs=0.01)


def test_fid_is_zero_for_one_set_and_grows_with_a_mean_shift() -> None:
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(500, 8, generator=g, dtype=torch.float64)
    assert fid_from_features(feats, feats) == pytest.approx(0.0, abs=1e-8)
    values = []
    for shift in (0.5, 1.0, 2.0):
        # A translated copy has the same covariance: FID is exactly ||shift||^2.
        value = fid_from_features(feats, feats + shift)
        assert value == pytest.approx(8 * shift**2, rel=1e-6)
        values.append(value)
    assert values == sorted(values)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_fid_and_kid_match_torchmetrics() -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    g = torch.Generator().manual_seed(2)
    real = torch.randn(64, 6, generator=g, dtype=torch.float64)
    fake = torch.randn(64, 6, generator=g, dtype=torch.float64) * 1.3 + 0.2
    fid = FrechetInceptionDistance(feature=_Identity(6))
    fid.update(real, real=True)
    fid.update(fake, real=False)
    assert fid_from_features(real, fake) == pytest.approx(float(fid.compute()), rel=1e-6)
    # One subset holding every sample makes KID deterministic.
    kid = KernelInceptionDistance(feature=_Identity(6), subsets=1, subset_size=64)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    mean, std = kid_from_features(real, fake, subsets=1, subset_size=64)
    assert mean == pytest.approx(float(kid.compute()[0]), rel=1e-6)
    assert std == 0.0


def test_fid_and_kid_need_two_samples() -> None:
    one, many = torch.zeros(1, 3), torch.randn(10, 3)
    with pytest.raises(UserError, match="at least 2 images"):
        fid_from_features(one, many)
    with pytest.raises(UserError, match="at least 2 images"):
        kid_from_features(many, one)
    with pytest.raises(ValueError, match="differ in size"):
        fid_from_features(many, torch.randn(10, 4))


def test_kid_is_near_zero_for_one_distribution_and_positive_when_shifted() -> None:
    g = torch.Generator().manual_seed(3)
    real = torch.randn(400, 16, generator=g)
    same = torch.randn(400, 16, generator=g)
    shifted = torch.randn(400, 16, generator=g) + 1.0
    mean_same, std_same = kid_from_features(real, same, subsets=20, subset_size=200)
    mean_shift, _ = kid_from_features(real, shifted, subsets=20, subset_size=200)
    assert abs(mean_same) < 0.02
    assert std_same > 0
    assert mean_shift > 0.5
    assert mean_shift > 50 * abs(mean_same)


def test_kid_clamps_the_subset_size_and_is_reproducible() -> None:
    g = torch.Generator().manual_seed(4)
    real, fake = torch.randn(30, 4, generator=g), torch.randn(20, 4, generator=g)
    a = kid_from_features(real, fake, subsets=5, subset_size=1000)  # clamped to 20
    b = kid_from_features(real, fake, subsets=5, generator=torch.Generator().manual_seed(0))
    assert a == b


def _smooth_images(n: int, size: int, generator: torch.Generator) -> Tensor:
    coarse = torch.rand(n, 3, 4, 4, generator=generator) * 2 - 1
    return nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")


def test_extract_features_batches_mixed_sizes_consistently() -> None:
    g = torch.Generator().manual_seed(5)
    extractor = random_conv_extractor(seed=0, dim=16)
    small, large = _smooth_images(5, 32, g), _smooth_images(4, 48, g)
    mixed = [small[:3], small[3], small[4], large]  # batches, single images and two sizes
    feats = extract_features(extractor, mixed, batch_size=2)
    assert feats.shape == (9, 16) and feats.dtype == torch.float64
    one_by_one = torch.cat([extract_features(extractor, img) for img in [*small, *large]])
    torch.testing.assert_close(feats, one_by_one, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        extract_features(extractor, (small * 255).to(torch.uint8))
    with pytest.raises(UserError, match="no images"):
        extract_features(extractor, [])


def test_end_to_end_fid_with_random_conv_extractor() -> None:
    g = torch.Generator().manual_seed(6)
    extractor = random_conv_extractor(seed=0, dim=32)
    real = extract_features(extractor, _smooth_images(200, 32, g))
    similar = extract_features(extractor, _smooth_images(200, 32, g))
    darker = extract_features(extractor, _smooth_images(200, 32, g) * 0.3 - 0.6)
    near, far = fid_from_features(real, similar), fid_from_features(real, darker)
    assert near < far / 5
    assert kid_from_features(real, darker, subsets=10)[0] > 0


def test_missing_inception_weights_is_a_one_line_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError) as info:
        inception_extractor()
    message = str(info.value)
    assert "\n" not in message
    assert INCEPTION_WEIGHTS_FILE in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    with pytest.raises(UserError, match="does not exist"):
        inception_extractor(tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="resize"):
        inception_extractor(resize="nearest")  # type: ignore[arg-type]


def test_inception_extractor_reads_a_local_file_without_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception
    from torchmetrics.image.fid import NoTrainInceptionV3

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to download")

    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", no_download)
    # Make a weights file of the right layout (random values) by skipping the load once.
    empty = tmp_path / "empty.pth"
    torch.save({}, empty)
    with monkeypatch.context() as patch:
        patch.setattr(
            tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None
        )
        state = NoTrainInceptionV3("x", ["2048"], feature_extractor_weights_path=str(empty))
    weights = tmp_path / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILE
    weights.parent.mkdir(parents=True)
    torch.save(state.state_dict(), weights)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    extractor = inception_extractor()  # found in the hub cache
    images = torch.rand(2, 3, 40, 56) * 2 - 1
    feats = extract_features(extractor, images)
    assert feats.shape == (2, 2048)
    assert extractor.input_size == 299
    assert all(not p.requires_grad for p in extractor.parameters())
