"""Adversarial objectives, gradient penalties and the CycleGAN image pool.

The objectives follow ``GANLoss`` of CUT and of the public F-LSeSim code (``models/losses.py``),
which adds ``hinge`` and multi-scale lists. Every term is a mean over all logits of one scale;
a list of scales sums the per-scale means. As in both codebases, the discriminator loss is the
average of its real and fake terms, ``0.5 * (real + fake)``, for every mode:

=============== ========================================== ================================
mode            discriminator terms (real, fake)           generator loss
=============== ========================================== ================================
lsgan           mean((D(x) - 1)^2), mean(D(G(z))^2)        mean((D(G(z)) - 1)^2)
vanilla         BCE-with-logits to 1, to 0                 BCE-with-logits to 1
hinge           mean(relu(1 - D(x))), mean(relu(1 + D(G))) -mean(D(G(z)))
nonsaturating   mean(softplus(-D(x))), mean(softplus(D(G))) mean(softplus(-D(G(z))))
=============== ========================================== ================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

GanMode = Literal["lsgan", "vanilla", "hinge", "nonsaturating"]

#: Discriminator output: one logit map, or one per scale for multi-scale discriminators.
Logits = Tensor | Sequence[Tensor]

GAN_MODES: tuple[str, ...] = ("lsgan", "vanilla", "hinge", "nonsaturating")


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"unknown GAN mode {mode!r}; expected one of {', '.join(GAN_MODES)}")


def _scales(pred: Logits) -> list[Tensor]:
    if isinstance(pred, Tensor):
        return [pred]
    scales = list(pred)
    if not scales:
        raise ValueError("expected at least one discriminator output, got an empty list")
    return scales


def _real_term(pred: Tensor, mode: str) -> Tensor:
    """Discriminator loss pushing ``pred`` towards "real"."""
    if mode == "lsgan":
        return F.mse_loss(pred, torch.ones_like(pred))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred))
    if mode == "hinge":
        return F.relu(1.0 - pred).mean()
    return F.softplus(-pred).mean()


def _fake_term(pred: Tensor, mode: str) -> Tensor:
    """Discriminator loss pushing ``pred`` towards "fake"."""
    if mode == "lsgan":
        return F.mse_loss(pred, torch.zeros_like(pred))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred))
    if mode == "hinge":
        return F.relu(1.0 + pred).mean()
    return F.softplus(pred).mean()


def _generator_term(pred: Tensor, mode: str) -> Tensor:
    if mode in ("lsgan", "vanilla"):
        return _real_term(pred, mode)
    if mode == "hinge":
        return -pred.mean()
    return F.softplus(-pred).mean()


def discriminator_loss_terms(
    pred_real: Logits, pred_fake: Logits, mode: GanMode
) -> tuple[Tensor, Tensor]:
    """The real and fake terms of the discriminator loss, separately (for logging).

    Args:
        pred_real: (B, 1, h, w) logits of D on real images, or a list of them, one per scale.
        pred_fake: the same for generated images (detach them from the generator first).
        mode: the GAN objective; see the module docstring.
    Returns:
        (real_term, fake_term): two scalars, each summed over scales of per-scale means.

    Raises:
        ValueError: if ``mode`` is unknown.
    """
    _check_mode(mode)
    real = torch.stack([_real_term(p, mode) for p in _scales(pred_real)]).sum()
    fake = torch.stack([_fake_term(p, mode) for p in _scales(pred_fake)]).sum()
    return real, fake


def discriminator_loss(pred_real: Logits, pred_fake: Logits, mode: GanMode) -> Tensor:
    """Discriminator loss ``0.5 * (real_term + fake_term)``, as CycleGAN, CUT and F-LSeSim.

    Args:
        pred_real: (B, 1, h, w) logits of D on real images, or a list of them, one per scale.
        pred_fake: the same for generated images (detach them from the generator first).
        mode: the GAN objective; see the module docstring.
    Returns:
        scalar loss.

    Raises:
        ValueError: if ``mode`` is unknown.
    """
    real, fake = discriminator_loss_terms(pred_real, pred_fake, mode)
    return 0.5 * (real + fake)


def generator_loss(pred_fake: Logits, mode: GanMode) -> Tensor:
    """Adversarial loss of the generator.

    Args:
        pred_fake: (B, 1, h, w) logits of D on generated images, or a list of them, one per
            scale.
        mode: the GAN objective; see the module docstring.
    Returns:
        scalar loss, summed over scales of per-scale means.

    Raises:
        ValueError: if ``mode`` is unknown.
    """
    _check_mode(mode)
    return torch.stack([_generator_term(p, mode) for p in _scales(pred_fake)]).sum()


def r1_penalty(pred_real: Logits, real: Tensor) -> Tensor:
    """R1 regulariser (Mescheder et al. 2018): squared gradient norm of D at real images.

    ``real`` must have had ``requires_grad_(True)`` set before it was passed to D. The penalty
    is built with ``create_graph=True`` so that it can be back-propagated into D. Multiply it by
    ``gamma / 2`` for the usual R1 weighting.

    Args:
        pred_real: (B, 1, h, w) logits of D on ``real``, or a list of them (their sum is
            differentiated).
        real: (B, C, H, W) real images that produced ``pred_real``.
    Returns:
        scalar: mean over the batch of ||dD(real)/d real||^2.
    """
    total = torch.stack([p.sum() for p in _scales(pred_real)]).sum()
    (grad,) = torch.autograd.grad(outputs=total, inputs=real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def mixed_gradient_penalty(
    disc: Callable[[Tensor], Logits],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
    constant: float = 1.0,
) -> Tensor:
    """WGAN-GP penalty at random interpolates of real and fake images (the "mixed" type).

    As ``cal_gradient_penalty(type="mixed")`` of the public F-LSeSim code: one mixing weight
    alpha ~ U(0, 1) per image, x = alpha * real + (1 - alpha) * fake, and the penalty
    mean((||dD(x)/dx + 1e-16||_2 - constant)^2); for a multi-scale D the gradients of all scales
    are summed. The result is unweighted (F-LSeSim's ``lambda_gp`` is the caller's weight).

    Args:
        disc: the discriminator, mapping (B, C, H, W) images to logits or a list of them.
        real: (B, C, H, W) real images.
        fake: (B, C, H, W) generated images; both are detached here.
        generator: random source for alpha; it must be on ``real``'s device. None uses torch's
            global generator.
        constant: target gradient norm.
    Returns:
        scalar penalty, differentiable with respect to the parameters of ``disc``.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake shapes differ: {tuple(real.shape)} vs {tuple(fake.shape)}")
    b = real.shape[0]
    alpha = torch.rand(
        (b,) + (1,) * (real.ndim - 1), generator=generator, device=real.device, dtype=real.dtype
    )
    mixed = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    total = torch.stack([p.sum() for p in _scales(disc(mixed))]).sum()
    (grad,) = torch.autograd.grad(outputs=total, inputs=mixed, create_graph=True)
    norms = (grad.flatten(1) + 1e-16).norm(2, dim=1)
    return ((norms - constant) ** 2).mean()


