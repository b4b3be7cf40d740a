"""Baseline recipes (CycleGAN, CUT, FastCUT, perceptual): presets, invariants, smoke runs, resume."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from sesim.config import TrainConfig, preset, validate
from sesim.data.synthetic import write_synthetic_dataset
from sesim.methods import METHODS, StepContext, get_method
from sesim.methods import cut as cut_method
from sesim.methods import cyclegan as cyclegan_method
from sesim.methods.perceptual import perceptual_loss
from sesim.nets.resnet import PatchDiscriminatorPair, ResnetGenerator
from sesim.runs import generator_weights, list_checkpoints, load_checkpoint, load_generator
from sesim.train import resume, train
from sesim.translate import translate_batch

BASELINES = ("cyclegan", "cut", "fastcut", "perceptual")

#: checkpoint keys of the learned modules, per method
EXPECTED_NETS = {
    "cyclegan": {"G", "G_B", "D", "D_A"},
    "cut": {"G", "D", "heads"},
    "fastcut": {"G", "D", "heads"},
    "perceptual": {"G", "D"},
}
EXPECTED_OPTIMIZERS = {
    "cyclegan": {"G", "D"},
    "cut": {"G", "D", "heads"},
    "fastcut": {"G", "D", "heads"},
    "perceptual": {"G", "D"},
}
EXPECTED_POOLS = {
    "cyclegan": {"fake_A", "fake_B"},
    "cut": {"fake_B"},
    "fastcut": {"fake_B"},
    "perceptual": {"fake_B"},
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("baselines") / "ds"
    write_synthetic_dataset(root, n=6, size=32, seed=0, task="layout", n_test=4)
    return root


def small(name: str, data: Path, **kw: Any) -> TrainConfig:
    """The method's ``tiny-*`` preset shrunk to a 2-step, 32 px CPU run."""
    cfg = preset(f"tiny-{name}")
    return replace(
        cfg,
        steps=2,
        save_every=1,
        batch=kw.pop("batch", 1),
        num_samples=2,
        device="cpu",
        data=replace(cfg.data, root=str(data), load_size=32, crop_size=32, workers=0),
        model=replace(cfg.model, ngf=8, n_blocks=1, ndf=8),
        structure=replace(
            cfg.structure,
            vgg_weights="random",
            loss=replace(cfg.structure.loss, num_queries=16, window=8),
        ),
        baseline=replace(cfg.baseline, nce_patches=16),
        **kw,
    )


