"""The local web page: upload checks, the HTTP API, and the page end to end in headless Chromium.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (JSON messages
separated by NUL bytes on file descriptors 3 and 4), so no browser-automation package is needed:
only Debian's ``chromium`` package (``apt-get install -y chromium``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from sesim.cli.serve import add_parser as add_serve_parser
from sesim.data.synthetic import render_sample
from sesim.serve import (
    RequestError,
    ServeApp,
    SesimServer,
    build_app,
    decode_upload,
)
from sesim.viz import PANEL_PX

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = (
    None if CHROMIUM.is_file() else "Debian's chromium is not installed (apt-get install chromium)"
)


def _png_bytes(size: tuple[int, int], seed: int = 4) -> bytes:
    img = Image.fromarray(render_sample("layout", seed, max(size)).a).resize(size)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def app(tiny_lsesim_run: Path) -> ServeApp:
    return build_app(
        tiny_lsesim_run, None, torch.device("cpu"), max_upload_bytes=200_000, max_upload_side=64
    )


@pytest.fixture(scope="module")
def server(app: ServeApp) -> Iterator[SesimServer]:
    srv = SesimServer(("127.0.0.1", 0), app, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)


def _request(
    srv: SesimServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    host, port = srv.server_address[0], srv.server_address[1]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Upload checks and the HTTP API.


def test_decode_upload_checks_type_size_and_pixels() -> None:
    img = decode_upload(_png_bytes((40, 24)), 100_000, 64)
    assert img.mode == "RGB" and img.size == (40, 24)
    with pytest.raises(RequestError, match="not an image"):
        decode_upload(b"GIF89a but not really", 100_000, 64)
    with pytest.raises(RequestError, match="empty"):
        decode_upload(b"", 100_000, 64)
    with pytest.raises(RequestError, match=r"limit is 0\.0 MB") as too_big:
        decode_upload(_png_bytes((40, 24)), 10, 64)
    assert too_big.value.status == 413
    with pytest.raises(RequestError, match="80x40 px; the limit is 64 px"):
        decode_upload(_png_bytes((80, 40)), 100_000, 64)


def test_parser_defaults_to_loopback() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="sesim")
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--run", "r"])
    assert args.host == "127.0.0.1" and callable(args.func)


def test_http_api(server: SesimServer) -> None:
    status, ctype, body = _request(server, "GET", "/")
    assert status == 200 and ctype.startswith("text/html")
    assert b"test_00000.png" in body and b"/app.js" in body

    status, _, body = _request(server, "POST", "/api/test/1")
    item = json.loads(body)
    assert status == 200 and item["name"] == "test_00001.png"
    assert (item["width"], item["height"]) == (32, 32)
    for url in (item["input"], item["output"]):
        status, ctype, png = _request(server, "GET", url)
        assert status == 200 and ctype == "image/png"
        assert Image.open(io.BytesIO(png)).size == (32, 32)

    status, ctype, png = _request(server, "GET", f"/api/maps/{item['id']}.png?x=5&y=30")
    assert status == 200 and ctype == "image/png"
    assert Image.open(io.BytesIO(png)).size == (3 * PANEL_PX, 2 * PANEL_PX)

    status, _, body = _request(server, "GET", f"/api/maps/{item['id']}.png?x=32&y=0")
    assert status == 400 and "outside the 32x32 image" in json.loads(body)["error"]
    status, _, body = _request(server, "GET", "/api/maps/nope.png?x=1&y=1")
    assert status == 404 and "translate it again" in json.loads(body)["error"]
    status, _, body = _request(server, "POST", "/api/test/99")
    assert status == 404


def test_http_upload_limits(server: SesimServer) -> None:
    status, _, body = _request(
        server, "POST", "/api/upload", _png_bytes((48, 32)), {"X-Filename": "my%20scene.png"}
    )
    item = json.loads(body)
    assert status == 200 and item["name"] == "my scene.png" and item["width"] == 48

    big = b"\0" * 300_000
    status, _, body = _request(server, "POST", "/api/upload", big)
    assert status == 413 and "limit is 0.2 MB" in json.loads(body)["error"]
    status, _, body = _request(server, "POST", "/api/upload", b"hello")
    assert status == 400 and "not an image" in json.loads(body)["error"]


def test_an_unexpected_failure_is_answered_not_dropped(
    server: SesimServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: Any) -> bytes:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(server.app, "maps_png", broken)
    status, _, body = _request(server, "GET", "/api/maps/x.png?x=1&y=1")
    assert status == 500 and "RuntimeError: out of memory" in json.loads(body)["error"]
    assert "RuntimeError" in capsys.readouterr().err  # the traceback goes to the server log


def test_foreign_host_header_is_refused(server: SesimServer) -> None:
    status, _, _ = _request(server, "GET", "/", headers={"Host": "evil.example:80"})
    assert status == 403


# ---------------------------------------------------------------------------------------------
# The page in headless Chromium.


class Chromium:
    """Headless Chromium driven by the DevTools protocol over a pipe.

    Args:
        user_data: an empty profile folder.
        width: window width in CSS pixels.
        height: window height.
    """

    def __init__(self, user_data: Path, width: int = 1280, height: int = 1000) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={user_data}",
            "--remote-debugging-pipe",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        # The browser reads commands on fd 3 and writes answers on fd 4: a tiny Python launcher
        # moves the pipe ends there (first lifted above 9, so that the moves cannot collide).
        fds = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        launcher = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
            "os.close(int(sys.argv[1])); os.close(int(sys.argv[2])); "
            "os.execv(sys.argv[3], sys.argv[3:])"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", launcher, *map(str, fds), *args],
            pass_fds=tuple(fds),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in fds:
            os.close(fd)
        self._next = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=page["targetId"], flatten=True)[
            "sessionId"
        ]

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._answers[msg["id"]] = msg
                        self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def send(
        self, method: str, session: str | None = None, timeout: float = 30, **params: Any
    ) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        self._next += 1
        mid = self._next
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"Chromium did not answer {method}")
                self._cond.wait(min(left, 1.0))
            answer = self._answers.pop(mid)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the page."""
        return self.send(method, session=self.session, **params)

    def eval(self, expression: str) -> Any:
        """Evaluate JavaScript in the page; returns its value."""
        r = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(str(r["exceptionDetails"])[:500])
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """Poll a JavaScript expression until it is truthy."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied: {expression}")
            time.sleep(0.05)

    def center(self, selector: str) -> tuple[float, float]:
        """Viewport coordinates of the middle of an element."""
        x, y = self.eval(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        return float(x), float(y)

    def click(self, x: float, y: float) -> None:
        """A real left click at viewport coordinates."""
        for kind in ("mousePressed", "mouseReleased"):
            self.page("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def set_file(self, selector: str, path: Path) -> None:
        """Choose a file in a file input, as the file dialog would."""
        root = self.page("DOM.getDocument")["root"]["nodeId"]
        node = self.page("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        self.page("DOM.setFileInputFiles", files=[str(path)], nodeId=node)

    def screenshot(self) -> bytes:
        """PNG of the whole page."""
        shot = self.page("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        """Close the browser (killing it if it does not exit)."""
        with contextlib.suppress(TimeoutError, RuntimeError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture
def browser() -> Iterator[Chromium]:
    # A short profile path: Chromium's singleton socket lives there (108-byte socket paths).
    profile = Path(tempfile.mkdtemp(prefix="sesim-chromium-"))
    b = Chromium(profile)
    yield b
    b.close()
    shutil.rmtree(profile, ignore_errors=True)


STATE = "document.body.dataset.state"


@pytest.mark.skipif(NO_CHROMIUM is not None, reason=str(NO_CHROMIUM))
def test_page_end_to_end_in_chromium(
    server: SesimServer, browser: Chromium, tmp_path: Path
) -> None:
    browser.page("Page.navigate", url=server.url)
    browser.wait_for("document.readyState === 'complete' && !!document.getElementById('upload')")
    assert browser.eval("document.title").startswith("sesim: run, step 2")

    # Upload an image through the file input and the button.
    upload = tmp_path / "scene.png"
    upload.write_bytes(_png_bytes((48, 40), seed=9))
    browser.set_file("#file", upload)
    browser.click(*browser.center("#upload-btn"))
    browser.wait_for(f"{STATE} === 'translated' || {STATE} === 'error'")
    assert browser.eval("document.getElementById('error').textContent") == ""
    browser.wait_for(
        "['input-img', 'output-img'].every((id) => { const i = document.getElementById(id);"
        " return i.complete && i.naturalWidth > 0; })"
    )
    assert browser.eval("document.getElementById('output-img').naturalWidth") == 48
    assert "scene.png, 48x40" in browser.eval("document.getElementById('input-name').textContent")

    # Click pixel (30, 10) of the input and read back the rendered maps.
    left, top, width, height = browser.eval(
        "(() => { const i = document.getElementById('input-img'); const r ="
        " i.getBoundingClientRect(); return [r.left + i.clientLeft, r.top + i.clientTop,"
        " i.clientWidth, i.clientHeight]; })()"
    )
    browser.click(left + 30.5 * width / 48, top + 10.5 * height / 40)
    browser.wait_for(f"{STATE} === 'maps' || {STATE} === 'error'")
    assert browser.eval("document.getElementById('error').textContent") == ""
    assert browser.eval("document.getElementById('maps-img').dataset.point") == "30,10"
    assert browser.eval("document.getElementById('maps-img').naturalWidth") == 3 * PANEL_PX
    assert "point (30, 10)" in browser.eval("document.getElementById('point-label').textContent")
    shot = browser.screenshot()
    (tmp_path / "page.png").write_bytes(shot)
    assert Image.open(io.BytesIO(shot)).size[0] >= 3 * PANEL_PX

    # A rejected upload shows its message on the page.
    bad = tmp_path / "notes.png"
    bad.write_text("these are notes, not pixels")
    browser.set_file("#file", bad)
    browser.click(*browser.center("#upload-btn"))
    browser.wait_for(f"{STATE} === 'error'")
    message = browser.eval("document.getElementById('error').textContent")
    assert "not an image file" in message
    assert browser.eval("document.getElementById('error').hidden") is False

    # Too many pixels: refused before decoding, message shown.
    large = tmp_path / "large.png"
    large.write_bytes(_png_bytes((100, 20)))
    browser.set_file("#file", large)
    browser.click(*browser.center("#upload-btn"))
    browser.wait_for(
        f"{STATE} === 'error' && document.getElementById('error').textContent.includes('limit is 64 px')"
    )
    assert "100x20 px; the limit is 64 px" in browser.eval(
        "document.getElementById('error').textContent"
    )


@pytest.mark.skipif(NO_CHROMIUM is not None, reason=str(NO_CHROMIUM))
def test_page_translates_a_test_image_in_chromium(server: SesimServer, browser: Chromium) -> None:
    browser.page("Page.navigate", url=server.url)
    browser.wait_for("document.readyState === 'complete' && !!document.getElementById('pick')")
    browser.eval("document.getElementById('test-image').value = '2'")
    browser.click(*browser.center("#translate-test"))
    browser.wait_for(f"{STATE} === 'translated'")
    assert "test_00002.png" in browser.eval("document.getElementById('status').textContent")
