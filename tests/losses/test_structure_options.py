"""Options of the structure loss that docs/structure.md measured at small sizes: comparison
masks and per-image query points placed where the input's structure is."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sesim.losses.selfsim import (
    compare_similarity,
    distinctiveness,
    pairwise_similarity,
    sample_structure_queries,
    self_similarity,
    window_key_indices,
)
from sesim.losses.spatial import SpatialCorrelativeLoss, SpatialLossConfig

# ---------------------------------------------------------------------------------------------
# Comparison masks.


def test_mask_target_misses_structure_the_translation_drops_and_both_sees_it() -> None:
    # The source map says the query resembles keys 6 and 7; the translation lost that. The
    # translation's own top entries are keys 0, 1, 2, where both maps agree.
    src = torch.tensor([[[0.9, 0.8, 0.1, 0.05, 0.0, -0.05, 0.95, 0.95]]])
    tgt = torch.tensor([[[0.9, 0.8, 0.1, 0.05, 0.0, -0.05, -0.1, -0.2]]])
    target = compare_similarity(src, tgt, mode="l1", mask="target")
    both = compare_similarity(src, tgt, mode="l1", mask="both")
    assert target.item() == pytest.approx(0.0, abs=1e-7)
    assert both.item() > 0.1


def test_mask_none_compares_whole_maps() -> None:
    g = torch.Generator().manual_seed(0)
    src, tgt = torch.rand(2, 5, 16, generator=g), torch.rand(2, 5, 16, generator=g)
    got = compare_similarity(src, tgt, mode="l1", mask="none")
    assert got.item() == pytest.approx(F.l1_loss(src, tgt).item(), rel=1e-6)
    cos = compare_similarity(src, tgt, mode="cos", mask="none")
    want = (1 - F.cosine_similarity(src, tgt, dim=-1)).mean()
    assert cos.item() == pytest.approx(want.item(), rel=1e-5)


def test_unknown_mask_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mask"):
        compare_similarity(torch.rand(1, 2, 4), torch.rand(1, 2, 4), mode="l1", mask="half")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown mask"):
        SpatialLossConfig(mask="half")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Per-image query points.


def test_per_image_queries_equal_one_image_at_a_time() -> None:
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(3, 8, 9, 7, generator=g)
    idx = torch.stack([torch.randperm(63, generator=g)[:10] for _ in range(3)])
    for window in (None, 3, 5):
        for kind in ("cosine", "tanh"):
            both = self_similarity(feat, idx, window=window, kind=kind)  # type: ignore[arg-type]
            for b in range(3):
                one = self_similarity(feat[b : b + 1], idx[b], window=window, kind=kind)  # type: ignore[arg-type]
                torch.testing.assert_close(both[b : b + 1], one)
    pairs = pairwise_similarity(feat, idx)
    for b in range(3):
        torch.testing.assert_close(pairs[b : b + 1], pairwise_similarity(feat[b : b + 1], idx[b]))
    keys = window_key_indices(idx, 9, 7, 3)
    assert keys.shape == (3, 10, 9)
    torch.testing.assert_close(keys[1], window_key_indices(idx[1], 9, 7, 3))


def test_per_image_queries_must_match_the_batch() -> None:
    with pytest.raises(ValueError, match="rows for a batch"):
        self_similarity(torch.randn(2, 4, 5, 5), torch.zeros(3, 4, dtype=torch.long), window=3)


def _bars(batch: int = 2, size: int = 16) -> torch.Tensor:
    """(B, 4, size, size) features: a uniform background with one thin vertical bar."""
    feat = torch.zeros(batch, 4, size, size)
    feat[:, 0] = 1.0
    feat[:, 1, :, 5] = 3.0
    return feat


def test_distinctiveness_is_zero_in_flat_regions_and_high_at_thin_lines() -> None:
    score = distinctiveness(_bars(), window=5).view(2, 16, 16)
    assert score.shape == (2, 16, 16)
    assert score[:, :, 12:].abs().max() < 1e-5  # far from the bar: uniform
    assert score[:, :, 5].min() > 0.3  # on the bar
    with pytest.raises(ValueError, match="window must be >= 1"):
        distinctiveness(_bars(), window=0)


def test_structure_queries_fall_where_the_structure_is() -> None:
    feat = _bars()
    gen = torch.Generator().manual_seed(0)
    idx = sample_structure_queries(feat, 16, window=5, generator=gen)
    assert idx.shape == (2, 16) and idx.dtype == torch.long
    for row in idx:
        assert row.unique().numel() == 16  # without replacement
    cols = idx % 16
    near = ((cols - 5).abs() <= 2).float().mean().item()
    assert near > 0.9  # the band around the bar is 5 of 16 columns (31 % by chance)
    again = sample_structure_queries(feat, 16, window=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)  # reproducible from the generator


def test_structure_strategy_gives_per_image_queries_and_a_zero_loss_on_identity() -> None:
    cfg = SpatialLossConfig(num_queries=8, window=5, query_strategy="structure")
    crit = SpatialCorrelativeLoss((4,), cfg)
    feat = _bars() + 0.01 * torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    (idx,) = crit.sample_indices([feat], generator=torch.Generator().manual_seed(0))
    assert idx.shape == (2, 8)
    assert torch.equal(idx[0, :4], idx[1, :4])  # the random half is shared by the batch
    loss = crit.structure_loss([feat], [feat], generator=torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    other = crit.structure_loss([feat], [feat.flip(-1)], generator=torch.Generator().manual_seed(0))
    assert other.item() > 1e-3


@pytest.mark.parametrize(("share", "n_own"), [(0.0, 0), (0.25, 4), (1.0, 16)])
def test_structure_share_sets_how_many_queries_follow_the_structure(
    share: float, n_own: int
) -> None:
    cfg = SpatialLossConfig(
        num_queries=16, window=5, query_strategy="structure", structure_share=share
    )
    crit = SpatialCorrelativeLoss((4,), cfg)
    feat = _bars()
    (idx,) = crit.sample_indices([feat], generator=torch.Generator().manual_seed(0))
    assert idx.shape == (2, 16)
    shared = 16 - n_own
    assert torch.equal(idx[0, :shared], idx[1, :shared])  # the uniform part is shared
    own = idx[:, shared:] % 16
    if n_own:  # the rest sits at the bar (columns 3-7), 31 % of the columns by chance
        assert ((own - 5).abs() <= 2).float().mean().item() > 0.9


def test_structure_share_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="structure_share"):
        SpatialLossConfig(query_strategy="structure", structure_share=1.5)


# ---------------------------------------------------------------------------------------------
# The affinity (KL) comparison.


def test_kl_is_zero_for_equal_maps_and_matches_its_definition() -> None:
    g = torch.Generator().manual_seed(2)
    src, tgt = torch.rand(2, 5, 16, generator=g), torch.rand(2, 5, 16, generator=g)
    assert compare_similarity(src, src, mode="kl").item() == pytest.approx(0.0, abs=1e-6)
    tau = 0.1
    p = F.softmax(src / tau, -1)
    want = (p * (F.log_softmax(src / tau, -1) - F.log_softmax(tgt / tau, -1))).sum(-1).mean()
    got = compare_similarity(src, tgt, mode="kl", temperature=tau)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


def test_kl_sees_texture_hallucinated_inside_a_flat_region_where_mask_target_does_not() -> None:
    # The input region is uniform: the query resembles every key equally. The translation
    # splits it into stripes: half of the keys stay similar, half drop.
    src = torch.ones(1, 1, 8)
    tgt = torch.tensor([[[1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]]])
    assert compare_similarity(src, tgt, mode="l1", mask="target").item() == pytest.approx(0.0)
    assert compare_similarity(src, tgt, mode="kl", temperature=0.1).item() > 0.5


def test_kl_ignores_how_different_other_regions_become() -> None:
    # Keys 0-3 are the query's own region, 4-7 another region. A recolouring that makes the
    # other region less (or more) similar than in the input, while keeping the own region whole,
    # costs (almost) nothing at a low temperature; losing the own region costs a lot.
    src = torch.tensor([[[1.0] * 4 + [0.4] * 4]])
    recoloured = torch.tensor([[[1.0] * 4 + [-0.3] * 4]])
    split = torch.tensor([[[1.0, 1.0, 0.4, 0.4] + [0.4] * 4]])
    cheap = compare_similarity(src, recoloured, mode="kl", temperature=0.05).item()
    costly = compare_similarity(src, split, mode="kl", temperature=0.05).item()
    assert cheap < 0.01 < 0.5 < costly


def test_kl_structure_loss_needs_a_positive_temperature() -> None:
    with pytest.raises(ValueError, match="temperature"):
        compare_similarity(torch.rand(1, 2, 4), torch.rand(1, 2, 4), mode="kl", temperature=0.0)


def test_centred_similarities_cannot_tell_features_from_their_inverse() -> None:
    # Mean-centring (the public code) makes the maps blind to negating the features around
    # their spatial mean; ``center=False`` removes that symmetry.
    g = torch.Generator().manual_seed(3)
    feat = torch.rand(1, 6, 5, 5, generator=g)
    inverse = 2 * feat.mean(dim=(2, 3), keepdim=True) - feat
    idx = torch.arange(0, 25, 3)
    for kind in ("cosine", "tanh"):
        a = self_similarity(feat, idx, 3, kind)  # type: ignore[arg-type]
        b = self_similarity(inverse, idx, 3, kind)  # type: ignore[arg-type]
        assert torch.allclose(a, b, atol=1e-6)
        a_raw = self_similarity(feat, idx, 3, kind, center=False)  # type: ignore[arg-type]
        b_raw = self_similarity(inverse, idx, 3, kind, center=False)  # type: ignore[arg-type]
        assert not torch.allclose(a_raw, b_raw, atol=1e-3)
    crit = SpatialCorrelativeLoss([6], SpatialLossConfig(window=3, num_queries=4, center=False))
    assert crit.structure_loss([feat], [inverse], indices=[idx]).item() > 1e-4
    centred = SpatialCorrelativeLoss([6], SpatialLossConfig(window=3, num_queries=4))
    assert centred.structure_loss([feat], [inverse], indices=[idx]).item() < 1e-6
