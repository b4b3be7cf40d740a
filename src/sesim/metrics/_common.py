"""Helpers shared by the metrics: optional imports, weights files, image checks."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from sesim.errors import UserError


def require(module: str) -> ModuleType:
    """Import an optional metrics dependency, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError(
            f"the Python package {module!r} is needed for this metric; "
            "install the metrics extras: pip install 'sesim[metrics]'"
        ) from exc


def hub_checkpoint(filename: str) -> Path:
    """Where the torch hub cache keeps ``filename`` (the file may not exist).

    That is ``torch.hub.get_dir()/checkpoints``: ``$TORCH_HOME/hub/checkpoints`` when
    ``TORCH_HOME`` is set, ``~/.cache/torch/hub/checkpoints`` otherwise.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def find_weights(what: str, filename: str, url: str, path: str | Path | None) -> Path:
    """Resolve a weights file without ever downloading it.

    Args:
        what: human name of the weights, e.g. ``"Inception-v3 (FID) weights"``.
        filename: the file's standard name in the torch hub cache.
        url: where the file normally comes from (only mentioned in the error).
        path: an explicit file; ``None`` looks in the torch hub cache.
    Returns:
        An existing file.
    Raises:
        UserError: one line naming the file and where to put it, when it does not exist.
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise UserError(
                f"{what}: file {path} does not exist; give the path of {filename} (from {url})"
            )
        return path
    cached = hub_checkpoint(filename)
    if not cached.is_file():
        raise UserError(
            f"{what} not found: place {filename} (from {url}) at {cached}, set TORCH_HOME to a "
            "folder whose hub/checkpoints/ holds it, or pass the file's path explicitly"
        )
    return cached


def load_state_dict_file(what: str, path: Path) -> dict[str, Tensor]:
    """Read a state dict saved with ``torch.save`` (tensors only), as a ``UserError`` on failure."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, or not a plain state dict
        raise UserError(f"cannot read {what} from {path}: {exc}".replace("\n", " ")) from exc
    if not isinstance(state, dict):
        raise UserError(f"{path} does not hold a state dict of {what}")
    return state


def check_images(images: Tensor, name: str = "images") -> None:
    """Check a batch follows sesim's image convention: (N, 3, H, W) float in [-1, 1].

    Raises:
        ValueError: for another shape, an integer dtype or values outside [-1, 1].
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must be (N, 3, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(
            f"{name} must be float in [-1, 1] (sesim's image convention), got dtype {images.dtype}"
        )
    if images.numel() and (images.min() < -1.001 or images.max() > 1.001):
        lo, hi = images.min().item(), images.max().item()
        raise ValueError(f"{name} must lie in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]")
