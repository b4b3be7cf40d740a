"""Shareable generators: ``model.safetensors``, ``config.json`` and a ``README.md`` model card.

``sesim export --format hf --output DIR`` writes a folder in the layout of the Hugging Face Hub:

- ``model.safetensors``: the generator's state (tensors only, no pickle), a fraction of the
  size of a training checkpoint (which also holds the discriminator, heads and optimisers);
- ``config.json``: what rebuilding the generator takes (the run's resolved config, with the
  data folder reduced to its name) plus its direction, size multiple, preset, training steps and
  the sesim version that wrote it;
- ``README.md``: a model card (preset, data folder, steps, the run's evaluation when
  ``RUN/eval/metrics.json`` exists, and how to load the model).

:func:`load_pretrained` reads it back: JSON and safetensors only, so opening a folder from
someone else runs none of their code. A name that is not a folder is looked up as a Hub
repository id through ``huggingface_hub`` when it is installed (its cache, or a download when
the network and ``HF_HUB_OFFLINE`` allow).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from sesim.config import TrainConfig, from_dict, to_dict
from sesim.errors import UserError
from sesim.methods import get_method
from sesim.runs import atomic_write, write_json
from sesim.translate import multiple_of
from sesim.version import __version__

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
#: Version of the ``config.json`` layout.
PRETRAINED_FORMAT = 1

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "PRETRAINED_FORMAT",
    "WEIGHTS_NAME",
    "load_pretrained",
    "resolve_pretrained",
    "save_pretrained",
]


def _metrics_summary(run: Path | None) -> dict[str, Any] | None:
    """The last evaluated step's scores from ``RUN/eval/metrics.json``, or None."""
    if run is None:
        return None
    path = run / "eval" / "metrics.json"
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text())
        last = report["last"]
        values = {k: v for k, v in last["values"].items() if isinstance(v, int | float)}
        return {"step": int(last["step"]), "values": values}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _card(info: dict[str, Any], metrics: dict[str, Any] | None) -> str:
    """The model card's Markdown."""
    data = info["data"]
    lines = [
        "---",
        "library_name: sesim",
        "tags:",
        "- image-to-image",
        "- unpaired-image-translation",
        "- sesim",
        "---",
        "",
        f"# sesim {info['method']} generator ({info['preset'] or 'custom config'})",
        "",
        f"An unpaired image-to-image translation generator trained with sesim {info['sesim_version']}"
        " (F/LSeSim, the spatially-correlative loss: Zheng, Cham and Cai, CVPR 2021, "
        "https://arxiv.org/abs/2104.00854).",
        "",
        f"- preset: `{info['preset'] or 'custom'}`; method `{info['method']}`, mode `{info['mode']}`",
        f"- data folder: `{data}`; direction {info['direction']}",
        f"- training steps: {info['step']} (of {info['steps']} planned)",
        f"- input sizes: any; images are padded to a multiple of {info['size_multiple']} and "
        "cropped back",
        "",
        "## Evaluation",
        "",
    ]
    if metrics and metrics["values"]:
        lines += [f"`sesim eval` on the run's test set at step {metrics['step']}:", ""]
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(metrics["values"].items())]
    else:
        lines.append("No evaluation was stored with the run (`sesim eval --run RUN` writes one).")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from sesim import Translator",
        't = Translator.from_pretrained("path/to/this/folder")',
        't("photo.jpg").save("translated.png")',
        "```",
        "",
        "`model.safetensors` holds the generator's weights only; `config.json` what rebuilding it "
        "takes. Loading reads no pickle.",
        "",
    ]
    return "\n".join(lines)


