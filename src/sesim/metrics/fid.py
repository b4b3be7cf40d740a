"""Fréchet and Kernel Inception Distance (FID, KID) on pluggable image features.

The pieces are separate so that features are computed once and reused by every metric that needs
them (FID, KID, density/coverage):

1. a *feature extractor*: any ``nn.Module`` mapping an image batch (N, 3, H, W), float in
   [-1, 1] (sesim's image convention), to (N, D) features. It resizes images to its own input
   size itself, so sets of any image size can be compared;
2. :func:`extract_features` runs it over a tensor or an iterable of batches;
3. :func:`fid_from_features` and :func:`kid_from_features` compare two feature sets, with
   sesim's own code for the formulas torchmetrics' ``FrechetInceptionDistance`` and
   ``KernelInceptionDistance`` use (the trace of the matrix square root through the eigenvalues
   of ``S_r S_f``; the unbiased MMD with a cubic polynomial kernel); the tests check both
   against those classes.

The standard extractor, :func:`inception_extractor`, is the Inception-v3 that torchmetrics'
``FrechetInceptionDistance`` / ``KernelInceptionDistance`` use (torch-fidelity's port of the
TensorFlow FID graph, 2048-d pool features, the same network pytorch-fid uses, which the public
F-LSeSim evaluation ran). Images are resized to 299x299 inside it. Its weights file
``weights-inception-2015-12-05-6726825d.pth`` is read from the torch hub cache
(``$TORCH_HOME/hub/checkpoints/``, by default ``~/.cache/torch/hub/checkpoints/``) or from an
explicit path; sesim never downloads it.

:func:`random_conv_extractor` is a small fixed random network for tests and CPU smoke runs.
Its numbers are only comparable with themselves. (A randomly initialised Inception is no
substitute: its deep stack maps every image to nearly the same vector, so its FID is ~0 for any
pair of sets.)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sesim.errors import UserError
from sesim.metrics._common import check_images, find_weights, require

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_WEIGHTS_FILE
)
INCEPTION_INPUT_SIZE = 299


class FeatureExtractor(Protocol):
    """What FID/KID/density-coverage need from a feature network.

    Called on a batch (N, 3, H, W), float in [-1, 1], of any H and W; returns (N, D) features.
    Implementations resize to their own input size (299 for Inception). Optional attributes
    ``input_size: int`` and ``num_features: int`` document those sizes.
    """

    def __call__(self, images: Tensor) -> Tensor: ...


class InceptionExtractor(nn.Module):
    """The FID Inception-v3 behind sesim's image convention: [-1, 1] floats in, (N, 2048) out.

    Images are quantised to uint8 (as if saved to PNG, ``round((x + 1) * 127.5)``), then the
    wrapped network resizes them to 299x299 bilinearly and maps them to its 2048-d pool features.

    Attributes:
        input_size: 299, the side images are resized to.
        num_features: 2048.
        net: torchmetrics' ``NoTrainInceptionV3``, i.e. torch-fidelity's
            ``FeatureExtractorInceptionV3``.
    """

    input_size = INCEPTION_INPUT_SIZE
    num_features = 2048

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> Tensor:
        """Map (N, 3, H, W) images in [-1, 1] to (N, 2048) float32 features."""
        check_images(images)
        as_uint8 = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        return self.net(as_uint8)


def inception_weights_path(weights_path: str | Path | None = None) -> Path:
    """Locate the Inception weights file without downloading it.

    Args:
        weights_path: an explicit file, or ``None`` for the torch hub cache
            (``torch.hub.get_dir()/checkpoints/weights-inception-2015-12-05-6726825d.pth``).
    Raises:
        UserError: one line naming the file, its URL and where to put it, when it is missing.
    """
    return find_weights(
        "Inception-v3 weights for FID/KID",
        INCEPTION_WEIGHTS_FILE,
        INCEPTION_WEIGHTS_URL,
        weights_path,
    )


def inception_extractor(
    weights_path: str | Path | None = None, resize: Literal["bilinear", "tf1"] = "bilinear"
) -> InceptionExtractor:
    """The standard FID/KID feature extractor (Inception-v3, 2048-d pool features), frozen.

    Args:
        weights_path: torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``; ``None``
            looks in the torch hub cache (``$TORCH_HOME/hub/checkpoints/``). Never downloaded.
        resize: how images are resized to 299x299. ``"bilinear"``: torch's anti-aliased
            bilinear filter (torchmetrics' default); for images up to 299 px it equals the
            plain bilinear resize of pytorch-fid, which the public F-LSeSim evaluation used.
            ``"tf1"``: torch-fidelity's TensorFlow-1 compatible resize (the original TF FID
            code); it differs by several grey levels when enlarging 256 px images, which moves
            FID noticeably, so compare only numbers computed the same way.
    Returns:
        An :class:`InceptionExtractor` in eval mode on the CPU; move it with ``.to(device)``.
    Raises:
        UserError: the weights file is missing (one line: which file, where to put it).
    """
    if resize not in ("bilinear", "tf1"):
        raise ValueError(f"resize must be 'bilinear' or 'tf1', got {resize!r}")
    path = inception_weights_path(weights_path)
    require("torch_fidelity")
    fid_module = require("torchmetrics.image.fid")
    net = fid_module.NoTrainInceptionV3(
        name="inception-v3-compat",
        features_list=[str(InceptionExtractor.num_features)],
        feature_extractor_weights_path=str(path),
        antialias=resize == "bilinear",
    )
    return InceptionExtractor(net).eval().requires_grad_(False)


class RandomConvExtractor(nn.Module):
    """A small conv net with fixed random weights: a cheap stand-in for Inception in tests.

    Images are resized to ``input_size`` (anti-aliased bilinear), passed through three stride-2
    3x3 convolutions with leaky ReLUs and averaged over space.

    Attributes:
        input_size: side the images are resized to.
        num_features: D, the feature size.
    """

    def __init__(self, seed: int = 0, dim: int = 64, input_size: int = 64) -> None:
        super().__init__()
        self.input_size = input_size
        self.num_features = dim
        widths = [3, 32, 64, dim]
        convs = [
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
            for c_in, c_out in itertools.pairwise(widths)
        ]
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for conv in convs:
                fan_in = conv.weight[0].numel()
                conv.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                assert conv.bias is not None
                conv.bias.normal_(0.0, 0.1, generator=generator)
        self.convs = nn.ModuleList(convs)
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: Tensor) -> Tensor:
        """Map (N, 3, H, W) images in [-1, 1] to (N, D) features."""
        check_images(images)
        x = images
        if x.shape[-2:] != (self.input_size, self.input_size):
            size = (self.input_size, self.input_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return x.mean(dim=(2, 3))


def random_conv_extractor(seed: int = 0, dim: int = 64) -> RandomConvExtractor:
    """A fixed random conv feature extractor (64x64 input, ``dim`` features) for tests and CPU.

    Numbers are only comparable between runs with the same ``seed`` and ``dim``; a random-weight
    Inception would not do here, as it collapses every image to nearly one vector (FID ~0).
    """
    return RandomConvExtractor(seed=seed, dim=dim)


def extract_features(
    extractor: FeatureExtractor,
    images: Iterable[Tensor] | Tensor,
    batch_size: int = 50,
    device: str | torch.device = "cpu",
) -> Tensor:
    """Run a feature extractor over a set of images, batch by batch, without gradients.

    Args:
        extractor: maps (B, 3, H, W) in [-1, 1] to (B, D); already on ``device`` and in eval mode.
        images: a (N, 3, H, W) tensor, or an iterable of (3, H, W) images and (B, 3, H, W)
            batches, float in [-1, 1]. Sizes may differ between items: consecutive images of one
            size are batched together and the extractor resizes them to its input (299x299 for
            Inception).
        batch_size: images per extractor call.
        device: where batches are sent.
    Returns:
        (N, D) float64 features on the CPU.
    Raises:
        UserError: there are no images.
        ValueError: an item is not (3, H, W) / (B, 3, H, W) float in [-1, 1], or the extractor
            does not return one (D,) row per image.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    items: Iterable[Tensor] = [images] if isinstance(images, Tensor) else images
    features: list[Tensor] = []
    pending: list[Tensor] = []

    def run(batch: Tensor) -> None:
        out = extractor(batch.to(device))
        if out.dim() != 2 or out.shape[0] != batch.shape[0]:
            raise ValueError(
                f"the feature extractor must return (N, D); got {tuple(out.shape)} "
                f"for a batch of {batch.shape[0]} images"
            )
        features.append(out.detach().to("cpu", torch.float64))

    def flush() -> None:
        if pending:
            run(torch.cat(pending))
            pending.clear()

    with torch.no_grad():
        for item in items:
            batch = item.unsqueeze(0) if item.dim() == 3 else item
            check_images(batch)
            for chunk in batch.split(batch_size):
                # Images of another size start a new batch.
                if pending and pending[0].shape[-2:] != chunk.shape[-2:]:
                    flush()
                pending.append(chunk)
                queued = torch.cat(pending)
                pending.clear()
                while queued.shape[0] >= batch_size:
                    run(queued[:batch_size])
                    queued = queued[batch_size:]
                if queued.shape[0]:
                    pending.append(queued)
        flush()
    if not features:
        raise UserError("no images to compute features of; check the image folder or generator")
    return torch.cat(features)


