"""The multi-modal recipe (one-sided MUNIT + F/LSeSim), its evaluation and its benchmark."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from sesim.config import TrainConfig, preset
from sesim.data.synthetic import write_synthetic_dataset
from sesim.errors import UserError
from sesim.eval.multimodal import (
    MULTIMODAL_COLUMNS,
    MULTIMODAL_SCORES,
    density_coverage_over_styles,
    diversity_lpips,
    evaluate_multimodal,
    fid_over_styles,
)
from sesim.losses.adversarial import ImagePool
from sesim.methods import METHODS, StepContext, get_method
from sesim.methods import munit as recipe
from sesim.metrics import lpips_model, random_conv_extractor
from sesim.nets.munit import MunitGenerator
from sesim.translate import translate_random, translate_styles, translate_with_style

pytestmark = pytest.mark.filterwarnings("ignore:VGG16Features uses random weights")


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: these tiny networks gain nothing from more, and on a busy machine
    spinning worker threads make each step many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(cfg: TrainConfig, data: Path | None = None, **kw: object) -> TrainConfig:
    """Shrink a multi-modal preset to a 32 px CPU run (random VGG weights)."""
    settings: dict[str, object] = {
        "steps": 2,
        "batch": 1,
        "save_every": 1,
        "log_every": 1,
        "sample_every": 1,
        "num_samples": 2,
        "device": "cpu",
        **kw,
    }
    return replace(
        cfg,
        data=replace(
            cfg.data, root=str(data or ""), load_size=32, crop_size=32, workers=0, flip=False
        ),
        munit=replace(cfg.munit, dim=8, n_res=1, mlp_dim=16, d_dim=8, d_layers=3, num_scales=2),
        structure=replace(
            cfg.structure,
            vgg_weights="random",
            loss=replace(cfg.structure.loss, num_queries=16),
        ),
        **settings,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("munit") / "ds"
    return write_synthetic_dataset(root, n=6, size=32, seed=0, task="multistyle", n_test=3)


@pytest.fixture(scope="module")
def trained_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step munit-tiny run through the training loop."""
    from sesim.train import train

    run = tmp_path_factory.mktemp("munit_run") / "run"
    train(tiny(preset("munit-tiny"), dataset), run, quiet=True)
    return run


def _generator(**munit: object) -> recipe.MunitTranslator:
    cfg = tiny(preset("munit-tiny"))
    cfg = replace(cfg, munit=replace(cfg.munit, **munit))  # type: ignore[arg-type]
    return recipe.build_generator(cfg).eval()


def _images(n: int, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g) * 2 - 1


# ---------------------------------------------------------------------------------------------
# Registry and networks.