def _record_logs(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[dict[str, Tensor]]:
    """Wrap ``module.train_step`` so that every step's logs are kept."""
    seen: list[dict[str, Tensor]] = []
    original: Callable[..., dict[str, Tensor]] = module.train_step

    def wrapped(nets: Any, ctx: StepContext, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        logs = original(nets, ctx, batch)
        seen.append(logs)
        return logs

    monkeypatch.setattr(module, "train_step", wrapped)
    return seen


# ---------------------------------------------------------------------------------------------
# Registry and presets.


def test_presets_and_registry() -> None:
    for name in BASELINES:
        assert name in METHODS
        for preset_name in (name, f"tiny-{name}"):
            cfg = validate(preset(preset_name))
            assert cfg.method == name and cfg.preset == preset_name
    fast, cut = preset("fastcut").baseline, preset("cut").baseline
    assert (fast.nce_weight, fast.nce_identity) == (10.0, False)
    assert (cut.nce_weight, cut.nce_identity) == (1.0, True)
    cyc = preset("cyclegan").baseline
    assert (cyc.cycle_weight, cyc.cycle_identity) == (10.0, 0.5)
    # Baselines share networks and optimisation with the SeSim preset they compare against.
    ref = preset("fsesim")
    for name in BASELINES:
        cfg = preset(name)
        assert (cfg.model, cfg.optim, cfg.data, cfg.steps) == (
            ref.model,
            ref.optim,
            ref.data,
            ref.steps,
        )
    assert get_method("fastcut") is get_method("cut")


# ---------------------------------------------------------------------------------------------
# Invariants of the losses.


def test_cycle_of_identical_generators_on_a_constant_image(dataset: Path) -> None:
    cfg = small("cyclegan", dataset)
    G = cyclegan_method.build_generator(cfg)
    G_B = cyclegan_method.build(cfg).G_B
    first, first_b = G.model[1], G_B.model[1]
    assert isinstance(first, nn.Conv2d) and isinstance(first_b, nn.Conv2d)
    assert not torch.equal(first.weight, first_b.weight)  # independent initialisation
    G_B.load_state_dict(G.state_dict())
    image = torch.full((1, 3, 32, 32), 0.3)
    with torch.no_grad():
        out = cyclegan_method.cycle_forward(G, G_B, image, image.clone(), identity=True)
    # With the same generator both ways and the same image in both domains, the two cycles and
    # the two identity terms coincide exactly.
    assert out.idt_g is not None and out.idt_g_b is not None
    assert torch.equal(out.cycle_a, out.cycle_b)
    assert torch.equal(out.idt_g, out.idt_g_b)
    assert torch.equal(out.fake_a, out.fake_b)
    assert out.cycle_a.item() > 0
    # A pair of identity maps closes every cycle exactly.
    same = cyclegan_method.cycle_forward(nn.Identity(), nn.Identity(), image, image, True)
    for term in (same.cycle_a, same.cycle_b, same.idt_g, same.idt_g_b):
        assert term is not None and term.item() == 0.0
    no_idt = cyclegan_method.cycle_forward(G, G_B, image, image, identity=False)
    assert no_idt.idt_g is None and no_idt.idt_g_b is None


def test_patchnce_heads_exist_before_the_first_step(dataset: Path) -> None:
    cfg = small("cut", dataset)
    nets = cut_method.build(cfg)
    assert nets.layers == nets.G.default_nce_layers
    heads = dict(nets.heads.named_parameters())
    assert heads, "the projection heads must own their parameters after build()"
    assert not any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in nets.heads.modules())
    channels = nets.G.feature_channels(nets.layers)
    firsts = [mlp[0] for mlp in nets.heads.mlps if isinstance(mlp, nn.Sequential)]
    assert [m.in_features for m in firsts if isinstance(m, nn.Linear)] == channels
    opts = cut_method.build_optimizers(cfg, nets)
    in_opt = {id(p) for group in opts["heads"].param_groups for p in group["params"]}
    assert in_opt == {id(p) for p in heads.values()}
    # Layers given in the config (as strings, as YAML may hand them over) are honoured.
    custom = replace(cfg, baseline=replace(cfg.baseline, nce_layers=("4", "8")))  # type: ignore[arg-type]
    assert cut_method.build(custom).layers == (4, 8)


def test_nce_loss_prefers_the_matching_translation(dataset: Path) -> None:
    cfg = small("cut", dataset)
    nets = cut_method.build(cfg)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        same = cut_method.nce_loss(nets.G, nets.heads, nets.layers, x, x, 16, 0.07, gen)
        other = cut_method.nce_loss(nets.G, nets.heads, nets.layers, x, x.flip(3), 16, 0.07, gen)
    assert torch.isfinite(same) and torch.isfinite(other)
    assert same < other


def test_perceptual_loss_zero_for_identical_features() -> None:
    feats = [torch.randn(2, 4, 8, 8), torch.randn(2, 6, 4, 4)]
    assert perceptual_loss(feats, [f.clone() for f in feats]).item() == 0.0
    assert perceptual_loss(feats, [f + 1 for f in feats]).item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        perceptual_loss(feats, feats[:1])


# ---------------------------------------------------------------------------------------------
# Training.


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_trains_and_translates(
    name: str, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = small(name, dataset)
    module = METHODS[name]
    seen = _record_logs(monkeypatch, module)
    final = train(cfg, tmp_path / "run", quiet=True)

    assert len(seen) == 2
    for logs in seen:
        assert logs and all(torch.isfinite(v) and v.ndim == 0 for v in logs.values()), logs
        assert not any(v.requires_grad for v in logs.values())
    if name == "cut":
        assert "G_nce_idt" in seen[0]
    if name == "fastcut":
        assert "G_nce" in seen[0] and "G_nce_idt" not in seen[0]

    state = load_checkpoint(final)
    assert state["step"] == 2 and state["method"] == name
    assert set(state["nets"]) == EXPECTED_NETS[name]
    assert set(state["optimizers"]) == EXPECTED_OPTIMIZERS[name]
    assert set(state["pools"]) == EXPECTED_POOLS[name]

    G, loaded_cfg, step = load_generator(None, final, "cpu")
    assert isinstance(G, ResnetGenerator) and step == 2 and loaded_cfg.method == name
    weights = generator_weights(state)  # the averaged generator where the preset keeps one
    for k, v in G.state_dict().items():
        assert torch.equal(v, weights[k])
    image = torch.rand(1, 3, 30, 26) * 2 - 1
    out = translate_batch(G, image)
    assert out.shape == image.shape and torch.isfinite(out).all()


def test_cut_resume_is_bit_exact(dataset: Path, tmp_path: Path) -> None:
    cfg = small("cut", dataset, deterministic=True)
    full = tmp_path / "full"
    train(cfg, full, quiet=True)
    ckpts = list_checkpoints(full)
    assert [int(load_checkpoint(p)["step"]) for p in ckpts] == [1, 2]

    # Interrupted after step 1: a copy of the run without its last checkpoint, resumed.
    part = tmp_path / "part"
    shutil.copytree(full, part)
    list_checkpoints(part)[-1].unlink()
    resumed = resume(part, quiet=True)

    a, b = load_checkpoint(ckpts[-1]), load_checkpoint(resumed)
    assert b["step"] == 2
    for net in a["nets"]:
        for k, v in a["nets"][net].items():
            assert torch.equal(v, b["nets"][net][k]), f"{net}.{k} differs after resume"
    for pa, pb in zip(a["pools"]["fake_B"]["images"], b["pools"]["fake_B"]["images"], strict=True):
        assert torch.equal(pa, pb)
    assert torch.equal(a["generator"], b["generator"])


@pytest.mark.parametrize(
    "name", ["lsesim", "cyclegan", "cut", "perceptual", "distancegan", "gcgan"]
)
def test_discriminators_take_the_scaled_learning_rate(dataset: Path, name: str) -> None:
    # optim.d_lr_scale sets every recipe's D learning rate (two time-scale updates); G (and
    # any heads) keep optim.lr.
    cfg = small(name, dataset)
    cfg = replace(cfg, optim=replace(cfg.optim, lr=1e-4, lr_heads=1e-4, d_lr_scale=4.0))
    method = get_method(cfg.method)
    opts = method.build_optimizers(cfg, method.build(cfg))
    assert [g["lr"] for g in opts["D"].param_groups] == pytest.approx([4e-4])
    for key in set(opts) - {"D"}:
        lrs = [g["lr"] for g in opts[key].param_groups]
        assert lrs == pytest.approx([1e-4] * len(lrs))


@pytest.mark.parametrize("name", ["lsesim", "cyclegan"])
def test_local_discriminator_trains_beside_the_patchgan(
    name: str, dataset: Path, tmp_path: Path
) -> None:
    # model.d_local_layers adds a second, local PatchGAN to every domain discriminator; its
    # weights are trained and saved, and the main one starts as it would without it.
    cfg = small(name, dataset)
    local = replace(cfg, model=replace(cfg.model, d_local_layers=1))
    method = get_method(cfg.method)
    plain, paired = method.build(cfg), method.build(local)
    assert isinstance(paired.D, PatchDiscriminatorPair)
    for k, v in plain.D.state_dict().items():
        assert torch.equal(v, paired.D.main.state_dict()[k])
    before = {k: v.clone() for k, v in paired.D.local.state_dict().items()}

    final = train(local, tmp_path / "run", quiet=True)
    saved = load_checkpoint(final)["nets"]["D"]
    assert {k.split(".")[0] for k in saved} == {"main", "local"}
    assert any(not torch.equal(saved[f"local.{k}"], v) for k, v in before.items())
    assert load_checkpoint(final)["step"] == 2


@pytest.mark.parametrize("name", ("perceptual", "distancegan", "cut", "fastcut"))
def test_baseline_identity_term_is_logged_and_moves_the_generator(
    name: str, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``baseline.identity_weight`` adds |G(y) - y|_1 to the generator loss of the recipes
    without a pixel identity term of their own; 0 leaves the recipe as its public code."""
    generators = {}
    for weight in (0.0, 2.0):
        cfg = small(name, dataset)
        cfg = replace(cfg, baseline=replace(cfg.baseline, identity_weight=weight))
        seen = _record_logs(monkeypatch, METHODS[name])
        final = train(validate(cfg), tmp_path / f"run{weight}", quiet=True)
        assert ("G_idt" in seen[0]) == (weight > 0)
        if weight > 0:
            assert all(0 < float(logs["G_idt"]) < 2 for logs in seen)
        generators[weight] = load_checkpoint(final)["nets"]["G"]
    assert any(not torch.equal(generators[0.0][k], generators[2.0][k]) for k in generators[0.0])
