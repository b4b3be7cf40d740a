"""A small local web page to try a run: translate an image and inspect its self-similarity maps.

``sesim serve --run RUN_DIR [--port P] [--host 127.0.0.1]`` starts a ``ThreadingHTTPServer``
(standard library only) bound to the loopback address by default. The page lists the run's test
images and takes uploads; it shows the input and its translation, and a click on the input
shows that point's self-similarity maps (global, local window, learned) in input and output,
rendered server-side as a PNG by :func:`sesim.viz.point_figure_png`.

Uploads are checked before any pixel is decoded: the body size (10 MB by default), the format
(decoded with Pillow, restricted to common raster formats) and the pixel size (2048 px per side
by default). Images are then shrunk to ``--max-side`` (512 px) for translation. Errors come
back as JSON and are shown on the page.

Routes::

    GET  /                     the page            GET  /app.js        its script
    POST /api/test/<i>         translate test image i
    POST /api/upload           translate the request body (an image file)
    GET  /api/image/<id>/input.png, /api/image/<id>/output.png
    GET  /api/maps/<id>.png?x=X&y=Y    maps of pixel (X, Y) of the input
"""

from __future__ import annotations

import html
import io
import json
import sys
import threading
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import torch
from PIL import Image, ImageOps
from torch import Tensor

from sesim.data.images import (
    ImageTooLargeError,
    list_images,
    load_rgb,
    open_image,
    to_pil,
    to_rgb,
    to_tensor,
)
from sesim.devices import resolve_device
from sesim.errors import UserError
from sesim.translate import translate_batch
from sesim.viz import (
    build_extractor,
    compute_selfsim_maps,
    fit_max_side,
    load_run,
    point_figure_png,
)

MAX_UPLOAD_BYTES = 10_000_000
MAX_UPLOAD_SIDE = 2048
DEFAULT_MAX_SIDE = 512
DEFAULT_PORT = 8765
MAX_CACHED = 32
MAX_LISTED = 500
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")


