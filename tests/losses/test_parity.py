"""Parity with vectors computed by the authors' public implementation of the loss.

The vector file is ``$SESIM_PARITY_FILE`` or, by default, ``../shared/reference/sesim_parity.pt``
(relative to the repository root), falling back to the copy in ``tests/fixtures/``. Any file of the
same format works: one test per case, named after the case.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from sesim.losses import ProjectionHead, compare_similarity, self_similarity

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-5


def _parity_file() -> Path:
    env = os.environ.get("SESIM_PARITY_FILE")
    if env:
        return Path(env)
    shared = ROOT.parent / "shared" / "reference" / "sesim_parity.pt"
    return shared if shared.is_file() else ROOT / "tests" / "fixtures" / "sesim_parity.pt"


def _cases() -> list[dict[str, Any]]:
    path = _parity_file()
    if not path.is_file():
        raise FileNotFoundError(f"parity vectors not found at {path}; set SESIM_PARITY_FILE")
    data = torch.load(path, map_location="cpu", weights_only=True)
    return list(data["cases"])


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_parity(case: dict[str, Any]) -> None:
    kind = "cosine" if case["use_norm"] else "tanh"
    feats = {k: case.get(k) for k in ("f_src", "f_tgt", "f_other")}
    if case["use_conv"]:
        head = ProjectionHead(case["f_src"].shape[1])
        head.load_state_dict(case["conv"])
        feats = {k: head(v) if v is not None else None for k, v in feats.items()}
    idx = case["patch_ids"]
    window = int(case["patch_size"])
    with torch.no_grad():
        sims = {
            k: self_similarity(v, idx, window, kind) if v is not None else None
            for k, v in feats.items()
        }
        for ours, ref in (("f_src", "sim_src"), ("f_tgt", "sim_tgt"), ("f_other", "sim_other")):
            if ref in case:
                assert sims[ours] is not None
                torch.testing.assert_close(sims[ours], case[ref], atol=TOL, rtol=TOL)
        loss = compare_similarity(
            sims["f_src"],  # type: ignore[arg-type]
            sims["f_tgt"],  # type: ignore[arg-type]
            case["mode"],
            sim_other=sims["f_other"],
            temperature=float(case["T"]),
            smooth=not case["use_norm"],
        )
    expected = torch.as_tensor(case["loss"], dtype=loss.dtype).reshape(())
    torch.testing.assert_close(loss, expected, atol=TOL, rtol=TOL)
