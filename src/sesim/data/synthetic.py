"""Procedural unpaired datasets with ground truth, for tests, demos and benchmarks.

Three tasks, each a pair of domains that share the scene structure and differ in appearance:

- ``"layout"`` (a Cityscapes analogue): a street-like label map of six classes (sky, ground,
  building rectangles, blob objects, thin poles, triangular signs). Domain A paints every class
  in a flat palette colour (a label map); domain B paints the same kind of layout with per-class
  textures (gradients, checkers, stripes, window grids, noise), smooth illumination and pixel
  noise.
- ``"shapes"`` (a horse->zebra analogue): one to three shapes (ellipses, rotated rectangles,
  triangles) on a background. A: smooth colour gradients on a smooth background. B: zebra-like
  warped stripes on a textured background. The label is the shape class, background 0.
- ``"multistyle"``: the ``"layout"`` scenes, but domain B picks one of three texture and colour
  families per image (day, night, autumn), so the target domain is multi-modal. The family is
  the sample's ``style``.

Everything is a pure function of a seed (numpy ``Generator`` objects made from
``numpy.random.SeedSequence``; no global random state), vectorised over pixels, so a 128-px
scene renders in a few milliseconds, and the same seed always gives the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from sesim.errors import UserError

Array = np.ndarray

# ---------------------------------------------------------------------------------------------
# Public types and registry.


@dataclass(frozen=True)
class SyntheticSample:
    """One scene rendered in both domains.

    Attributes:
        a: (H, W, 3) uint8 rendering in domain A.
        b: (H, W, 3) uint8 rendering in domain B of the same layout.
        label: (H, W) uint8 class index per pixel (see ``TASKS[task].class_names``).
        style: the appearance family of ``b`` (0 unless the task has several).
    """

    a: Array
    b: Array
    label: Array
    style: int


@dataclass(frozen=True)
class Layout:
    """The structure of a scene.

    Attributes:
        label: (H, W) uint8 class per pixel.
        instance: (H, W) int32 instance id per pixel, 0 for the background classes.
        n_instances: number of instance ids used (ids are 1..n_instances).
    """

    label: Array
    instance: Array
    n_instances: int


@dataclass(frozen=True)
class Task:
    """A synthetic translation task.

    Attributes:
        name: registry key.
        description: one line for help texts.
        class_names: names of the label classes, index = class id.
        palette: (K, 3) RGB colours for visualising labels (and domain A's colours where
            ``a_rendering`` is ``"flat palette"``).
        n_styles: number of appearance families of domain B.
        style_names: their names.
        a_rendering: how domain A is drawn, recorded in meta.json.
        layout: ``(rng, size) -> Layout``.
        render_a: ``(layout, rng) -> (H, W, 3) uint8``.
        render_b: ``(layout, style, rng) -> (H, W, 3) uint8``.
    """

    name: str
    description: str
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    n_styles: int
    style_names: tuple[str, ...]
    a_rendering: str
    layout: Callable[[np.random.Generator, int], Layout]
    render_a: Callable[[Layout, np.random.Generator], Array]
    render_b: Callable[[Layout, int, np.random.Generator], Array]

    @property
    def n_classes(self) -> int:
        """Number of label classes."""
        return len(self.class_names)


# ---------------------------------------------------------------------------------------------
# Pixel helpers. Coordinates are normalised (pixel centres in [0, 1)); every helper works on
# coordinate arrays of any shape (a full (H, W) grid or the (N,) pixels of one region) and draws
# the same random numbers whatever that shape, so a region's look never depends on its area.


def _grid(size: int) -> tuple[Array, Array]:
    """(H, W) float32 y and x coordinates of pixel centres in [0, 1)."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.broadcast_to(c[:, None], (size, size)), np.broadcast_to(c[None, :], (size, size))


def _window(size: int, y0: float, y1: float, x0: float, x1: float) -> tuple[slice, slice]:
    """Row and column slices of the pixels whose centres may lie in [y0, y1] x [x0, x1]."""

    def span(lo: float, hi: float) -> slice:
        a = min(max(int(np.floor(lo * size)) - 1, 0), size)
        b = min(max(int(np.ceil(hi * size)) + 1, 0), size)
        return slice(a, b)

    return span(y0, y1), span(x0, x1)


def _value_noise(rng: np.random.Generator, yy: Array, xx: Array, cells: int) -> Array:
    """Smooth value noise in [0, 1] at the given points (same shape as ``yy``).

    Args:
        rng: random source; draws ``(cells + 1) ** 2`` numbers whatever the number of points.
        yy, xx: normalised coordinates.
        cells: lattice cells per image side (the feature size is about 1 / cells).
    """
    return _interpolate(_lattice(rng, cells), yy, xx)


def _lattice(rng: np.random.Generator, cells: int) -> Array:
    """(cells + 1, cells + 1) float32 random lattice values for `_interpolate`."""
    cells = max(int(cells), 1)
    return rng.random((cells + 1, cells + 1), dtype=np.float32)


