"""Histogram matching: tied values, monotonicity, thinning and bad input."""

from __future__ import annotations

import pytest
import torch

from sesim.data import colour
from sesim.data.colour import ChannelHistograms, histogram_transfer


def test_histogram_transfer_maps_flat_colours_to_target_quantiles() -> None:
    # Source: a quarter of pixels at -0.5, three quarters at 0.5 (ties, as flat regions give).
    source = torch.full((1, 1, 4, 4), 0.5)
    source[0, 0, 0] = -0.5
    target = torch.linspace(-1, 1, 16).view(1, 1, 4, 4)
    images = torch.tensor([-0.5, 0.5]).view(1, 1, 1, 2)
    out = histogram_transfer(images, source, target)
    # Mid-ranks: -0.5 sits at quantile 2/16, 0.5 at 10/16; each flat colour stays one colour.
    expected = target.flatten()[[round(2 / 16 * 15), round(10 / 16 * 15)]]
    assert torch.equal(out.flatten(), expected)
    # Monotone and identity-like when both domains share their distribution.
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    out = histogram_transfer(x, x, x)
    for c in range(3):
        values = x[:, c].flatten().sort().values
        gap = (values[1:] - values[:-1]).max()
        assert (out[:, c] - x[:, c]).abs().max() <= gap
        # Monotone: the order of the values is kept (ties allowed).
        order = x[:, c].flatten().argsort()
        assert (out[:, c].flatten()[order].diff() >= 0).all()


def test_thinned_tables_keep_the_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(0)
    source = torch.rand(4, 3, 16, 16, generator=g)
    target = torch.rand(4, 3, 16, 16, generator=g) * 2 - 1
    full = histogram_transfer(source, source, target)
    monkeypatch.setattr(colour, "MAX_VALUES", 257)
    thin = ChannelHistograms.fit(source, target)
    assert thin.source.shape == (3, 257) and thin.target.shape == (3, 257)
    assert (thin.source.diff(dim=1) >= 0).all()
    # Quantiles from 257 of 1,024 values per channel: within a few hundredths of the full map.
    assert (thin(source) - full).abs().max() < 0.05


def test_mismatched_channels_are_refused() -> None:
    with pytest.raises(ValueError, match="same channels"):
        ChannelHistograms.fit(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4))
    fitted = ChannelHistograms.fit(torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4))
    with pytest.raises(ValueError, match="fitted on 3 channels"):
        fitted(torch.zeros(1, 1, 4, 4))
