"""The spatially-correlative loss (FSeSim and LSeSim) as a module over feature lists.

The module owns only what has state: the optional learned 1x1-conv heads of LSeSim, built in
``__init__`` from the extractor's channel counts. Features come from any extractor (usually
:class:`sesim.features.VGG16Features`), so a caller computes them once per image and reuses them.

Example:
    >>> extractor = VGG16Features(weights="auto")
    >>> crit = SpatialCorrelativeLoss(extractor.channels, SpatialLossConfig())
    >>> loss = 10.0 * crit.structure_loss(extractor(x), extractor(y))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from sesim.losses._precision import full_precision
from sesim.losses.selfsim import (
    COMPARE_MODES,
    MASK_KINDS,
    QUERY_STRATEGIES,
    SIM_KINDS,
    CompareMode,
    MaskKind,
    QueryStrategy,
    SimKind,
    compare_similarity,
    pairwise_similarity,
    sample_queries,
    sample_structure_queries,
    self_similarity,
)

MapVariant = Literal["local", "global", "pairwise"]
MAP_VARIANTS: tuple[str, ...] = ("local", "global", "pairwise")


@dataclass(frozen=True)
class SpatialLossConfig:
    """Settings of the spatially-correlative loss; defaults are the public code's.

    Attributes:
        mode: how the generator's structure loss compares maps (eq. 2): ``"cos"`` or ``"l1"``
            (``"info"`` is allowed too, with the other images as negatives), or ``"kl"``: the
            KL divergence between the maps as softmax distributions over keys at
            ``temperature`` (see :func:`~sesim.losses.selfsim.compare_similarity`).
        kind: ``"tanh"`` (public default, ``use_norm`` off) or ``"cosine"`` similarity.
        num_queries: query points sampled per layer (256).
        window: side of the local key window; None compares with the whole map. 64 covers every
            VGG16 map of a 256x256 input, as the public training script.
        variant: ``"local"`` (sampled queries, local window), ``"global"`` (every position is a
            query and a key; Table 3 row B), ``"pairwise"`` (STROTSS-style similarities among
            the sampled points only; row A).
        query_strategy: ``"random"`` without replacement (the paper's choice), ``"grid"``, or
            ``"structure"``: ``structure_share`` of them drawn per image where the source
            features differ most from their neighbourhood (edges, thin lines, small objects),
            the rest uniformly.
        structure_share: the share of the queries placed by distinctiveness under the
            ``"structure"`` strategy (0.5; 0 is ``"random"``, 1 places every query there).
        learned: LSeSim: learned 1x1-conv heads on each layer, trained by :meth:`contrastive_loss`.
        temperature: InfoNCE temperature (eq. 3); also the softmax temperature of ``"kl"``.
        smooth: SmoothL1 in ``cos``/``l1``; None follows the public code (SmoothL1 with tanh).
        head_init_gain: std of the heads' normal initialisation.
        mask: entries compared by ``cos``/``l1``: ``"target"`` (the translation's top quarter,
            the public code), ``"both"`` (the union of both maps' top quarters) or ``"none"``;
            see :func:`~sesim.losses.selfsim.compare_similarity`.
        center: mean-centre each image's features over space before the similarities (the
            public code). Centred similarities do not change when a region's features are
            negated around the mean, e.g. dark and light swapped
            (:func:`~sesim.losses.selfsim.normalize_features`).
    """

    mode: CompareMode = "cos"
    kind: SimKind = "tanh"
    num_queries: int = 256
    window: int | None = 64
    variant: MapVariant = "local"
    query_strategy: QueryStrategy = "random"
    structure_share: float = 0.5
    learned: bool = False
    temperature: float = 0.07
    smooth: bool | None = None
    head_init_gain: float = 0.02
    mask: MaskKind = "target"
    center: bool = True

    def __post_init__(self) -> None:
        if self.mode not in COMPARE_MODES:
            raise ValueError(f"unknown compare mode {self.mode!r}; choose one of {COMPARE_MODES}")
        if self.kind not in SIM_KINDS:
            raise ValueError(f"unknown similarity kind {self.kind!r}; choose one of {SIM_KINDS}")
        if self.variant not in MAP_VARIANTS:
            raise ValueError(f"unknown map variant {self.variant!r}; choose one of {MAP_VARIANTS}")
        if self.query_strategy not in QUERY_STRATEGIES:
            raise ValueError(
                f"unknown query strategy {self.query_strategy!r}; choose one of {QUERY_STRATEGIES}"
            )
        if not 0.0 <= self.structure_share <= 1.0:
            raise ValueError(f"structure_share must be in [0, 1]; got {self.structure_share}")
        if self.mask not in MASK_KINDS:
            raise ValueError(f"unknown mask {self.mask!r}; choose one of {MASK_KINDS}")
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be >= 1 or None; got {self.window}")
        if self.variant != "global" and self.num_queries < 1:
            raise ValueError(f"num_queries must be >= 1; got {self.num_queries}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {self.temperature}")

    @property
    def use_smooth(self) -> bool:
        """Whether ``cos``/``l1`` use SmoothL1 (the public code does with tanh similarity)."""
        return self.kind == "tanh" if self.smooth is None else self.smooth


class ProjectionHead(nn.Sequential):
    """LSeSim's learned head: 1x1 conv C -> max(32, C/4), ReLU, 1x1 conv.

    Its state-dict keys (``0.weight``, ``0.bias``, ``2.weight``, ``2.bias``) match the public
    code's, so its heads load directly.

    Args:
        channels: input channel count C.
        init_gain: std of the normal weight initialisation (biases start at 0).
    """

    def __init__(self, channels: int, init_gain: float = 0.02) -> None:
        out = max(32, channels // 4)
        super().__init__(nn.Conv2d(channels, out, 1), nn.ReLU(), nn.Conv2d(out, out, 1))
        for module in self:
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, init_gain)
                nn.init.zeros_(module.bias)  # type: ignore[arg-type]
        self.out_channels = out


class SpatialCorrelativeLoss(nn.Module):
    """FSeSim (fixed features) or LSeSim (learned heads) over a list of feature maps.

    Args:
        channels: channel count of each feature layer (``extractor.channels``).
        config: loss settings.

    Attributes:
        heads: one :class:`ProjectionHead` per layer when ``config.learned``, else None.
    """

    def __init__(self, channels: Sequence[int], config: SpatialLossConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else SpatialLossConfig()
        self.channels = tuple(channels)
        if not self.channels:
            raise ValueError("give the channel count of at least one feature layer")
        self.heads: nn.ModuleList | None = None
        if self.config.learned:
            gain = self.config.head_init_gain
            self.heads = nn.ModuleList(ProjectionHead(c, gain) for c in self.channels)

    # Building blocks.
    def _check(self, *feature_lists: Sequence[Tensor]) -> None:
        for feats in feature_lists:
            if len(feats) != len(self.channels):
                raise ValueError(f"expected {len(self.channels)} feature layers; got {len(feats)}")
            for feat, c in zip(feats, self.channels):
                if feat.dim() != 4 or feat.shape[1] != c:
                    raise ValueError(
                        f"feature of shape {tuple(feat.shape)} does not match the configured "
                        f"channel counts {self.channels}"
                    )
        first = feature_lists[0]
        for feats in feature_lists[1:]:
            for a, b in zip(first, feats):
                if a.shape[2:] != b.shape[2:]:
                    raise ValueError(
                        f"feature maps differ in spatial size: {tuple(a.shape)} vs {tuple(b.shape)}"
                    )

    def project(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Apply the learned heads (identity for FSeSim).

        Args:
            feats: per layer, (B, C_l, H_l, W_l).

        Returns:
            Per layer, (B, C'_l, H_l, W_l) features the maps are computed on.
        """
        if self.heads is None:
            return list(feats)
        return [head(f) for head, f in zip(self.heads, feats)]

    def sample_indices(
        self, feats: Sequence[Tensor], generator: torch.Generator | None = None
    ) -> list[Tensor]:
        """Query points for each layer, drawn from ``generator``.

        Args:
            feats: per layer, (B, C_l, H_l, W_l) features of the images whose structure is to
                be kept (only the sizes are used, except by the ``"structure"`` strategy).
            generator: CPU generator; None uses torch's global one.

        Returns:
            Per layer, (N_l,) flat indices shared by the batch, or (B, N_l) per-image indices
            for the ``"structure"`` strategy: ``structure_share`` of them drawn per image where
            the features differ most from their neighbourhood
            (:func:`~sesim.losses.selfsim.sample_structure_queries`), the rest uniformly
            (shared by the batch).
        """
        cfg = self.config
        out = []
        for f in feats:
            h, w = f.shape[2], f.shape[3]
            num = 0 if cfg.variant == "global" else cfg.num_queries
            if cfg.query_strategy != "structure" or num <= 0 or num >= h * w:
                strategy = "random" if cfg.query_strategy == "structure" else cfg.query_strategy
                out.append(
                    sample_queries(
                        h, w, num, strategy=strategy, generator=generator, device=f.device
                    )
                )
                continue
            n_own = int(num * cfg.structure_share)
            parts = []
            if n_own < num:
                shared = sample_queries(h, w, num - n_own, generator=generator, device=f.device)
                parts.append(shared.expand(f.shape[0], -1))
            if n_own > 0:
                window = cfg.window if cfg.window is not None else max(h, w)
                parts.append(sample_structure_queries(f, n_own, window, generator))
            out.append(torch.cat(parts, dim=1))
        return out

    def maps(self, feat: Tensor, idx: Tensor) -> Tensor:
        """Self-similarity maps of one layer for the configured variant.

        Args:
            feat: (B, C, H, W) (already projected when learned).
            idx: (N,) query indices.

        Returns:
            (B, N, K) maps.
        """
        cfg = self.config
        if cfg.variant == "pairwise":
            return pairwise_similarity(feat, idx, cfg.kind, center=cfg.center)
        window = None if cfg.variant == "global" else cfg.window
        return self_similarity(feat, idx, window, cfg.kind, center=cfg.center)

    # Losses.
    def structure_loss(
        self,
        feats_x: Sequence[Tensor],
        feats_y: Sequence[Tensor],
        *,
        feats_other: Sequence[Tensor] | None = None,
        indices: Sequence[Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Structure loss between input and translation (eq. 2), averaged over layers.

        Args:
            feats_x: per layer, (B, C_l, H_l, W_l) features of the input x.
            feats_y: the same for the translation y (gradients flow into them).
            feats_other: features of other images; only used with ``mode="info"``.
            indices: per layer (N_l,) query indices; sampled from ``generator`` when None.
            generator: CPU generator for the query sampling.

        Returns:
            Scalar loss (multiply by lambda, 10 in the paper, yourself).
        """
        cfg = self.config
        lists = [feats_x, feats_y] + ([feats_other] if feats_other is not None else [])
        self._check(*lists)
        if cfg.mode == "info" and feats_other is None:
            raise ValueError("mode 'info' needs feats_other, features of other images")
        with full_precision(feats_y[0].device):
            px, py = self.project(_fp32(feats_x)), self.project(_fp32(feats_y))
            po = self.project(_fp32(feats_other)) if feats_other is not None else None
            idx = list(indices) if indices is not None else self.sample_indices(px, generator)
            total = px[0].new_zeros(())
            for layer, (fx, fy) in enumerate(zip(px, py)):
                sim_x = self.maps(fx, idx[layer])
                sim_y = self.maps(fy, idx[layer])
                sim_o = self.maps(po[layer], idx[layer]) if po is not None else None
                total = total + compare_similarity(
                    sim_x,
                    sim_y,
                    cfg.mode,
                    sim_other=sim_o if cfg.mode == "info" else None,
                    temperature=cfg.temperature,
                    smooth=cfg.use_smooth,
                    mask=cfg.mask,
                )
        return total / len(px)

    def contrastive_loss(
        self,
        feats_x: Sequence[Tensor],
        feats_pos: Sequence[Tensor],
        feats_other: Sequence[Tensor],
        *,
        indices: Sequence[Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Patchwise InfoNCE (eq. 3) that trains the learned heads, averaged over layers.

        The map at a query point of x should match the map at the same point of a
        structure-preserving view (a colour-jittered copy, or the detached translation) and
        differ from maps at other points and of other images.

        Args:
            feats_x: per layer, (B, C_l, H_l, W_l) features of the anchors.
            feats_pos: the same layers for the positives (same structure as x).
            feats_other: the same layers for other images (negatives).
            indices: per layer (N_l,) query indices; sampled from ``generator`` when None.
            generator: CPU generator for the query sampling.

        Returns:
            Scalar loss.
        """
        self._check(feats_x, feats_pos, feats_other)
        with full_precision(feats_x[0].device):
            px = self.project(_fp32(feats_x))
            pp, po = self.project(_fp32(feats_pos)), self.project(_fp32(feats_other))
            idx = list(indices) if indices is not None else self.sample_indices(px, generator)
            total = px[0].new_zeros(())
            for layer in range(len(px)):
                total = total + compare_similarity(
                    self.maps(px[layer], idx[layer]),
                    self.maps(pp[layer], idx[layer]),
                    "info",
                    sim_other=self.maps(po[layer], idx[layer]),
                    temperature=self.config.temperature,
                )
        return total / len(px)


def _fp32(feats: Sequence[Tensor]) -> list[Tensor]:
    """Features in float32 (a no-op for float32 ones; bf16/fp16 ones from autocast are cast)."""
    return [f.float() for f in feats]
