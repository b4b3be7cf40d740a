"""Inference: whole images, overlapping tiles, sampled styles, and translating image files.

Every path pads images at the bottom and right to the generator's size multiple
(:func:`pad_to_multiple`, reflect; its ``multiple`` comes from the
:class:`~sesim.nets.Generator` protocol through :func:`multiple_of`) and crops the output back,
so any image size works:

- :func:`translate_batch`: whole images at once;
- :func:`translate_full` / :func:`translate_tiled`: full-resolution images, at once or in tiles
  blended without seams (below);
- :func:`translate_styles`, :func:`translate_random`, :func:`translate_with_style`: multi-modal
  (MUNIT) generators in sampled or example styles;
- :func:`save_image`: a translation to an image file, atomically. ``sesim translate`` (image
  files and folders) is :func:`sesim.translator.translate_files`, through
  :class:`sesim.translator.Translator`.

Tiles. The single-image generator (`sesim.nets.stylegan2.StyleGAN2Generator`) is fully convolutional
and has no instance normalisation (its convolutions are demodulated per filter, independently of
the input), so a pixel of the output depends only on the input pixels within its receptive
field. A tile therefore reproduces the full-image output exactly away from its borders, where
the network's zero padding stands in for the missing context, provided the tile starts at a
multiple of the network's size multiple (the phase of its strided down-sampling).

`translate_tiled` exploits this for images that do not fit in memory at once:

1. the image is reflect-padded at the bottom and right to a multiple of ``multiple`` (as
   `translate_full` does), so both paths see the same input;
2. tiles of ``tile x tile`` pixels are placed every ``tile - overlap`` pixels along each axis,
   all starting at multiples of ``multiple``; the last tile of a row or column is shifted
   inside the image (its overlap with the previous one grows) instead of running off the edge;
3. along each axis, each tile gets a 1-D weight that is 1 in its interior and, on every side
   shared with a neighbour, 0 over the outer quarter of the overlap (the pixels most distorted by
   the missing context are dropped) and a raised-cosine ramp ``sin^2`` across the middle half,
   so the ramps of two neighbours overlapping by exactly ``overlap`` sum to 1; image borders get
   no ramp. The weights of every axis are normalised by their sum over the tiles, and a tile's
   2-D weight is the outer product of its row and column weights, so the weights of all tiles
   sum to 1 at every pixel and the blend has no seams.

The remaining difference to the untiled output is confined to the overlaps and shrinks quickly
with ``overlap``. For ``sinsc`` generators (6 residual blocks) and 256-px tiles, the default
64-px overlap gave a mean difference below 0.1 grey level (of 255) and a largest one of about 1
(random weights) to 9 (the 300-step CPU example); a 32-px overlap gave about 20 at most.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from sesim.data.images import to_pil
from sesim.errors import UserError
from sesim.nets import Generator
from sesim.nets.munit import MunitGenerator
from sesim.runs import atomic_path

__all__ = [
    "MIN_OVERLAP",
    "default_overlap",
    "multiple_of",
    "pad_to_multiple",
    "save_image",
    "tile_starts",
    "translate_batch",
    "translate_full",
    "translate_random",
    "translate_styles",
    "translate_tiled",
    "translate_with_style",
]


# ---------------------------------------------------------------------------------------------
# Padding to the generator's multiple.


def multiple_of(G: nn.Module, default: int = 4) -> int:
    """The generator's size multiple (:class:`~sesim.nets.Generator`), ``default`` without one."""
    return int(G.multiple) if isinstance(G, Generator) else default


def pad_to_multiple(image: Tensor, multiple: int, min_size: int = 0) -> Tensor:
    """Pad the bottom and right of images to multiples of ``multiple`` (and at least ``min_size``).

    Reflection padding, or edge replication when the image is too small to reflect.

    Args:
        image: (B, C, H, W) images.
        multiple: the size multiple.
        min_size: the smallest side the network accepts (MUNIT's content code needs 2x2).
    Returns:
        (B, C, H', W') with H' and W' the next multiples of ``multiple`` that are at least
        ``min_size``.
    """
    if image.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(image.shape)}")
    height, width = image.shape[-2:]
    ph = max(min_size - height, (-height) % multiple)
    pw = max(min_size - width, (-width) % multiple)
    ph, pw = ph + (-(height + ph)) % multiple, pw + (-(width + pw)) % multiple
    if not (ph or pw):
        return image
    mode = "reflect" if ph < height and pw < width else "replicate"
    return F.pad(image, (0, pw, 0, ph), mode=mode)


