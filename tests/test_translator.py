"""sesim.Translator: every input kind, the same pixels as ``sesim translate``, styles."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sesim import Translator
from sesim.data.images import to_tensor
from sesim.errors import UserError
from sesim.runs import list_checkpoints

pytestmark = pytest.mark.usefixtures("one_thread")


def _photo(h: int = 30, w: int = 42, seed: int = 0) -> Image.Image:
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(rgb)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_translation_equals_sesim_translate_byte_for_byte(
    tiny_lsesim_run: Path, tmp_path: Path
) -> None:
    image = tmp_path / "in" / "photo.png"
    image.parent.mkdir()
    _photo().save(image)  # 30x42: not a multiple of 4, padded and cropped back
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "sesim", "translate", "--run", str(tiny_lsesim_run),
         "--input", str(image.parent), "--output", str(out), "--device", "cpu", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cli_png = (out / "photo.png").read_bytes()

    t = Translator.from_run(tiny_lsesim_run, device="cpu")
    assert t.step == 2 and t.multiple == 4 and not t.multimodal
    from_path = t(image)
    assert isinstance(from_path, Image.Image) and from_path.size == (42, 30)
    assert _png(from_path) == cli_png
    assert _png(t(Image.open(image))) == cli_png


def test_every_input_kind_gives_its_own_kind_back(tiny_lsesim_run: Path) -> None:
    ckpt = list_checkpoints(tiny_lsesim_run)[-1]
    t = Translator.from_run(None, checkpoint=ckpt, device="cpu")
    photo = _photo(17, 23)
    ref = np.asarray(t(photo))
    arr = t(np.asarray(photo))
    assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and arr.shape == (17, 23, 3)
    assert np.array_equal(arr, ref)

    x = to_tensor(photo).unsqueeze(0)
    y = t(x)
    assert isinstance(y, torch.Tensor) and y.shape == (1, 3, 17, 23) and y.dtype == torch.float32
    assert y.abs().max() <= 1.0
    single = t(x[0].double())
    assert single.shape == (3, 17, 23) and single.dtype == torch.float64
    batch = t(torch.cat([x, x.flip(-1)]))
    assert torch.allclose(batch[0], y[0], atol=1e-5)
    assert "tiny-lsesim" in repr(t)


def test_bad_inputs_are_user_errors(tiny_lsesim_run: Path, tmp_path: Path) -> None:
    t = Translator.from_run(tiny_lsesim_run, device="cpu")
    with pytest.raises(UserError, match="does not exist"):
        t(tmp_path / "nope.png")
    with pytest.raises(UserError, match="uint8"):
        t(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(UserError, match=r"\(B, 3, H, W\)"):
        t(torch.zeros(1, 1, 8, 8))
    with pytest.raises(UserError, match="cannot translate a list"):
        t([1, 2])  # type: ignore[call-overload]
    with pytest.raises(UserError, match="multimodal"):
        t(_photo(), style=_photo())
    with pytest.raises(UserError, match="does not exist"):
        Translator.from_run(tmp_path / "no_run", device="cpu")


def test_multimodal_styles_match_sesim_translate(munit_run: Path, tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    _photo(32, 36, seed=3).save(image)
    style_image = tmp_path / "style.png"
    _photo(32, 32, seed=4).save(style_image)
    out = tmp_path / "out"
    common = [sys.executable, "-m", "sesim", "translate", "--run", str(munit_run),
              "--input", str(image), "--device", "cpu", "--quiet", "--seed", "5"]  # fmt: skip
    for extra, folder in (
        (["--styles", "2"], out),
        (["--style-image", str(style_image)], out / "g"),
    ):
        proc = subprocess.run(
            [*common, "--output", str(folder), *extra], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr

    t = Translator.from_run(munit_run, device="cpu")
    assert t.multimodal
    styled = t.styles(image, 2, seed=5)
    for i, img in enumerate(styled):
        assert _png(img) == (out / f"in_style{i}.png").read_bytes()
    assert _png(t(image, style=style_image)) == (out / "g" / "in.png").read_bytes()
    # One drawn style per seed: reproducible, and another seed gives another style.
    a, b = t(image, seed=1), t(image, seed=1)
    assert _png(a) == _png(b) and _png(a) != _png(t(image, seed=2))
    tensors = t.styles(to_tensor(Image.open(image)), 3, seed=0)
    assert len(tensors) == 3 and tensors[0].shape == (3, 32, 36)


def test_from_pretrained_hub_id_from_an_offline_cache(
    tiny_lsesim_run: Path, tmp_path: Path
) -> None:
    pytest.importorskip("huggingface_hub")
    import shutil

    from sesim.export import export_run

    export_run(tmp_path / "export", "hf", run=tiny_lsesim_run)
    # The cache layout huggingface_hub reads: refs/main names the snapshot folder.
    repo = tmp_path / "hub" / "models--someone--tiny-zebra"
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(tmp_path / "export", snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    image = tmp_path / "photo.png"
    _photo(20, 24).save(image)
    script = (
        "import sys; from sesim import Translator\n"
        "t = Translator.from_pretrained(sys.argv[1], device='cpu')\n"
        "t(sys.argv[2]).save(sys.argv[3], format='PNG')\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    out = tmp_path / "out.png"
    cmd = [sys.executable, "-c", script, "someone/tiny-zebra", str(image), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    local = Translator.from_pretrained(tmp_path / "export", device="cpu")
    assert out.read_bytes() == _png(local(image))
    # Not in the cache and offline: one clear error.
    cmd[3] = "someone/missing"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0 and "cannot get someone/missing" in proc.stderr


def test_multimodal_hf_export_reloads_with_the_same_styles(munit_run: Path, tmp_path: Path) -> None:
    from sesim.export import export_run

    checks, step, _ = export_run(tmp_path / "mm", "hf", run=munit_run)
    assert all(c.max_abs_diff == 0.0 for c in checks)
    loaded = Translator.from_pretrained(tmp_path / "mm", device="cpu")
    original = Translator.from_run(munit_run, device="cpu")
    assert loaded.multimodal and loaded.step == step
    image = _photo(32, 40, seed=6)
    assert _png(loaded(image, seed=3)) == _png(original(image, seed=3))