def _interpolate(lattice: Array, yy: Array, xx: Array) -> Array:
    """Smoothstep-interpolated lattice values at normalised points (same shape as ``yy``)."""
    cells = lattice.shape[0] - 1
    flat = lattice.ravel()
    py = np.clip(yy, 0.0, 1.0) * np.float32(cells)
    px = np.clip(xx, 0.0, 1.0) * np.float32(cells)
    iy = np.minimum(py.astype(np.intp), cells - 1)
    ix = np.minimum(px.astype(np.intp), cells - 1)
    fy, fx = py - iy, px - ix
    fy, fx = fy * fy * (3.0 - 2.0 * fy), fx * fx * (3.0 - 2.0 * fx)
    i00 = iy * (cells + 1) + ix
    g00, g01 = flat.take(i00), flat.take(i00 + 1)
    g10, g11 = flat.take(i00 + cells + 1), flat.take(i00 + cells + 2)
    top = g00 + (g01 - g00) * fx
    bot = g10 + (g11 - g10) * fx
    return top + (bot - top) * fy


def _fbm(rng: np.random.Generator, yy: Array, xx: Array, cells: int, octaves: int = 3) -> Array:
    """Fractal noise in [0, 1] at the given points: octaves of value noise, halving amplitude."""
    total = np.zeros(yy.shape, dtype=np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        total += np.float32(amp) * _value_noise(rng, yy, xx, cells * 2**o)
        norm += amp
        amp *= 0.5
    return total / np.float32(norm)


def _rotated(yy: Array, xx: Array, angle: float) -> tuple[Array, Array]:
    """Coordinates (u along direction ``angle``, v across it), same shape as the inputs."""
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    return xx * c + yy * s, -xx * s + yy * c


def _mix(t: Array, c1: Array, c2: Array) -> Array:
    """(..., 3) float32 blend ``c1 * (1 - t) + c2 * t`` of two (3,) colours by (...) ``t``."""
    t = t[..., None].astype(np.float32)
    return c1 * (1 - t) + c2 * t


def _color(rng: np.random.Generator, rgb: tuple[int, int, int], jitter: float) -> Array:
    """(3,) float32 colour ``rgb`` moved by up to ``jitter`` per channel."""
    c = np.asarray(rgb, dtype=np.float32) + rng.uniform(-jitter, jitter, 3).astype(np.float32)
    return np.clip(c, 0, 255)


def _finish(img: Array, rng: np.random.Generator, shade: float, noise: float) -> Array:
    """Apply smooth multiplicative illumination and Gaussian pixel noise; return uint8.

    Args:
        img: (H, W, 3) float32 in 0..255.
        rng: random source.
        shade: amplitude of the illumination field (0 = none).
        noise: standard deviation of the pixel noise in 0..255 units.
    Returns:
        (H, W, 3) uint8.
    """
    yy, xx = _grid(img.shape[0])
    u, _ = _rotated(yy - 0.5, xx - 0.5, rng.uniform(0, 2 * np.pi))
    light = 1.0 + shade * (_value_noise(rng, yy, xx, 2) - 0.5) + 0.5 * shade * u
    out = img * light[:, :, None]
    out += np.float32(noise) * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Shape masks, evaluated on a coordinate window.


def _ellipse_blob(
    yy: Array, xx: Array, cy: float, cx: float, ry: float, rx: float, angle: float, wobble: Array
) -> Array:
    """Bool mask of a rotated ellipse whose radius wobbles with angular harmonics.

    ``wobble`` is (2, 2): amplitudes and phases of the 2nd and 3rd harmonics.
    """
    u, v = _rotated(yy - cy, xx - cx, angle)
    theta = np.arctan2(v, u)
    r = np.sqrt((u / ry) ** 2 + (v / rx) ** 2)
    edge = 1.0 + wobble[0, 0] * np.sin(2 * theta + wobble[0, 1])
    edge = edge + wobble[1, 0] * np.sin(3 * theta + wobble[1, 1])
    return r <= edge


def _building(
    yy: Array, xx: Array, x0: float, x1: float, top: float, bottom: float, slope: float
) -> Array:
    """Bool mask of a building: columns [x0, x1) from ``top`` down to a base line of ``slope``."""
    return (xx >= x0) & (xx < x1) & (yy >= top) & (yy < bottom + slope * (xx - 0.5))


def _box(yy: Array, xx: Array, cy: float, cx: float, h: float, w: float, angle: float) -> Array:
    """Bool mask of a rectangle of half-sides (h, w) rotated by ``angle``."""
    u, v = _rotated(yy - cy, xx - cx, angle)
    return (np.abs(u) <= w) & (np.abs(v) <= h)


def _triangle(yy: Array, xx: Array, pts: Array) -> Array:
    """Bool mask of the triangle with (3, 2) vertices ``pts`` as (y, x)."""
    signs = []
    for k in range(3):
        (y0, x0), (y1, x1) = pts[k], pts[(k + 1) % 3]
        signs.append((xx - x0) * (y1 - y0) - (yy - y0) * (x1 - x0))
    s0, s1, s2 = signs
    return ((s0 >= 0) & (s1 >= 0) & (s2 >= 0)) | ((s0 <= 0) & (s1 <= 0) & (s2 <= 0))


def _segment(
    yy: Array, xx: Array, p0: tuple[float, float], p1: tuple[float, float], width: float
) -> Array:
    """Bool mask of a thick line segment from p0 to p1 (as (y, x))."""
    (y0, x0), (y1, x1) = p0, p1
    dy, dx = y1 - y0, x1 - x0
    t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / (dy * dy + dx * dx + 1e-12), 0.0, 1.0)
    return (yy - y0 - t * dy) ** 2 + (xx - x0 - t * dx) ** 2 <= (width / 2) ** 2


