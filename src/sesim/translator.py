"""A trained generator as one callable: images of any kind and size in, translations out.

>>> from sesim import Translator                              # doctest: +SKIP
>>> t = Translator.from_run("runs/horse2zebra")              # doctest: +SKIP
>>> t("horse.jpg").save("zebra.png")                         # doctest: +SKIP

:class:`Translator` loads a generator from a run folder (:meth:`Translator.from_run`, its newest
checkpoint or a given one) or from a folder written by ``sesim export --format hf``
(:meth:`Translator.from_pretrained`), and translates a Pillow image, an image file, a uint8
``(H, W, 3)`` array or a ``(B, 3, H, W)`` float tensor in [-1, 1], returning the same kind
(an image file gives a Pillow image). Scaling to [-1, 1], padding to the generator's size
multiple and cropping back are done by :mod:`sesim.translate`, which ``sesim translate`` also
goes through (:func:`translate_files`), so both give the same pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, overload

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm

from sesim.config import TrainConfig
from sesim.data.images import filter_images, list_images, load_rgb, to_pil, to_tensor
from sesim.devices import resolve_device
from sesim.errors import UserError
from sesim.pretrained import load_pretrained
from sesim.runs import load_generator
from sesim.translate import (
    multiple_of,
    save_image,
    translate_batch,
    translate_full,
    translate_styles,
    translate_with_style,
)

__all__ = ["ImageLike", "Translator", "translate_files"]

ImageLike = Image.Image | str | Path | np.ndarray | Tensor
"""What a :class:`Translator` accepts: a Pillow image, an image file, a uint8 (H, W, 3) array
or a (B, 3, H, W) / (3, H, W) float tensor in [-1, 1]."""


class Translator:
    """A generator ready for inference, with the conversions around it.

    Attributes:
        generator: the network, in eval mode, on :attr:`device`.
        config: the run's resolved config.
        step: the training step of the weights.
        device: where the generator runs.
        multimodal: a MUNIT generator (styles apply).
        multiple: the generator's size multiple (inputs are padded to it).
    """

    def __init__(self, generator: nn.Module, config: TrainConfig, step: int = 0) -> None:
        """Wrap a generator (see :meth:`from_run` and :meth:`from_pretrained` for files).

        Args:
            generator: an image-to-image generator; put in eval mode here.
            config: the config it was built from.
            step: its training step.
        """
        self.generator = generator.eval()
        self.config = config
        self.step = int(step)
        param = next(generator.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")
        self.multimodal = config.mode == "multimodal"
        self.multiple = multiple_of(generator)

    @classmethod
    def from_run(
        cls,
        run: str | Path | None,
        checkpoint: str | Path | None = None,
        device: str | torch.device = "auto",
    ) -> Translator:
        """Load a run's generator.

        Args:
            run: a run folder (its newest checkpoint unless ``checkpoint`` is given), or None
                with ``checkpoint``.
            checkpoint: a checkpoint file (``RUN/checkpoints/step_XXXXXXXX.pt``).
            device: ``auto`` (a GPU when there is one), ``cpu``, ``cuda``, ``cuda:N``, or a
                torch device.
        Returns:
            The translator.
        Raises:
            UserError: no such run or checkpoint, or a file that is not a sesim checkpoint.
        """
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        ckpt = Path(checkpoint) if checkpoint is not None else None
        G, cfg, step = load_generator(
            Path(run) if run is not None and ckpt is None else None, ckpt, dev
        )
        return cls(G, cfg, step)

    @classmethod
    def from_pretrained(cls, name: str | Path, device: str | torch.device = "auto") -> Translator:
        """Load a generator written by ``sesim export --format hf`` (no pickle is read).

        Args:
            name: the export folder, or a Hugging Face Hub id (``user/name``) when
                ``huggingface_hub`` is installed (its cache first).
            device: as :meth:`from_run`.
        Returns:
            The translator.
        Raises:
            UserError: a missing or foreign folder.
        """
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        G, cfg, step = load_pretrained(name, dev)
        return cls(G, cfg, step)

    # -----------------------------------------------------------------------------------------

    def translate_tensor(
        self,
        images: Tensor,
        style: ImageLike | None = None,
        seed: int = 0,
        tile: int | None = None,
        overlap: int | None = None,
    ) -> Tensor:
        """Translate (B, 3, H, W) images in [-1, 1] on the generator's device.

        Args:
            images: (B, 3, H, W) float images in [-1, 1], any H and W.
            style: multi-modal runs only: None for a style drawn from ``seed`` (what ``sesim
                translate`` writes without ``--styles``), or a target-domain image (any kind
                this class takes) whose style to copy (``--style-image``). See
                :meth:`styles` for several drawn styles.
            seed: seed of the drawn styles.
            tile: single-modal runs: translate in overlapping tiles of this side (large images).
            overlap: the tiles' overlap (default :func:`sesim.translate.default_overlap`).
        Returns:
            (B, 3, H, W) translations in [-1, 1] on the generator's device (float32).
        Raises:
            UserError: a style for a single-modal run, tiles for a multi-modal one, bad tiles.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise UserError(f"expected (B, 3, H, W) images, got shape {tuple(images.shape)}")
        x = images.to(self.device, torch.float32)
        G = self.generator
        with torch.no_grad():
            if not self.multimodal:
                if style is not None:
                    raise UserError(
                        f"styles need a multimodal run; this run's mode is {self.config.mode}"
                    )
                if tile is not None:
                    return translate_full(G, x, tile, overlap)
                return translate_batch(G, x)
            if tile is not None:
                raise UserError("tiled translation is for single-modal runs")
            if style is None:
                return self.styles_tensor(x, 1, seed)[:, 0]
            example = self._as_batch(style)
            return translate_with_style(G, x, example.to(self.device))

    def styles_tensor(self, images: Tensor, k: int, seed: int = 0) -> Tensor:
        """Multi-modal runs: (B, 3, H, W) images in the same ``k`` styles drawn from ``seed``.

        ``out[:, j]`` is what ``sesim translate --styles K --seed SEED`` writes as
        ``<name>_style<j>.png`` (the ``k`` codes are drawn at once: another ``k`` draws other
        codes).

        Args:
            images: (B, 3, H, W) float images in [-1, 1], any H and W.
            k: the number of styles, >= 1.
            seed: seed of the codes.
        Returns:
            (B, k, 3, H, W) translations in [-1, 1] on the generator's device.
        Raises:
            UserError: a single-modal run, or ``k`` < 1.
        """
        if not self.multimodal:
            raise UserError(f"styles need a multimodal run; this run's mode is {self.config.mode}")
        x = images.to(self.device, torch.float32)
        return translate_styles(self.generator, x, k, torch.Generator().manual_seed(seed))

    def styles(self, image: ImageLike, k: int, seed: int = 0) -> list[Any]:
        """Multi-modal runs: one image in ``k`` styles drawn from ``seed``, each of its kind.

        Args:
            image: as :meth:`__call__`.
            k: the number of styles, >= 1.
            seed: seed of the codes (see :meth:`styles_tensor`).
        Returns:
            ``k`` translations of the kind of ``image`` (a tensor input gives (B, 3, H, W) or
            (3, H, W) tensors).
        """
        out = self.styles_tensor(self._as_batch(image), k, seed)
        return [self._like(image, out[:, j]) for j in range(k)]

    @overload
    def __call__(
        self,
        image: Image.Image | str | Path,
        style: ImageLike | None = ...,
        seed: int = ...,
        tile: int | None = ...,
        overlap: int | None = ...,
    ) -> Image.Image: ...
    @overload
    def __call__(
        self,
        image: np.ndarray,
        style: ImageLike | None = ...,
        seed: int = ...,
        tile: int | None = ...,
        overlap: int | None = ...,
    ) -> np.ndarray: ...
    @overload
    def __call__(
        self,
        image: Tensor,
        style: ImageLike | None = ...,
        seed: int = ...,
        tile: int | None = ...,
        overlap: int | None = ...,
    ) -> Tensor: ...

    def __call__(
        self,
        image: ImageLike,
        style: ImageLike | None = None,
        seed: int = 0,
        tile: int | None = None,
        overlap: int | None = None,
    ) -> Any:
        """Translate one image (or a batch of tensors) and return it in the kind it came in.

        Args:
            image: a Pillow image or an image file (returns a Pillow RGB image of the same
                size), a uint8 (H, W, 3) array (returns one), or a float tensor (B, 3, H, W) or
                (3, H, W) in [-1, 1] (returns the same shape, dtype and device).
            style: multi-modal runs: see :meth:`translate_tensor`.
            seed: seed of the drawn styles.
            tile: translate in tiles of this side (single-modal runs).
            overlap: the tiles' overlap.
        Returns:
            The translation, of the same kind and size as ``image``.
        Raises:
            UserError: an unreadable file, an array or tensor of the wrong shape or dtype.
        """
        out = self.translate_tensor(self._as_batch(image), style, seed, tile, overlap)
        return self._like(image, out)

    @staticmethod
    def _like(image: ImageLike, out: Tensor) -> Any:
        """(B, 3, H, W) translations ``out`` in the kind of the input ``image``."""
        if isinstance(image, Tensor):
            out = out.to(image.device, image.dtype)
            return out[0] if image.ndim == 3 else out
        pil = to_pil(out[0])
        if isinstance(image, np.ndarray):
            return np.asarray(pil, dtype=np.uint8).copy()
        return pil

    @staticmethod
    def _as_batch(image: ImageLike) -> Tensor:
        """Any accepted image kind as a (B, 3, H, W) float32 CPU tensor in [-1, 1]."""
        if isinstance(image, Tensor):
            if image.ndim == 3:
                image = image.unsqueeze(0)
            if image.ndim != 4 or image.shape[1] != 3 or not image.is_floating_point():
                raise UserError(
                    f"expected a float (B, 3, H, W) tensor in [-1, 1], got {image.dtype} "
                    f"{tuple(image.shape)}"
                )
            return image.to(torch.float32)
        if isinstance(image, str | Path):
            path = Path(image)
            if not path.is_file():
                raise UserError(f"image {path} does not exist")
            return to_tensor(load_rgb(path)).unsqueeze(0)
        if isinstance(image, Image.Image):
            return to_tensor(image).unsqueeze(0)
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise UserError(
                    f"expected a uint8 (H, W, 3) RGB array, got {image.dtype} {image.shape}"
                )
            return to_tensor(Image.fromarray(image, mode="RGB")).unsqueeze(0)
        raise UserError(
            f"cannot translate a {type(image).__name__}: give a PIL image, a path, a uint8 "
            "(H, W, 3) array or a (B, 3, H, W) tensor in [-1, 1]"
        )

    def __repr__(self) -> str:
        return (
            f"Translator({self.config.method}/{self.config.mode}, preset={self.config.preset!r}, "
            f"step={self.step}, device={self.device})"
        )


