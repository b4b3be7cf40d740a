"""Export a trained generator to ONNX or TorchScript, checked against PyTorch.

``sesim export --run RUN_DIR --format onnx|torchscript --output FILE [--dynamic]`` rebuilds the
run's generator, exports it, runs the exported file on random images in [-1, 1] next to the
PyTorch module and fails when their largest absolute difference exceeds a bound (1e-4 by
default). With ``--dynamic`` the batch size, height and width are free, and the check runs at a
second, non-square size as well. The file is written under a temporary name and renamed only
after the check passed, so a failed export leaves nothing behind.

Exported models take ``(B, 3, H, W)`` float32 images in [-1, 1] (RGB) and return translations of
the same shape and range; H and W must be multiples of the generator's ``multiple`` (4 for the
ResNet generator): pad (reflect) and crop back as :func:`sesim.translate.translate_batch` does.

ONNX needs the ``onnx`` and ``onnxruntime`` packages (``pip install 'sesim[export]'``); the
exporter is torch's TorchScript-based one (fast, no extra package), with torch's dynamo-based
exporter (which needs ``onnxscript``) as the fallback where the former is unavailable.
TorchScript uses ``torch.jit.trace``, so any ``nn.Module`` generator whose forward pass does not
branch on its input's values exports.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from sesim.errors import UserError
from sesim.runs import atomic_path, load_generator
from sesim.translate import multiple_of

ExportFormat = Literal["onnx", "torchscript"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript")
DEFAULT_TOLERANCE = 1e-4
DEFAULT_OPSET = 17
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
    """Why ONNX export cannot run here, or None when ``onnx`` and ``onnxruntime`` import."""
    missing = []
    for name in ("onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if not missing:
        return None
    return (
        f"ONNX export needs the {' and '.join(missing)} package(s): "
        "pip install 'sesim[export]' (or pip install onnx onnxruntime)"
    )


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Silence the tracer's and exporters' expected warnings (shape checks read as constants,
    deprecation notes, instance norm's training flag)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def export_torchscript(
    G: nn.Module, example: Tensor, path: Path, metadata: dict[str, Any] | None = None
) -> None:
    """Trace a generator and save it as TorchScript (not atomically: see :func:`export_generator`).

    Args:
        G: the generator, in eval mode, on the CPU.
        example: (B, 3, H, W) example input.
        path: output file.
        metadata: stored as the extra file ``sesim.json`` inside the archive.
    """
    extra = {"sesim.json": json.dumps(metadata or {})}
    with _quiet_tracing(), torch.no_grad():
        traced = torch.jit.trace(G, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files=extra)


def export_onnx(
    G: nn.Module,
    example: Tensor,
    path: Path,
    dynamic: bool = False,
    opset: int = DEFAULT_OPSET,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Export a generator to ONNX (not atomically: see :func:`export_generator`).

    The TorchScript-based exporter runs first; the dynamo-based one only when that is missing
    or fails.

    Args:
        G: the generator, in eval mode, on the CPU.
        example: (B, 3, H, W) example input.
        path: output file.
        dynamic: batch, height and width as free dimensions.
        opset: ONNX opset version.
        metadata: stored as the model's metadata properties (values as JSON text).

    Returns:
        The exporter used, ``"torchscript"`` or ``"dynamo"``.

    Raises:
        UserError: neither exporter can export this generator.
    """
    import onnx  # optional dependency (sesim[export])

    axes = {0: "batch", 2: "height", 3: "width"}
    used = "torchscript"
    with _quiet_tracing():
        try:
            torch.onnx.export(
                G,
                (example,),
                str(path),
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes} if dynamic else None,
                opset_version=opset,
            )
        except Exception as first:
            used = "dynamo"
            try:
                _export_onnx_dynamo(G, example, path, dynamic, opset)
            except Exception as second:
                raise UserError(
                    f"ONNX export failed: {type(first).__name__}: {str(first)[:160]}; the "
                    f"dynamo exporter too: {type(second).__name__}: {str(second)[:160]}"
                ) from None
    model = onnx.load(str(path))
    for key, value in (metadata or {}).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, json.dumps(value)
    onnx.save(model, str(path))
    return used


