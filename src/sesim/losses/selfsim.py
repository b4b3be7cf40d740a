"""Spatially-correlative (self-similarity) maps and their comparison: pure tensor functions.

Notation follows the paper (Zheng, Cham, Cai, CVPR 2021):

* eq. (1): the self-similarity map of a query position ``i`` is the similarity of its feature
  ``f_i`` with the features of the keys around it, ``S_i = f_i^T F_window(i)``.
* eq. (2): the structure loss between an input ``x`` and its translation ``y`` compares the maps
  ``S^x`` and ``S^y`` of the same query points with L1 or ``1 - cos``.
* eq. (3): the learned variant trains the maps with a patchwise InfoNCE loss.

Every function takes explicit tensors and returns tensors; randomness comes in through an explicit
``torch.Generator``. Nothing loops over queries or windows in Python: windows are gathered from a
single batched matrix product, which is both faster and lighter on memory than cutting one window
per query (the authors' public implementation).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

SimKind = Literal["cosine", "tanh"]
CompareMode = Literal["cos", "l1", "info", "kl"]
QueryStrategy = Literal["random", "grid", "structure"]
MaskKind = Literal["target", "both", "none"]

SIM_KINDS: tuple[str, ...] = ("cosine", "tanh")
COMPARE_MODES: tuple[str, ...] = ("cos", "l1", "info", "kl")
QUERY_STRATEGIES: tuple[str, ...] = ("random", "grid", "structure")
MASK_KINDS: tuple[str, ...] = ("target", "both", "none")

# The public code divides the (mean-centred, 1/sqrt(C)-scaled) dot product by this before tanh.
TANH_SCALE = 10.0


def _check_feat(feat: Tensor, name: str = "feat") -> None:
    if feat.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W); got {tuple(feat.shape)}")
    if feat.shape[2] < 1 or feat.shape[3] < 1:
        raise ValueError(f"{name} has an empty spatial size {tuple(feat.shape[2:])}")


def _check_query_idx(query_idx: Tensor, height: int, width: int, batch: int | None = None) -> None:
    if query_idx.dim() not in (1, 2):
        raise ValueError(
            "query_idx must be a (N,) tensor of flat indices shared by the batch or a (B, N) "
            f"tensor of per-image indices; got {query_idx.dim()}-D"
        )
    if query_idx.dim() == 2 and batch is not None and query_idx.shape[0] != batch:
        raise ValueError(
            f"per-image query_idx has {query_idx.shape[0]} rows for a batch of {batch} images"
        )
    if query_idx.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise ValueError(f"query_idx must be an integer tensor; got {query_idx.dtype}")
    if query_idx.numel() == 0:
        raise ValueError("query_idx is empty: sample at least one query point")
    if query_idx.device.type != "cpu":
        # Reading the values would make the host wait for the device (two syncs per call,
        # per layer, per step); an out-of-range index still fails in the gather there.
        return
    lo, hi = int(query_idx.min()), int(query_idx.max())
    if lo < 0 or hi >= height * width:
        raise ValueError(
            f"query_idx out of range: values must lie in [0, {height * width - 1}] for a "
            f"{height}x{width} map; got min {lo}, max {hi}"
        )


def normalize_features(feat: Tensor, kind: SimKind = "cosine", *, center: bool = True) -> Tensor:
    """Prepare features for dot-product similarity.

    Args:
        feat: (B, C, H, W) features.
        kind: ``"cosine"`` mean-centres over space and L2-normalises over channels;
            ``"tanh"`` mean-centres over space and divides by sqrt(C) (the public code's default).
        center: subtract each image's spatial mean first (the public code does). Centred
            similarities are unchanged when the features are negated around their mean, so a
            loss built on them cannot tell a region's appearance from its inverse; without
            centring that symmetry is gone.

    Returns:
        (B, C, H, W) normalised features.
    """
    if kind not in SIM_KINDS:
        raise ValueError(f"unknown similarity kind {kind!r}; choose one of {SIM_KINDS}")
    if center:
        feat = feat - feat.mean(dim=(2, 3), keepdim=True)
    if kind == "cosine":
        return F.normalize(feat, dim=1)
    return feat / math.sqrt(feat.shape[1])


def window_key_indices(query_idx: Tensor, height: int, width: int, window: int) -> Tensor:
    """Flat indices of the local key window of each query, clamped to lie inside the map.

    The window's top-left corner is ``clamp(pos - window // 2, 0, size - window)`` along each axis,
    as in the public code; along an axis shorter than ``window`` the window covers the whole axis.

    Args:
        query_idx: (N,) or (B, N) flat row-major indices into ``height * width``.
        height: map height H.
        width: map width W.
        window: side of the square key window (>= 1).

    Returns:
        (..., K) flat key indices in row-major window order (one row per query index),
        K = min(window, H) * min(window, W).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1 (or None for the whole map); got {window}")
    wh, ww = min(window, height), min(window, width)
    rows, cols = query_idx // width, query_idx % width
    top = (rows - window // 2).clamp(min=0, max=height - wh)
    left = (cols - window // 2).clamp(min=0, max=width - ww)
    dr = torch.arange(wh, device=query_idx.device)
    dc = torch.arange(ww, device=query_idx.device)
    key_rows = top[..., None, None] + dr[:, None]  # (..., wh, 1)
    key_cols = left[..., None, None] + dc[None, :]  # (..., 1, ww)
    return (key_rows * width + key_cols).reshape(*query_idx.shape, wh * ww)


def self_similarity(
    feat: Tensor,
    query_idx: Tensor,
    window: int | None = None,
    kind: SimKind = "cosine",
    *,
    center: bool = True,
) -> Tensor:
    """Spatially-correlative maps S (eq. 1) of sampled query points.

    Args:
        feat: (B, C, H, W) features (raw: they are normalised here according to ``kind``).
        query_idx: (N,) integer flat row-major indices into H*W, shared by every image, or
            (B, N) indices of each image's own query points.
        window: side of the local key window, clamped to lie inside the map. None, or a side not
            smaller than both H and W, compares each query with the whole map.
        kind: ``"cosine"`` (mean-centred, L2-normalised features, dot product) or ``"tanh"``
            (mean-centred, divided by sqrt(C), ``tanh(dot / 10)``, the public code's default).
        center: mean-centre the features over space first (see :func:`normalize_features`).

    Returns:
        (B, N, K) similarities, K = window*window for a local window inside a square map,
        min(window, H) * min(window, W) in general, or H*W for the whole map. Keys are in
        row-major order.

    Raises:
        ValueError: on a bad shape, window, kind or out-of-range index.
    """
    _check_feat(feat)
    if kind not in SIM_KINDS:
        raise ValueError(f"unknown similarity kind {kind!r}; choose one of {SIM_KINDS}")
    if window is not None and window < 1:
        raise ValueError(f"window must be >= 1 (or None for the whole map); got {window}")
    B, _, H, W = feat.shape
    _check_query_idx(query_idx, H, W, B)
    query_idx = query_idx.to(device=feat.device, dtype=torch.long, non_blocking=True)

    flat = normalize_features(feat, kind, center=center).flatten(2)  # (B, C, HW)
    query = _gather_points(flat, query_idx).transpose(1, 2)  # (B, N, C)
    # One matrix product against every position; a window is then a gather of its columns.
    # This is N*HW*C multiply-adds, cheaper in practice than N copies of (C, window, window).
    sim = torch.bmm(query, flat)  # (B, N, HW)
    if window is not None and (window < H or window < W):
        keys = window_key_indices(query_idx, H, W, window)  # (N, K) or (B, N, K)
        sim = sim.gather(2, keys.expand(B, -1, -1) if keys.dim() == 2 else keys)
    if kind == "tanh":
        sim = torch.tanh(sim / TANH_SCALE)
    return sim


def _gather_points(flat: Tensor, idx: Tensor) -> Tensor:
    """(B, C, HW) features at (N,) shared or (B, N) per-image indices -> (B, C, N)."""
    if idx.dim() == 1:
        return flat[:, :, idx]
    return flat.gather(2, idx[:, None, :].expand(-1, flat.shape[1], -1))


def pairwise_similarity(
    feat: Tensor, idx: Tensor, kind: SimKind = "cosine", *, center: bool = True
) -> Tensor:
    """STROTSS-style self-similarity among a random set of points (Table 3, row A).

    Every sampled point is compared with every other sampled point, instead of with a dense
    window around it.

    Args:
        feat: (B, C, H, W) features.
        idx: (N,) flat indices of the sampled points (or (B, N), per image).
        kind: similarity kind, as in :func:`self_similarity`.
        center: mean-centre the features over space first (see :func:`normalize_features`).

    Returns:
        (B, N, N) similarities.
    """
    _check_feat(feat)
    if kind not in SIM_KINDS:
        raise ValueError(f"unknown similarity kind {kind!r}; choose one of {SIM_KINDS}")
    _check_query_idx(idx, feat.shape[2], feat.shape[3], feat.shape[0])
    idx = idx.to(device=feat.device, dtype=torch.long)
    pts = _gather_points(normalize_features(feat, kind, center=center).flatten(2), idx)
    sim = torch.bmm(pts.transpose(1, 2), pts)
    return torch.tanh(sim / TANH_SCALE) if kind == "tanh" else sim


def sample_queries(
    height: int,
    width: int,
    num: int,
    *,
    strategy: QueryStrategy = "random",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Sample query positions on an H x W map.

    Args:
        height: map height H.
        width: map width W.
        num: number of queries N; ``num <= 0`` or ``num >= H*W`` takes every position.
        strategy: ``"random"`` draws without replacement (what the paper found better);
            ``"grid"`` takes a regular grid of about ``num`` points.
        generator: source of randomness for ``"random"``; must live on the CPU.
        device: device of the returned indices.

    Returns:
        (N,) int64 flat row-major indices.
    """
    total = height * width
    if height < 1 or width < 1:
        raise ValueError(f"map size must be positive; got {height}x{width}")
    if strategy not in QUERY_STRATEGIES:
        raise ValueError(f"unknown query strategy {strategy!r}; choose one of {QUERY_STRATEGIES}")
    if num <= 0 or num >= total:
        return torch.arange(total, device=device)
    if strategy == "random":
        # A non-blocking copy: from pageable memory it is staged at once, with no device sync.
        return torch.randperm(total, generator=generator)[:num].to(device, non_blocking=True)
    # A grid with about `num` points spread in proportion to the map's sides.
    ny = max(1, min(height, round(math.sqrt(num * height / width))))
    nx = max(1, min(width, round(num / ny)))
    rows = torch.linspace(0, height - 1, ny).round().long()
    cols = torch.linspace(0, width - 1, nx).round().long()
    return (rows[:, None] * width + cols[None, :]).flatten().unique().to(device)


def distinctiveness(feat: Tensor, window: int) -> Tensor:
    """How much each position differs from its neighbourhood: 1 - its mean cosine similarity
    with the features of the ``window`` x ``window`` square around it.

    Computed with one box filter over the normalised features (no similarity maps), so it is
    cheap for every position. Near 0 inside a uniform region; high on edges, thin lines and
    small objects, where a self-similarity map holds the most information (a cheap stand-in
    for the entropy of the map, which QS-Attn uses to rank CUT's queries).

    Args:
        feat: (B, C, H, W) features.
        window: side of the neighbourhood (odd sides centre it; clipped at the borders).

    Returns:
        (B, H*W) scores in [0, 2].
    """
    _check_feat(feat)
    if window < 1:
        raise ValueError(f"window must be >= 1; got {window}")
    unit = normalize_features(feat, "cosine")
    size = min(window, feat.shape[2], feat.shape[3]) | 1  # odd, so that it is centred
    mean = _box_mean(unit, size // 2)
    return (1.0 - (unit * mean).sum(1)).flatten(1)


def _box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean of ``x`` (B, C, H, W) over the (2 radius + 1)^2 square around each position,
    clipped at the borders (as ``avg_pool2d`` with ``count_include_pad=False``), from one
    summed-area table: a cost independent of the window's size."""
    _, _, H, W = x.shape
    table = F.pad(x.cumsum(2).cumsum(3), (1, 0, 1, 0))  # (B, C, H + 1, W + 1)
    rows, cols = torch.arange(H, device=x.device), torch.arange(W, device=x.device)
    r0, r1 = (rows - radius).clamp(min=0), (rows + radius + 1).clamp(max=H)
    c0, c1 = (cols - radius).clamp(min=0), (cols + radius + 1).clamp(max=W)
    rows_diff = table.index_select(2, r1) - table.index_select(2, r0)  # (B, C, H, W + 1)
    total = rows_diff.index_select(3, c1) - rows_diff.index_select(3, c0)
    count = (r1 - r0)[:, None] * (c1 - c0)[None, :]
    return total / count.to(x.dtype)


def sample_structure_queries(
    feat: Tensor, num: int, window: int, generator: torch.Generator | None = None
) -> Tensor:
    """Per-image query points drawn without replacement with probability proportional to
    :func:`distinctiveness`, so that the points fall where the structure is.

    Sampling uses the Gumbel top-k trick with noise drawn on the CPU from ``generator`` and
    copied without blocking; the scores never leave the device, so nothing waits for it.

    Args:
        feat: (B, C, H, W) features of the images whose structure is to be kept.
        num: points per image (at most H*W).
        window: neighbourhood side of the score.
        generator: CPU generator of the noise.

    Returns:
        (B, num) int64 flat indices, on ``feat``'s device.
    """
    B, _, H, W = feat.shape
    num = min(num, H * W)
    with torch.no_grad():
        score = distinctiveness(feat.detach().float(), window).clamp_min(0) + 1e-6
        uniform = torch.rand(B, H * W, generator=generator).clamp_(1e-12, 1.0 - 1e-7)
        gumbel = -torch.log(-torch.log(uniform)).to(feat.device, non_blocking=True)
        return (score.log() + gumbel).topk(num, dim=1).indices


def _topk_mask(sim_tgt: Tensor) -> tuple[Tensor, int]:
    """Mask of the entries kept by the public code's top-quarter selection."""
    K = sim_tgt.shape[-1]
    k = max(K // 4, 1)
    kth = min(k, K - 1)  # index of the (k+1)-th largest value
    with torch.no_grad():
        thresh = sim_tgt.detach().topk(kth + 1, dim=-1).values[..., kth : kth + 1]
        mask = sim_tgt.detach() >= thresh
    return mask, k


def compare_similarity(
    sim_src: Tensor,
    sim_tgt: Tensor,
    mode: CompareMode = "cos",
    *,
    sim_other: Tensor | None = None,
    temperature: float = 0.07,
    smooth: bool = False,
    mask: MaskKind = "target",
) -> Tensor:
    """Distance between two sets of self-similarity maps of the same query points.

    ``cos`` and ``l1`` are the structure loss of eq. (2), with the public code's masking: with K
    keys per query and k = floor(K / 4) (at least 1), only the entries of each target map that are
    not smaller than its (k+1)-th largest value are kept, in both maps. ``l1`` then scales both by
    K / k and takes their (Smooth)L1 distance; ``cos`` takes the (Smooth)L1 distance between 1 and
    their cosine similarity. ``info`` is the patchwise InfoNCE loss of eq. (3): per query i the
    positive is ``src_i . tgt_i`` and the negatives are ``src_i . tgt_j`` (j != i) and the maps of
    the other image, ``src_i . other_j`` and ``tgt_i . other_j``, for all j, over L2-normalised
    maps divided by ``temperature``. ``kl`` turns each map into a distribution over its keys,
    ``softmax(map / temperature)``, and takes KL(source || target): the keys that belong with the
    query in the source (its own region) must keep the translation's mass, so splitting a region
    (new texture, lost lines) costs, while how different the *other* regions become (a
    recolouring) costs almost nothing at a low temperature; no mask is applied. Use it with
    cosine similarities (values in [-1, 1]), as the CPU presets do.

    Args:
        sim_src: (B, N, K) maps of the source (input) image.
        sim_tgt: (B, N, K) maps of the target (translated or augmented) image.
        mode: ``"cos"``, ``"l1"``, ``"info"`` or ``"kl"``.
        sim_other: (B, N, K) maps of another image; required for ``"info"``.
        temperature: InfoNCE temperature tau, or the softmax temperature of ``"kl"``.
        smooth: use SmoothL1 (beta 1) instead of L1 in ``cos``/``l1``; the public code does so
            with its non-normalised (tanh) similarity.
        mask: which entries ``cos``/``l1`` compare. ``"target"`` (the public code) keeps the top
            quarter of the target map only: keys similar to the query in the target must be
            similar in the source, but a region that is uniform in the source may be split in
            the target for free (new structure hallucinated inside a flat area costs nothing).
            ``"both"`` keeps the union of both maps' top quarters, which checks the two
            directions; ``"none"`` compares whole maps.

    Returns:
        Scalar loss.

    Raises:
        ValueError: on an unknown mode, mismatched shapes or a missing ``sim_other``.
    """
    if mode not in COMPARE_MODES:
        raise ValueError(f"unknown compare mode {mode!r}; choose one of {COMPARE_MODES}")
    if sim_src.dim() != 3:
        raise ValueError(f"similarity maps must have shape (B, N, K); got {tuple(sim_src.shape)}")
    if sim_src.shape != sim_tgt.shape:
        raise ValueError(
            f"sim_src and sim_tgt shapes differ: {tuple(sim_src.shape)} vs {tuple(sim_tgt.shape)}"
        )
    if mode in ("info", "kl") and temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    if mode == "info":
        if sim_other is None:
            raise ValueError("mode 'info' needs sim_other, the maps of another image (negatives)")
        if sim_other.shape != sim_src.shape:
            raise ValueError(
                f"sim_other shape {tuple(sim_other.shape)} differs from sim_src "
                f"{tuple(sim_src.shape)}"
            )
        return _info_nce(sim_src, sim_tgt, sim_other, temperature)
    if mode == "kl":
        return _affinity_kl(sim_src, sim_tgt, temperature)

    if mask not in MASK_KINDS:
        raise ValueError(f"unknown mask {mask!r}; choose one of {MASK_KINDS}")
    if mask == "none":
        keep, k = torch.ones_like(sim_tgt, dtype=torch.bool), sim_tgt.shape[-1]
    else:
        keep, k = _topk_mask(sim_tgt)
        if mask == "both":
            keep = keep | _topk_mask(sim_src)[0]
    src = sim_src * keep
    tgt = sim_tgt * keep
    criterion = F.smooth_l1_loss if smooth else F.l1_loss
    if mode == "l1":
        scale = sim_src.shape[-1] / k
        return criterion(scale * src, scale * tgt)
    cos = F.cosine_similarity(src, tgt, dim=-1)
    return criterion(torch.ones_like(cos), cos)


def _affinity_kl(sim_src: Tensor, sim_tgt: Tensor, temperature: float) -> Tensor:
    """KL(p_src || p_tgt) of the maps turned into distributions over keys by a softmax at
    ``temperature``; mean over queries and images."""
    log_p = F.log_softmax(sim_src / temperature, dim=-1)
    log_q = F.log_softmax(sim_tgt / temperature, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def _info_nce(sim_src: Tensor, sim_tgt: Tensor, sim_other: Tensor, temperature: float) -> Tensor:
    B, N, _ = sim_src.shape
    src = F.normalize(sim_src, dim=-1)
    tgt = F.normalize(sim_tgt, dim=-1)
    other = F.normalize(sim_other, dim=-1)
    logits = torch.cat(
        [
            torch.bmm(src, tgt.transpose(1, 2)),  # positives on the diagonal
            torch.bmm(src, other.transpose(1, 2)),
            torch.bmm(tgt, other.transpose(1, 2)),
        ],
        dim=-1,
    ).reshape(B * N, 3 * N)
    target = torch.arange(N, device=sim_src.device).repeat(B)
    return F.cross_entropy(logits / temperature, target)
