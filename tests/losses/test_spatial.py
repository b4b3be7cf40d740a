"""Invariants, shapes and errors of the spatially-correlative loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sesim.features import VGG16Features
from sesim.losses import (
    SpatialCorrelativeLoss,
    SpatialLossConfig,
    compare_similarity,
    pairwise_similarity,
    sample_queries,
    self_similarity,
    window_key_indices,
)


def _loop_self_similarity(feat: torch.Tensor, idx: torch.Tensor, window: int | None, kind: str):
    """Plain per-query reference: cut each window out of the map and take dot products."""
    _B, C, H, W = feat.shape
    f = feat - feat.mean(dim=(2, 3), keepdim=True)
    f = F.normalize(f, dim=1) if kind == "cosine" else f / math.sqrt(C)
    rows = []
    for q in idx.tolist():
        r, c = divmod(q, W)
        query = f[:, :, r, c]  # (B, C)
        if window is None or (window >= H and window >= W):
            keys = f.flatten(2)
        else:
            wh, ww = min(window, H), min(window, W)
            top = min(max(r - window // 2, 0), H - wh)
            left = min(max(c - window // 2, 0), W - ww)
            keys = f[:, :, top : top + wh, left : left + ww].flatten(2)
        sim = torch.einsum("bc,bck->bk", query, keys)
        rows.append(torch.tanh(sim / 10) if kind == "tanh" else sim)
    return torch.stack(rows, dim=1)


@pytest.mark.parametrize("shape", [(2, 8, 9, 13), (1, 5, 16, 6), (3, 4, 7, 7)])
@pytest.mark.parametrize("window", [1, 3, 4, 8, None, 50])
@pytest.mark.parametrize("kind", ["cosine", "tanh"])
def test_vectorised_matches_loop_on_non_square_maps(shape, window, kind) -> None:
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(*shape, generator=g)
    H, W = shape[2:]
    idx = sample_queries(H, W, 11, generator=g)
    idx = torch.cat([idx, torch.tensor([0, H * W - 1, W - 1, (H - 1) * W])]).unique()
    ours = self_similarity(feat, idx, window, kind)  # type: ignore[arg-type]
    ref = _loop_self_similarity(feat, idx, window, kind)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-5)


def test_window_indices_stay_inside_and_are_centred() -> None:
    H, W, window = 10, 7, 4
    idx = torch.arange(H * W)
    keys = window_key_indices(idx, H, W, window)
    assert keys.shape == (H * W, window * window)
    assert int(keys.min()) >= 0 and int(keys.max()) < H * W
    # Every query lies inside its own window.
    assert bool((keys == idx[:, None]).any(dim=1).all())


def test_output_shapes() -> None:
    feat = torch.randn(2, 6, 12, 10)
    idx = torch.tensor([0, 5, 119])
    assert self_similarity(feat, idx, 5).shape == (2, 3, 25)
    assert self_similarity(feat, idx, None).shape == (2, 3, 120)
    assert self_similarity(feat, idx, 11).shape == (2, 3, 11 * 10)
    assert pairwise_similarity(feat, idx).shape == (2, 3, 3)


def test_sample_queries_random_and_grid() -> None:
    a = sample_queries(8, 6, 10, generator=torch.Generator().manual_seed(3))
    b = sample_queries(8, 6, 10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.unique().numel() == 10 and int(a.max()) < 48
    assert sample_queries(4, 4, 0).numel() == 16
    assert sample_queries(4, 4, 100).numel() == 16
    grid = sample_queries(16, 8, 32, strategy="grid")
    assert 16 <= grid.numel() <= 48 and int(grid.max()) < 128


@pytest.mark.parametrize("mode", ["cos", "l1"])
@pytest.mark.parametrize("kind", ["cosine", "tanh"])
def test_identical_inputs_give_zero_loss(mode: str, kind: str) -> None:
    feat = torch.randn(2, 8, 10, 10)
    idx = torch.arange(0, 100, 7)
    s = self_similarity(feat, idx, 5, kind)  # type: ignore[arg-type]
    assert float(compare_similarity(s, s.clone(), mode)) == pytest.approx(0.0, abs=1e-6)  # type: ignore[arg-type]


def _structured_image(size: int = 64, n: int = 14, seed: int = 0) -> torch.Tensor:
    """A layout of overlapping flat-coloured rectangles, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    img = torch.full((1, 3, size, size), -0.5)
    for _ in range(n):
        r, c = torch.randint(0, size - 8, (2,), generator=g).tolist()
        h, w = torch.randint(6, 22, (2,), generator=g).tolist()
        img[:, :, r : r + h, c : c + w] = (torch.rand(3, generator=g) * 2 - 1).view(1, 3, 1, 1)
    return img