def _random_triangle(rng: np.random.Generator, cy: float, cx: float, r: float) -> Array:
    """(3, 2) vertices of a random, not too thin triangle around (cy, cx)."""
    base = rng.uniform(0, 2 * np.pi)
    angles = base + np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.4, 0.4, 3)
    radii = r * rng.uniform(0.75, 1.1, 3)
    return np.stack([cy + radii * np.sin(angles), cx + radii * np.cos(angles)], axis=1)


class _Painter:
    """Accumulates a label map and an instance map, one shape at a time (later shapes on top)."""

    def __init__(self, size: int, background: int) -> None:
        self.size = size
        self.yy, self.xx = _grid(size)
        self.label = np.full((size, size), background, dtype=np.uint8)
        self.instance = np.zeros((size, size), dtype=np.int32)
        self.n = 0

    def paint(
        self,
        cls: int,
        box: tuple[float, float, float, float],
        mask: Callable[[Array, Array], Array],
    ) -> None:
        """Paint class ``cls`` where ``mask(yy, xx)`` holds inside ``box = (y0, y1, x0, x1)``."""
        rows, cols = _window(self.size, *box)
        inside = mask(self.yy[rows, cols], self.xx[rows, cols])
        self.n += 1
        self.label[rows, cols][inside] = cls
        self.instance[rows, cols][inside] = self.n

    def layout(self) -> Layout:
        return Layout(label=self.label, instance=self.instance, n_instances=self.n)


# ---------------------------------------------------------------------------------------------
# Task "layout" / "multistyle": street-like scenes.

SKY, GROUND, BUILDING, OBJECT, POLE, SIGN = range(6)
_LAYOUT_CLASSES = ("sky", "ground", "building", "object", "pole", "sign")
_LAYOUT_PALETTE = (
    (70, 130, 180),
    (128, 64, 128),
    (70, 70, 70),
    (0, 0, 142),
    (153, 153, 153),
    (220, 220, 0),
)


def _street_layout(rng: np.random.Generator, size: int) -> Layout:
    """A street-like scene: sky over ground, buildings on the horizon, objects, poles, signs."""
    p = _Painter(size, background=SKY)
    horizon = rng.uniform(0.38, 0.62)
    slope = rng.uniform(-0.15, 0.15)
    p.label[p.yy >= horizon + slope * (p.xx - 0.5)] = GROUND

    for _ in range(rng.integers(2, 6)):
        x0, w = rng.uniform(-0.1, 0.9), rng.uniform(0.1, 0.32)
        top = rng.uniform(0.05, max(horizon - 0.08, 0.1))
        bottom = horizon + rng.uniform(0.0, 0.08)  # the base follows the tilted horizon

        building = partial(_building, x0=x0, x1=x0 + w, top=top, bottom=bottom, slope=slope)
        p.paint(BUILDING, (top, 1.0, x0, x0 + w), building)

    for _ in range(rng.integers(1, 3)):
        cx, cy = rng.uniform(0.1, 0.9), rng.uniform(0.15, 0.7)
        pts = _random_triangle(rng, cy, cx, rng.uniform(0.06, 0.14))
        box = (pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max())
        p.paint(SIGN, box, partial(_triangle, pts=pts))

    for _ in range(rng.integers(1, 5)):
        cx, cy = rng.uniform(0.05, 0.95), rng.uniform(horizon, 0.95)
        ry, rx = rng.uniform(0.04, 0.12), rng.uniform(0.05, 0.16)
        wobble = np.stack([rng.uniform(0.0, 0.15, 2), rng.uniform(0, 2 * np.pi, 2)], axis=1)
        angle = rng.uniform(0, np.pi)
        r = max(ry, rx) * 1.3
        p.paint(
            OBJECT,
            (cy - r, cy + r, cx - r, cx + r),
            partial(_ellipse_blob, cy=cy, cx=cx, ry=ry, rx=rx, angle=angle, wobble=wobble),
        )

    for _ in range(rng.integers(1, 5)):
        x = rng.uniform(0.03, 0.97)
        y_top, y_bot = rng.uniform(0.05, 0.4), rng.uniform(0.7, 1.0)
        lean = rng.uniform(-0.05, 0.05)
        width = max(rng.uniform(0.012, 0.028), 1.6 / size)
        ends = ((y_top, x + lean), (y_bot, x))
        box = (y_top - width, y_bot + width, min(x, x + lean) - width, max(x, x + lean) + width)
        p.paint(POLE, box, partial(_segment, p0=ends[0], p1=ends[1], width=width))

    return p.layout()


