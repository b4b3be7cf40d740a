"""The local web page: upload checks, the HTTP API, and the page end to end in headless Chromium.

Chromium is Debian's (``apt-get install -y chromium``), driven by Playwright's sync API through
``executable_path`` (``pip install 'sesim[dev]'``; no ``playwright install`` download needed).
The browser test is skipped, with the reason, only when one of the two is missing.
"""

from __future__ import annotations

import http.client
import importlib.util
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _no_browser() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    if not CHROMIUM.is_file():
        return f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install 'sesim[dev]')"
    return None


NO_BROWSER = _no_browser()


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


@pytest.fixture
def chromium_page() -> Iterator[Page]:
    """A fresh page of Debian's Chromium, launched by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # The page's Content-Security-Policy forbids eval; Playwright's waits evaluate strings.
            tab = browser.new_page(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
            tab.set_default_timeout(60_000)
            yield tab
        finally:
            browser.close()


STATE = "document.body.dataset.state"


def _text(page: Page, selector: str) -> str:
    return page.locator(selector).text_content() or ""


@pytest.mark.skipif(NO_BROWSER is not None, reason=str(NO_BROWSER))
def test_page_end_to_end_in_chromium(
    server: SesimServer, chromium_page: Page, tmp_path: Path
) -> None:
    page = chromium_page
    page.goto(server.url)
    assert page.title().startswith("sesim: run, step 2")

    # Translate one of the run's test images.
    page.select_option("#test-image", "2")
    page.click("#translate-test")
    page.wait_for_function(f"{STATE} === 'translated'")
    assert "test_00002.png" in _text(page, "#status")

    # Upload an image through the file input and the button.
    upload = tmp_path / "scene.png"
    upload.write_bytes(_png_bytes((48, 40), seed=9))
    page.set_input_files("#file", str(upload))
    page.click("#upload-btn")
    page.wait_for_function(
        f"({STATE} === 'translated' && document.getElementById('input-name').textContent"
        f".includes('scene.png')) || {STATE} === 'error'"
    )
    assert _text(page, "#error") == ""
    page.wait_for_function(
        "['input-img', 'output-img'].every((id) => { const i = document.getElementById(id);"
        " return i.complete && i.naturalWidth > 0; })"
    )
    assert page.eval_on_selector("#output-img", "i => i.naturalWidth") == 48
    assert "scene.png, 48x40" in _text(page, "#input-name")

    # Click pixel (30, 10) of the input and see its maps.
    width, height = page.eval_on_selector("#input-img", "i => [i.clientWidth, i.clientHeight]")
    page.locator("#input-img").click(position={"x": 30.5 * width / 48, "y": 10.5 * height / 40})
    page.wait_for_function(f"{STATE} === 'maps' || {STATE} === 'error'")
    assert _text(page, "#error") == ""
    assert page.locator("#maps-img").get_attribute("data-point") == "30,10"
    page.wait_for_function("document.getElementById('maps-img').naturalWidth > 0")
    assert page.eval_on_selector("#maps-img", "i => i.naturalWidth") == 3 * PANEL_PX
    assert "point (30, 10)" in _text(page, "#point-label")
    shot = page.screenshot()
    (tmp_path / "page.png").write_bytes(shot)
    assert Image.open(io.BytesIO(shot)).size[0] >= 3 * PANEL_PX

    # A file that is not an image: its message shows on the page.
    bad = tmp_path / "notes.png"
    bad.write_text("these are notes, not pixels")
    page.set_input_files("#file", str(bad))
    page.click("#upload-btn")
    page.wait_for_function(f"{STATE} === 'error'")
    assert "not an image file" in _text(page, "#error")
    assert page.locator("#error").is_visible()

    # Too many pixels: refused before decoding, message shown.
    large = tmp_path / "large.png"
    large.write_bytes(_png_bytes((100, 20)))
    page.set_input_files("#file", str(large))
    page.click("#upload-btn")
    page.wait_for_function(
        f"{STATE} === 'error' && "
        "document.getElementById('error').textContent.includes('limit is 64 px')"
    )
    assert "100x20 px; the limit is 64 px" in _text(page, "#error")