@pytest.mark.parametrize("learned", [False, True])
@pytest.mark.parametrize(("kind", "mode"), [("tanh", "cos"), ("cosine", "cos"), ("cosine", "l1")])
def test_appearance_change_costs_far_less_than_a_shift(learned: bool, kind: str, mode: str) -> None:
    extractor = VGG16Features(weights=None)  # random weights: the property must hold anyway
    torch.manual_seed(0)
    cfg = SpatialLossConfig(window=8, num_queries=64, learned=learned, kind=kind, mode=mode)  # type: ignore[arg-type]
    crit = SpatialCorrelativeLoss(extractor.channels, cfg)
    x = _structured_image()
    tint = torch.tensor([0.15, -0.1, 0.05]).view(1, 3, 1, 1)
    appearance = [x * 0.9 + 0.1, (x * 0.8 + tint).clamp(-1, 1)]  # brightness, colour cast
    shifts = [torch.roll(x, shifts=(13, 17), dims=(2, 3)), x.flip(3)]
    fx = extractor(x)

    def loss(y: torch.Tensor) -> float:
        g = torch.Generator().manual_seed(0)
        return float(crit.structure_loss(fx, extractor(y), generator=g).detach())

    assert loss(x) == pytest.approx(0.0, abs=1e-6)
    assert 3 * max(loss(y) for y in appearance) < min(loss(y) for y in shifts)


def test_gradients_reach_translation_and_heads_not_vgg() -> None:
    extractor = VGG16Features(layers=("relu2_1", "relu3_1"), weights=None)
    crit = SpatialCorrelativeLoss(extractor.channels, SpatialLossConfig(learned=True, window=8))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    other = torch.rand(2, 3, 32, 32) * 2 - 1
    fx, fy = extractor(x), extractor(y)
    loss = crit.structure_loss(fx, fy) + crit.contrastive_loss(fx, fy, extractor(other))
    loss.backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0
    assert crit.heads is not None
    assert all(
        p.grad is not None and float(p.grad.abs().sum()) > 0 for p in crit.heads.parameters()
    )
    assert all(not p.requires_grad and p.grad is None for p in extractor.parameters())


def test_contrastive_loss_prefers_true_positives() -> None:
    torch.manual_seed(0)
    crit = SpatialCorrelativeLoss(
        [8], SpatialLossConfig(window=None, num_queries=32, kind="cosine")
    )
    x = [torch.randn(2, 8, 8, 8)]
    pos = [x[0] * 1.5 + 0.1 * torch.randn(2, 8, 8, 8)]
    other = [torch.randn(2, 8, 8, 8)]
    g = torch.Generator().manual_seed(0)
    good = float(crit.contrastive_loss(x, pos, other, generator=g))
    g = torch.Generator().manual_seed(0)
    bad = float(crit.contrastive_loss(x, other, pos, generator=g))
    assert good < bad


@pytest.mark.parametrize("variant", ["local", "global", "pairwise"])
@pytest.mark.parametrize("mode", ["cos", "l1"])
def test_variants_run(variant: str, mode: str) -> None:
    cfg = SpatialLossConfig(variant=variant, mode=mode, window=4, num_queries=10)  # type: ignore[arg-type]
    crit = SpatialCorrelativeLoss([4, 6], cfg)
    fx = [torch.randn(1, 4, 8, 6), torch.randn(1, 6, 4, 3)]
    fy = [t + 0.1 * torch.randn_like(t) for t in fx]
    assert torch.isfinite(crit.structure_loss(fx, fy)).item()