def _check_feature_sets(metric: str, real: Tensor, fake: Tensor, minimum: int) -> None:
    for name, feats in (("real", real), ("fake", fake)):
        if feats.dim() != 2:
            raise ValueError(f"{name} features must be (N, D), got shape {tuple(feats.shape)}")
        if not torch.isfinite(feats).all():
            raise ValueError(f"{name} features contain NaN or infinite values")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real and fake features differ in size: {real.shape[1]} vs {fake.shape[1]}; "
            "use the same extractor for both"
        )
    if real.shape[0] < minimum or fake.shape[0] < minimum:
        raise UserError(
            f"{metric} needs at least {minimum} images in each set, got {real.shape[0]} real "
            f"and {fake.shape[0]} fake; use at least 2048 of each for comparable numbers"
        )


def _mean_cov(feats: Tensor) -> tuple[Tensor, Tensor]:
    mean = feats.mean(dim=0)
    centred = feats - mean
    return mean, centred.T @ centred / (feats.shape[0] - 1)


def fid_from_features(real: Tensor, fake: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID on Inception features).

    FID = ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)), with unbiased covariances, in
    float64; Tr((S_r S_f)^(1/2)) is the sum of the square roots of the eigenvalues of S_r S_f
    (real parts), as torchmetrics computes it. At least 2 samples per set are required; the
    estimate is biased upwards for small sets, so published numbers use >= 2048 images per set
    (with fewer samples than feature dimensions the covariances are singular and FID is only
    comparable at equal set sizes).

    Args:
        real: (N, D) features of real images.
        fake: (M, D) features of generated images.
    Returns:
        FID, clamped at 0 (round-off can make identical sets come out a hair below).
    Raises:
        UserError: either set has fewer than 2 samples.
        ValueError: the sets are not (N, D) with the same D, or contain NaN/inf.
    """
    _check_feature_sets("FID", real, fake, minimum=2)
    mu_r, cov_r = _mean_cov(real.to(torch.float64))
    mu_f, cov_f = _mean_cov(fake.to(torch.float64))
    mean_term = (mu_r - mu_f).square().sum()
    sqrt_trace = torch.linalg.eigvals(cov_r @ cov_f).sqrt().real.sum()
    value = mean_term + cov_r.trace() + cov_f.trace() - 2 * sqrt_trace
    return max(float(value), 0.0)


def _poly_mmd(x: Tensor, y: Tensor) -> Tensor:
    """Unbiased squared MMD of two (m, D) sets with the kernel k(a, b) = (a.b / D + 1)^3.

    The within-set sums leave out the diagonal (k(a, a)); the cross term keeps every pair.
    """
    m, dim = x.shape
    k_xx = (x @ x.T / dim + 1) ** 3
    k_yy = (y @ y.T / dim + 1) ** 3
    k_xy = (x @ y.T / dim + 1) ** 3
    within = k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()
    return within / (m * (m - 1)) - 2 * k_xy.sum() / (m * m)


def kid_from_features(
    real: Tensor,
    fake: Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased squared MMD with a cubic polynomial kernel.

    The kernel is k(x, y) = (x.y / D + 1)^3 (as in the KID paper, torchmetrics and
    torch-fidelity). The estimate is averaged over ``subsets`` random subsets of
    ``subset_size`` samples drawn without replacement from each set; ``subset_size`` is clamped
    to the smaller set. It is unbiased, so two samples of one distribution give ~0 (possibly a
    little below).

    Args:
        real: (N, D) features of real images.
        fake: (M, D) features of generated images.
        subsets: number of random subsets.
        subset_size: samples per subset (clamped to min(N, M)).
        generator: CPU generator for the subsets; ``None`` uses a fresh one seeded with 0, so
            results are reproducible.
    Returns:
        (mean, std) of the estimate over the subsets (std with correction 0, as torchmetrics).
    Raises:
        UserError: either set has fewer than 2 samples.
        ValueError: the sets are not (N, D) with the same D, or contain NaN/inf.
    """
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"need subsets >= 1 and subset_size >= 2, got {subsets}, {subset_size}")
    _check_feature_sets("KID", real, fake, minimum=2)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    real = real.to(torch.float64)
    fake = fake.to(torch.float64)
    size = min(subset_size, real.shape[0], fake.shape[0])
    scores = []
    for _ in range(subsets):
        real_idx = torch.randperm(real.shape[0], generator=generator)[:size].to(real.device)
        fake_idx = torch.randperm(fake.shape[0], generator=generator)[:size].to(fake.device)
        scores.append(_poly_mmd(real[real_idx], fake[fake_idx]))
    stacked = torch.stack(scores)
    return float(stacked.mean()), float(stacked.std(correction=0))
