"""The FSeSim recipe's gradient balancing at the generator's output."""

from __future__ import annotations

import pytest
import torch

from sesim.methods.sesim import balanced_output_loss

# ---------------------------------------------------------------------------------------------
# Gradient balancing at the generator's output.


def test_balanced_loss_gives_the_requested_gradient_ratio() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    out = x * 2.0
    a, b = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    loss_gan = (out * a).sum()  # gradient at out: a
    loss_struct = 0.5 * (out * b).sum() * 1e-3  # gradient at out: 5e-4 * b
    surrogate, logs = balanced_output_loss(out, loss_gan, loss_struct, ratio=2.0)
    surrogate.backward()
    w = 2.0 * a.norm() / (5e-4 * b.norm())
    torch.testing.assert_close(logs["G_struct_w"], w)
    torch.testing.assert_close(x.grad, 2.0 * (a + w * 5e-4 * b))
    assert logs["grad_gan"].item() == pytest.approx(a.norm().item(), rel=1e-5)