def _flat_palette(layout: Layout, palette: Array) -> Array:
    """(H, W, 3) uint8: every class in its palette colour."""
    return palette[layout.label]


TextureKind = Literal["gradient", "noise", "checker", "stripes", "windows", "dots"]


@dataclass(frozen=True)
class _Texture:
    """A texture: a pattern ``kind`` mixing colours ``c1`` and ``c2``.

    ``scale`` is the pattern period (or noise feature size) as a fraction of the image side.
    """

    kind: TextureKind
    c1: tuple[int, int, int]
    c2: tuple[int, int, int]
    scale: float


def _texture(tex: _Texture, rng: np.random.Generator, yy: Array, xx: Array) -> Array:
    """(..., 3) float32 texture at the given points, randomised in phase, angle and colours.

    The numbers drawn from ``rng`` do not depend on the number of points.
    """
    c1, c2 = _color(rng, tex.c1, 18.0), _color(rng, tex.c2, 18.0)
    period = tex.scale * rng.uniform(0.75, 1.3)
    angle = rng.uniform(0, 2 * np.pi)
    tilt = rng.uniform(-0.3, 0.3)
    phase = rng.uniform(0, 1, 2).astype(np.float32)
    noise = _lattice(rng, 4)  # drawn for every kind, evaluated where used
    if tex.kind == "gradient":  # top to bottom, slightly tilted, slightly blotchy
        u, _ = _rotated(yy - 0.5, xx - 0.5, np.pi / 2 + tilt)
        t = np.clip(0.5 + u, 0, 1) + 0.25 * (_interpolate(noise, yy, xx) - 0.5)
    elif tex.kind == "noise":
        t = _fbm(rng, yy, xx, max(round(1 / period), 1))
        t = np.clip(0.5 + 2.2 * (t - 0.5), 0, 1)
    elif tex.kind == "checker":
        u, v = _rotated(yy, xx, tilt)
        cu = np.floor(u / period + phase[0]).astype(np.int64)
        cv = np.floor(v / period + phase[1]).astype(np.int64)
        t = ((cu + cv) % 2).astype(np.float32)
    elif tex.kind == "stripes":  # soft-edged stripes warped by smooth noise
        u, _ = _rotated(yy, xx, angle)
        warp = 0.6 * period * (_interpolate(noise, yy, xx) - 0.5)
        t = np.clip(0.5 + 2.0 * np.sin(2 * np.pi * ((u + warp) / period + phase[0])), 0, 1)
    elif tex.kind == "windows":
        fx = np.mod(xx / period + phase[0], 1.0)
        fy = np.mod(yy / (1.4 * period) + phase[1], 1.0)
        t = ((fx > 0.25) & (fx < 0.75) & (fy > 0.3) & (fy < 0.75)).astype(np.float32)
    elif tex.kind == "dots":
        u, v = _rotated(yy, xx, angle)
        fu = np.mod(u / period + phase[0], 1.0) - 0.5
        fv = np.mod(v / period + phase[1], 1.0) - 0.5
        t = (fu**2 + fv**2 < 0.09).astype(np.float32)
    else:  # pragma: no cover - the Literal restricts the kinds
        raise ValueError(f"unknown texture kind {tex.kind!r}")
    return _mix(t, c1, c2)


# One texture per layout class (sky, ground, building, object, pole, sign) for each
# appearance family of domain B.
_STREET_FAMILIES: tuple[tuple[_Texture, ...], ...] = (
    (  # day
        _Texture("gradient", (120, 175, 235), (225, 235, 245), 1.0),
        _Texture("checker", (150, 140, 125), (105, 100, 95), 0.07),
        _Texture("windows", (190, 125, 90), (60, 75, 100), 0.08),
        _Texture("noise", (40, 150, 60), (150, 200, 70), 0.15),
        _Texture("stripes", (40, 40, 45), (110, 110, 120), 0.04),
        _Texture("stripes", (210, 30, 30), (245, 245, 245), 0.05),
    ),
    (  # night
        _Texture("dots", (15, 20, 55), (230, 230, 200), 0.09),
        _Texture("noise", (30, 30, 40), (70, 65, 60), 0.1),
        _Texture("windows", (35, 30, 45), (250, 210, 90), 0.07),
        _Texture("gradient", (160, 40, 180), (60, 10, 80), 1.0),
        _Texture("gradient", (255, 240, 170), (200, 160, 60), 1.0),
        _Texture("checker", (30, 220, 220), (10, 90, 120), 0.04),
    ),
    (  # autumn
        _Texture("noise", (250, 200, 120), (240, 140, 70), 0.3),
        _Texture("stripes", (120, 80, 40), (170, 120, 60), 0.05),
        _Texture("checker", (230, 220, 190), (160, 60, 40), 0.06),
        _Texture("dots", (230, 110, 20), (120, 30, 10), 0.06),
        _Texture("noise", (90, 50, 20), (40, 20, 10), 0.05),
        _Texture("gradient", (250, 250, 90), (80, 170, 90), 1.0),
    ),
)
_STREET_FINISH = ((0.35, 6.0), (0.5, 5.0), (0.3, 7.0))  # (illumination, noise) per family