class RequestError(Exception):
    """A request the page can recover from; its message is shown to the user.

    Args:
        message: what went wrong and what to do.
        status: HTTP status of the answer.
    """

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes, max_bytes: int, max_side: int) -> Image.Image:
    """Check and decode an uploaded image file.

    The pixel size is read from the header and checked before the pixels are decoded, so a
    small file claiming a huge image costs nothing.

    Args:
        data: the file's bytes.
        max_bytes: largest accepted file size.
        max_side: largest accepted image side in pixels.

    Returns:
        The image as 8-bit RGB (EXIF orientation applied).

    Raises:
        RequestError: empty, too large, not an image of an accepted format, or too many pixels.
    """
    if not data:
        raise RequestError("the upload is empty: choose an image file")
    if len(data) > max_bytes:
        raise RequestError(
            f"the file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    try:
        img = open_image(io.BytesIO(data), "the upload", formats=list(ALLOWED_FORMATS))
    except ImageTooLargeError as exc:
        raise RequestError(str(exc), HTTPStatus.REQUEST_ENTITY_TOO_LARGE) from None
    except Exception:
        raise RequestError(
            f"not an image file Pillow can read as {', '.join(ALLOWED_FORMATS)}: "
            "upload a PNG or JPEG"
        ) from None
    w, h = img.size
    if max(w, h) > max_side:
        raise RequestError(
            f"the image is {w}x{h} px; the limit is {max_side} px per side: shrink it first"
        )
    try:
        img.load()
        oriented: Image.Image = ImageOps.exif_transpose(img) or img
        return to_rgb(oriented)
    except Exception as exc:
        raise RequestError(
            f"the {img.format} file cannot be decoded ({str(exc)[:100] or type(exc).__name__})"
        ) from None


@dataclass
class Item:
    """One translated image held by the server.

    Attributes:
        name: file name shown on the page.
        x: (3, H, W) input in [-1, 1] (after shrinking to the working size), CPU.
        y: (3, H, W) translation, CPU.
        pngs: encoded ``input`` and ``output`` PNGs.
    """

    name: str
    x: Tensor
    y: Tensor
    pngs: dict[str, bytes] = field(default_factory=dict)


def _png(t: Tensor) -> bytes:
    buf = io.BytesIO()
    to_pil(t).save(buf, format="PNG")
    return buf.getvalue()


class ServeApp:
    """What the server does, free of HTTP: translate images and render maps.

    Args:
        G: the generator (eval mode, on ``device``).
        extractor: features for the maps (:class:`sesim.viz.MapExtractor`, on ``device``).
        device: where G and the extractor run.
        title: shown on the page (run name and step).
        test_images: image files offered in the list.
        window: local window side of the maps (None: whole map).
        max_side: images are shrunk to this longer side before translation.
        max_upload_bytes: largest accepted upload.
        max_upload_side: largest accepted upload side in pixels.
    """

    def __init__(
        self,
        G: torch.nn.Module,
        extractor: Any,
        device: torch.device,
        title: str,
        test_images: list[Path],
        window: int | None,
        max_side: int = DEFAULT_MAX_SIDE,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        max_upload_side: int = MAX_UPLOAD_SIDE,
    ) -> None:
        self.G = G
        self.extractor = extractor
        self.device = device
        self.title = title
        self.test_images = test_images
        self.window = window
        self.max_side = max_side
        self.max_upload_bytes = max_upload_bytes
        self.max_upload_side = max_upload_side
        self._items: OrderedDict[str, Item] = OrderedDict()
        # One lock for torch and matplotlib work: pyplot is not thread-safe, and one model
        # call at a time keeps memory bounded.
        self._lock = threading.Lock()

    def translate(self, img: Image.Image, name: str) -> tuple[str, Item]:
        """Translate an RGB image and keep it for later map requests.

        Args:
            img: the image (any size; shrunk to ``max_side``).
            name: shown on the page.

        Returns:
            The item's id and the item.
        """
        img = fit_max_side(img, self.max_side)
        x = to_tensor(img)
        with self._lock:
            y = translate_batch(self.G, x[None].to(self.device))[0].cpu()
            item = Item(name, x, y, {"input": _png(x), "output": _png(y)})
            key = uuid.uuid4().hex[:16]
            self._items[key] = item
            while len(self._items) > MAX_CACHED:
                self._items.popitem(last=False)
        return key, item

    def translate_test(self, index: int) -> tuple[str, Item]:
        """Translate the ``index``-th test image."""
        if not 0 <= index < len(self.test_images):
            raise RequestError(f"no test image number {index}", HTTPStatus.NOT_FOUND)
        path = self.test_images[index]
        try:
            img = load_rgb(path)
        except UserError as exc:
            raise RequestError(str(exc)) from None
        return self.translate(img, path.name)

    def item(self, key: str) -> Item:
        """A kept item; an expired or unknown id is a :class:`RequestError`."""
        with self._lock:
            item = self._items.get(key)
        if item is None:
            raise RequestError(
                "this image is no longer held by the server: translate it again",
                HTTPStatus.NOT_FOUND,
            )
        return item

    def maps_png(self, key: str, x: int, y: int) -> bytes:
        """PNG of the self-similarity maps of pixel (x, y) of an item's input, in input and output.

        Raises:
            RequestError: unknown item or a point outside the image.
        """
        item = self.item(key)
        H, W = item.x.shape[1:]
        if not (0 <= x < W and 0 <= y < H):
            raise RequestError(f"point {x},{y} lies outside the {W}x{H} image")
        with self._lock:
            maps = compute_selfsim_maps(
                self.extractor,
                item.x.to(self.device),
                item.y.to(self.device),
                [(x, y)],
                self.window,
                "cosine",
                with_error=False,
            )
            return point_figure_png(maps, 0)


def page_html(app: ServeApp) -> str:
    """The page: pick or upload an image, see its translation, click for maps."""
    options = "\n".join(
        f'<option value="{i}">{html.escape(p.name)}</option>'
        for i, p in enumerate(app.test_images[:MAX_LISTED])
    )
    pick = (
        f'<select id="test-image">{options}</select> '
        '<button type="submit" id="translate-test">Translate</button>'
        if app.test_images
        else "<em>no test images found for this run</em>"
    )
    limit_mb = app.max_upload_bytes / 1e6
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>sesim: {html.escape(app.title)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.2em; color: #222; }}
form {{ margin: .4em 0; }}
#error {{ color: #b00020; background: #fde8ec; padding: .5em .8em; border-radius: 4px; }}
#status {{ color: #555; min-height: 1.3em; }}
.row {{ display: flex; gap: 1.2em; align-items: flex-start; flex-wrap: wrap; }}
figure {{ margin: 0; }}
.pic {{ width: 256px; image-rendering: pixelated; border: 1px solid #ccc; }}
#input-img {{ cursor: crosshair; }}
.frame {{ position: relative; display: inline-block; line-height: 0; }}
.marker {{ position: absolute; width: 10px; height: 10px; margin: -7px 0 0 -7px;
  border: 2px solid #fff; border-radius: 50%; background: #ff3b30; pointer-events: none; }}
#maps-img {{ max-width: 100%; }}
</style></head>
<body>
<h1>sesim: {html.escape(app.title)}</h1>
<form id="pick">Test image: {pick}</form>
<form id="upload">Or upload an image (PNG/JPEG, at most {limit_mb:.0f} MB and
{app.max_upload_side} px per side):
<input type="file" id="file" accept="image/*">
<button type="submit" id="upload-btn">Upload and translate</button></form>
<div id="error" role="alert" hidden></div>
<div id="status" aria-live="polite"></div>
<div id="result" hidden>
<div class="row">
<figure><span class="frame"><img id="input-img" class="pic" alt="input">
<span class="marker" hidden></span></span>
<figcaption>input <span id="input-name"></span>: click a point</figcaption></figure>
<figure><span class="frame"><img id="output-img" class="pic" alt="translation">
<span class="marker" hidden></span></span>
<figcaption>translation</figcaption></figure>
</div>
<h2 id="point-label">Click a point on the input to see its self-similarity maps.</h2>
<img id="maps-img" alt="self-similarity maps" hidden>
</div>
<script src="/app.js"></script>
</body></html>
"""


APP_JS = """'use strict';
const $ = (id) => document.getElementById(id);
let current = null;

function showError(msg) {
  const box = $('error');
  box.textContent = msg;
  box.hidden = !msg;
}

async function call(url, options) {
  const resp = await fetch(url, options);
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok || !body || body.error) {
    throw new Error((body && body.error) || ('the server answered ' + resp.status));
  }
  return body;
}

function show(item) {
  current = item;
  $('input-img').src = item.input;
  $('output-img').src = item.output;
  $('input-name').textContent = '(' + item.name + ', ' + item.width + 'x' + item.height + ')';
  $('maps-img').hidden = true;
  document.querySelectorAll('.marker').forEach((m) => { m.hidden = true; });
  $('maps-img').removeAttribute('data-point');
  $('point-label').textContent = 'Click a point on the input to see its self-similarity maps.';
  $('result').hidden = false;
  $('status').textContent = 'translated ' + item.name;
  document.body.dataset.state = 'translated';
}

async function run(label, url, options) {
  showError('');
  $('status').textContent = label;
  document.body.dataset.state = 'busy';
  try {
    show(await call(url, options));
  } catch (e) {
    showError(e.message);
    $('status').textContent = '';
    document.body.dataset.state = 'error';
  }
}

if ($('pick')) {
  $('pick').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const sel = $('test-image');
    if (sel) run('translating...', '/api/test/' + sel.value, {method: 'POST'});
  });
}

$('upload').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const file = $('file').files[0];
  if (!file) { showError('choose an image file first'); return; }
  run('uploading ' + file.name + '...', '/api/upload', {
    method: 'POST', body: file,
    headers: {'X-Filename': encodeURIComponent(file.name)},
  });
});

$('input-img').addEventListener('click', (ev) => {
  if (!current) return;
  const img = ev.currentTarget;
  const fx = ev.offsetX / img.clientWidth, fy = ev.offsetY / img.clientHeight;
  const x = Math.min(current.width - 1, Math.max(0, Math.floor(fx * current.width)));
  const y = Math.min(current.height - 1, Math.max(0, Math.floor(fy * current.height)));
  document.querySelectorAll('.marker').forEach((m) => {
    const pic = m.previousElementSibling;
    m.style.left = (pic.clientLeft + (x + 0.5) / current.width * pic.clientWidth) + 'px';
    m.style.top = (pic.clientTop + (y + 0.5) / current.height * pic.clientHeight) + 'px';
    m.hidden = false;
  });
  const maps = $('maps-img');
  showError('');
  $('point-label').textContent = 'loading the maps of point (' + x + ', ' + y + ')...';
  document.body.dataset.state = 'busy';
  const url = '/api/maps/' + current.id + '.png?x=' + x + '&y=' + y;
  fetch(url).then(async (resp) => {
    if (!resp.ok) {
      let msg = 'the server answered ' + resp.status;
      try { msg = (await resp.json()).error || msg; } catch (e) {}
      throw new Error(msg);
    }
    return resp.blob();
  }).then((blob) => {
    maps.onload = () => {
      maps.hidden = false;
      maps.dataset.point = x + ',' + y;
      $('point-label').textContent = 'self-similarity maps of point (' + x + ', ' + y + ')';
      document.body.dataset.state = 'maps';
    };
    if (maps.src.startsWith('blob:')) URL.revokeObjectURL(maps.src);
    maps.src = URL.createObjectURL(blob);
  }).catch((e) => {
    showError(e.message);
    document.body.dataset.state = 'error';
  });
});
"""


class _Handler(BaseHTTPRequestHandler):
    """HTTP front of a :class:`ServeApp` (set as ``server.app``)."""

    server: SesimServer
    protocol_version = "HTTP/1.1"

    # Answers.
    def _send(self, status: HTTPStatus, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' blob:; style-src 'self' 'unsafe-inline'",
        )
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: dict[str, Any], status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, exc: RequestError) -> None:
        self._json({"error": str(exc)}, exc.status)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _host_ok(self) -> bool:
        """Refuse other Host headers (a DNS-rebinding guard for the loopback server)."""
        allowed = self.server.allowed_hosts
        return allowed is None or (self.headers.get("Host") or "").lower() in allowed

    def _item_json(self, key: str, item: Item) -> dict[str, Any]:
        return {
            "id": key,
            "name": item.name,
            "width": int(item.x.shape[2]),
            "height": int(item.x.shape[1]),
            "input": f"/api/image/{key}/input.png",
            "output": f"/api/image/{key}/output.png",
        }

    def _internal(self, exc: Exception) -> None:
        """Answer an unexpected failure with a message instead of dropping the connection."""
        traceback.print_exception(exc, file=sys.stderr)
        self.close_connection = True
        message = f"internal error ({type(exc).__name__}: {str(exc)[:200]}); see the server log"
        self._error(RequestError(message, HTTPStatus.INTERNAL_SERVER_ERROR))

    # Routes.
    def do_GET(self) -> None:
        try:
            self._get()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the browser went away; nobody to answer
        except Exception as exc:
            self._internal(exc)

    def do_POST(self) -> None:
        try:
            self._post()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the browser went away; nobody to answer
        except Exception as exc:
            self._internal(exc)

    def _get(self) -> None:
        if not self._host_ok():
            self._error(RequestError("unexpected Host header", HTTPStatus.FORBIDDEN))
            return
        app = self.server.app
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        try:
            if not parts:
                self._send(HTTPStatus.OK, page_html(app).encode(), "text/html; charset=utf-8")
            elif parts == ["app.js"]:
                self._send(HTTPStatus.OK, APP_JS.encode(), "text/javascript; charset=utf-8")
            elif len(parts) == 4 and parts[:2] == ["api", "image"]:
                which = parts[3].removesuffix(".png")
                item = app.item(parts[2])
                if which not in item.pngs:
                    raise RequestError("no such image", HTTPStatus.NOT_FOUND)
                self._send(HTTPStatus.OK, item.pngs[which], "image/png")
            elif len(parts) == 3 and parts[:2] == ["api", "maps"] and parts[2].endswith(".png"):
                query = parse_qs(url.query)
                try:
                    x, y = int(query["x"][0]), int(query["y"][0])
                except (KeyError, ValueError):
                    raise RequestError("give the point as ?x=X&y=Y (whole pixels)") from None
                png = app.maps_png(parts[2].removesuffix(".png"), x, y)
                self._send(HTTPStatus.OK, png, "image/png")
            elif parts == ["favicon.ico"]:
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            else:
                raise RequestError("not found", HTTPStatus.NOT_FOUND)
        except RequestError as exc:
            self._error(exc)

    def _post(self) -> None:
        if not self._host_ok():
            self.close_connection = True
            self._error(RequestError("unexpected Host header", HTTPStatus.FORBIDDEN))
            return
        app = self.server.app
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        try:
            if length < 0:
                self.close_connection = True
                raise RequestError("bad Content-Length")
            if parts == ["api", "upload"]:
                if length > app.max_upload_bytes:
                    self._discard(length)
                    raise RequestError(
                        f"the file is {length / 1e6:.1f} MB; the limit is "
                        f"{app.max_upload_bytes / 1e6:.1f} MB",
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    )
                data = self.rfile.read(length)
                img = decode_upload(data, app.max_upload_bytes, app.max_upload_side)
                name = _filename(self.headers.get("X-Filename"))
                key, item = app.translate(img, name)
                self._json(self._item_json(key, item))
                return
            self._discard(length)
            if len(parts) == 3 and parts[:2] == ["api", "test"]:
                try:
                    index = int(parts[2])
                except ValueError:
                    raise RequestError("test image index must be a number") from None
                key, item = app.translate_test(index)
                self._json(self._item_json(key, item))
                return
            raise RequestError("not found", HTTPStatus.NOT_FOUND)
        except RequestError as exc:
            self._error(exc)

    def _discard(self, length: int) -> None:
        """Drop a request body that will not be used (closing instead when it is huge)."""
        if length > 4 * self.server.app.max_upload_bytes:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                break
            length -= len(chunk)


def _filename(header: str | None) -> str:
    name = Path(unquote(header or "upload")).name
    return name[:120] or "upload"


class SesimServer(ThreadingHTTPServer):
    """The HTTP server of a :class:`ServeApp`.

    Args:
        address: (host, port); port 0 picks a free one.
        app: the application.
        quiet: no request log on stderr.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: ServeApp, quiet: bool = False) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.quiet = quiet
        host, port = str(self.server_address[0]), int(self.server_address[1])
        # On a loopback address only the page's own names are accepted as Host (a guard against
        # DNS rebinding); on other addresses any name the machine is reached by.
        self.allowed_hosts: set[str] | None = None
        if host.startswith("127.") or host == "::1":
            names = {host, "localhost", "127.0.0.1", "[::1]"}
            self.allowed_hosts = {f"{n}:{port}" for n in names} | names

    @property
    def url(self) -> str:
        """The page's address."""
        host, port = str(self.server_address[0]), int(self.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


def list_run_images(cfg: Any, folder: Path | None = None) -> list[Path]:
    """The run's test images of the source domain (``testA`` for AtoB), or a folder's images.

    Args:
        cfg: the run's config.
        folder: a folder to list instead.

    Returns:
        Image files (empty when the folder is missing or holds none).
    """
    if folder is None:
        split = "testA" if cfg.data.direction == "AtoB" else "testB"
        folder = Path(cfg.data.root) / split
    try:
        return list_images(folder, "test images")[:MAX_LISTED]
    except UserError:
        return []


def build_app(
    run: Path | None,
    checkpoint: Path | None,
    device: torch.device,
    *,
    images: Path | None = None,
    vgg_weights: str | None = None,
    layer: str | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_upload_side: int = MAX_UPLOAD_SIDE,
) -> ServeApp:
    """Load a run and build the page's application.

    Args:
        run: run folder (newest checkpoint), or None with ``checkpoint``.
        checkpoint: a checkpoint file.
        device: where the networks run.
        images: folder of images to list (default: the run's test images).
        vgg_weights: VGG16 weights of the maps (default: the run's; see ``sesim viz``).
        layer: VGG16 layer of the maps (default relu3_1).
        max_side: images are shrunk to this longer side.
        max_upload_bytes: largest accepted upload.
        max_upload_side: largest accepted upload side.

    Returns:
        The application.
    """
    loaded = load_run(run, checkpoint, device)
    extractor = build_extractor(loaded, layer, vgg_weights, device)
    name = run.name if run is not None else loaded.checkpoint.name
    if images is not None and not images.is_dir():
        raise UserError(f"--images {images} is not a folder")
    return ServeApp(
        loaded.G,
        extractor,
        device,
        f"{name}, step {loaded.step}",
        list_run_images(loaded.cfg, images),
        loaded.cfg.structure.loss.window,
        max_side=max_side,
        max_upload_bytes=max_upload_bytes,
        max_upload_side=max_upload_side,
    )


def serve_run(
    run: Path | None = None,
    checkpoint: Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    device: str = "auto",
    images: Path | None = None,
    vgg_weights: str | None = None,
    layer: str | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    max_upload_mb: float = MAX_UPLOAD_BYTES / 1e6,
    quiet: bool = False,
) -> None:
    """Serve the page of a run until Ctrl-C (see :func:`build_app` for the arguments).

    Args:
        run: run folder (newest checkpoint), or None with ``checkpoint``.
        checkpoint: a checkpoint file.
        host: the address to bind (the page has no authentication: a notice is printed for
            anything but the loopback address).
        port: the port (0 picks a free one).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        images: folder of images to list (default: the run's test images).
        vgg_weights: VGG16 weights of the maps (default: the run's).
        layer: VGG16 layer of the maps (default relu3_1).
        max_side: images are shrunk to this longer side before translating.
        max_upload_mb: largest accepted upload, in MB.
        quiet: no request log.
    Raises:
        UserError: a bad setting, a missing run, or a port that cannot be bound.
    """
    if not max_upload_mb > 0:
        raise UserError("--max-upload-mb must be > 0")
    dev = resolve_device(device)
    app = build_app(
        run,
        checkpoint,
        dev,
        images=images,
        vgg_weights=vgg_weights,
        layer=layer,
        max_side=max_side,
        max_upload_bytes=int(max_upload_mb * 1e6),
    )
    try:
        server = SesimServer((host, port), app, quiet=quiet)
    except OSError as exc:
        raise UserError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose another --port (0 picks a free one)"
        ) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"notice: listening on {host}: anyone who can reach it can use the page "
            "(no authentication)",
            file=sys.stderr,
        )
    print(f"serving {app.title} at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
