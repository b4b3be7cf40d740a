"""``sesim weights status`` and ``sesim weights fetch`` (a local server stands in for the web)."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from sesim import weights
from sesim.cli.main import main
from tests.test_download import Server


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def test_status_lists_every_file_and_where_it_goes(capsys: Any) -> None:
    weights.WEIGHTS["alexnet"].path.parent.mkdir(parents=True, exist_ok=True)
    weights.WEIGHTS["alexnet"].path.write_bytes(b"stand-in")
    assert main(["weights", "status"]) == 0
    out = capsys.readouterr().out
    for name in ("vgg16", "inception", "alexnet", "drn-d-22"):
        line = next(row for row in out.splitlines() if row.startswith(name))
        entry = weights.WEIGHTS[name]
        assert str(entry.path) in line
        assert ("present" in line) == (name == "alexnet")


def test_fetch_downloads_into_the_hub_cache_once(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    body = b"inception stand-in" * 100
    server.files["datasets/inception.pth"] = body
    entry = replace(weights.WEIGHTS["inception"], url=f"{server.url}/inception.pth")
    monkeypatch.setitem(weights.WEIGHTS, "inception", entry)
    assert main(["weights", "fetch", "inception", "--quiet"]) == 0
    assert entry.path.read_bytes() == body and "downloaded" in capsys.readouterr().out
    assert main(["weights", "fetch", "inception", "--quiet"]) == 0
    assert "already there" in capsys.readouterr().out and len(server.requests) == 1


def test_fetch_checks_the_hash_in_the_name(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    server.files["datasets/alexnet.pth"] = b"not alexnet"
    assert not hashlib.sha256(b"not alexnet").hexdigest().startswith("7be5be79")
    entry = replace(weights.WEIGHTS["alexnet"], url=f"{server.url}/alexnet.pth")
    monkeypatch.setitem(weights.WEIGHTS, "alexnet", entry)
    assert main(["weights", "fetch", "alexnet", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "invalid hash" in err and err.count("\n") == 1 and not entry.path.exists()


def test_fetch_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    entry = replace(weights.WEIGHTS["vgg16"], url=f"http://127.0.0.1:{port}/vgg16-397923af.pth")
    monkeypatch.setitem(weights.WEIGHTS, "vgg16", entry)
    assert main(["weights", "fetch", "vgg16", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot download") and str(entry.path) in err
    assert err.count("\n") == 1
    assert main(["weights", "fetch", "drn-d-22"]) == 2
    err = capsys.readouterr().err
    assert "cannot be fetched automatically" in err and "drn_d_22_cityscapes.pth" in err
    assert main(["weights", "fetch", "resnet"]) == 2
    assert "unknown weights" in capsys.readouterr().err
