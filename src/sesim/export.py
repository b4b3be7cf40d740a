"""Export a trained generator to ONNX, a ``torch.export`` program or a shareable folder, checked.

``sesim export --run RUN_DIR --format onnx|pt2|hf --output PATH [--dynamic]`` rebuilds the run's
generator, exports it, runs the exported model on random images in [-1, 1] next to the PyTorch
module and fails when their largest absolute difference exceeds a bound (1e-4 by default). With
``--dynamic`` the batch size, height and width are free, and the check runs at a second,
non-square size as well. The output is written under a temporary name and moved into place only
after the check passed, so a failed export leaves nothing behind.

Formats:

- ``onnx``: torch's current (dynamo-based) ONNX exporter, ``torch.onnx.export(..., dynamo=True)``
  (needs ``onnx``, ``onnxscript`` and, for the check, ``onnxruntime``: ``pip install
  'sesim[export]'``); the metadata go in the model's metadata properties.
- ``pt2``: a ``torch.export`` program saved with ``torch.export.save`` (load it with
  ``torch.export.load(path).module()``); the metadata go in the extra file ``sesim.json``.
- ``hf``: a folder with ``model.safetensors``, ``config.json`` and a ``README.md`` model card
  (:mod:`sesim.pretrained`), loaded by :meth:`sesim.Translator.from_pretrained`; any input size.

TorchScript export (``torch.jit.trace``) was removed: torch deprecates it (``torch.jit.trace``
raises a ``FutureWarning`` in torch 2.14) in favour of ``torch.export``, i.e. ``pt2``.

Exported ``onnx`` and ``pt2`` models take ``(B, 3, H, W)`` float32 images in [-1, 1] (RGB) and
return translations of the same shape and range; H and W must be multiples of the generator's
``multiple`` (4 for the ResNet generator): pad (reflect) and crop back as
:func:`sesim.translate.translate_batch` does.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from sesim.errors import UserError
from sesim.nets.munit import MunitGenerator
from sesim.pretrained import load_pretrained, save_pretrained
from sesim.runs import atomic_path, load_generator
from sesim.translate import multiple_of, translate_styles

ExportFormat = Literal["onnx", "pt2", "hf"]
FORMATS: tuple[str, ...] = ("onnx", "pt2", "hf")
#: Formats sesim no longer writes, with what to use instead.
REMOVED_FORMATS: dict[str, str] = {
    "torchscript": "TorchScript export was removed because torch deprecates torch.jit.trace "
    "(torch 2.14 raises a FutureWarning); use --format pt2 (torch.export) or --format onnx",
}
DEFAULT_TOLERANCE = 1e-4
DEFAULT_OPSET = 18
INPUT_NAME = "image"
OUTPUT_NAME = "translation"

Runner = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class ExportCheck:
    """Result of comparing an exported file with the PyTorch module on one input shape.

    Attributes:
        shape: (B, 3, H, W) of the random input.
        max_abs_diff: largest absolute difference between the two outputs.
    """

    shape: tuple[int, ...]
    max_abs_diff: float


def onnx_missing() -> str | None:
    """Why ONNX export cannot run here, or None when its packages import."""
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if not missing:
        return None
    return (
        f"ONNX export needs the {' and '.join(missing)} package(s): "
        "pip install 'sesim[export]' (or pip install onnx onnxscript onnxruntime)"
    )


def _dynamic_shapes(G: nn.Module, dynamic: bool) -> dict[str, Any] | None:
    """``torch.export`` dynamic shapes: batch, height and width free, or None."""
    if not dynamic:
        return None
    from torch.export import Dim  # slow to import: only when exporting

    return {_forward_arg_name(G): {0: Dim.DYNAMIC, 2: Dim.DYNAMIC, 3: Dim.DYNAMIC}}


def _forward_arg_name(G: nn.Module) -> str:
    params = [name for name in inspect.signature(G.forward).parameters if name != "self"]
    return params[0] if params else "x"


def export_pt2(
    G: nn.Module,
    example: Tensor,
    path: Path,
    dynamic: bool = False,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Export a generator with ``torch.export`` and save the program (not atomically).

    Args:
        G: the generator, in eval mode, on the CPU.
        example: (B, 3, H, W) example input (B >= 2 when ``dynamic``: a batch of 1 would be
            specialised).
        path: output file (``.pt2``).
        dynamic: batch, height and width as free dimensions.
        metadata: stored as the extra file ``sesim.json``.
    Raises:
        UserError: ``torch.export`` cannot export this generator.
    """
    try:
        with torch.no_grad():
            program = torch.export.export(G, (example,), dynamic_shapes=_dynamic_shapes(G, dynamic))
    except Exception as exc:
        raise UserError(f"torch.export failed: {type(exc).__name__}: {str(exc)[:240]}") from None
    torch.export.save(program, str(path), extra_files={"sesim.json": json.dumps(metadata or {})})