def _export_onnx_dynamo(
    G: nn.Module, example: Tensor, path: Path, dynamic: bool, opset: int
) -> None:
    from torch.export import Dim  # the dynamo exporter's fallback path only: slow to import

    arg = next(iter(_forward_arg_names(G)), "x")
    shapes = {arg: {0: Dim.DYNAMIC, 2: Dim.DYNAMIC, 3: Dim.DYNAMIC}} if dynamic else None
    program = torch.onnx.export(
        G,
        (example,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=shapes,
        opset_version=max(opset, 18),
    )
    assert program is not None
    program.save(str(path))


def _forward_arg_names(G: nn.Module) -> list[str]:
    params = inspect.signature(G.forward).parameters
    return [name for name in params if name != "self"]


def load_runner(path: Path, fmt: ExportFormat) -> Runner:
    """A function that runs an exported file on CPU tensors.

    Args:
        path: the exported file.
        fmt: its format.

    Returns:
        ``run(x)``: (B, 3, H, W) float32 -> (B, 3, H, W) float32.
    """
    if fmt == "torchscript":
        with _quiet_tracing():
            module = torch.jit.load(str(path), map_location="cpu")
        module.eval()

        def run_ts(x: Tensor) -> Tensor:
            with torch.no_grad():
                out: Tensor = module(x)
            return out

        return run_ts
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
    G: nn.Module, runner: Runner, shapes: Sequence[tuple[int, int, int, int]], seed: int = 0
) -> list[ExportCheck]:
    """Compare an exported model with the PyTorch module on random images in [-1, 1].

    Args:
        G: the PyTorch generator (CPU, eval mode).
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
    """Export a generator, check it numerically, then move it into place atomically.

    Args:
        G: any image-to-image ``nn.Module`` (moved to the CPU and put in eval mode here).
        path: output file.
        fmt: ``"onnx"`` or ``"torchscript"``.
        size: (H, W) of the example input; multiples of ``G.multiple`` when it has one.
        dynamic: batch, height and width as free dimensions (checked at a second size).
        opset: ONNX opset version.
        tolerance: largest allowed absolute difference from PyTorch.
        metadata: stored in the file (ONNX metadata properties, TorchScript ``sesim.json``).
        seed: seed of the example and check inputs.

    Returns:
        The checks, one per input shape.

    Raises:
        UserError: a bad size or format, a missing package, a failed export, or a difference
            above ``tolerance`` (nothing is written then).
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    multiple = multiple_of(G, default=1)
    H, W = size
    if H < 1 or W < 1 or H % multiple or W % multiple:
        raise UserError(
            f"export size {H}x{W} must be positive multiples of {multiple}, the generator's "
            f"size multiple"
        )
    if fmt == "onnx":
        reason = onnx_missing()
        if reason:
            raise UserError(reason)
    G = G.cpu().eval()
    example = torch.rand((1, 3, H, W), generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with atomic_path(path) as tmp:
        if fmt == "torchscript":
            export_torchscript(G, example, tmp, metadata)
        else:
            export_onnx(G, example, tmp, dynamic, opset, metadata)
        runner = load_runner(tmp, fmt)
        checks = check_runner(G, runner, check_shapes(size, dynamic, multiple), seed + 1)
        worst = max(checks, key=lambda c: c.max_abs_diff)
        if not worst.max_abs_diff <= tolerance:
            raise UserError(
                f"the exported {fmt} model differs from PyTorch by {worst.max_abs_diff:.3g} at "
                f"input shape {worst.shape}, above the bound {tolerance:g}; nothing written"
            )
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
    the size multiple, whether the shape is dynamic and the translation direction.

    Args:
        output: the file to write (``.onnx`` or ``.pt``).
        fmt: ``"onnx"`` or ``"torchscript"``.
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
    G, cfg, step = load_generator(run, checkpoint, torch.device("cpu"))
    H, W = size if size else (cfg.data.crop_size, cfg.data.crop_size)
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
