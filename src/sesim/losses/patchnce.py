"""PatchNCE loss and patch sampler of CUT (Park et al., ECCV 2020), used by the CUT baseline.

``patchnce_loss`` is CUT's ``PatchNCELoss`` (``models/patchnce.py``) as a function;
``PatchSampleMLP`` is CUT's ``PatchSampleF`` with ``netF=mlp_sample``, with its projection heads
built in ``__init__`` from the channel counts of the encoder layers (see
``ResnetGenerator.feature_channels``) instead of lazily on the first forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.losses._precision import full_precision

#: Logit given to a query paired with itself among the negatives (before the temperature), as
#: CUT's ``masked_fill_(diagonal, -10.0)``: exp(-10 / T) is practically zero.
_SELF_LOGIT = -10.0


def patchnce_loss(
    feat_q: Tensor,
    feat_k: Tensor,
    temperature: float = 0.07,
    batch_negatives: bool = False,
    *,
    num_images: int | None = None,
    detach_keys: bool = True,
) -> Tensor:
    """InfoNCE over patches: each query must pick its own key among the patches of its image.

    For query i of image b, the logits are [q_i . k_i, q_i . k_j for j != i] / temperature, where
    the negatives k_j are the other sampled patches of the same image (or of the whole batch with
    ``batch_negatives``, CUT's ``--nce_includes_all_negatives_from_minibatch`` for single-image
    training). The cross-entropy with the positive as target is averaged over all queries, as
    CUT's ``calculate_NCE_loss`` does with ``.mean()``.

    Args:
        feat_q: queries, (B, N, C) or (B*N, C), e.g. L2-normalised samples of G(x) features from
            ``PatchSampleMLP``.
        feat_k: keys at the same positions, same shape, e.g. samples of the features of x.
        temperature: softmax temperature (CUT's ``--nce_T``).
        batch_negatives: draw negatives from every image of the batch instead of the query's own.
        num_images: B for 2-D inputs, whose rows are image-major (as ``PatchSampleMLP`` returns
            them); None treats 2-D inputs as a single image, which is right for CUT's batch
            size 1 or with ``batch_negatives``. Ignored for 3-D inputs.
        detach_keys: stop gradients through ``feat_k``, as CUT does.
    Returns:
        scalar loss.

    Raises:
        ValueError: on mismatched or badly shaped inputs.
    """
    if feat_q.shape != feat_k.shape:
        raise ValueError(
            f"feat_q and feat_k shapes differ: {tuple(feat_q.shape)} vs {tuple(feat_k.shape)}"
        )
    if feat_q.ndim == 2:
        b = 1 if num_images is None else num_images
        if b < 1 or feat_q.shape[0] % b:
            raise ValueError(f"{feat_q.shape[0]} rows cannot be split into {b} images")
        feat_q = feat_q.reshape(b, -1, feat_q.shape[-1])
        feat_k = feat_k.reshape(b, -1, feat_k.shape[-1])
    elif feat_q.ndim != 3:
        raise ValueError(f"expected (B, N, C) or (B*N, C) features, got {tuple(feat_q.shape)}")
    if detach_keys:
        feat_k = feat_k.detach()
    if batch_negatives:
        feat_q = feat_q.reshape(1, -1, feat_q.shape[-1])
        feat_k = feat_k.reshape(1, -1, feat_k.shape[-1])

    n = feat_q.shape[1]
    with full_precision(feat_q.device):  # logits / 0.07 in float32 under autocast too
        feat_q, feat_k = feat_q.float(), feat_k.float()
        l_pos = (feat_q * feat_k).sum(dim=-1, keepdim=True)  # (B, N, 1)
        l_neg = torch.bmm(feat_q, feat_k.transpose(1, 2))  # (B, N, N)
        eye = torch.eye(n, dtype=torch.bool, device=feat_q.device)
        l_neg = l_neg.masked_fill(eye, _SELF_LOGIT)
        logits = torch.cat([l_pos, l_neg], dim=-1).flatten(0, 1) / temperature  # (B*N, 1+N)
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, target)


class PatchSampleMLP(nn.Module):
    """Sample feature vectors at random positions and project them with a 2-layer MLP per layer.

    For each feature map, the same random positions are used for every image of the batch (as
    CUT); the vectors at those positions go through the layer's MLP (Linear, ReLU, Linear to
    ``nc``) and are L2-normalised. Pass the ids returned for the source features when sampling
    the translated ones, so that queries and keys come from the same positions.

    All parameters exist after ``__init__``. Initialise them as the generator (CUT uses
    ``init_weights(mlp, "xavier", 0.02)``).

    Args:
        in_channels: channel count of each feature map that ``forward`` will receive, in order.
        nc: output dimension of the MLPs.
        use_mlp: False skips the projection (CUT's ``netF=sample``): the sampled vectors are
            only normalised, keep their channel count, and the module has no parameters.
    """

    def __init__(self, in_channels: Sequence[int], nc: int = 256, use_mlp: bool = True) -> None:
        super().__init__()
        self.in_channels = tuple(in_channels)
        self.nc = nc
        self.use_mlp = use_mlp
        self.mlps = nn.ModuleList()
        if use_mlp:
            for c in self.in_channels:
                self.mlps.append(nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)))

    def out_channels(self) -> list[int]:
        """Dimension of the vectors returned for each feature map."""
        return [self.nc if self.use_mlp else c for c in self.in_channels]

    def forward(
        self,
        feats: list[Tensor],
        num_patches: int = 256,
        patch_ids: list[Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Sample, project and normalise.

        Args:
            feats: feature maps (B, C_l, H_l, W_l), one per entry of ``in_channels``.
            num_patches: positions sampled per map, without replacement (all H_l*W_l positions
                when the map is smaller); <= 0 takes every position in row-major order.
            patch_ids: positions to use instead of sampling, one (N_l,) int64 tensor of flat
                row-major indices per map, e.g. the ids returned by a previous call.
            generator: random source for the positions; None uses torch's global generator.
                Its device is used for the draw, then the ids are moved to the features' device.
        Returns:
            (samples, ids): per map, (B*N_l, D_l) L2-normalised vectors, image-major (rows
            b*N_l .. (b+1)*N_l - 1 belong to image b), with D_l = ``out_channels()[l]``; and the
            (N_l,) ids used.

        Raises:
            ValueError: if the number of maps or their channels do not match ``in_channels``.
        """
        if len(feats) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} feature maps, got {len(feats)}")
        if patch_ids is not None and len(patch_ids) != len(feats):
            raise ValueError(f"expected {len(feats)} patch id tensors, got {len(patch_ids)}")
        samples: list[Tensor] = []
        ids_used: list[Tensor] = []
        for i, feat in enumerate(feats):
            if feat.ndim != 4 or feat.shape[1] != self.in_channels[i]:
                raise ValueError(
                    f"feature map {i}: expected (B, {self.in_channels[i]}, H, W), "
                    f"got {tuple(feat.shape)}"
                )
            h, w = feat.shape[-2:]
            flat = feat.flatten(2).transpose(1, 2)  # (B, H*W, C)
            if patch_ids is not None:
                ids = patch_ids[i].to(device=feat.device, dtype=torch.long, non_blocking=True)
            elif num_patches > 0:
                draw_device = generator.device if generator is not None else feat.device
                perm = torch.randperm(h * w, generator=generator, device=draw_device)
                ids = perm[: min(num_patches, h * w)].to(feat.device, non_blocking=True)
            else:
                ids = torch.arange(h * w, device=feat.device)
            x = flat[:, ids, :].flatten(0, 1)  # (B*N, C)
            if self.use_mlp:
                x = self.mlps[i](x)
            x = x / (x.norm(p=2, dim=1, keepdim=True) + 1e-7)
            samples.append(x)
            ids_used.append(ids)
        return samples, ids_used
