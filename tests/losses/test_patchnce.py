"""Tests for sesim.losses.patchnce: PatchNCE loss and the patch sampler of CUT."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from sesim.losses.patchnce import PatchSampleMLP, patchnce_loss
from sesim.nets.resnet import ResnetGenerator


def _unit(*shape: int, seed: int = 0) -> Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def _reference(q: Tensor, k: Tensor, t: float) -> Tensor:
    """Per-query loop over the definition: -log softmax of the positive among own-image keys."""
    losses = []
    for b in range(q.shape[0]):
        for i in range(q.shape[1]):
            neg = [q[b, i] @ k[b, j] for j in range(q.shape[1]) if j != i]
            logits = torch.stack([q[b, i] @ k[b, i], *neg]) / t
            losses.append(-torch.log_softmax(logits, 0)[0])
    return torch.stack(losses).mean()


# --- patchnce_loss ------------------------------------------------------------------------------


def test_patchnce_matches_reference() -> None:
    q, k = _unit(2, 6, 8, seed=0), _unit(2, 6, 8, seed=1)
    # The self-pair among the negatives gets exp(-10 / T) ~ 0 in CUT, none in the reference.
    assert torch.allclose(patchnce_loss(q, k, 0.07), _reference(q, k, 0.07), atol=1e-5)


def test_patchnce_aligned_lower_than_shuffled() -> None:
    k = _unit(2, 32, 16, seed=0)
    q = F.normalize(k + 0.1 * torch.randn(k.shape, generator=torch.Generator().manual_seed(1)), -1)
    shuffled = q[:, torch.randperm(32, generator=torch.Generator().manual_seed(2))]
    aligned_loss = patchnce_loss(q, k)
    assert aligned_loss < 0.5 * patchnce_loss(shuffled, k)
    assert aligned_loss < 0.1


def test_patchnce_flat_input_and_batch_negatives() -> None:
    q, k = _unit(3, 5, 8, seed=0), _unit(3, 5, 8, seed=1)
    ref = patchnce_loss(q, k)
    flat = patchnce_loss(q.flatten(0, 1), k.flatten(0, 1), num_images=3)
    assert torch.allclose(ref, flat)
    # Without num_images a flat input is one image: the same as negatives from the whole batch.
    whole = patchnce_loss(q, k, batch_negatives=True)
    assert torch.allclose(patchnce_loss(q.flatten(0, 1), k.flatten(0, 1)), whole)
    assert not torch.allclose(whole, ref)
    with pytest.raises(ValueError, match="cannot be split"):
        patchnce_loss(q.flatten(0, 1), k.flatten(0, 1), num_images=4)
    with pytest.raises(ValueError, match="differ"):
        patchnce_loss(q, k[:, :4])


def test_patchnce_gradients_flow_to_queries_only() -> None:
    q = _unit(2, 8, 4, seed=0).requires_grad_(True)
    k = _unit(2, 8, 4, seed=1).requires_grad_(True)
    patchnce_loss(q, k).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None
    k2 = _unit(2, 8, 4, seed=1).requires_grad_(True)
    patchnce_loss(q, k2, detach_keys=False).backward()
    assert k2.grad is not None


# --- PatchSampleMLP -----------------------------------------------------------------------------


def test_sampler_parameters_exist_after_init() -> None:
    f = PatchSampleMLP([3, 16, 32], nc=8)
    expected = sum((c * 8 + 8) + (8 * 8 + 8) for c in (3, 16, 32))
    assert sum(p.numel() for p in f.parameters()) == expected
    assert len(list(f.parameters())) == 12
    assert f.out_channels() == [8, 8, 8]
    plain = PatchSampleMLP([3, 16], use_mlp=False)
    assert len(list(plain.parameters())) == 0
    assert plain.out_channels() == [3, 16]


def test_sampler_shapes_ids_and_norms() -> None:
    f = PatchSampleMLP([4, 6], nc=8)
    feats = [torch.randn(2, 4, 8, 8), torch.randn(2, 6, 3, 3)]
    samples, ids = f(feats, num_patches=16, generator=torch.Generator().manual_seed(0))
    assert [tuple(s.shape) for s in samples] == [(32, 8), (18, 8)]  # 9 positions < 16
    assert [tuple(i.shape) for i in ids] == [(16,), (9,)]
    assert len(set(ids[0].tolist())) == 16 and set(ids[1].tolist()) == set(range(9))
    for s in samples:
        assert torch.allclose(s.norm(dim=1), torch.ones(s.shape[0]), atol=1e-5)
    all_samples, all_ids = f(feats, num_patches=0)
    assert all_samples[0].shape == (128, 8) and torch.equal(all_ids[0], torch.arange(64))


def test_sampler_picks_the_given_positions() -> None:
    f = PatchSampleMLP([4], use_mlp=False)
    feat = torch.randn(2, 4, 5, 5)
    ids = [torch.tensor([0, 7, 24])]
    (sample,), _ = f([feat], patch_ids=ids)
    flat = feat.flatten(2).transpose(1, 2)  # (B, 25, C)
    expected = F.normalize(flat[:, [0, 7, 24]], dim=-1).flatten(0, 1)
    assert torch.allclose(sample, expected, atol=1e-6)


def test_sampler_determinism_and_id_reuse() -> None:
    torch.manual_seed(0)
    f = PatchSampleMLP([4], nc=8)
    feat = torch.randn(1, 4, 6, 6)
    a, ids_a = f([feat], 10, generator=torch.Generator().manual_seed(3))
    b, ids_b = f([feat], 10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ids_a[0], ids_b[0]) and torch.equal(a[0], b[0])
    c, _ = f([feat], 10, patch_ids=ids_a)
    assert torch.equal(a[0], c[0])


def test_sampler_checks_inputs() -> None:
    f = PatchSampleMLP([4, 6])
    with pytest.raises(ValueError, match="expected 2 feature maps"):
        f([torch.randn(1, 4, 4, 4)])
    with pytest.raises(ValueError, match="expected"):
        f([torch.randn(1, 4, 4, 4), torch.randn(1, 5, 4, 4)])


def test_cut_nce_pipeline_with_generator() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=8, n_blocks=2)
    layers = g.default_nce_layers
    f = PatchSampleMLP(g.feature_channels(layers), nc=16)
    real = torch.randn(2, 3, 32, 32)
    fake = g(real)
    gen = torch.Generator().manual_seed(0)
    feat_k, ids = f(g.encode_features(real, layers), 32, generator=gen)
    feat_q, _ = f(g.encode_features(fake, layers), 32, patch_ids=ids)
    loss = torch.stack([patchnce_loss(q, k, num_images=2) for q, k in zip(feat_q, feat_k)]).mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in f.parameters())
    assert all(p.grad is not None for p in g.parameters())


def test_patchnce_runs_in_float32_under_bf16_autocast() -> None:
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(2, 32, 16, generator=g), dim=-1).bfloat16().requires_grad_(True)
    k = F.normalize(torch.randn(2, 32, 16, generator=g), dim=-1).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = patchnce_loss(q, k)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, patchnce_loss(q.detach().float(), k.float()))
    low.backward()
    assert q.grad is not None and q.grad.dtype == torch.bfloat16
