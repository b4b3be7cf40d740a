"""``sesim demo``: synthetic data -> tiny FSeSim on the CPU -> a report to look at.

The built-in dataset is the "layout" task: domain A shows label-map-like flat-coloured layouts,
domain B the same kind of layouts rendered with textures, shading and noise. The test split is
paired by construction, so the report can show the true target beside each translation and
the self-similarity error maps of a good and of a wrong output (the idea of the paper's Fig. 5).
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from sesim.config import preset, validate
from sesim.data.images import list_images, load_rgb, to_tensor
from sesim.data.synthetic import write_synthetic_dataset
from sesim.devices import resolve_device
from sesim.features.vgg import VGG16Features
from sesim.losses.spatial import SpatialCorrelativeLoss
from sesim.report import write_index, write_sample_grid
from sesim.runs import list_checkpoints, load_generator
from sesim.train import resume, train
from sesim.translate import translate_batch
from sesim.viz import error_map_figure, per_query_error

DEMO_SIZE = 64
DEMO_TRAIN_IMAGES = 400
#: training steps of the demo: ``tiny`` has 600, which with its identity term on target images
#: takes the whole demo just over 5 minutes on 2 CPU cores; 500 keep it at about 4.5.
DEMO_STEPS = 500


def _load(paths: list[Path]) -> torch.Tensor:
    return torch.stack([to_tensor(load_rgb(p)) for p in paths])


def run_demo(
    out: Path, data: Path, steps: int | None = None, device: str = "cpu", quiet: bool = False
) -> Path:
    """Run the demo end to end; returns the report's path."""
    t0 = time.perf_counter()
    if not (data / "meta.json").is_file():
        print(f"[1/4] writing the synthetic dataset to {data}")
        write_synthetic_dataset(
            data, n=DEMO_TRAIN_IMAGES, size=DEMO_SIZE, seed=0, task="layout", progress=not quiet
        )
    else:
        print(f"[1/4] reusing the synthetic dataset in {data}")

    cfg = preset("tiny")
    cfg = replace(
        cfg,
        device=device,
        steps=DEMO_STEPS if steps is None else steps,
        data=replace(cfg.data, root=str(data)),
    )
    cfg = validate(cfg)
    if list_checkpoints(out):
        print(f"[2/4] continuing the run in {out} (delete it to start over)")
        final = resume(out, quiet=quiet)
    else:
        print(f"[2/4] training the 'tiny' FSeSim preset for {cfg.steps} steps on {device}")
        final = train(cfg, out, quiet=quiet)

    print("[3/4] translating the test set")
    dev = resolve_device(device)
    G, run_cfg, step = load_generator(None, final, dev)
    test_a = list_images(data / "testA", "test inputs")
    test_b = list_images(data / "testB", "test targets")
    shown = min(8, len(test_a))
    xs = _load(test_a[:shown]).to(dev)
    ys = _load(test_b[:shown]).to(dev)
    with torch.no_grad():
        fakes = translate_batch(G, xs)
    results = out / "results"
    write_sample_grid(
        xs, [fakes, ys], results / "test_grid.png", labels=["input", "sesim", "true target"]
    )

    print("[4/4] drawing self-similarity error maps")
    fig = _error_maps(run_cfg, xs, fakes, ys, out / "selfsim_errors.png")
    write_index(out, extra={"Self-similarity error maps (cf. the paper's Fig. 5)": fig.name})
    minutes = (time.perf_counter() - t0) / 60
    print(
        f"\ndemo finished in {minutes:.1f} min (generator at step {step}).\n"
        f"  report:       {out / 'index.html'}\n"
        f"  test grid:    {results / 'test_grid.png'}\n"
        f"  error maps:   {out / 'selfsim_errors.png'}\n"
        f"  TensorBoard:  tensorboard --logdir {out / 'tb'}",
        file=sys.stdout,
    )
    return out / "index.html"


def _error_maps(
    cfg: object, xs: torch.Tensor, fakes: torch.Tensor, ys: torch.Tensor, path: Path
) -> Path:
    """Fig.-5-style picture for the first test image: translation, true target, wrong outputs."""
    assert hasattr(cfg, "structure")
    s = cfg.structure
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vgg = VGG16Features(s.layers, weights=None if s.vgg_weights == "random" else s.vgg_weights)
    vgg = vgg.to(xs.device)
    crit = SpatialCorrelativeLoss(vgg.channels, s.loss).to(xs.device)
    x = xs[:1]
    other = ys[1:2] if len(ys) > 1 else ys[:1].flip(3)
    candidates = [
        ("sesim translation", fakes[:1]),
        ("true target (same layout)", ys[:1]),
        ("target, shifted", torch.roll(ys[:1], shifts=(9, 13), dims=(2, 3))),
        ("another image", other),
    ]
    with torch.no_grad():
        fx = vgg(x)
        errors, losses = [], []
        for _, y in candidates:
            fy = vgg(y)
            g = torch.Generator().manual_seed(0)
            losses.append(float(crit.structure_loss(fx, fy, generator=g)))
            errors.append(per_query_error(fx[0], fy[0], s.loss.window, s.loss.kind)[0])
    return error_map_figure(
        x[0],
        [(name, img[0]) for name, img in candidates],
        errors,
        losses,
        path,
        title=f"FSeSim structure loss against input x (VGG weights: {vgg.weights_source})",
    )