def save_pretrained(
    G: nn.Module,
    cfg: TrainConfig,
    step: int,
    output: Path,
    run: Path | None = None,
) -> list[Path]:
    """Write a generator as ``model.safetensors``, ``config.json`` and a ``README.md`` card.

    Args:
        G: the generator rebuilt from ``cfg`` (any device).
        cfg: the run's resolved config.
        step: the generator's training step.
        output: the folder (created; files of the same names are replaced atomically).
        run: the run folder, for its evaluation (``RUN/eval/metrics.json``) on the card.
    Returns:
        The three paths written.
    """
    output.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in G.state_dict().items()}
    data_name = Path(cfg.data.root).name if cfg.data.root else ""
    portable = replace(cfg, data=replace(cfg.data, root=data_name))
    info: dict[str, Any] = {
        "format": PRETRAINED_FORMAT,
        "library": "sesim",
        "sesim_version": __version__,
        "method": cfg.method,
        "mode": cfg.mode,
        "preset": cfg.preset,
        "direction": cfg.data.direction,
        "data": data_name,
        "size_multiple": multiple_of(G, default=1),
        "min_size": int(getattr(G, "min_size", 0)),
        "generator": type(G).__name__,
        "step": int(step),
        "steps": int(cfg.steps),
        "input": "float32 (B, 3, H, W) RGB in [-1, 1]",
        "output": "float32 (B, 3, H, W) RGB in [-1, 1]",
        "config": to_dict(portable),
    }
    weights = output / WEIGHTS_NAME
    tmp = weights.with_name(f".{weights.name}.tmp")
    try:
        save_file(state, str(tmp), metadata={"format": "pt", "library": "sesim"})
        tmp.replace(weights)
    finally:
        tmp.unlink(missing_ok=True)
    config = write_json(output / CONFIG_NAME, info)
    card = atomic_write(output / CARD_NAME, _card(info, _metrics_summary(run)))
    return [weights, config, card]


def resolve_pretrained(name: str | Path) -> Path:
    """The local folder of a pretrained model: a folder as is, or a Hub id from the cache.

    Args:
        name: a folder holding ``config.json`` and ``model.safetensors``, or a Hugging Face
            Hub repository id (``user/name``), fetched through ``huggingface_hub`` (its cache
            first; ``HF_HUB_OFFLINE=1`` never touches the network).
    Returns:
        The folder.
    Raises:
        UserError: no such folder, and no such Hub repository (or no ``huggingface_hub``).
    """
    path = Path(name)
    if path.is_dir():
        return path
    text = str(name)
    if path.exists() or text.count("/") != 1 or text.startswith((".", "/")):
        raise UserError(
            f"pretrained model {text} is not a folder; give the folder sesim export "
            "--format hf wrote (or a Hub id user/name)"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise UserError(
            f"{text} is not a folder, and loading it from the Hugging Face Hub needs "
            "huggingface_hub: pip install huggingface_hub"
        ) from None
    try:
        folder = snapshot_download(text, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME])
    except Exception as exc:
        raise UserError(
            f"cannot get {text} from the Hugging Face Hub or its cache "
            f"({type(exc).__name__}: {str(exc)[:160]})"
        ) from None
    return Path(folder)


def load_pretrained(
    name: str | Path, device: torch.device | str = "cpu"
) -> tuple[nn.Module, TrainConfig, int]:
    """Rebuild a generator from what :func:`save_pretrained` wrote, without unpickling.

    Args:
        name: the folder, or a Hub id (see :func:`resolve_pretrained`).
        device: where the generator goes.
    Returns:
        ``(G, cfg, step)``: the generator in eval mode on ``device``, its config (data root
        reduced to the folder's name) and its training step.
    Raises:
        UserError: a missing or foreign file, or weights that do not fit the config.
    """
    folder = resolve_pretrained(name)
    config_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for path in (config_path, weights):
        if not path.is_file():
            raise UserError(f"{folder} holds no {path.name}; is it a sesim export --format hf?")
    try:
        info = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {config_path}: {exc}") from None
    if not isinstance(info, dict) or info.get("library") != "sesim" or "config" not in info:
        raise UserError(f"{config_path} is not a sesim model config")
    if int(info.get("format", 0)) > PRETRAINED_FORMAT:
        raise UserError(
            f"{config_path} has format {info.get('format')}, newer than this sesim reads "
            f"({PRETRAINED_FORMAT}); upgrade sesim"
        )
    cfg: TrainConfig = from_dict(TrainConfig, info["config"])
    G = get_method(cfg.method).build_generator(cfg)
    try:
        state = load_file(str(weights), device="cpu")
        G.load_state_dict(state)
    except (SafetensorError, OSError, RuntimeError, KeyError) as exc:
        raise UserError(
            f"{weights} does not hold a {cfg.method}/{cfg.mode} generator: {str(exc)[:160]}"
        ) from None
    return G.to(device).eval(), cfg, int(info.get("step", 0))
