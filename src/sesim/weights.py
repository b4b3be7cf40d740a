"""The pretrained weight files sesim can use, where it looks for them, and fetching one.

Every file lives in the torch hub cache, ``torch.hub.get_dir()/checkpoints`` (that is
``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``), under its
standard name, which is where torchvision and torch-fidelity put them too. ``sesim weights
status`` lists them; ``sesim weights fetch NAME`` downloads one with ``torch.hub``'s transfer
(the same one torchvision's ``Weights.get_state_dict`` uses, with the hash check where the file
name carries one), or says in one line which file to place where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import torch
from torchvision.models import VGG16_Weights

from sesim.errors import UserError
from sesim.metrics.fid import INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL
from sesim.metrics.lpips import ALEXNET_WEIGHTS_FILE, ALEXNET_WEIGHTS_URL
from sesim.metrics.segmentation import DRN_WEIGHTS_FILE, DRN_WEIGHTS_URL

_VGG16_URL = VGG16_Weights.IMAGENET1K_V1.url


@dataclass(frozen=True)
class WeightFile:
    """One weight file.

    Attributes:
        name: what ``sesim weights fetch`` calls it.
        filename: its standard name in the torch hub cache.
        url: where it comes from.
        used_for: what sesim needs it for.
        direct: whether ``url`` is the file itself (else a page to get it from).
        hashed: whether the name carries the leading hex digits of its SHA-256 (torchvision's
            convention), which the download then checks.
    """

    name: str
    filename: str
    url: str
    used_for: str
    direct: bool = True
    hashed: bool = False

    @property
    def path(self) -> Path:
        """Where sesim looks for the file (it may not exist)."""
        return Path(torch.hub.get_dir()) / "checkpoints" / self.filename


WEIGHTS: dict[str, WeightFile] = {
    w.name: w
    for w in (
        WeightFile(
            "vgg16",
            _VGG16_URL.rsplit("/", 1)[-1],
            _VGG16_URL,
            "the structure loss of the paper presets (torchvision VGG16, ImageNet)",
            hashed=True,
        ),
        WeightFile(
            "inception",
            INCEPTION_WEIGHTS_FILE,
            INCEPTION_WEIGHTS_URL,
            "FID and KID in sesim eval (the TF-ported Inception-v3 of torch-fidelity)",
        ),
        WeightFile(
            "alexnet",
            ALEXNET_WEIGHTS_FILE,
            ALEXNET_WEIGHTS_URL,
            "LPIPS in sesim eval (torchvision AlexNet, ImageNet)",
            hashed=True,
        ),
        WeightFile(
            "drn-d-22",
            DRN_WEIGHTS_FILE,
            DRN_WEIGHTS_URL,
            "segmentation scores on cityscapes (DRN-D-22 trained on Cityscapes)",
            direct=False,
        ),
    )
}


def weight_file(name: str) -> WeightFile:
    """The entry called ``name``.

    Raises:
        UserError: an unknown name (the message lists the known ones).
    """
    if name not in WEIGHTS:
        raise UserError(f"unknown weights {name!r}; choose one of {', '.join(WEIGHTS)}")
    return WEIGHTS[name]


def fetch(name: str, progress: bool = True) -> tuple[Path, bool]:
    """Download one weight file into the torch hub cache, unless it is there already.

    Args:
        name: a key of :data:`WEIGHTS`.
        progress: a progress bar on stderr.
    Returns:
        The file's path and whether it was downloaded now.
    Raises:
        UserError: an unknown name, a file that must be fetched by hand, or a failed
            download; each one line saying which file to place where.
    """
    entry = weight_file(name)
    path = entry.path
    if path.is_file():
        return path, False
    place = f"place {entry.filename} at {path} (or set TORCH_HOME to a folder whose "
    place += "hub/checkpoints/ holds it)"
    if not entry.direct:
        raise UserError(
            f"{name} cannot be fetched automatically: get it from {entry.url} and {place}"
        )
    match = re.search(r"-([a-f0-9]+)\.", entry.filename) if entry.hashed else None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(
            entry.url, str(path), hash_prefix=match.group(1) if match else None, progress=progress
        )
    except (OSError, HTTPException, RuntimeError) as exc:  # URLError is an OSError
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0] or type(exc).__name__
        raise UserError(f"cannot download {entry.url} ({reason}); {place}") from None
    return path, True
