"""VGG16 feature taps, weights lookup and freezing."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
from torchvision.models import VGG16_Weights, vgg16

from sesim.errors import UserError
from sesim.features import VGG16Features, imagenet_weights_file
from sesim.features.vgg import resolve_weights


def test_taps_shapes_and_channels() -> None:
    ext = VGG16Features(weights=None)
    feats = ext(torch.zeros(2, 3, 64, 48))
    assert ext.channels == (256, 512, 512)
    assert [tuple(f.shape) for f in feats] == [(2, 256, 16, 12), (2, 512, 8, 6), (2, 512, 8, 6)]
    assert len(ext.body) == 23  # cut right after relu4_3


def test_conv_taps_are_not_overwritten_by_relu() -> None:
    ext = VGG16Features(layers=("conv1_1", "relu1_1"), weights=None)
    conv, relu = ext(torch.randn(1, 3, 16, 16))
    assert float(conv.min()) < 0 and torch.equal(relu, conv.clamp(min=0))


def test_frozen_and_stays_in_eval() -> None:
    ext = VGG16Features(weights=None)
    ext.train()
    assert not ext.training
    assert all(not p.requires_grad for p in ext.parameters())


def test_unknown_layer() -> None:
    with pytest.raises(ValueError, match="unknown VGG16 layer"):
        VGG16Features(layers=("relu9_9",), weights=None)


def test_missing_imagenet_weights_names_the_file() -> None:
    with pytest.raises(UserError) as info:
        VGG16Features(weights="imagenet")
    message = str(info.value)
    assert "vgg16-397923af.pth" in message and str(imagenet_weights_file()) in message
    assert "\n" not in message


def test_auto_falls_back_to_random_with_a_notice() -> None:
    with pytest.warns(UserWarning, match="RANDOM VGG16"):
        ext = VGG16Features(weights="auto")
    assert ext.weights_source.startswith("random")


def test_imagenet_weights_from_the_standard_cache(tmp_path: Path) -> None:
    # A locally created VGG16 state dict placed where torchvision keeps the ImageNet file.
    torch.manual_seed(1)
    state = vgg16(weights=None).state_dict()
    path = imagenet_weights_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    ext = VGG16Features(weights="imagenet")
    assert ext.weights_source == "imagenet"
    torch.testing.assert_close(ext.body[0].weight, state["features.0.weight"])
    # The same file given as an explicit local path.
    local = tmp_path / "mine.pth"
    torch.save(
        {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}, local
    )
    ext2 = VGG16Features(weights=local)
    torch.testing.assert_close(ext2.body[0].weight, state["features.0.weight"])


def test_bad_local_weights(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        VGG16Features(weights=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        VGG16Features(weights=bad)


def test_missing_imagenet_weights_are_fetched_through_torchvision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Online, ``imagenet`` downloads torchvision's file into the hub cache (the transfer is
    faked here: tests never touch the network); offline it keeps the one-line message."""
    monkeypatch.delenv("SESIM_OFFLINE")
    asked: list[str] = []

    def fake_download(url: str, dst: str, hash_prefix: str | None = None, **kw: object) -> None:
        asked.append(url)
        torch.save({"0.weight": torch.ones(1)}, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    state, source = resolve_weights("imagenet")
    assert source == "imagenet" and state is not None and "0.weight" in state
    assert asked == [VGG16_Weights.IMAGENET1K_V1.url] and imagenet_weights_file().is_file()


def test_imagenet_download_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESIM_OFFLINE")

    def offline(url: str, dst: str, hash_prefix: str | None = None, **kw: object) -> None:
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UserError) as info:
        resolve_weights("imagenet")
    message = str(info.value)
    assert "vgg16-397923af.pth" in message and "download failed" in message
    assert "\n" not in message and not imagenet_weights_file().exists()