def _street_b(layout: Layout, style: int, rng: np.random.Generator) -> Array:
    """Domain B of the street tasks: per-class textures of family ``style``, lit and noisy."""
    label = layout.label
    yy, xx = _grid(label.shape[0])
    img = np.zeros((*label.shape, 3), dtype=np.float32)
    for cls, tex in enumerate(_STREET_FAMILIES[style]):
        mask = label == cls
        img[mask] = _texture(tex, rng, yy[mask], xx[mask])
    shade, noise = _STREET_FINISH[style]
    return _finish(img, rng, shade, noise)


# ---------------------------------------------------------------------------------------------
# Task "shapes": smooth shapes vs striped shapes.

_SHAPE_CLASSES = ("background", "ellipse", "rectangle", "triangle")
_SHAPE_PALETTE = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200))


def _shapes_layout(rng: np.random.Generator, size: int) -> Layout:
    """One to three large shapes (ellipse, rotated rectangle, triangle) on a background."""
    p = _Painter(size, background=0)
    for _ in range(rng.integers(1, 4)):
        cls = int(rng.integers(1, 4))
        cy, cx = rng.uniform(0.25, 0.75, 2)
        r = rng.uniform(0.14, 0.28)
        box = (cy - 1.6 * r, cy + 1.6 * r, cx - 1.6 * r, cx + 1.6 * r)
        angle = rng.uniform(0, np.pi)
        if cls == 1:
            wobble = np.stack([rng.uniform(0.0, 0.1, 2), rng.uniform(0, 2 * np.pi, 2)], axis=1)
            ry, rx = r * rng.uniform(0.6, 1.0), r * rng.uniform(0.8, 1.3)
            ell = partial(_ellipse_blob, cy=cy, cx=cx, ry=ry, rx=rx, angle=angle, wobble=wobble)
            p.paint(cls, box, ell)
        elif cls == 2:
            h, w = r * rng.uniform(0.4, 0.8), r * rng.uniform(0.7, 1.2)
            p.paint(cls, box, partial(_box, cy=cy, cx=cx, h=h, w=w, angle=angle))
        else:
            pts = _random_triangle(rng, cy, cx, r * 1.2)
            p.paint(cls, box, partial(_triangle, pts=pts))
    return p.layout()


def _local_gradient(rng: np.random.Generator, yy: Array, xx: Array, c1: Array, c2: Array) -> Array:
    """(..., 3) linear gradient from c1 to c2 across the extent of the points, random direction."""
    u, _ = _rotated(yy, xx, rng.uniform(0, 2 * np.pi))
    if u.size == 0:
        return np.zeros((*u.shape, 3), dtype=np.float32)
    t = (u - u.min()) / (np.ptp(u) + 1e-6)
    return _mix(t, c1, c2)


def _shapes_a(layout: Layout, rng: np.random.Generator) -> Array:
    """Domain A of "shapes": brown smooth-gradient shapes on a smooth green background."""
    yy, xx = _grid(layout.label.shape[0])
    bg1, bg2 = _color(rng, (90, 160, 80), 25.0), _color(rng, (150, 195, 110), 25.0)
    img = _local_gradient(rng, yy, xx, bg1, bg2)
    img += 20.0 * (_value_noise(rng, yy, xx, 2)[:, :, None] - 0.5)
    for k in range(1, layout.n_instances + 1):
        base = _color(rng, (150, 95, 50), 30.0)
        mask = layout.instance == k
        img[mask] = _local_gradient(
            rng, yy[mask], xx[mask], base * 0.6, np.minimum(base * 1.4, 255)
        )
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _shapes_b(layout: Layout, style: int, rng: np.random.Generator) -> Array:
    """Domain B of "shapes": zebra-striped shapes on a textured savanna background."""
    yy, xx = _grid(layout.label.shape[0])
    bg = _texture(_Texture("noise", (215, 190, 130), (140, 115, 60), 0.12), rng, yy, xx)
    grass = _texture(_Texture("stripes", (0, 0, 0), (255, 255, 255), 0.03), rng, yy, xx)
    img = bg * (0.85 + 0.15 * grass / 255.0)
    for k in range(1, layout.n_instances + 1):
        mask = layout.instance == k
        zebra = _Texture("stripes", (25, 25, 25), (240, 240, 235), 0.07)
        img[mask] = _texture(zebra, rng, yy[mask], xx[mask])
    return _finish(img, rng, 0.3, 6.0)


# ---------------------------------------------------------------------------------------------
# Task "maps": map-like layouts with thin roads and small buildings vs aerial-like renderings.

