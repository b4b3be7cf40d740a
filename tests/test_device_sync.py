"""A training step never reads a device value on the host, checked without a GPU.

On a GPU every such read (``.item()``, ``int(t)``, ``.tolist()``, ``.cpu()``, a boolean mask,
``nonzero``) makes the host wait until the device has finished all queued work, so the GPU
idles while the next kernels are launched; at batch 1, where launches dominate, that costs more
than the arithmetic. Here the networks, their optimiser states, the pools and the batch live on
PyTorch's ``meta`` device, where any read of a value raises: a step that completes on ``meta``
has no host read of device data. (Reads of CPU tensors, such as the CPU random generator's
draws and Adam's CPU step counters, stay allowed: they do not wait for the GPU.) Copies from
the CPU to the device inside a step (query indices, style codes, noise drawn from the CPU
generator) must be non-blocking: a blocking one waits for the device's queue to drain.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from sesim.config import TrainConfig, preset
from sesim.data.stream import batch_stream
from sesim.data.synthetic import write_synthetic_dataset
from sesim.losses.adversarial import ImagePool
from sesim.methods import StepContext, get_method
from sesim.train import colour_transfer_map

META = torch.device("meta")
PRESETS = [
    "tiny",
    "tiny-lsesim",
    "table3-A",
    "table3-B",
    "table3-C",
    "table3-F",
    "tiny-cyclegan",
    "tiny-cut",
    "tiny-fastcut",
    "tiny-perceptual",
    "munit-tiny",
    "munit-lsesim",
    "single-image-tiny",
]


class BlockingCopies(TorchDispatchMode):
    """Records CPU-to-device copies that are not ``non_blocking``."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.overloadpacket in (torch.ops.aten._to_copy, torch.ops.aten.copy_):
            src = args[1] if func.overloadpacket is torch.ops.aten.copy_ else args[0]
            blocking = not kwargs.get("non_blocking", len(args) > 2 and args[2])
            on_device = any(isinstance(t, torch.Tensor) and t.is_meta for t in tree_leaves(out))
            if src.device.type == "cpu" and src.numel() and on_device and blocking:
                self.found.append(f"{func} of {tuple(src.shape)}")
        return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sync")
    write_synthetic_dataset(root / "ds", n=4, size=32, seed=0, task="layout", n_test=2)
    rng = np.random.default_rng(0)
    for name in ("source", "target"):
        pixels = rng.integers(0, 256, size=(48, 56, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{name}.png")
    return root


def small(name: str, data: Path) -> TrainConfig:
    """The preset at 32 px with small networks, a pool that fills after two images."""
    cfg = preset(name)
    structure = replace(
        cfg.structure, vgg_weights="random", loss=replace(cfg.structure.loss, num_queries=8)
    )
    cfg = replace(
        cfg,
        batch=2,
        device="cpu",
        structure=structure,
        optim=replace(cfg.optim, pool_size=2),
        model=replace(cfg.model, ngf=8, ndf=8, n_blocks=1),
    )
    if cfg.mode == "single-image":
        d = replace(
            cfg.data,
            source=str(data / "source.png"),
            target=str(data / "target.png"),
            load_size=48,
            crop_size=32,
        )
        # The R1 penalty stands in for the default "mixed" one, whose interpolation weights
        # come from a generator on the data's device: meta has no random generators.
        sg = replace(cfg.stylegan, ngf=4, ndf=4, gp="r1")
        return replace(cfg, data=d, stylegan=sg)
    d = replace(cfg.data, root=str(data / "ds"), load_size=36, crop_size=32, workers=0)
    cfg = replace(cfg, data=d)
    if cfg.mode == "multimodal":
        m = replace(cfg.munit, dim=8, mlp_dim=16, n_res=1, d_dim=8, d_layers=3, num_scales=2)
        cfg = replace(cfg, munit=m)
    return cfg


@pytest.mark.parametrize("name", PRESETS)
def test_a_training_step_reads_no_device_value(name: str, data: Path) -> None:
    cfg = small(name, data)
    method = get_method(cfg.method)
    cpu_batch = next(batch_stream(cfg, 0, torch.device("cpu")))
    batch = {k: v.to(META) for k, v in cpu_batch.items() if isinstance(v, torch.Tensor)}
    nets = method.build(cfg)
    for module in nets.all_modules():
        module.to(META)
    # The colour anchor's map is fitted on the CPU before training and moved to the device once.
    recolour = (
        colour_transfer_map(cfg, torch.device("cpu")).to(META)
        if cfg.structure.colour_anchor > 0
        else None
    )
    ctx = StepContext(
        cfg,
        method.build_optimizers(cfg, nets),
        {pool: ImagePool(cfg.optim.pool_size) for pool in method.POOLS},
        torch.Generator().manual_seed(0),
        recolour=recolour,
    )
    copies = BlockingCopies()
    with copies:
        for _ in range(3):  # the third step draws from full pools
            logs = method.train_step(nets, ctx, batch)
    assert not copies.found, f"blocking CPU-to-device copies in a step: {copies.found}"
    assert logs and all(v.device == META for v in logs.values())
    for module in nets.trainable().values():
        assert all(p.device == META for p in module.parameters())


def test_a_device_value_read_and_a_blocking_copy_are_caught() -> None:
    """The checks have teeth: the range check on query indices would read them."""
    from sesim.losses import self_similarity
    from sesim.losses.selfsim import _check_query_idx

    feat = torch.empty(1, 8, 4, 4, device=META)
    idx = torch.zeros(3, dtype=torch.long, device=META)
    assert self_similarity(feat, idx, 2).shape == (1, 3, 4)  # no read of idx's values
    with pytest.raises(RuntimeError, match="meta"):
        int(idx.max())
    with pytest.raises(ValueError, match="out of range"):
        _check_query_idx(torch.tensor([16]), 4, 4)  # CPU indices are still checked
    copies = BlockingCopies()
    with copies:
        torch.zeros(3).to(META, non_blocking=True)
        assert not copies.found
        torch.zeros(3).to(META)
    assert len(copies.found) == 1