def test_registered_and_built_from_the_config() -> None:
    assert METHODS["munit"] is recipe and recipe.__name__ == "sesim.methods.munit"
    cfg = tiny(preset("munit-lsesim"))
    nets = get_method("munit").build(cfg)
    assert isinstance(nets.G, MunitGenerator)
    assert nets.G.style_dim == cfg.munit.style_dim and nets.G.enc_style is not None
    assert nets.D.num_scales == cfg.munit.num_scales
    assert set(nets.trainable()) == {"G", "D", "heads"}
    # Deterministic initialisation from cfg.seed; another seed gives other weights.
    again = recipe.build_generator(cfg)
    for a, b in zip(nets.G.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    other = recipe.build_generator(replace(cfg, seed=1))
    assert not torch.equal(other.mlp.model[0].fc.weight, nets.G.mlp.model[0].fc.weight)


def test_a_crop_too_small_for_the_discriminator_is_a_user_error() -> None:
    cfg = tiny(preset("munit-tiny"))
    cfg = replace(cfg, munit=replace(cfg.munit, num_scales=3, d_layers=4))
    with pytest.raises(UserError, match=r"munit\.num_scales"):
        recipe.build(cfg)


def test_style_codes_change_the_output_and_the_same_code_repeats_it() -> None:
    G = _generator()
    x = _images(2)
    g = torch.Generator().manual_seed(0)
    s1, s2 = G.sample_style(2, g), G.sample_style(2, g)
    with torch.no_grad():
        y1, y1_again, y2 = G(x, s1), G(x, s1), G(x, s2)
        mean_style = G(x)
        zero = G(x, torch.zeros_like(s1))
    assert torch.equal(y1, y1_again)
    assert (y1 - y2).abs().mean() > 1e-3
    # Without a code, the prior's mean (the zero code) is used: sample grids and evaluation.
    assert torch.equal(mean_style, zero)


def test_translate_styles_shapes_dtypes_and_reproducibility() -> None:
    G = _generator()
    x = _images(3, 30, 34)  # not multiples of 4: padded and cropped back
    out = translate_styles(G, x, 4, torch.Generator().manual_seed(7))
    assert out.shape == (3, 4, 3, 30, 34) and out.dtype == torch.float32
    assert out.abs().max() <= 1.0
    again = translate_styles(G, x, 4, torch.Generator().manual_seed(7))
    assert torch.equal(out, again)
    other = translate_styles(G, x, 4, torch.Generator().manual_seed(8))
    assert (out - other).abs().mean() > 1e-3
    # Style j is one code for every image, whatever the batch.
    alone = translate_styles(G, x[1:2], 4, torch.Generator().manual_seed(7))
    torch.testing.assert_close(alone[0], out[1], atol=1e-5, rtol=1e-4)
    assert (out[:, 0] - out[:, 1]).abs().mean() > 1e-3
    # Double precision in, double precision out.
    out64 = translate_styles(G.double(), x.double(), 2, torch.Generator().manual_seed(7))
    assert out64.dtype == torch.float64 and out64.shape == (3, 2, 3, 30, 34)
    with pytest.raises(UserError, match="number of styles"):
        translate_styles(G, x, 0, torch.Generator())


def test_translate_random_and_with_style() -> None:
    G = _generator()
    x = _images(2, 20, 28)
    y = translate_random(G, x, torch.Generator().manual_seed(0))
    assert y.shape == (2, 3, 20, 28)
    # Example-guided: one example image for the whole batch, of another size.
    styled = translate_with_style(G, x, _images(1, 40, 24, seed=1))
    assert styled.shape == (2, 3, 20, 28) and styled.dtype == torch.float32
    other = translate_with_style(G, x, _images(1, 40, 24, seed=2))
    assert not torch.equal(styled, other)
    with pytest.raises(UserError, match="16"):
        translate_with_style(G, x, _images(1, 8, 8))
    with pytest.raises(UserError, match="no style encoder"):
        translate_with_style(_generator(style_encoder=False), x, _images(1))


# ---------------------------------------------------------------------------------------------
# Training.


def _context(cfg: TrainConfig, nets: recipe.MunitNets) -> StepContext:
    optimizers = recipe.build_optimizers(cfg, nets)
    pools = {name: ImagePool(cfg.optim.pool_size) for name in recipe.POOLS}
    return StepContext(cfg, optimizers, pools, torch.Generator().manual_seed(4))


def test_lsesim_step_updates_every_network() -> None:
    cfg = tiny(preset("munit-lsesim"), batch=2)
    nets = recipe.build(cfg)
    ctx = _context(cfg, nets)
    assert set(ctx.optimizers) == {"G", "D", "heads"}
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in nets.trainable().items()}
    batch = {k: _images(2, seed=i) for i, k in enumerate(("A", "B", "A_aug", "B_aug"))}
    logs = recipe.train_step(nets, ctx, batch)
    assert set(logs) == {"heads_nce", "D_real", "D_fake", "G_gan", "G_struct", "G_style"}
    assert all(v.ndim == 0 and torch.isfinite(v) and not v.requires_grad for v in logs.values())
    for key, module in nets.trainable().items():
        changed = any(not torch.equal(a, b) for a, b in zip(before[key], module.parameters()))
        assert changed, key
    assert not any(p.requires_grad for p in nets.vgg.parameters())