FIELD, FOREST, WATER, ROAD, HOUSE = range(5)
_MAP_CLASSES = ("field", "forest", "water", "road", "building")
_MAP_PALETTE = (
    (238, 234, 218),
    (168, 212, 150),
    (140, 185, 235),
    (250, 190, 60),
    (190, 150, 150),
)
_MAP_TEXTURES = (
    _Texture("stripes", (120, 150, 60), (170, 175, 90), 0.05),  # crop rows
    _Texture("dots", (25, 75, 35), (60, 120, 50), 0.05),  # tree crowns
    _Texture("noise", (25, 55, 95), (55, 95, 130), 0.2),  # water
    _Texture("noise", (85, 85, 90), (135, 135, 140), 0.1),  # asphalt
    _Texture("gradient", (190, 80, 60), (120, 55, 45), 1.0),  # roofs
)


def _map_layout(rng: np.random.Generator, size: int) -> Layout:
    """A map: fields, forest patches, a lake or river, thin roads and small buildings."""
    p = _Painter(size, background=FIELD)
    for _ in range(rng.integers(1, 4)):  # forest patches
        cy, cx = rng.uniform(0.1, 0.9, 2)
        ry, rx = rng.uniform(0.08, 0.22, 2)
        wobble = np.stack([rng.uniform(0.05, 0.25, 2), rng.uniform(0, 2 * np.pi, 2)], axis=1)
        angle, r = rng.uniform(0, np.pi), max(ry, rx) * 1.5
        p.paint(
            FOREST,
            (cy - r, cy + r, cx - r, cx + r),
            partial(_ellipse_blob, cy=cy, cx=cx, ry=ry, rx=rx, angle=angle, wobble=wobble),
        )
    if rng.random() < 0.5:  # a lake
        cy, cx = rng.uniform(0.2, 0.8, 2)
        ry, rx = rng.uniform(0.08, 0.18, 2)
        wobble = np.stack([rng.uniform(0.0, 0.2, 2), rng.uniform(0, 2 * np.pi, 2)], axis=1)
        angle, r = rng.uniform(0, np.pi), max(ry, rx) * 1.5
        p.paint(
            WATER,
            (cy - r, cy + r, cx - r, cx + r),
            partial(_ellipse_blob, cy=cy, cx=cx, ry=ry, rx=rx, angle=angle, wobble=wobble),
        )
    else:  # a meandering river across the map
        angle = rng.uniform(0, np.pi)
        offset, width = rng.uniform(-0.25, 0.25), rng.uniform(0.05, 0.1)
        amp, freq, phase = rng.uniform(0.03, 0.1), rng.uniform(1.0, 2.5), rng.uniform(0, 2 * np.pi)

        def river(yy: Array, xx: Array) -> Array:
            u, v = _rotated(yy - 0.5, xx - 0.5, angle)
            centre = offset + amp * np.sin(2 * np.pi * freq * u + phase)
            return np.abs(v - centre) <= width / 2

        p.paint(WATER, (0.0, 1.0, 0.0, 1.0), river)
    ends = []
    for _ in range(rng.integers(2, 5)):  # roads: one or two straight pieces, 1.5-3 px at 64 px
        width = max(rng.uniform(0.025, 0.045), 1.2 / size)
        a, m, b = rng.uniform(-0.05, 1.05, (3, 2))
        pieces = [(a, m), (m, b)] if rng.random() < 0.5 else [(a, b)]
        for p0, p1 in pieces:
            box = (
                min(p0[0], p1[0]) - width,
                max(p0[0], p1[0]) + width,
                min(p0[1], p1[1]) - width,
                max(p0[1], p1[1]) + width,
            )
            seg = partial(_segment, p0=tuple(p0), p1=tuple(p1), width=width)
            p.paint(ROAD, box, seg)
            ends.append((p0, p1))
    for _ in range(rng.integers(3, 9)):  # buildings beside a road
        p0, p1 = ends[int(rng.integers(len(ends)))]
        t = rng.uniform(0.1, 0.9)
        direction = np.asarray(p1) - np.asarray(p0)
        normal = np.array([-direction[1], direction[0]]) / (np.linalg.norm(direction) + 1e-9)
        cy, cx = np.asarray(p0) + t * direction + normal * rng.choice([-1, 1]) * 0.07
        h, w = rng.uniform(0.025, 0.05, 2)
        angle = float(np.arctan2(direction[0], direction[1]))
        r = 1.5 * max(h, w)
        p.paint(
            HOUSE,
            (cy - r, cy + r, cx - r, cx + r),
            partial(_box, cy=cy, cx=cx, h=h, w=w, angle=angle),
        )
    return p.layout()


def _map_b(layout: Layout, style: int, rng: np.random.Generator) -> Array:
    """Domain B of "maps": an aerial-like rendering with per-class textures, lit and noisy."""
    label = layout.label
    yy, xx = _grid(label.shape[0])
    img = np.zeros((*label.shape, 3), dtype=np.float32)
    for cls, tex in enumerate(_MAP_TEXTURES):
        mask = label == cls
        img[mask] = _texture(tex, rng, yy[mask], xx[mask])
    return _finish(img, rng, 0.3, 5.0)


