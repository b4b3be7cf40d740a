"""Training options that docs/structure.md measured at small sizes: the generator's
downsampling depth, the identity warm-up, gradient balancing, the GAN warm-up and the colour
anchor."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sesim.config import preset, validate
from sesim.data.synthetic import write_synthetic_dataset
from sesim.devices import Dist
from sesim.errors import UserError
from sesim.losses.adversarial import ImagePool
from sesim.methods.common import StepContext
from sesim.methods.sesim import build, build_optimizers, structure_weight, train_step
from sesim.nets.resnet import ResnetGenerator
from sesim.runs import load_checkpoint, load_generator
from sesim.train import colour_transfer_map, identity_warmup, train

# ---------------------------------------------------------------------------------------------
# Generator depth and warm-ups.


def test_validate_refuses_bad_depth_and_warmups() -> None:
    base = preset("tiny")
    with pytest.raises(UserError, match="n_downsampling"):
        validate(replace(base, model=replace(base.model, n_downsampling=5)))
    deep = replace(base, model=replace(base.model, n_downsampling=3))
    with pytest.raises(UserError, match="multiple of 8"):
        validate(replace(deep, data=replace(base.data, crop_size=60)))
    validate(deep)  # 64 is a multiple of 8
    with pytest.raises(UserError, match="identity_warmup"):
        validate(replace(base, optim=replace(base.optim, identity_warmup=-1)))
    with pytest.raises(UserError, match=r"d_local_layers must lie in 0\.\.3"):
        validate(replace(base, model=replace(base.model, d_local_layers=4)))
    with pytest.raises(UserError, match="single-modal PatchGAN only"):
        munit = preset("munit-tiny")
        validate(replace(munit, model=replace(munit.model, d_local_layers=1)))
    validate(replace(base, model=replace(base.model, d_local_layers=2)))
    with pytest.raises(UserError, match="balance"):
        validate(replace(base, structure=replace(base.structure, balance=-1.0)))
    with pytest.raises(UserError, match="weight_final"):
        validate(replace(base, structure=replace(base.structure, weight_final=-1.0)))
    with pytest.raises(UserError, match=r"structure\.colour_anchor must be >= 0"):
        validate(replace(base, structure=replace(base.structure, colour_anchor=-0.5)))
    with pytest.raises(UserError, match=r"baseline\.identity_weight"):
        validate(replace(base, baseline=replace(base.baseline, identity_weight=-1.0)))


def test_structure_weight_ramps_linearly_to_its_final_value() -> None:
    cfg = replace(preset("tiny"), steps=11)
    assert structure_weight(cfg, 0) == structure_weight(cfg, 10) == cfg.structure.weight
    ramp = replace(cfg, structure=replace(cfg.structure, weight=10.0, weight_final=30.0))
    assert [structure_weight(ramp, s) for s in (0, 5, 10, 50)] == [10.0, 20.0, 30.0, 30.0]
    down = replace(ramp, structure=replace(ramp.structure, weight_final=5.0))
    assert structure_weight(down, 10) == 5.0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("structure") / "ds"
    write_synthetic_dataset(root, n=8, size=32, seed=0, task="layout", n_test=2)
    return root


def _small(data: Path, steps: int = 2, **structure: object) -> object:
    cfg = preset("tiny")
    return validate(
        replace(
            cfg,
            steps=steps,
            batch=2,
            save_every=steps,
            log_every=1,
            sample_every=steps,
            num_samples=2,
            device="cpu",
            data=replace(cfg.data, root=str(data), load_size=36, crop_size=32, workers=0),
            model=replace(cfg.model, ngf=8, ndf=8, n_blocks=1),
            structure=replace(
                cfg.structure,
                vgg_weights="random",
                loss=replace(cfg.structure.loss, num_queries=16),
                **structure,  # type: ignore[arg-type]
            ),
            optim=replace(cfg.optim, identity_warmup=0),
        )
    )


def load_image(path: Path, size: int) -> torch.Tensor:
    """(3, size, size) in [-1, 1]."""
    img = Image.open(path).convert("RGB").resize((size, size))
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 127.5 - 1


def test_identity_warmup_makes_the_generator_reproduce_its_input(dataset: Path) -> None:
    cfg = _small(dataset)
    cfg = replace(cfg, optim=replace(cfg.optim, lr=2e-3))  # type: ignore[arg-type]
    G = ResnetGenerator(3, 3, 8, 1, n_downsampling=1, antialias=False)
    files = (
        sorted((dataset / "trainA").glob("*.png"))[:2]
        + sorted((dataset / "trainB").glob("*.png"))[:2]
    )
    x = torch.stack([load_image(f, 32) for f in files])
    before = F.l1_loss(G(x), x).item()
    cfg = replace(cfg, optim=replace(cfg.optim, identity_warmup=60))  # type: ignore[attr-defined]
    identity_warmup(G, cfg, torch.device("cpu"), Dist())  # type: ignore[arg-type]
    after = F.l1_loss(G(x), x).item()
    assert after < 0.5 * before


def test_colour_transfer_warmup_fits_domain_a_to_its_recolouring(dataset: Path) -> None:
    cfg = _small(dataset)
    cfg = replace(  # type: ignore[arg-type]
        cfg,
        optim=replace(  # type: ignore[attr-defined]
            cfg.optim, lr=2e-3, identity_warmup=60, identity_warmup_target="colour_transfer"
        ),
    )
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    recolour = colour_transfer_map(cfg, torch.device("cpu"))
    # The fit's loader draws from the global generator; the rest of the run must not notice.
    assert torch.equal(torch.rand(3), expected)
    a = sorted((dataset / "trainA").glob("*.png"))[:2]
    b = sorted((dataset / "trainB").glob("*.png"))[:2]
    xa = torch.stack([load_image(f, 32) for f in a])
    xb = torch.stack([load_image(f, 32) for f in b])
    ya = recolour(xa)
    assert F.l1_loss(ya, xa) > 0.05  # the two domains' colours differ: a real target
    G = ResnetGenerator(3, 3, 8, 1, n_downsampling=1, antialias=False)
    identity_warmup(G, cfg, torch.device("cpu"), Dist())  # type: ignore[arg-type]
    with torch.no_grad():
        # Domain A goes to its recolouring, domain B stays itself.
        assert F.l1_loss(G(xa), ya) < F.l1_loss(G(xa), xa)
        assert F.l1_loss(G(xb), xb) < F.l1_loss(G(xb), recolour(xb))
    # The map is fitted on the same images on every rank and in every call.
    again = colour_transfer_map(cfg, torch.device("cpu"))
    assert torch.equal(again.source, recolour.source) and torch.equal(again.target, recolour.target)


def test_colour_transfer_target_without_warmup_says_it_does_nothing(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _small(dataset, steps=1)
    optim = replace(cfg.optim, identity_warmup=0, identity_warmup_target="colour_transfer")  # type: ignore[attr-defined]
    train(replace(cfg, optim=optim), tmp_path / "run", quiet=True)  # type: ignore[arg-type]
    assert "colour_transfer has no effect without a warm-up" in capsys.readouterr().err


def test_balance_and_gan_warmup_train_and_log_the_weight(dataset: Path, tmp_path: Path) -> None:
    cfg = _small(dataset, steps=3, balance=1.0, gan_warmup=2)
    cfg = replace(cfg, optim=replace(cfg.optim, identity_warmup=2))  # type: ignore[attr-defined]
    final = train(cfg, tmp_path / "run", quiet=True)  # type: ignore[arg-type]
    assert load_checkpoint(final)["step"] == 3
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"loss/G_struct_w", "loss/grad_gan", "loss/grad_struct"} <= set(tags)
    weights = [e.value for e in events.Scalars("loss/G_struct_w")]
    assert len(weights) == 3 and all(w > 0 for w in weights)


def test_structure_weight_ramp_trains_and_logs_the_weight(dataset: Path, tmp_path: Path) -> None:
    cfg = _small(dataset, steps=3, weight=10.0, weight_final=30.0)
    train(cfg, tmp_path / "run", quiet=True)  # type: ignore[arg-type]
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    weights = [e.value for e in events.Scalars("loss/G_struct_w")]
    assert weights == pytest.approx([10.0, 20.0, 30.0])


def test_colour_anchor_pulls_translations_towards_the_colour_transfer(
    dataset: Path, tmp_path: Path
) -> None:
    cfg = _small(dataset, steps=20, weight=0.0)
    cfg = replace(cfg, optim=replace(cfg.optim, lr=2e-3, ema=0.0))  # type: ignore[attr-defined]
    anchored = replace(cfg, structure=replace(cfg.structure, colour_anchor=50.0))  # type: ignore[attr-defined]
    xa = torch.stack([load_image(f, 32) for f in sorted((dataset / "trainA").glob("*.png"))[:4]])
    recolour = colour_transfer_map(cfg, torch.device("cpu"))  # type: ignore[arg-type]
    distance = {}
    for name, run_cfg in (("plain", cfg), ("anchored", anchored)):
        final = train(run_cfg, tmp_path / name, quiet=True)  # type: ignore[arg-type]
        G, _, _ = load_generator(None, final, torch.device("cpu"))
        with torch.no_grad():
            distance[name] = F.l1_loss(G(xa), recolour(xa)).item()
    assert distance["anchored"] < 0.8 * distance["plain"]  # measured: 0.63
    events = EventAccumulator(str(tmp_path / "anchored" / "tb"))
    events.Reload()
    assert len(events.Scalars("loss/G_anchor")) == 20
    assert (
        "loss/G_anchor"
        not in EventAccumulator(str(tmp_path / "plain" / "tb")).Reload().Tags()["scalars"]
    )


def test_colour_anchor_needs_the_map_in_the_step_context(dataset: Path) -> None:
    cfg = _small(dataset, colour_anchor=1.0)
    nets = build(cfg)  # type: ignore[arg-type]
    optimizers = build_optimizers(cfg, nets)  # type: ignore[arg-type]
    ctx = StepContext(cfg, optimizers, {"fake_B": ImagePool(0)}, torch.Generator().manual_seed(0))  # type: ignore[arg-type]
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    with pytest.raises(RuntimeError, match=r"ctx\.recolour"):
        train_step(nets, ctx, batch)
