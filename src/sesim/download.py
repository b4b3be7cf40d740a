"""Download the CycleGAN/pix2pix unpaired datasets (``sesim data download NAME``).

The archives are those of the CycleGAN repository's ``datasets/download_cyclegan_dataset.sh``:
``<base>/<NAME>.zip`` with ``<base>`` = https://efrosgans.eecs.berkeley.edu/cyclegan/datasets
(``SESIM_DATASETS_URL`` or ``base_url`` points elsewhere, e.g. a mirror or a test server). Each
unpacks to ``NAME/trainA trainB testA testB``.

The transfer goes to ``OUT/.NAME.zip.part`` and continues from there (HTTP ``Range``) when it was
cut. The archive's SHA-256 is compared with a known value: one given by the caller, else the one
recorded in ``OUT/.sesim-datasets.json`` by an earlier download (the upstream site publishes
none, so the first download records and prints it). The archive is unpacked into a temporary
folder in ``OUT``, which is renamed to ``OUT/NAME`` only once complete: a failure leaves no half
dataset. A dataset already complete is left alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

from sesim.errors import UserError
from sesim.runs import write_json

DEFAULT_BASE_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
BASE_URL_ENV = "SESIM_DATASETS_URL"
RECORD_FILE = ".sesim-datasets.json"
MARKER_FILE = ".sesim-download.json"

#: The archives of the CycleGAN download script, by name (cityscapes needs a login: see below).
DATASETS = (
    "apple2orange",
    "summer2winter_yosemite",
    "horse2zebra",
    "monet2photo",
    "cezanne2photo",
    "ukiyoe2photo",
    "vangogh2photo",
    "maps",
    "facades",
    "iphone2dslr_flower",
    "ae_photos",
    "grumpifycat",
    "mini",
)

#: SHA-256 of archives whose checksum is published; none are (see the module docstring).
KNOWN_SHA256: dict[str, str] = {}

_CITYSCAPES = (
    "cityscapes is not redistributed with the CycleGAN datasets: its licence requires a login. "
    "Register at https://www.cityscapes-dataset.com, download gtFine_trainvaltest.zip and "
    "leftImg8bit_trainvaltest.zip, and build the trainA/trainB folders with the CycleGAN "
    "repository's datasets/prepare_cityscapes_dataset.py"
)

_CHUNK = 1 << 16


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`download_dataset` did.

    Attributes:
        folder: the dataset folder ``OUT/NAME``.
        sha256: the archive's SHA-256 (empty when nothing was downloaded).
        downloaded: False when the dataset was already complete.
    """

    folder: Path
    sha256: str
    downloaded: bool


def dataset_url(name: str, base_url: str | None = None) -> str:
    """The archive URL of ``name`` (``base_url``, else ``$SESIM_DATASETS_URL``, else upstream)."""
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{name}.zip"


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a dataset (written by this module, or with trainA/ and trainB/)."""
    return (folder / MARKER_FILE).is_file() or (
        (folder / "trainA").is_dir() and (folder / "trainB").is_dir()
    )


def download_dataset(
    name: str,
    out: Path,
    base_url: str | None = None,
    sha256: str | None = None,
    quiet: bool = False,
    timeout: float = 60.0,
) -> DownloadResult:
    """Download and unpack one CycleGAN dataset into ``out/name``.

    Args:
        name: a name of :data:`DATASETS` (``cityscapes`` explains how to get it).
        out: the parent folder; the dataset lands in ``out/name``.
        base_url: where the archives are; None: ``$SESIM_DATASETS_URL`` or upstream.
        sha256: the archive's expected SHA-256; None: a known or earlier recorded one, if any.
        quiet: no progress bar.
        timeout: seconds without data before the transfer counts as cut.
    Returns:
        What was done (see :class:`DownloadResult`).
    Raises:
        UserError: an unknown name, no network, a cut transfer (run again to resume), a
            checksum mismatch or a broken archive; one line each.
    """
    if name == "cityscapes":
        raise UserError(_CITYSCAPES)
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    folder = out / name
    if is_complete(folder):
        return DownloadResult(folder, "", False)
    if folder.exists() and any(folder.iterdir()):
        raise UserError(
            f"{folder} exists but holds no complete dataset; remove it or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    records = _read_records(out)
    expected = (sha256 or KNOWN_SHA256.get(name) or records.get(name, "")).lower()
    url = dataset_url(name, base_url)
    part = out / f".{name}.zip.part"
    _fetch(url, part, quiet, timeout)
    digest = _sha256(part)
    if expected and digest != expected:
        part.unlink()
        raise UserError(
            f"checksum mismatch for {url}: expected sha256 {expected}, got {digest}; the file "
            f"was removed, run the command again to download it afresh"
        )
    _unpack(part, folder, name, url, digest)
    part.unlink()
    records[name] = digest
    write_json(out / RECORD_FILE, records)
    return DownloadResult(folder, digest, True)


def _read_records(out: Path) -> dict[str, str]:
    path = out / RECORD_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UserError(f"cannot read {path}; remove it (it only records checksums)") from None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _fetch(url: str, part: Path, quiet: bool, timeout: float) -> None:
    """Download ``url`` into ``part``, continuing a partial file with an HTTP Range request."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "sesim"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already whole, or stale
            part.unlink()
            return _fetch(url, part, quiet, timeout)
        raise UserError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        host = urlparse(url).netloc
        raise UserError(
            f"cannot reach {host} ({reason}): check the network connection, or set "
            f"{BASE_URL_ENV} (or --base-url) to a mirror holding {url.rsplit('/', 1)[-1]}"
        ) from None
    with response:
        if response.status != 206:  # the server sends the whole file: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        mode = "ab" if have else "wb"
        got = have
        with (
            open(part, mode) as fh,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=url.rsplit("/", 1)[-1],
                disable=quiet,
                file=sys.stderr,
            ) as bar,
        ):
            try:
                while chunk := response.read(_CHUNK):
                    fh.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            except (OSError, HTTPException) as exc:  # TimeoutError is an OSError
                raise _cut(url, got, total, exc) from None
        if total is not None and got < total:
            raise _cut(url, got, total, None)
    return None


def _cut(url: str, got: int, total: int | None, exc: BaseException | None) -> UserError:
    size = f"{got / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{got / 1e6:.1f} MB"
    why = f" ({type(exc).__name__})" if exc is not None else ""
    return UserError(
        f"the download of {url} was cut after {size}{why}; run the same command again to "
        f"continue it"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _unpack(archive: Path, folder: Path, name: str, url: str, digest: str) -> None:
    """Unpack into a temporary folder beside ``folder``, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=folder.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    target = Path(member)
                    if target.is_absolute() or ".." in target.parts:
                        raise UserError(f"{url} holds an unsafe path {member!r}; not unpacked")
                zf.extractall(tmp)
        except zipfile.BadZipFile:
            archive.unlink()
            raise UserError(
                f"{url} is not a zip archive (removed); run the command again, or check "
                f"{BASE_URL_ENV}"
            ) from None
        # The archives hold one folder NAME/; one without it is taken as the dataset itself.
        entries = [p for p in tmp.iterdir() if p.name != "__MACOSX"]
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        write_json(root / MARKER_FILE, {"name": name, "url": url, "sha256": digest})
        if folder.exists():
            folder.rmdir()  # empty (checked by the caller)
        os.replace(root, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