class ImagePool:
    """Buffer of previously generated images (Shrivastava et al. 2017), as in CycleGAN.

    The discriminator is updated with a mix of current and past generated images. ``query``
    follows CycleGAN's ``ImagePool.query`` image by image: while the pool is not full, store the
    image and return it; once full, with probability 1/2 return a random stored image and put the
    new one in its place, otherwise return the new image. Randomness comes only from the
    ``torch.Generator`` given to ``query``, and ``state_dict`` holds the stored images, so a run
    resumed from a checkpoint sees exactly the same pool.

    Args:
        size: capacity of the pool (CycleGAN and F-LSeSim use 50; CUT uses 0). 0 disables it:
            ``query`` then returns its input unchanged.
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: Tensor, generator: torch.Generator | None) -> Tensor:
        """Return a batch drawn from the pool, updating it with ``images``.

        Args:
            images: (B, C, H, W) latest generated images. They are stored detached.
            generator: random source for the draws (CPU or on any device); None uses torch's
                global generator. Two draws are made per image once the pool is full, none before.
        Returns:
            (B, C, H, W) detached images: each one is either the corresponding input image or a
            past one it replaced. With ``size == 0`` the input itself is returned (not detached).
        """
        if self.size == 0:
            return images
        device = generator.device if generator is not None else torch.device("cpu")
        out: list[Tensor] = []
        for image in images.detach():
            image = image.clone()
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
                continue
            if torch.rand((), generator=generator, device=device).item() > 0.5:
                idx = int(torch.randint(self.size, (), generator=generator, device=device).item())
                out.append(self.images[idx])
                self.images[idx] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, int | list[Tensor]]:
        """The pool as plain data: ``{"size": int, "images": list of (C, H, W) tensors}``."""
        return {"size": self.size, "images": list(self.images)}

    def load_state_dict(self, state: dict[str, int | list[Tensor]]) -> None:
        """Restore the pool saved by ``state_dict``.

        Args:
            state: the saved dict; its size must match this pool's.

        Raises:
            ValueError: if the sizes differ or more images than the capacity are stored.
        """
        size = state["size"]
        images = state["images"]
        if not isinstance(size, int) or not isinstance(images, list):
            raise ValueError("pool state must hold an int 'size' and a list of tensors 'images'")
        if size != self.size:
            raise ValueError(f"pool state has size {size}, this pool has size {self.size}")
        if len(images) > self.size:
            raise ValueError(f"pool state holds {len(images)} images, more than size {size}")
        self.images = list(images)