# ---------------------------------------------------------------------------------------------
# Registry.


def _make_tasks() -> dict[str, Task]:
    street_palette = np.asarray(_LAYOUT_PALETTE, dtype=np.uint8)
    map_palette = np.asarray(_MAP_PALETTE, dtype=np.uint8)
    return {
        "layout": Task(
            name="layout",
            description="street-like label maps (A, flat colours) vs textured, lit scenes (B)",
            class_names=_LAYOUT_CLASSES,
            palette=_LAYOUT_PALETTE,
            n_styles=1,
            style_names=("day",),
            a_rendering="flat palette",
            layout=_street_layout,
            render_a=lambda lay, rng: _flat_palette(lay, street_palette),
            render_b=_street_b,
        ),
        "shapes": Task(
            name="shapes",
            description="smooth-gradient shapes on plain ground (A) vs striped shapes (B)",
            class_names=_SHAPE_CLASSES,
            palette=_SHAPE_PALETTE,
            n_styles=1,
            style_names=("stripes",),
            a_rendering="smooth gradients (palette is for label display only)",
            layout=_shapes_layout,
            render_a=_shapes_a,
            render_b=_shapes_b,
        ),
        "maps": Task(
            name="maps",
            description="map-like layouts with thin roads and small buildings (A, flat colours) "
            "vs aerial-like textured renderings (B)",
            class_names=_MAP_CLASSES,
            palette=_MAP_PALETTE,
            n_styles=1,
            style_names=("aerial",),
            a_rendering="flat palette",
            layout=_map_layout,
            render_a=lambda lay, rng: _flat_palette(lay, map_palette),
            render_b=_map_b,
        ),
        "multistyle": Task(
            name="multistyle",
            description="street-like label maps (A) vs one of three appearance families (B)",
            class_names=_LAYOUT_CLASSES,
            palette=_LAYOUT_PALETTE,
            n_styles=len(_STREET_FAMILIES),
            style_names=("day", "night", "autumn"),
            a_rendering="flat palette",
            layout=_street_layout,
            render_a=lambda lay, rng: _flat_palette(lay, street_palette),
            render_b=_street_b,
        ),
    }


TASKS: dict[str, Task] = _make_tasks()
"""Synthetic tasks by name: ``"layout"``, ``"shapes"``, ``"multistyle"``."""


def _task(task: str) -> Task:
    if task not in TASKS:
        raise UserError(f"unknown synthetic task {task!r}: choose one of {', '.join(TASKS)}")
    return TASKS[task]


def _check_size(size: int) -> None:
    if size < 16:
        raise UserError(f"image size {size} is too small: use a size of at least 16 pixels")


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise UserError(f"seed {seed} is negative: use a seed >= 0")


def palette(task: str) -> Array:
    """Label colours of a task.

    Args:
        task: a key of `TASKS`.
    Returns:
        (K, 3) uint8 RGB colour of each class.
    """
    return np.asarray(_task(task).palette, dtype=np.uint8)


def label_to_color(label: Array, task: str) -> Array:
    """Colour a label map for display.

    Args:
        label: (H, W) integer class indices.
        task: a key of `TASKS`.
    Returns:
        (H, W, 3) uint8.
    Raises:
        ValueError: a label is outside 0..K-1.
    """
    pal = palette(task)
    label = np.asarray(label)
    if label.size and (label.min() < 0 or label.max() >= len(pal)):
        raise ValueError(f"labels must lie in 0..{len(pal) - 1} for task {task!r}")
    return pal[label.astype(np.intp)]


# ---------------------------------------------------------------------------------------------
# Rendering.


def _streams(seed: int) -> tuple[np.random.Generator, ...]:
    """Independent generators (layout, A, B, style) from one seed."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))


def _render(
    spec: Task, seed: int, size: int, a: bool, b: bool
) -> tuple[Array | None, Array | None, Array, int]:
    """Render the layout of ``seed`` and the requested domains (each from its own stream)."""
    layout_rng, a_rng, b_rng, style_rng = _streams(seed)
    layout = spec.layout(layout_rng, size)
    style = int(style_rng.integers(spec.n_styles))
    img_a = spec.render_a(layout, a_rng) if a else None
    img_b = spec.render_b(layout, style, b_rng) if b else None
    return img_a, img_b, layout.label, style


def render_sample(task: str, seed: int, size: int) -> SyntheticSample:
    """Render one scene of ``task`` in both domains.

    Args:
        task: a key of `TASKS`.
        seed: any integer >= 0; the same seed gives the same bytes.
        size: image side in pixels (>= 16).
    Returns:
        A `SyntheticSample` whose ``a`` and ``b`` show the same layout ``label``.
    Raises:
        UserError: unknown task, size below 16 or negative seed.
    """
    spec = _task(task)
    _check_size(size)
    _check_seed(seed)
    a, b, label, style = _render(spec, seed, size, a=True, b=True)
    assert a is not None and b is not None
    return SyntheticSample(a=a, b=b, label=label, style=style)


# ---------------------------------------------------------------------------------------------
# Writing a dataset.

_SPLIT_CODES = {"trainA": 0, "trainB": 1, "test": 2}


def _sample_seed(seed: int, split: str, index: int) -> int:
    """The scene seed of image ``index`` of a split (trainA and trainB draw different scenes)."""
    state = np.random.SeedSequence([seed, _SPLIT_CODES[split], index]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


def _write_png(path: Path, array: Array) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array as PNG (deterministic bytes)."""
    Image.fromarray(array).save(path, format="PNG", compress_level=6)


