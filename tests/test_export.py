"""Generator export: TorchScript and ONNX round trips, dynamic sizes, the numerical check."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from sesim.cli.export import add_parser as add_export_parser
from sesim.errors import UserError
from sesim.export import export_generator, onnx_missing
from sesim.nets.resnet import ResnetGenerator
from sesim.runs import list_checkpoints, load_generator

ONNX_SKIP = onnx_missing()

# torch.jit.load and save are deprecated in recent torch but still the way to read TorchScript.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


@pytest.fixture(scope="module")
def run_dir(tiny_lsesim_run: Path) -> Path:
    return tiny_lsesim_run


@pytest.fixture
def generator() -> ResnetGenerator:
    torch.manual_seed(0)
    return ResnetGenerator(ngf=4, n_blocks=1).eval()


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sesim")
    add_export_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def _rand(*shape: int) -> Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(7)) * 2 - 1


def test_torchscript_round_trip_at_any_size(generator: ResnetGenerator, tmp_path: Path) -> None:
    out = tmp_path / "g.pt"
    checks = export_generator(generator, out, "torchscript", (16, 20), dynamic=True)
    assert [c.shape for c in checks] == [(1, 3, 16, 20), (2, 3, 24, 24)]
    assert all(c.max_abs_diff <= 1e-5 for c in checks)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt"]  # no temporary left
    loaded = torch.jit.load(str(out))
    for shape in ((1, 3, 16, 20), (3, 3, 28, 12)):
        x = _rand(*shape)
        with torch.no_grad():
            assert torch.allclose(loaded(x), generator(x), atol=1e-5)


class _ShapeBranch(nn.Module):
    """Branches on its input's width: a trace at one size is wrong at another."""

    multiple = 4

    def forward(self, x: Tensor) -> Tensor:
        return x * 2 if x.shape[2] > 20 else x


def test_a_wrong_export_fails_the_check_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "g.pt"
    with pytest.raises(UserError, match="differs from PyTorch"):
        export_generator(_ShapeBranch(), out, "torchscript", (16, 16), dynamic=True)
    assert not list(tmp_path.iterdir())


def test_bad_sizes_and_formats(generator: ResnetGenerator, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="multiples of 4"):
        export_generator(generator, tmp_path / "g.pt", "torchscript", (30, 32))
    with pytest.raises(UserError, match="format"):
        export_generator(generator, tmp_path / "g.x", "tflite", (32, 32))  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_onnx_without_its_packages_is_a_clear_error(
    generator: ResnetGenerator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UserError, match="pip install"):
        export_generator(generator, tmp_path / "g.onnx", "onnx", (16, 16))


def test_export_command_torchscript(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export" / "g.pt"
    argv = ["--run", str(run_dir), "--format", "torchscript", "--output", str(out)]
    args = _parse(["export", *argv])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "check 1x3x32x32: max abs difference vs PyTorch" in text
    assert "fixed 1x3x32x32" in text
    extra = {"sesim.json": ""}
    torch.jit.load(str(out), _extra_files=extra)
    meta = json.loads(extra["sesim.json"])
    assert meta["step"] == 2 and meta["size_multiple"] == 4


@pytest.mark.skipif(ONNX_SKIP is not None, reason=f"onnx/onnxruntime not installed: {ONNX_SKIP}")
def test_export_command_onnx_dynamic(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnx
    import onnxruntime as ort

    out = tmp_path / "g.onnx"
    ckpt = str(list_checkpoints(run_dir)[-1])
    argv = ["--checkpoint", ckpt, "--format", "onnx", "--output", str(out), "--dynamic"]
    args = _parse(["export", *argv, "--size", "24", "32"])
    assert args.func(args) == 0
    assert "check 2x3x32x36" in capsys.readouterr().out
    model = onnx.load(str(out))
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert meta["producer"] == "sesim" and meta["dynamic"] is True

    G, _, _ = load_generator(run_dir, None, torch.device("cpu"))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = _rand(2, 3, 20, 44)
    (y,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        ref = G(x)
    assert y.shape == (2, 3, 20, 44)
    assert float((torch.from_numpy(y) - ref).abs().max()) < 1e-4


@pytest.mark.skipif(ONNX_SKIP is not None, reason=f"onnx/onnxruntime not installed: {ONNX_SKIP}")
def test_onnx_fixed_size_and_tolerance(generator: ResnetGenerator, tmp_path: Path) -> None:
    out = tmp_path / "g.onnx"
    checks = export_generator(generator, out, "onnx", (16, 24))
    assert len(checks) == 1 and checks[0].max_abs_diff < 1e-4
    with pytest.raises(UserError, match="above the bound"):
        export_generator(generator, tmp_path / "h.onnx", "onnx", (16, 24), tolerance=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]