def _padded(G: nn.Module, images: Tensor) -> Tensor:
    """``images`` padded for ``G``: its multiple and, where it has one, its smallest side."""
    return pad_to_multiple(images, multiple_of(G), int(getattr(G, "min_size", 0)))


@torch.no_grad()
def translate_batch(G: nn.Module, images: Tensor) -> Tensor:
    """Translate whole images of any size: reflect-pad to the network's multiple, crop back.

    Args:
        G: generator.
        images: (B, 3, H, W) in [-1, 1].

    Returns:
        (B, 3, H, W) translations.
    """
    H, W = images.shape[2:]
    out: Tensor = G(_padded(G, images))
    return out[:, :, :H, :W]


# ---------------------------------------------------------------------------------------------
# Tiles.


#: Smallest default overlap: about the reach of the tile-border distortion of the ``sinsc``
#: generator (6 residual blocks at a quarter of the resolution), measured on random networks.
MIN_OVERLAP = 64


def default_overlap(tile: int, multiple: int) -> int:
    """The overlap used when none is given.

    A quarter of the tile but at least `MIN_OVERLAP` pixels, at most half the tile, rounded to
    a multiple of ``multiple``: 64 px for tiles of 128 to 256 px, 256 px for 1024-px tiles.

    Args:
        tile: tile side in pixels.
        multiple: the generator's size multiple.
    Returns:
        The overlap in pixels.
    """
    overlap = _round_up(max(tile // 4, MIN_OVERLAP), multiple)
    return min(overlap, (tile // 2) // multiple * multiple)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles covering ``length`` pixels, the last one shifted inside.

    Args:
        length: side of the (padded) image.
        tile: tile side, at most ``length``.
        stride: distance between consecutive starts (``tile - overlap``), positive.
    Returns:
        Increasing offsets; the first is 0 and the last ``length - tile``.
    """
    if tile >= length:
        return [0]
    return [*range(0, length - tile, stride), length - tile]


def _ramp(overlap: int) -> Tensor:
    """(overlap,) rising weights from the outer edge inwards: 0 over the outer quarter, then a
    raised-cosine ramp over the middle half, 1 over the inner quarter.

    ``ramp[i] + ramp[overlap - 1 - i] == 1``, so two neighbours overlapping by exactly
    ``overlap`` pixels have weights that already sum to 1.
    """
    cut = overlap // 4
    width = overlap - 2 * cut
    pos = (torch.arange(overlap, dtype=torch.float64) - cut + 0.5) / width
    return torch.sin(0.5 * math.pi * pos.clamp(0.0, 1.0)) ** 2


def _axis_weights(length: int, tile: int, starts: list[int], overlap: int) -> list[Tensor]:
    """Per tile, (tile,) blending weights along one axis, normalised to sum 1 over tiles."""
    ramp = _ramp(overlap) if overlap > 0 else None
    weights = []
    for start in starts:
        w = torch.ones(tile, dtype=torch.float64)
        if ramp is not None and start > 0:
            w[:overlap] *= ramp
        if ramp is not None and start + tile < length:
            w[tile - overlap :] *= ramp.flip(0)
        weights.append(w)
    total = torch.zeros(length, dtype=torch.float64)
    for start, w in zip(starts, weights):
        total[start : start + tile] += w
    if not bool((total > 0).all()):  # cannot happen with overlap <= tile // 2
        raise RuntimeError("tile weights leave pixels uncovered")
    return [w / total[start : start + tile] for start, w in zip(starts, weights)]


@torch.no_grad()
def translate_tiled(G: nn.Module, image: Tensor, tile: int, overlap: int, multiple: int) -> Tensor:
    """Translate a large image in overlapping tiles blended without seams.

    Each tile goes through ``G`` on its own, so memory depends on ``tile``, not on the image.
    Put ``G`` in eval mode first (deterministic: no decoder noise), or tiles disagree.

    Args:
        G: a fully convolutional generator mapping (B, C, h, w) to (B, C', h, w) for h and w
            multiples of ``multiple``.
        image: (B, C, H, W) images in [-1, 1] (B is 1 for a photo), on G's device.
        tile: tile side in pixels; rounded down to a multiple of ``multiple``. A tile at least
            as large as the (padded) image runs the whole image at once.
        overlap: pixels shared by neighbouring tiles; rounded up to a multiple of ``multiple``
            so that every tile starts on the network's down-sampling grid; at most half a tile.
            0 abuts the tiles (visible seams).
        multiple: the generator's size multiple (``G.multiple``, 4 for 2 down-samplings).
    Returns:
        (B, C', H, W) translations in the dtype of the generator's output.

    Raises:
        UserError: ``tile`` is smaller than ``multiple`` or ``overlap`` is negative or larger
            than half the tile.
    """
    if image.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) image tensor, got shape {tuple(image.shape)}")
    if multiple < 1:
        raise ValueError(f"multiple must be positive, got {multiple}")
    tile = tile // multiple * multiple
    if tile < multiple:
        raise UserError(f"--tile must be at least {multiple} pixels (the network's multiple)")
    if overlap < 0:
        raise UserError(f"tile overlap must be >= 0, got {overlap}")
    overlap = _round_up(overlap, multiple)
    if 2 * overlap > tile:
        raise UserError(
            f"tile overlap ({overlap} px after rounding to a multiple of {multiple}) must be at "
            f"most half the tile ({tile} px); use a larger --tile or a smaller overlap"
        )
    height, width = image.shape[-2:]
    x = pad_to_multiple(image, multiple)
    ph, pw = x.shape[-2:]
    th, tw = min(tile, ph), min(tile, pw)
    if (th, tw) == (ph, pw):
        out: Tensor = G(x)
        return out[:, :, :height, :width]

    ys, xs = tile_starts(ph, th, th - overlap), tile_starts(pw, tw, tw - overlap)
    wys = _axis_weights(ph, th, ys, overlap if th < ph else 0)
    wxs = _axis_weights(pw, tw, xs, overlap if tw < pw else 0)
    result: Tensor | None = None
    for y0, wy in zip(ys, wys):
        for x0, wx in zip(xs, wxs):
            piece: Tensor = G(x[:, :, y0 : y0 + th, x0 : x0 + tw])
            if result is None:
                result = piece.new_zeros(piece.shape[0], piece.shape[1], ph, pw)
            weight = (wy[:, None] * wx[None, :]).to(piece.device, piece.dtype)
            result[:, :, y0 : y0 + th, x0 : x0 + tw] += piece * weight
    assert result is not None
    return result[:, :, :height, :width]


@torch.no_grad()
def translate_full(
    G: nn.Module, image: Tensor, tile: int | None = None, overlap: int | None = None
) -> Tensor:
    """Translate full-resolution images, at once or (``tile`` given) in blended tiles.

    The image is reflect-padded at the bottom and right to the generator's size multiple
    (:func:`multiple_of`) and the output cropped back. Put ``G`` in eval mode first.

    Args:
        G: the generator, on ``image``'s device.
        image: (B, C, H, W) images in [-1, 1], any height and width.
        tile: None runs the whole image at once; otherwise the tile side for `translate_tiled`.
        overlap: tile overlap in pixels; None uses `default_overlap` (a quarter of the tile,
            64 to half the tile).
    Returns:
        (B, C', H, W) translations.

    Raises:
        UserError: bad ``tile`` or ``overlap`` (see `translate_tiled`).
    """
    if tile is None:
        return translate_batch(G, image)
    multiple = multiple_of(G)
    if overlap is None:
        overlap = default_overlap(max(tile // multiple * multiple, multiple), multiple)
    return translate_tiled(G, image, tile, overlap, multiple)


# ---------------------------------------------------------------------------------------------
# Styles (multi-modal generators).


def _generator_of(G: nn.Module) -> MunitGenerator:
    if not isinstance(G, MunitGenerator):
        raise UserError(
            f"multi-modal translation needs a MUNIT generator (a multimodal run); got "
            f"{type(G).__name__}"
        )
    return G


@torch.no_grad()
def translate_styles(G: nn.Module, images: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """Translate every image in the same ``k`` style codes drawn from the prior.

    The ``k`` codes are drawn first (``G.sample_style(k, generator)``), so image ``b`` in style
    ``j`` is ``G(images[b], s_j)`` whatever the batch: a generator seeded alike gives the same
    codes, hence the same outputs, for every call. Images are reflect-padded to the generator's
    size multiple and cropped back, as :func:`translate_batch`; each is encoded once.

    Args:
        G: a MUNIT generator, in eval mode (on any device).
        images: (B, 3, H, W) images in [-1, 1], on ``G``'s device.
        k: number of styles, >= 1.
        generator: source of the style codes (a CPU generator gives the same codes on every
            device).
    Returns:
        (B, k, 3, H, W) translations in [-1, 1], ``out[b, j]`` = image ``b`` in style ``j``.
    Raises:
        UserError: ``k`` < 1, or ``G`` is not a MUNIT generator.
    """
    net = _generator_of(G)
    if k < 1:
        raise UserError(f"the number of styles must be >= 1, got {k}")
    B, _, H, W = images.shape
    styles = net.sample_style(k, generator, device=images.device)
    content = net.encode_content(_padded(net, images))
    outs = [net.decode(content, styles[j].expand(B, -1, -1, -1)) for j in range(k)]
    return torch.stack(outs, dim=1)[..., :H, :W]


@torch.no_grad()
def translate_random(G: nn.Module, images: Tensor, generator: torch.Generator) -> Tensor:
    """Translate each image in its own random style (independent codes per row).

    The ``sample_fn`` of :func:`sesim.metrics.lpips_diversity`: called twice on one input
    repeated, it gives pairs of outputs in independent styles.

    Args:
        G: a MUNIT generator, in eval mode.
        images: (B, 3, H, W) images in [-1, 1] (moved to ``G``'s device here).
        generator: source of the B style codes.
    Returns:
        (B, 3, H, W) translations on ``G``'s device.
    """
    net = _generator_of(G)
    device = next(net.parameters()).device
    x = images.to(device)
    H, W = x.shape[2:]
    styles = net.sample_style(x.shape[0], generator, device=device)
    out: Tensor = net(_padded(net, x), styles)
    return out[..., :H, :W]


@torch.no_grad()
def translate_with_style(G: nn.Module, images: Tensor, style_images: Tensor) -> Tensor:
    """Example-guided translation: the layout of ``images`` in the style of ``style_images``.

    Args:
        G: a MUNIT generator with a style encoder, in eval mode.
        images: (B, 3, H, W) images in [-1, 1], on ``G``'s device.
        style_images: (B, 3, H', W') or (1, 3, H', W') target-domain images in [-1, 1] (one
            example for all), sides >= 16; their size need not match ``images``.
    Returns:
        (B, 3, H, W) translations in [-1, 1].
    Raises:
        UserError: the run was trained without a style encoder, the style image is smaller
            than 16 px, or the batch sizes do not match.
    """
    net = _generator_of(G)
    if net.enc_style is None:
        raise UserError(
            "this run has no style encoder (trained with munit.style_encoder: false, as the "
            "paper's eq. 4), so it cannot take the style of an example image; use sampled "
            "styles (--styles K), or train with --set munit.style_encoder=true (a departure "
            "from the paper that adds MUNIT's style reconstruction term)"
        )
    if style_images.ndim != 4 or style_images.shape[1] != 3:
        raise UserError(f"style images must be (B, 3, H, W), got {tuple(style_images.shape)}")
    if min(style_images.shape[2:]) < 16:
        h, w = style_images.shape[2:]
        raise UserError(f"the style image is {w}x{h}; the style encoder needs sides >= 16 px")
    B, _, H, W = images.shape
    if style_images.shape[0] not in (1, B):
        raise UserError(f"got {style_images.shape[0]} style images for {B} input images")
    style = net.encode_style(style_images.to(images.device)).expand(B, -1, -1, -1)
    out: Tensor = net(_padded(net, images), style)
    return out[..., :H, :W]


def save_image(t: Tensor, path: Path) -> None:
    """Write an image tensor atomically (a temporary file in the same folder, then a rename).

    The format follows the extension (JPEG at quality 95); parent folders are created.

    Args:
        t: (3, H, W) or (1, 3, H, W) in [-1, 1].
        path: destination file, e.g. ``out/fake_B/x.png``.
    Raises:
        UserError: the extension is not a known image format.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"cannot save image {path}: unknown extension; use .png or .jpg")
    img = to_pil(t)
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        if fmt == "JPEG":
            img.save(f, format=fmt, quality=95)
        else:
            img.save(f, format=fmt)