def write_synthetic_dataset(
    out: Path,
    n: int = 500,
    size: int = 128,
    seed: int = 0,
    task: str = "layout",
    n_test: int | None = None,
    progress: bool = False,
) -> Path:
    """Write a synthetic unpaired dataset in the CycleGAN folder layout.

    Layout written::

        out/trainA/train_a_00000.png ...   n images of domain A
        out/trainB/train_b_00000.png ...   n images of domain B, other scenes (unpaired)
        out/testA/test_00000.png ...       n_test images of domain A
        out/testB/test_00000.png ...       the same n_test scenes in domain B (paired by name)
        out/labels/{trainA,trainB,testA,testB}/<same name>.png   uint8 class index per pixel
        out/meta.json                      task, n, n_test, size, seed, classes, palette, styles

    The files go to a hidden temporary sibling folder that is renamed to ``out`` at the end, so
    an error or Ctrl-C leaves nothing half-written. The bytes depend only on the arguments.

    Args:
        out: the dataset folder; must not exist or be empty. Parents are created.
        n: training images per domain (>= 1).
        size: image side in pixels (>= 16).
        seed: base seed (>= 0).
        task: a key of `TASKS`.
        n_test: test images per domain; None gives ``max(n // 5, 8)``.
        progress: show a tqdm progress bar.
    Returns:
        ``out``.
    Raises:
        UserError: bad arguments, or ``out`` exists and is not an empty folder.
    """
    spec = _task(task)
    _check_size(size)
    _check_seed(seed)
    if n < 1:
        raise UserError(f"n={n} training images per domain: use n >= 1")
    if n_test is None:
        n_test = max(n // 5, 8)
    if n_test < 1:
        raise UserError(f"n_test={n_test} test images per domain: use n_test >= 1")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"output folder {out} already exists and is not empty: "
            "choose another folder or delete it"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    # os.mkdir, not tempfile.mkdtemp: the dataset keeps the usual permissions, not 0700.
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _write_all(spec, tmp, n=n, n_test=n_test, size=size, seed=seed, progress=progress)
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_all(
    spec: Task, root: Path, n: int, n_test: int, size: int, seed: int, progress: bool
) -> None:
    """Write every image, label and meta.json of a dataset under ``root``."""
    for split in ("trainA", "trainB", "testA", "testB"):
        (root / split).mkdir()
        (root / "labels" / split).mkdir(parents=True)

    # (split folder, file name, scene seed, which domain) for every image, in writing order.
    jobs: list[tuple[str, str, int, str]] = []
    jobs += [
        ("trainA", f"train_a_{i:05d}.png", _sample_seed(seed, "trainA", i), "a") for i in range(n)
    ]
    jobs += [
        ("trainB", f"train_b_{i:05d}.png", _sample_seed(seed, "trainB", i), "b") for i in range(n)
    ]
    jobs += [
        ("test", f"test_{i:05d}.png", _sample_seed(seed, "test", i), "ab") for i in range(n_test)
    ]

    styles: dict[str, dict[str, int]] = {"trainB": {}, "testB": {}}
    bar = tqdm(
        total=2 * (n + n_test), desc=f"writing {spec.name}", unit="img", disable=not progress
    )
    with bar:
        for split, name, scene_seed, domains in jobs:
            a, b, label, style = _render(spec, scene_seed, size, a="a" in domains, b="b" in domains)
            if a is not None:
                folder = "testA" if split == "test" else split
                _write_png(root / folder / name, a)
                _write_png(root / "labels" / folder / name, label)
                bar.update(1)
            if b is not None:
                folder = "testB" if split == "test" else split
                _write_png(root / folder / name, b)
                _write_png(root / "labels" / folder / name, label)
                styles[folder][name] = style
                bar.update(1)

    meta = {
        "format": "sesim-synthetic-v1",
        "task": spec.name,
        "description": spec.description,
        "n": n,
        "n_test": n_test,
        "size": size,
        "seed": seed,
        "num_classes": spec.n_classes,
        "class_names": list(spec.class_names),
        "palette": [list(c) for c in spec.palette],
        "a_rendering": spec.a_rendering,
        "style_names": list(spec.style_names),
        "styles": styles,
        "pairing": "testA/<name> and testB/<name> show the same scene; train splits are unpaired",
        "labels": "labels/<split>/<name>.png: uint8 class index per pixel",
    }
    (root / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
