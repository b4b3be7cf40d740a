"""``sesim data download`` against a local HTTP server: checksums, a cut transfer and its
resumption, re-runs, no network, and nothing half-unpacked."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sesim.cli.main import main
from sesim.download import RECORD_FILE


def tiny_zip(name: str, payload: bytes = b"x" * 4000) -> bytes:
    """A CycleGAN-style archive: NAME/trainA, trainB, testA, testB with one file each."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for part in ("trainA", "trainB", "testA", "testB"):
            zf.writestr(f"{name}/{part}/img_{part}.jpg", payload + part.encode())
    return buf.getvalue()


class Server:
    """Serves ``files`` with HTTP Range support; ``cut`` requests end half way."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut = 0
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                chunk = body[start:]
                if server.cut:
                    server.cut -= 1
                    self.wfile.write(chunk[: len(chunk) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/datasets"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    s.files["datasets/horse2zebra.zip"] = tiny_zip("horse2zebra", b"h" * 200_000)
    yield s
    s.close()


def _download(out: Path, *extra: str) -> int:
    return main(["data", "download", "horse2zebra", "--out", str(out), "--quiet", *extra])


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name != RECORD_FILE) if out.exists() else []


def test_download_unpacks_records_the_checksum_and_reruns_do_nothing(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("SESIM_DATASETS_URL", server.url)  # the environment variable route
    out = tmp_path / "datasets"
    assert _download(out) == 0
    folder = out / "horse2zebra"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == [
        "testA", "testB", "trainA", "trainB",
    ]  # fmt: skip
    assert (folder / "trainA" / "img_trainA.jpg").read_bytes().startswith(b"hhh")
    assert _leftovers(out) == ["horse2zebra"]  # no .part, no temporary folder
    text = capsys.readouterr().out
    assert "sha256 of horse2zebra.zip:" in text and (out / RECORD_FILE).is_file()
    served = len(server.requests)
    assert _download(out) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(server.requests) == served  # no request at all

    # Downloaded again (the folder was deleted) but changed upstream: the recorded sum catches it.
    for path in sorted(folder.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    folder.rmdir()
    server.files["datasets/horse2zebra.zip"] = tiny_zip("horse2zebra", b"z" * 1000)
    assert _download(out) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and err.count("\n") == 1
    assert _leftovers(out) == []


def test_checksum_mismatch_leaves_nothing(server: Server, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "datasets"
    assert _download(out, "--base-url", server.url, "--sha256", "0" * 64) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    assert _leftovers(out) == []


def test_cut_transfer_resumes_with_a_range_request(
    server: Server, tmp_path: Path, capsys: Any
) -> None:
    out = tmp_path / "datasets"
    body = server.files["datasets/horse2zebra.zip"]
    digest = hashlib.sha256(body).hexdigest()
    server.cut = 1
    assert _download(out, "--base-url", server.url, "--sha256", digest) == 2
    err = capsys.readouterr().err
    assert "was cut" in err and "run the same command again" in err and "Traceback" not in err
    part = out / ".horse2zebra.zip.part"
    assert 0 < part.stat().st_size < len(body)
    assert not (out / "horse2zebra").exists()
    assert _download(out, "--base-url", server.url, "--sha256", digest) == 0
    assert server.requests[-1][1] == f"bytes={len(body) // 2}-"
    assert (out / "horse2zebra" / "trainB" / "img_trainB.jpg").is_file()
    assert _leftovers(out) == ["horse2zebra"]


def test_broken_archive_and_unknown_names(server: Server, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "datasets"
    server.files["datasets/horse2zebra.zip"] = b"<html>not a zip</html>"
    assert _download(out, "--base-url", server.url) == 2
    assert "not a zip archive" in capsys.readouterr().err
    assert _leftovers(out) == []
    assert main(["data", "download", "cityscapes", "--out", str(out)]) == 2
    assert "login" in capsys.readouterr().err
    assert main(["data", "download", "horse3zebra", "--out", str(out)]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_no_network_is_one_line(tmp_path: Path, capsys: Any) -> None:
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "datasets"
    assert _download(out, "--base-url", f"http://127.0.0.1:{port}/x") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach 127.0.0.1") and err.count("\n") == 1
    assert _leftovers(out) == []