def test_structure_loss_stays_low_across_styles(dataset: Path) -> None:
    """Every sampled style keeps the input's self-similarity: on a briefly trained tiny model
    the structure loss of the worst style is well below that of a translation of another
    scene, and training lowered it, while the styles still differ."""
    from sesim.data.stream import make_dataset

    cfg = tiny(preset("munit-tiny"), dataset, batch=2)
    nets = recipe.build(cfg)
    ctx = _context(cfg, nets)
    ds = make_dataset(cfg)
    x = torch.stack([ds[(i, 0, 0)]["A"] for i in range(4)])
    with torch.no_grad():
        feats_x = nets.vgg(x)
    idx = nets.crit.sample_indices(feats_x, torch.Generator().manual_seed(2))

    def losses(y: torch.Tensor) -> list[float]:
        """Structure loss between x and each style's translations y[:, j]."""
        with torch.no_grad():
            return [
                float(nets.crit.structure_loss(feats_x, nets.vgg(y[:, j]), indices=idx))
                for j in range(y.shape[1])
            ]

    def translations() -> torch.Tensor:
        out = translate_styles(nets.G.eval(), x, 4, torch.Generator().manual_seed(1))
        nets.G.train()
        return out

    at_init = losses(translations())
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        keys = [(int(i), int(j), 0) for i, j in torch.randint(6, (2, 2), generator=g)]
        items = [ds[k] for k in keys]
        recipe.train_step(nets, ctx, {k: torch.stack([it[k] for it in items]) for k in ("A", "B")})

    fakes = translations()
    kept = losses(fakes)
    other_scene = losses(fakes.roll(1, dims=0))  # image i against the translation of i - 1
    assert max(kept) < 0.75 * min(other_scene), (kept, other_scene)
    assert sum(kept) < 0.9 * sum(at_init), (kept, at_init)
    assert (fakes[:, 0] - fakes[:, 1]).abs().mean() > 1e-2


