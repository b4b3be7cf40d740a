"""LPIPS distance and the LPIPS diversity protocol of multimodal translation (paper, Table 2).

Built on the ``lpips`` package (``lpips.LPIPS(net="alex")``, version 0.1). Its learned linear
layers ship inside the package; the AlexNet backbone is torchvision's
``AlexNet_Weights.IMAGENET1K_V1`` file ``alexnet-owt-7be5be79.pth``, read from the torch hub cache
(``$TORCH_HOME/hub/checkpoints/``, by default ``~/.cache/torch/hub/checkpoints/``) or from an
explicit path. sesim never downloads it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from sesim.errors import UserError
from sesim.metrics._common import check_images, find_weights, load_state_dict_file, require

ALEXNET_WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_WEIGHTS_URL = "https://download.pytorch.org/models/" + ALEXNET_WEIGHTS_FILE

SampleFn = Callable[[Tensor, torch.Generator], Tensor]


def alexnet_weights_path(weights_path: str | Path | None = None) -> Path:
    """Locate torchvision's ImageNet AlexNet weights without downloading them.

    Args:
        weights_path: an explicit file, or ``None`` for the torch hub cache
            (``torch.hub.get_dir()/checkpoints/alexnet-owt-7be5be79.pth``).
    Raises:
        UserError: one line naming the file, its URL and where to put it, when it is missing.
    """
    return find_weights(
        "AlexNet weights for LPIPS", ALEXNET_WEIGHTS_FILE, ALEXNET_WEIGHTS_URL, weights_path
    )


def _load_backbone(model: nn.Module, path: Path) -> None:
    """Copy torchvision AlexNet ``features.<i>.*`` weights into lpips' ``net.slice<k>.<i>.*``."""
    state = load_state_dict_file("AlexNet weights", path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    backbone = model.get_submodule("net")
    target: dict[str, Tensor] = {}
    for name in backbone.state_dict():  # e.g. "slice2.3.weight"
        _, index, param = name.split(".")
        source = f"features.{index}.{param}"
        if source not in state:
            raise UserError(
                f"{path} is not a torchvision AlexNet state dict (no {source}); "
                f"use {ALEXNET_WEIGHTS_FILE} from {ALEXNET_WEIGHTS_URL}"
            )
        target[name] = state[source]
    try:
        backbone.load_state_dict(target)
    except RuntimeError as exc:
        raise UserError(f"{path} does not fit AlexNet: {exc}".replace("\n", " ")) from exc


def lpips_model(weights_path: str | Path | None = None, random_backbone: bool = False) -> nn.Module:
    """LPIPS v0.1 with the AlexNet backbone, frozen and in eval mode, on the CPU.

    Args:
        weights_path: torchvision's ``alexnet-owt-7be5be79.pth``; ``None`` looks in the torch hub
            cache. Never downloaded.
        random_backbone: keep a randomly initialised AlexNet (for tests only: distances are then
            meaningless numbers, except that identical images still give 0).
    Returns:
        The ``lpips.LPIPS`` module; call :func:`lpips_distance` on it.
    Raises:
        UserError: the AlexNet weights file is missing or unreadable (one line).
    """
    path = None if random_backbone else alexnet_weights_path(weights_path)
    lpips = require("lpips")
    with warnings.catch_warnings():
        # lpips asks torchvision for alexnet(pretrained=False), a deprecated spelling.
        warnings.simplefilter("ignore", UserWarning)
        model: nn.Module = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    if path is not None:
        _load_backbone(model, path)
    return model.eval().requires_grad_(False)


def lpips_distance(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """LPIPS distance between paired images.

    Args:
        model: from :func:`lpips_model`, on the images' device.
        x: (N, 3, H, W) images in [-1, 1].
        y: (N, 3, H, W) images in [-1, 1].
    Returns:
        (N,) distances (0 for identical images; about 0.1-0.7 for different natural images).
    """
    check_images(x, "x")
    check_images(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    return model(x, y).reshape(x.shape[0])


def lpips_diversity(
    model: nn.Module,
    sample_fn: SampleFn,
    inputs: Sequence[Tensor] | Tensor,
    pairs_per_input: int = 19,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """Diversity of a multimodal translator: average LPIPS between outputs of one input.

    The protocol of MUNIT and DRIT that the paper's Table 2 follows: for each input, draw
    ``pairs_per_input`` pairs of random style codes, translate the input with both codes of a
    pair and measure the LPIPS distance between the two outputs. The defaults (100 inputs x 19
    pairs) give 1900 pairs. Higher is more diverse; a deterministic translator scores 0.

    Args:
        model: from :func:`lpips_model`, on the device of ``sample_fn``'s outputs.
        sample_fn: ``sample_fn(x, generator)`` maps a batch (B, C, H, W) of inputs to (B, 3, H', W')
            outputs in [-1, 1], drawing an independent random style per row from ``generator``.
            It is called twice per input with the input repeated ``pairs_per_input`` times.
        inputs: (N, C, H, W) tensor or a sequence of (C, H, W) / (1, C, H, W) inputs.
        pairs_per_input: pairs of outputs per input.
        generator: source of the style codes; ``None`` uses a fresh CPU generator seeded with 0.
    Returns:
        (mean, std) of the distances over all pairs (std with correction 0).
    """
    if pairs_per_input < 1:
        raise ValueError(f"pairs_per_input must be positive, got {pairs_per_input}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    distances = []
    with torch.no_grad():
        for x in inputs:
            batch = x.unsqueeze(0) if x.dim() == 3 else x
            if batch.shape[0] != 1:
                shape = tuple(x.shape)
                raise ValueError(f"each input must be (C, H, W) or (1, C, H, W), got {shape}")
            repeated = batch.expand(pairs_per_input, *batch.shape[1:])
            first = sample_fn(repeated, generator)
            second = sample_fn(repeated, generator)
            distances.append(lpips_distance(model, first, second).detach().to("cpu", torch.float64))
    if not distances:
        raise UserError("no inputs for the LPIPS diversity score; check the image folder")
    all_distances = torch.cat(distances)
    return float(all_distances.mean()), float(all_distances.std(correction=0))
