"""Generator export: torch.export, ONNX and hf round trips, dynamic sizes, the numerical check.

Every test runs with deprecation warnings as errors: no export path may use a deprecated API.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterator
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


@pytest.fixture(autouse=True)
def _deprecations_are_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", (DeprecationWarning, FutureWarning))
        yield


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


def test_pt2_round_trip_at_any_size(generator: ResnetGenerator, tmp_path: Path) -> None:
    out = tmp_path / "g.pt2"
    checks = export_generator(generator, out, "pt2", (16, 20), dynamic=True)
    assert [c.shape for c in checks] == [(1, 3, 16, 20), (2, 3, 24, 24)]
    assert all(c.max_abs_diff <= 1e-5 for c in checks)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt2"]  # no temporary left
    loaded = torch.export.load(str(out)).module()
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
    # A fixed-size program specialised at width 16 is wrong (or fails) at width 24.
    out = tmp_path / "g.pt2"
    with pytest.raises(UserError, match=r"differs from PyTorch|fails on an input|torch\.export"):
        export_generator(_ShapeBranch(), out, "pt2", (16, 16), dynamic=True)
    assert not list(tmp_path.iterdir())


def test_bad_sizes_and_formats(generator: ResnetGenerator, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="multiples of 4"):
        export_generator(generator, tmp_path / "g.pt2", "pt2", (30, 32))
    with pytest.raises(UserError, match="format"):
        export_generator(generator, tmp_path / "g.x", "tflite", (32, 32))  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"TorchScript export was removed.*pt2"):
        export_generator(generator, tmp_path / "g.pt", "torchscript", (32, 32))  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_onnx_without_its_packages_is_a_clear_error(
    generator: ResnetGenerator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UserError, match="pip install"):
        export_generator(generator, tmp_path / "g.onnx", "onnx", (16, 16))


def test_export_command_pt2(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export" / "g.pt2"
    argv = ["--run", str(run_dir), "--format", "pt2", "--output", str(out)]
    args = _parse(["export", *argv])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "check 1x3x32x32: max abs difference vs PyTorch" in text
    assert "fixed 1x3x32x32" in text
    extra = {"sesim.json": ""}
    torch.export.load(str(out), extra_files=extra)
    meta = json.loads(extra["sesim.json"])
    assert meta["step"] == 2 and meta["size_multiple"] == 4


def test_export_command_torchscript_is_a_clear_error(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.pt"
    args = _parse(
        ["export", "--run", str(run_dir), "--format", "torchscript", "--output", str(out)]
    )
    with pytest.raises(UserError, match=r"deprecates torch\.jit\.trace"):
        args.func(args)
    assert not out.exists()


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


def test_export_command_hf_and_from_pretrained(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from safetensors import safe_open

    from sesim import Translator

    run = tmp_path / "run"  # a copy: the shared run stays as it is
    shutil.copytree(run_dir, run)
    (run / "eval").mkdir()
    metrics = {"last": {"step": 2, "values": {"fid": 123.4, "kid": 0.05}}}
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "model"
    args = _parse(["export", "--run", str(run), "--format", "hf", "--output", str(out)])
    assert args.func(args) == 0
    assert "any size" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "run"]  # no staging left

    # Weights: the generator's tensors only, no discriminator or heads.
    G, cfg, _ = load_generator(run_dir, None, torch.device("cpu"))
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert set(f.keys()) == set(G.state_dict())
    config = json.loads((out / "config.json").read_text())
    assert config["direction"] == cfg.data.direction and config["size_multiple"] == 4
    assert config["preset"] == "tiny-lsesim" and config["step"] == 2 and config["steps"] == 2
    assert config["sesim_version"] and config["config"]["data"]["root"] == "ds"
    card = (out / "README.md").read_text()
    assert "tiny-lsesim" in card and "`ds`" in card and "| fid | 123.4 |" in card
    assert "Translator.from_pretrained" in card

    # Reloaded without any pickle: torch.load must not run.
    def no_pickle(*a: object, **k: object) -> None:
        raise AssertionError("from_pretrained unpickled something")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "load", no_pickle)
        t = Translator.from_pretrained(out, device="cpu")
    assert t.step == 2 and t.multiple == 4
    x = _rand(1, 3, 30, 22)  # not a multiple of 4: padded and cropped back
    assert torch.equal(t(x), Translator.from_run(run_dir, device="cpu")(x))


def test_from_pretrained_errors(tmp_path: Path) -> None:
    from sesim import Translator

    with pytest.raises(UserError, match="not a folder"):
        Translator.from_pretrained(tmp_path / "missing", device="cpu")
    with pytest.raises(UserError, match=r"no config\.json"):
        Translator.from_pretrained(tmp_path, device="cpu")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"not tensors")
    with pytest.raises(UserError, match="not a sesim model config"):
        Translator.from_pretrained(tmp_path, device="cpu")
