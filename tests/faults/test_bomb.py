"""Decompression bombs: a small file that declares a huge image is refused before decoding,
with the real reason, by every image reader and by the web page's upload."""

from __future__ import annotations

import http.client
import json
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

from sesim.data.images import ImageTooLargeError, load_rgb, open_image
from sesim.serve import SesimServer, build_app, decode_upload
from tests.faults.common import cli, error_lines

BOMB_TEXT = "declares 30000x30000 pixels"


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` 8-bit gray pixels, with the first rows
    of zeros compressed in one IDAT chunk (a few hundred bytes; decoding all of it would need
    900 MB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1) * 16, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@pytest.fixture
def bomb(tmp_path: Path) -> Path:
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png())
    assert path.stat().st_size < 2000
    return path


def test_readers_refuse_a_bomb_before_decoding(bomb: Path) -> None:
    with pytest.raises(ImageTooLargeError) as info:
        load_rgb(bomb)
    message = str(info.value)
    assert f"{bomb} {BOMB_TEXT}" in message
    assert "900.0 megapixels" in message and "the limit is 89.5 megapixels" in message
    assert "SESIM_MAX_PIXELS" in message


def test_the_limit_can_be_set_and_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = tmp_path / "small.png"
    Image.new("RGB", (64, 64)).save(small)
    monkeypatch.setenv("SESIM_MAX_PIXELS", "1000")
    with pytest.raises(ImageTooLargeError, match="declares 64x64 pixels"):
        load_rgb(small)
    monkeypatch.setenv("SESIM_MAX_PIXELS", "4096")
    assert load_rgb(small).size == (64, 64)
    with open_image(small) as img:
        assert img.size == (64, 64)


def test_translate_refuses_a_bomb_in_one_line(
    tiny_lsesim_run: Path, bomb: Path, tmp_path: Path
) -> None:
    code, _, err = cli("translate", "--run", str(tiny_lsesim_run), "--input", str(bomb),
                       "--output", str(tmp_path / "out"), "--device", "cpu")  # fmt: skip
    assert code == 2 and "Traceback" not in err, err
    (line,) = error_lines(err)
    assert BOMB_TEXT in line


def test_decode_upload_names_the_real_reason() -> None:
    from sesim.serve import RequestError

    with pytest.raises(RequestError) as info:
        decode_upload(bomb_png(), 1_000_000, 512)
    assert f"the upload {BOMB_TEXT}" in str(info.value)
    assert "not an image" not in str(info.value)


@pytest.fixture
def server(tiny_lsesim_run: Path) -> Iterator[SesimServer]:
    app = build_app(tiny_lsesim_run, None, torch.device("cpu"))
    srv = SesimServer(("127.0.0.1", 0), app, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)


def test_serve_answers_a_bomb_upload_with_its_size(server: SesimServer) -> None:
    host, port = server.server_address[0], server.server_address[1]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=60)
    try:
        conn.request("POST", "/api/upload", body=bomb_png(), headers={"X-Filename": "bomb.png"})
        resp = conn.getresponse()
        status, body = resp.status, json.loads(resp.read())
    finally:
        conn.close()
    assert status == 413
    assert BOMB_TEXT in body["error"] and "limit is 89.5 megapixels" in body["error"]