def export_onnx(
    G: nn.Module,
    example: Tensor,
    path: Path,
    dynamic: bool = False,
    opset: int = DEFAULT_OPSET,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Export a generator with torch's dynamo-based ONNX exporter (not atomically).

    Args:
        G: the generator, in eval mode, on the CPU.
        example: (B, 3, H, W) example input (B >= 2 when ``dynamic``).
        path: output file.
        dynamic: batch, height and width as free dimensions.
        opset: ONNX opset version (18 or newer).
        metadata: stored as the model's metadata properties (values as JSON text).

    Raises:
        UserError: the exporter cannot export this generator.
    """
    import onnx  # optional dependency (sesim[export])

    try:
        program = torch.onnx.export(
            G,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=_dynamic_shapes(G, dynamic),
            opset_version=opset,
            verbose=False,
        )
    except Exception as exc:
        raise UserError(f"ONNX export failed: {type(exc).__name__}: {str(exc)[:240]}") from None
    if program is None:  # only when an output file is given to torch
        raise UserError("ONNX export returned no program")
    model = program.model_proto
    for key, value in (metadata or {}).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, json.dumps(value)
    onnx.save(model, str(path))


def load_runner(path: Path, fmt: ExportFormat) -> Runner:
    """A function that runs an exported file (``onnx`` or ``pt2``) on CPU tensors.

    Args:
        path: the exported file.
        fmt: its format.

    Returns:
        ``run(x)``: (B, 3, H, W) float32 -> (B, 3, H, W) float32.
    """
    if fmt == "pt2":
        module = torch.export.load(str(path)).module()

        def run_pt2(x: Tensor) -> Tensor:
            with torch.no_grad():
                out: Tensor = module(x)
            return out

        return run_pt2
    if fmt != "onnx":
        raise ValueError(f"no runner for format {fmt!r}")
    import onnxruntime as ort  # optional dependency (sesim[export])

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run_onnx(x: Tensor) -> Tensor:
        out = session.run(None, {name: x.numpy().astype(np.float32)})[0]
        return torch.from_numpy(np.asarray(out))

    return run_onnx


def check_runner(
    G: nn.Module | Runner,
    runner: Runner,
    shapes: Sequence[tuple[int, int, int, int]],
    seed: int = 0,
) -> list[ExportCheck]:
    """Compare an exported model with the PyTorch module on random images in [-1, 1].

    Args:
        G: the PyTorch generator (CPU, eval mode), or a function of it.
        runner: from :func:`load_runner`.
        shapes: input shapes (B, 3, H, W) to try.
        seed: seed of the random inputs.

    Returns:
        One :class:`ExportCheck` per shape.

    Raises:
        UserError: the exported model fails on a shape or returns another output shape.
    """
    gen = torch.Generator().manual_seed(seed)
    checks = []
    for shape in shapes:
        x = torch.rand(shape, generator=gen) * 2 - 1
        with torch.no_grad():
            ref = G(x)
        try:
            out = runner(x)
        except Exception as exc:
            raise UserError(
                f"the exported model fails on an input of shape {tuple(shape)}: "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        if tuple(out.shape) != tuple(ref.shape):
            raise UserError(
                f"the exported model returns shape {tuple(out.shape)} for input {tuple(shape)}, "
                f"PyTorch {tuple(ref.shape)}"
            )
        diff = float((out.float() - ref.float()).abs().max())
        checks.append(ExportCheck(tuple(shape), diff))
    return checks


def check_shapes(
    size: tuple[int, int], dynamic: bool, multiple: int
) -> list[tuple[int, int, int, int]]:
    """Input shapes of the numerical check.

    Args:
        size: (H, W) of the export.
        dynamic: add a second, larger and non-square shape with batch 2.
        multiple: the generator's size multiple.

    Returns:
        (B, 3, H, W) shapes.
    """
    H, W = size
    shapes = [(1, 3, H, W)]
    if dynamic:
        shapes.append((2, 3, H + 2 * multiple, W + multiple))
    return shapes


def _check_format(fmt: str) -> None:
    if fmt in REMOVED_FORMATS:
        raise UserError(REMOVED_FORMATS[fmt])
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _check_size(size: tuple[int, int], multiple: int) -> None:
    H, W = size
    if H < 1 or W < 1 or H % multiple or W % multiple:
        raise UserError(
            f"export size {H}x{W} must be positive multiples of {multiple}, the generator's "
            f"size multiple"
        )


def _enforce(checks: list[ExportCheck], fmt: str, tolerance: float) -> None:
    worst = max(checks, key=lambda c: c.max_abs_diff)
    if not worst.max_abs_diff <= tolerance:
        raise UserError(
            f"the exported {fmt} model differs from PyTorch by {worst.max_abs_diff:.3g} at "
            f"input shape {worst.shape}, above the bound {tolerance:g}; nothing written"
        )


def export_generator(
    G: nn.Module,
    path: Path,
    fmt: ExportFormat,
    size: tuple[int, int],
    *,
    dynamic: bool = False,
    opset: int = DEFAULT_OPSET,
    tolerance: float = DEFAULT_TOLERANCE,
    metadata: dict[str, Any] | None = None,
    seed: int = 0,
) -> list[ExportCheck]:
    """Export a generator to one file, check it numerically, then move it into place atomically.

    Args:
        G: any image-to-image ``nn.Module`` (moved to the CPU and put in eval mode here).
        path: output file.
        fmt: ``"onnx"`` or ``"pt2"`` (``"hf"`` needs a run: :func:`export_run`).
        size: (H, W) of the example input; multiples of ``G.multiple`` when it has one.
        dynamic: batch, height and width as free dimensions (checked at a second size).
        opset: ONNX opset version.
        tolerance: largest allowed absolute difference from PyTorch.
        metadata: stored in the file (ONNX metadata properties, ``sesim.json`` in a pt2 file).
        seed: seed of the example and check inputs.

    Returns:
        The checks, one per input shape.

    Raises:
        UserError: a bad size or format, a missing package, a failed export, or a difference
            above ``tolerance`` (nothing is written then).
    """
    _check_format(fmt)
    if fmt == "hf":
        raise UserError("--format hf exports a run (sesim export --run RUN --format hf)")
    multiple = multiple_of(G, default=1)
    _check_size(size, multiple)
    if fmt == "onnx":
        reason = onnx_missing()
        if reason:
            raise UserError(reason)
    G = G.cpu().eval()
    H, W = size
    # A dynamic batch needs an example batch of 2 (torch.export specialises a batch of 1).
    batch = 2 if dynamic else 1
    example = torch.rand((batch, 3, H, W), generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with atomic_path(path) as tmp:
        if fmt == "pt2":
            export_pt2(G, example, tmp, dynamic, metadata)
        else:
            export_onnx(G, example, tmp, dynamic, opset, metadata)
        runner = load_runner(tmp, fmt)
        checks = check_runner(G, runner, check_shapes(size, dynamic, multiple), seed + 1)
        _enforce(checks, fmt, tolerance)
    return checks


def _fixed_style(G: nn.Module) -> Runner:
    """``G`` as a deterministic function: multi-modal generators in one style drawn from seed 0."""

    def run(x: Tensor) -> Tensor:
        with torch.no_grad():
            if isinstance(G, MunitGenerator):
                return translate_styles(G, x, 1, torch.Generator().manual_seed(0))[:, 0]
            out: Tensor = G(x)
        return out

    return run


def export_hf(
    G: nn.Module,
    cfg: Any,
    step: int,
    output: Path,
    size: tuple[int, int],
    *,
    run: Path | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 0,
) -> list[ExportCheck]:
    """Write a shareable folder (:mod:`sesim.pretrained`), reload it and check it numerically.

    The files go to a temporary folder beside ``output`` first and are moved into ``output``
    only after the reloaded generator matched ``G``.

    Args:
        G: the run's generator.
        cfg: the run's config (:class:`sesim.config.TrainConfig`).
        step: its training step.
        output: the folder to write (created; other files in it are left alone).
        size: (H, W) of the first check; the second is larger and not square.
        run: the run folder, for the model card's evaluation.
        tolerance: largest allowed absolute difference.
        seed: seed of the check inputs.
    Returns:
        The checks, one per input shape.
    Raises:
        UserError: a bad size, or a reloaded generator that differs.
    """
    G = G.cpu().eval()
    multiple = multiple_of(G, default=1)
    _check_size(size, multiple)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        written = save_pretrained(G, cfg, step, staging, run=run)
        loaded, _, _ = load_pretrained(staging, "cpu")
        shapes = check_shapes(size, True, multiple)
        checks = check_runner(_fixed_style(G), _fixed_style(loaded), shapes, seed + 1)
        _enforce(checks, "hf", tolerance)
        output.mkdir(parents=True, exist_ok=True)
        for path in written:
            os.replace(path, output / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return checks


def export_run(
    output: Path,
    fmt: ExportFormat,
    *,
    run: Path | None = None,
    checkpoint: Path | None = None,
    size: tuple[int, int] | None = None,
    dynamic: bool = False,
    opset: int = DEFAULT_OPSET,
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[list[ExportCheck], int, tuple[int, int]]:
    """Export the generator of a run (its newest checkpoint) or of a checkpoint file.

    The file's metadata name the producer, method, preset, step, input and output conventions,
    the size multiple, whether the shape is dynamic and the translation direction. ``hf``
    writes a folder instead (:func:`export_hf`; any input size).

    Args:
        output: the file to write (``.onnx``, ``.pt2``), or the folder for ``hf``.
        fmt: ``"onnx"``, ``"pt2"`` or ``"hf"``.
        run: a run folder, or None with ``checkpoint``.
        checkpoint: a checkpoint file.
        size: (H, W) of the example input; None takes the run's crop size.
        dynamic: batch, height and width as free dimensions.
        opset: ONNX opset version.
        tolerance: largest allowed absolute difference from PyTorch.
    Returns:
        ``(checks, step, size)``: the numerical checks (see :func:`export_generator`), the
        generator's training step and the (H, W) exported.
    Raises:
        UserError: see :func:`export_generator`; also a missing run or checkpoint.
    """
    _check_format(fmt)
    G, cfg, step = load_generator(run, checkpoint, torch.device("cpu"))
    H, W = size if size else (cfg.data.crop_size, cfg.data.crop_size)
    if fmt == "hf":
        checks = export_hf(G, cfg, step, output, (int(H), int(W)), run=run, tolerance=tolerance)
        return checks, step, (int(H), int(W))
    metadata = {
        "producer": "sesim",
        "method": cfg.method,
        "preset": cfg.preset,
        "step": step,
        "input": "float32 (B, 3, H, W) RGB in [-1, 1]",
        "output": "float32 (B, 3, H, W) RGB in [-1, 1]",
        "size_multiple": multiple_of(G, default=1),
        "dynamic": bool(dynamic),
        "direction": cfg.data.direction,
    }
    checks = export_generator(
        G,
        output,
        fmt,
        (int(H), int(W)),
        dynamic=dynamic,
        opset=opset,
        tolerance=tolerance,
        metadata=metadata,
    )
    return checks, step, (int(H), int(W))
