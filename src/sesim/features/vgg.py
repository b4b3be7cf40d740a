"""A frozen VGG16 feature extractor with taps chosen by layer name.

Weights are found the standard way: ``"imagenet"`` asks torchvision's
``VGG16_Weights.IMAGENET1K_V1`` entry, whose file ``vgg16-397923af.pth`` lives in the torch hub
cache (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``). When the
file is missing, ``"imagenet"`` downloads it there through torchvision's own mechanism (hash
checked), as torchvision users expect; offline (or with ``SESIM_OFFLINE=1``) it says in one line
which file to place where. A local path
(a torchvision VGG16 state dict, whole model or ``features`` only) and ``None`` (random weights)
are the alternatives; ``"auto"`` takes ImageNet weights when cached and random ones otherwise,
with a visible notice.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from http.client import HTTPException
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import VGG16_Weights, vgg16

from sesim.errors import UserError

# Index of each named activation inside torchvision's ``vgg16().features``.
VGG16_LAYERS: dict[str, int] = {}
_CONV_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
_BLOCK_CONVS = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3}
_LAYER_CHANNELS: dict[str, int] = {}


def _build_layer_table() -> None:
    index = 0
    for block in range(1, 6):
        for conv in range(1, _BLOCK_CONVS[block] + 1):
            VGG16_LAYERS[f"conv{block}_{conv}"] = index
            VGG16_LAYERS[f"relu{block}_{conv}"] = index + 1
            _LAYER_CHANNELS[f"conv{block}_{conv}"] = _CONV_CHANNELS[block]
            _LAYER_CHANNELS[f"relu{block}_{conv}"] = _CONV_CHANNELS[block]
            index += 2
        VGG16_LAYERS[f"pool{block}"] = index
        _LAYER_CHANNELS[f"pool{block}"] = _CONV_CHANNELS[block]
        index += 1


_build_layer_table()

#: Set to 1 to never download weights on the fly (the tests set it).
OFFLINE_ENV = "SESIM_OFFLINE"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WeightsSpec = str | Path | None


def imagenet_weights_file() -> Path:
    """Where torchvision keeps the ImageNet VGG16 weights (the file may not exist)."""
    url = VGG16_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def imagenet_weights_available() -> bool:
    """Whether the ImageNet VGG16 weights are in the torch hub cache."""
    return imagenet_weights_file().is_file()


def missing_weights_message() -> str:
    """One line naming the weights file and where to place it."""
    path = imagenet_weights_file()
    return (
        f"ImageNet VGG16 weights not found: place {path.name} "
        f"(from {VGG16_Weights.IMAGENET1K_V1.url}) at {path}, set TORCH_HOME to a folder whose "
        f"hub/checkpoints/ holds it, or pass a local file with --vgg-weights PATH"
    )


def fetch_imagenet_weights() -> dict[str, Tensor]:
    """Download the ImageNet VGG16 weights into the torch hub cache the way torchvision does
    (``VGG16_Weights.IMAGENET1K_V1.get_state_dict``, hash checked) and return them.

    Nothing is downloaded when ``SESIM_OFFLINE`` is set to a non-empty value other than ``0``.

    Raises:
        UserError: :func:`missing_weights_message` when offline or the download fails.
    """
    if os.environ.get(OFFLINE_ENV, "0") not in ("", "0"):
        raise UserError(missing_weights_message())
    path = imagenet_weights_file()
    print(f"downloading the ImageNet VGG16 weights (528 MB) to {path}", file=sys.stderr)
    try:
        VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=True, check_hash=True)
    except (OSError, HTTPException, RuntimeError) as exc:  # URLError is an OSError
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise UserError(f"{missing_weights_message()} (download failed: {reason})") from None
    return _load_state_dict(path)


def _load_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise UserError(f"VGG16 weights file {path} does not exist; give the path of a .pth file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or not a state dict
        raise UserError(f"cannot read VGG16 weights from {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise UserError(f"{path} does not hold a state dict of VGG16 weights")
    if any(k.startswith("features.") for k in state):
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    return state


def resolve_weights(weights: WeightsSpec) -> tuple[dict[str, Tensor] | None, str]:
    """Find the VGG16 weights asked for.

    Args:
        weights: ``"imagenet"``, ``"auto"``, a path to a state dict, or None (random).

    Returns:
        The ``features`` state dict (None for random weights) and a short description.

    Raises:
        UserError: when ImageNet weights are asked for but not cached, or a file is unusable.
    """
    if weights is None or weights == "random":
        return None, "random"
    if weights in ("imagenet", "auto"):
        path = imagenet_weights_file()
        if path.is_file():
            return _load_state_dict(path), "imagenet"
        if weights == "imagenet":
            return fetch_imagenet_weights(), "imagenet"
        warnings.warn(
            "ImageNet VGG16 weights are not cached, so the structure loss uses RANDOM VGG16 "
            f"features (structure is still compared, less semantically). To use them: "
            f"{missing_weights_message()}",
            stacklevel=2,
        )
        return None, "random (ImageNet weights not cached)"
    path = Path(weights).expanduser()
    return _load_state_dict(path), str(path)


class VGG16Features(nn.Module):
    """Frozen VGG16 activations at named layers, for images in [-1, 1].

    Images are mapped to [0, 1] and normalised with ImageNet mean and std inside, as the public
    code does. The network is cut after the deepest requested layer, so no unused layers run.

    Args:
        layers: names such as ``"relu3_1"``, ``"relu4_1"``, ``"relu4_3"`` (see ``VGG16_LAYERS``).
        weights: ``"imagenet"`` (torchvision's cache, downloaded when missing and the network
            is there; else an error), ``"auto"`` (ImageNet when cached, else random with a
            warning), a local state-dict path, or None (random, with a warning).
        frozen: freeze the weights (no gradient is ever computed for them) and stay in eval mode.
        seed: seed of the random initialisation used when no weights are loaded.

    Attributes:
        layers: the requested layer names, in the order ``forward`` returns them.
        channels: channel count of each requested layer.
        weights_source: where the weights came from.
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        layers: Sequence[str] = ("relu3_1", "relu4_1", "relu4_3"),
        weights: WeightsSpec = "imagenet",
        frozen: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        layers = tuple(layers)
        if not layers:
            raise ValueError("give at least one VGG16 layer name")
        unknown = [name for name in layers if name not in VGG16_LAYERS]
        if unknown:
            raise ValueError(
                f"unknown VGG16 layer(s) {unknown}; choose from {', '.join(VGG16_LAYERS)}"
            )
        state, source = resolve_weights(weights)
        if state is None and weights is None:
            warnings.warn(
                "VGG16Features uses random weights: fine for tests and timing, not for training "
                "a real model",
                stacklevel=2,
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            full = vgg16(weights=None).features
        depth = max(VGG16_LAYERS[name] for name in layers) + 1
        # In-place ReLUs would overwrite tapped conv outputs; use out-of-place ones.
        children = [
            nn.ReLU() if isinstance(m, nn.ReLU) else m for m in list(full.children())[:depth]
        ]
        self.body = nn.Sequential(*children)
        if state is not None:
            own = self.body.state_dict()
            missing = [k for k in own if k not in state]
            if missing:
                raise UserError(f"VGG16 weights from {source} lack {missing[:3]}: not a VGG16 file")
            self.body.load_state_dict({k: state[k] for k in own})
        self.layers: tuple[str, ...] = layers
        self.channels: tuple[int, ...] = tuple(_LAYER_CHANNELS[name] for name in layers)
        self.weights_source = source
        self._taps = {VGG16_LAYERS[name]: name for name in layers}
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> VGG16Features:
        """Switch mode; a frozen extractor always stays in eval mode."""
        return super().train(mode and not self.frozen)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Extract the requested activations.

        Args:
            x: (B, 3, H, W) images in [-1, 1].

        Returns:
            One (B, C_l, H_l, W_l) tensor per requested layer, in ``self.layers`` order.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W); got {tuple(x.shape)}")
        mean = self.mean.to(x.dtype)
        std = self.std.to(x.dtype)
        h = ((x + 1) * 0.5 - mean) / std
        by_index: dict[int, Tensor] = {}
        for index, layer in enumerate(self.body):
            h = layer(h)
            if index in self._taps:
                by_index[index] = h
        return [by_index[VGG16_LAYERS[name]] for name in self.layers]