# ---------------------------------------------------------------------------------------------
# Image files (``sesim translate``).


def translate_files(
    inputs: Path,
    output: Path,
    *,
    run: Path | None = None,
    checkpoint: Path | None = None,
    device: str = "auto",
    styles: int | None = None,
    style_image: Path | None = None,
    seed: int = 0,
    tile: int | None = None,
    overlap: int | None = None,
    quiet: bool = False,
) -> tuple[int, int]:
    """Translate an image file or a folder of images with a run's generator; write PNGs.

    Each image is translated at its own size (padded to the generator's multiple, cropped back)
    and written as ``output/<stem>.png``; with ``styles`` K a multi-modal run writes
    ``<stem>_style<i>.png`` for K style codes drawn from a generator seeded with ``seed``.

    Args:
        inputs: an image file or a folder of images.
        output: the folder the PNGs go to (created).
        run: a run folder (its newest checkpoint), or None with ``checkpoint``.
        checkpoint: a checkpoint file.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        styles: multi-modal runs: K sampled styles per input.
        style_image: multi-modal runs: take the style of this target-domain image.
        seed: seed of the sampled styles.
        tile: translate in overlapping tiles of this side (see :func:`translate_full`).
        overlap: the tiles' overlap in pixels (default: :func:`default_overlap`).
        quiet: no progress bar.
    Returns:
        ``(images written, the generator's training step)``.
    Raises:
        UserError: a missing run, input or style image, or options that do not fit the run.
    """
    if run is None and checkpoint is None:
        raise UserError("give --run RUN_DIR or --checkpoint FILE")
    translator = Translator.from_run(run, checkpoint, device)
    mode = translator.config.mode
    if not translator.multimodal and (styles is not None or style_image is not None):
        raise UserError(
            f"--styles and --style-image need a multimodal run; this run's mode is {mode}"
        )
    if styles is not None and style_image is not None:
        raise UserError("give either --styles K (sampled styles) or --style-image FILE, not both")
    if overlap is not None and tile is None:
        raise UserError("--overlap needs --tile")
    if tile is not None and tile % 4:
        raise UserError(f"--tile must be a multiple of 4, got {tile}")
    if tile is not None and translator.multimodal:
        raise UserError("--tile is for single-modal runs; this run's mode is multimodal")
    if inputs.is_dir():
        paths = filter_images(list_images(inputs, "input images"), "input images")
    elif inputs.is_file():
        paths = [inputs]
    else:
        raise UserError(f"input {inputs} does not exist; give an image file or a folder")
    style = None
    if style_image is not None:
        if not style_image.is_file():
            raise UserError(f"style image {style_image} does not exist")
        style = to_tensor(load_rgb(style_image)).unsqueeze(0)

    output.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in tqdm(paths, desc="translate", unit="img", disable=quiet):
        x = to_tensor(load_rgb(path)).unsqueeze(0)
        if styles is not None:
            ys = translator.styles_tensor(x, styles, seed)[0]
            outs = {f"_style{i}": ys[i] for i in range(styles)}
        else:
            outs = {"": translator.translate_tensor(x, style, seed, tile, overlap)[0]}
        for suffix, y in outs.items():
            save_image(y.cpu(), output / f"{path.stem}{suffix}.png")
            written += 1
    return written, translator.step