def test_info_mode_structure_loss_uses_other() -> None:
    crit = SpatialCorrelativeLoss([4], SpatialLossConfig(mode="info", window=None))
    f = [torch.randn(1, 4, 6, 6)]
    with pytest.raises(ValueError, match="feats_other"):
        crit.structure_loss(f, f)
    assert torch.isfinite(crit.structure_loss(f, f, feats_other=[torch.randn(1, 4, 6, 6)]))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: self_similarity(torch.randn(1, 2, 4, 4), torch.tensor([0]), 0), "window"),
        (lambda: self_similarity(torch.randn(1, 2, 4, 4), torch.tensor([16]), 2), "out of range"),
        (lambda: self_similarity(torch.randn(1, 2, 4, 4), torch.tensor([-1]), 2), "out of range"),
        (lambda: self_similarity(torch.randn(2, 4, 4), torch.tensor([0]), 2), "shape"),
        (lambda: self_similarity(torch.randn(1, 2, 4, 4), torch.tensor([0]), 2, "dot"), "kind"),  # type: ignore[arg-type]
        (lambda: self_similarity(torch.randn(1, 2, 4, 4), torch.tensor([0.0]), 2), "integer"),
        (lambda: compare_similarity(torch.randn(1, 2, 4), torch.randn(1, 2, 5)), "differ"),
        (lambda: compare_similarity(torch.randn(1, 2, 4), torch.randn(1, 2, 4), "l2"), "mode"),  # type: ignore[arg-type]
        (
            lambda: compare_similarity(torch.randn(1, 2, 4), torch.randn(1, 2, 4), "info"),
            "sim_other",
        ),
        (lambda: SpatialLossConfig(window=0), "window"),
        (lambda: SpatialLossConfig(mode="l3"), "mode"),  # type: ignore[arg-type]
        (lambda: SpatialLossConfig(kind="x"), "kind"),  # type: ignore[arg-type]
        (
            lambda: SpatialCorrelativeLoss([4]).structure_loss(
                [torch.randn(1, 5, 4, 4)], [torch.randn(1, 5, 4, 4)]
            ),
            "channel",
        ),
        (
            lambda: SpatialCorrelativeLoss([4]).structure_loss(
                [torch.randn(1, 4, 4, 4)], [torch.randn(1, 4, 5, 4)]
            ),
            "spatial size",
        ),
    ],
)
def test_bad_arguments_raise_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("learned", [False, True])
def test_losses_run_in_float32_under_bf16_autocast(learned: bool) -> None:
    """Autocast makes the networks' features bf16; the heads, maps and comparison stay float32,
    so the loss equals the float32 loss of the same (bf16-rounded) features."""
    cfg = SpatialLossConfig(window=4, num_queries=16, learned=learned)
    crit = SpatialCorrelativeLoss([8, 16], cfg)
    g = torch.Generator().manual_seed(0)
    fx, fy, fo = (
        [torch.randn(2, 8, 12, 12, generator=g), torch.randn(2, 16, 6, 6, generator=g)]
        for _ in range(3)
    )
    low = [[f.bfloat16() for f in feats] for feats in (fx, fy, fo)]
    for feats in low:
        for f in feats:
            f.requires_grad_(True)
    ref = [[f.detach().float() for f in feats] for feats in low]
    idx = crit.sample_indices(fx, torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s_low = crit.structure_loss(low[0], low[1], indices=idx)
        c_low = crit.contrastive_loss(low[0], low[1], low[2], indices=idx)
    assert s_low.dtype == c_low.dtype == torch.float32
    torch.testing.assert_close(s_low, crit.structure_loss(ref[0], ref[1], indices=idx))
    torch.testing.assert_close(c_low, crit.contrastive_loss(ref[0], ref[1], ref[2], indices=idx))
    (s_low + c_low).backward()
    assert low[1][0].grad is not None and low[1][0].grad.dtype == torch.bfloat16