def test_smoke_train_load_and_translate(trained_run: Path) -> None:
    from sesim.runs import list_checkpoints, load_checkpoint, load_generator

    ckpts = list_checkpoints(trained_run)
    state = load_checkpoint(ckpts[-1])
    assert state["step"] == 2 and state["mode"] == "multimodal" and state["method"] == "munit"
    assert set(state["nets"]) == {"G", "D"}
    assert list((trained_run / "samples").glob("*.png"))
    G, cfg, step = load_generator(None, ckpts[-1], "cpu")
    assert isinstance(G, MunitGenerator) and not G.training and step == 2
    assert cfg.munit.dim == 8
    x = _images(1)
    a = translate_styles(G, x, 3, torch.Generator().manual_seed(5))
    b = translate_styles(G, x, 3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (1, 3, 3, 32, 32)


# ---------------------------------------------------------------------------------------------
# Evaluation (Table 2 protocol).


def _random_lpips() -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return lpips_model(None, random_backbone=True)


def test_diversity_fid_and_coverage_over_styles() -> None:
    G = _generator()
    x = _images(5, seed=3)
    net = _random_lpips()
    mean, std = diversity_lpips(G, x, net, pairs_per_input=2, generator=torch.Generator())
    assert mean > 0 and std >= 0
    extractor = random_conv_extractor(seed=0, dim=16)
    from sesim.metrics import extract_features

    real = extract_features(extractor, _images(6, seed=4))
    fid, fid_std = fid_over_styles(G, x, real, extractor, n_styles=3, generator=torch.Generator())
    assert fid > 0 and fid_std > 0
    dc = density_coverage_over_styles(
        G, x, real, extractor, n_styles=2, generator=torch.Generator(), nearest_k=2
    )
    assert {"density", "coverage", "density_std", "coverage_std"} <= set(dc)
    assert 0.0 <= dc["coverage"] <= 1.0

    # A generator that ignores its style code is not diverse at all.
    with torch.no_grad():
        G.mlp.model[-1].fc.weight.zero_()
    mean, _ = diversity_lpips(G, x, net, pairs_per_input=2, generator=torch.Generator())
    assert mean == pytest.approx(0.0, abs=1e-6)
    _, fid_std = fid_over_styles(G, x, real, extractor, n_styles=2, generator=torch.Generator())
    assert fid_std == pytest.approx(0.0, abs=1e-6)


def test_evaluate_multimodal_on_a_run(trained_run: Path) -> None:
    from sesim.eval.report import COLUMNS, SCORES

    report = evaluate_multimodal(
        trained_run, extractor="random", device="cpu", nearest_k=95, settings=None
    )
    assert report["step"] == 2 and report["num_inputs"] == 3
    assert report["lpips_backbone"] == "random"
    assert report["diversity_lpips"] is not None and report["diversity_lpips"] > 0
    assert report["fid_styles"] is not None and report["fid_styles"] >= 0
    # 3 test images are too few for density/coverage with k = 95: n/a with the reason.
    assert report["density_styles"] is None and "density_styles" in report["unavailable"]
    assert set(MULTIMODAL_COLUMNS) >= set(MULTIMODAL_SCORES)
    # The Table 2 columns are wired into `sesim eval`.
    assert set(MULTIMODAL_COLUMNS) <= set(COLUMNS) and set(MULTIMODAL_SCORES) <= set(SCORES)


def test_evaluate_multimodal_needs_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no checkpoint"):
        evaluate_multimodal(tmp_path, extractor="random", device="cpu")


# ---------------------------------------------------------------------------------------------
# Benchmark.


def test_bench_multimodal_toy(tmp_path: Path) -> None:
    from sesim.bench.multimodal import ROWS, row_config, run_multimodal_bench

    def shrink(cfg: TrainConfig) -> TrainConfig:
        return replace(
            cfg,
            munit=replace(cfg.munit, dim=8, n_res=1, mlp_dim=16, d_dim=8),
            structure=replace(cfg.structure, loss=replace(cfg.structure.loss, num_queries=16)),
        )

    results = run_multimodal_bench(
        tmp_path / "bench",
        steps=1,
        size=32,
        device="cpu",
        seed=0,
        rows=("munit-fsesim",),
        batch=1,
        n_train=4,
        n_test=3,
        n_styles=2,
        pairs_per_input=1,
        aux_steps=2,
        grid_inputs=2,
        tweak=shrink,
    )
    names = [r["method"] for r in results["rows"]]
    assert names == ["input A", "real B", "munit-fsesim"]
    row = results["rows"][-1]
    for key in ("miou", "pixel_acc", "diversity_lpips", "families", "fid"):
        assert isinstance(row[key], float), key
    assert 1.0 <= row["families"] <= 3.0
    text = (tmp_path / "bench" / "results.md").read_text()
    assert "| method | mIoU ↑ |" in text and "random-weight AlexNet" in text
    with Image.open(results["grids"]["munit-fsesim"]) as grid:
        # input row + 2 style rows of 32 px images, 2 columns (plus padding and labels).
        assert grid.size[1] == 3 * (32 + 2) + 2
    with pytest.raises(UserError, match="unknown bench row"):
        run_multimodal_bench(tmp_path / "x", rows=("nope",))
    # Every row has a valid config: LSeSim with its heads, the GAN-only row without lambda.
    for name in ROWS:
        cfg = row_config(name, tmp_path, 10, 64, 4, "cpu", 0, "random")
        assert cfg.method == "munit" and cfg.data.crop_size == 64
        assert cfg.structure.loss.learned == (name == "munit-lsesim")
        assert (cfg.structure.weight == 0) == (name == "munit-gan")
