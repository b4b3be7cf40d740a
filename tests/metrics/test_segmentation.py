"""Segmentation scores on hand-made label maps, the small segmenter and DRN-D-22."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from sesim.errors import UserError
from sesim.metrics.segmentation import (
    DRN_WEIGHTS_FILE,
    ConfusionMatrix,
    DRNSeg,
    SmallSegmenter,
    class_iou_values,
    evaluate_segmenter,
    load_drn_d_22,
    per_class_iou,
    segmentation_scores,
    segmenter_confusion,
    train_segmenter,
)


def _maps(*rows: list[list[int]]) -> Tensor:
    return torch.tensor(rows, dtype=torch.int64)


def test_perfect_prediction_scores_one() -> None:
    target = torch.randint(0, 4, (2, 8, 8), generator=torch.Generator().manual_seed(0))
    assert segmentation_scores(target, target.clone(), num_classes=5) == {
        "pixel_acc": 1.0,
        "mean_class_acc": 1.0,
        "miou": 1.0,
    }


def test_scores_computed_by_hand() -> None:
    # Class 0: 2 pixels, one predicted as 1. Class 1: 2 pixels, both right. Class 2: absent.
    target = _maps([[0, 0], [1, 1]])
    pred = _maps([[0, 1], [1, 1]])
    scores = segmentation_scores(pred, target, num_classes=3)
    assert scores["pixel_acc"] == pytest.approx(3 / 4)
    assert scores["mean_class_acc"] == pytest.approx((1 / 2 + 1) / 2)
    # IoU_0 = 1 / (2 + 1 - 1), IoU_1 = 2 / (2 + 3 - 2); class 2 left out of the mean.
    assert scores["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_a_class_predicted_but_never_labelled_counts_zero_iou() -> None:
    target = _maps([[0, 0], [0, 0]])
    pred = _maps([[0, 0], [0, 2]])
    scores = segmentation_scores(pred, target, num_classes=3)
    assert scores["pixel_acc"] == pytest.approx(3 / 4)
    assert scores["mean_class_acc"] == pytest.approx(3 / 4)  # only class 0 is labelled
    assert scores["miou"] == pytest.approx((3 / 4 + 0) / 2)  # class 1 absent everywhere


def test_ignored_pixels_and_accumulation_over_batches() -> None:
    target = _maps([[0, 255], [1, 1]], [[1, 0], [255, 255]])
    pred = _maps([[0, 2], [1, 0]], [[1, 1], [0, 0]])
    whole = segmentation_scores(pred, target, num_classes=3)
    cm = ConfusionMatrix(num_classes=3)
    for p, t in zip(pred, target):
        cm.update(p[None], t[None])
    assert cm.scores() == whole
    assert int(cm.matrix.sum()) == 5  # 3 pixels ignored
    assert whole["pixel_acc"] == pytest.approx(3 / 5)
    # Class 2 is predicted only where the label is ignored, so it takes no part in the scores.
    assert torch.isnan(cm.per_class_iou()[2])
    ious = class_iou_values(cm.matrix)
    present = [v for v in ious if v is not None]
    assert ious[2] is None and len(present) == 2
    assert sum(present) / 2 == pytest.approx(whole["miou"])
    with pytest.raises(ValueError, match="outside the class ids"):
        segmentation_scores(pred, torch.full_like(target, 7), num_classes=3)
    with pytest.raises(ValueError, match="no labelled pixels"):
        segmentation_scores(pred, torch.full_like(target, 255), num_classes=3)


_COLOURS = torch.tensor([[-0.8, -0.8, 0.8], [0.8, -0.8, -0.8], [-0.8, 0.8, -0.8]])


def _colour_regions(n: int, size: int, seed: int) -> tuple[Tensor, Tensor]:
    """Blocky label maps of 3 classes; each class painted in its own colour plus noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 3, (n, 1, size // 8, size // 8), generator=g).float()
    labels = torch.nn.functional.interpolate(coarse, scale_factor=8).squeeze(1).long()
    images = _COLOURS[labels].permute(0, 3, 1, 2)
    images = images + 0.15 * torch.randn(images.shape, generator=g)
    return images.clamp(-1, 1), labels


def test_train_segmenter_learns_colour_coded_regions_in_few_steps() -> None:
    images, labels = _colour_regions(16, 32, seed=0)
    model = train_segmenter(images, labels, 3, steps=80, batch_size=8, lr=3e-3, width=8)
    test_images, test_labels = _colour_regions(8, 32, seed=1)
    scores = evaluate_segmenter(model, test_images, test_labels, 3, batch_size=4)
    assert scores["pixel_acc"] > 0.9
    assert not model.training


class _ColourRule(torch.nn.Module):
    """A fixed "segmenter": class 0 where the red channel is high, else class 1 (logits)."""

    def forward(self, x: Tensor) -> Tensor:
        red = x[:, :1]
        return torch.cat([red, -red], dim=1)


def test_segmenter_confusion_counts_every_labelled_pixel_and_gives_each_class_iou() -> None:
    images = torch.full((2, 3, 4, 4), -1.0)
    images[:, 0, :, :2] = 1.0  # left half red: predicted class 0
    labels = torch.zeros(2, 4, 4, dtype=torch.int64)
    labels[:, :, 3] = 1  # right column class 1, so column 2 is predicted 1 but labelled 0
    labels[0, 0, 0] = 255  # ignored
    matrix = segmenter_confusion(_ColourRule(), images, labels, 2, batch_size=1)
    assert matrix.tolist() == [[15, 8], [0, 8]]
    assert per_class_iou(matrix).tolist() == pytest.approx([15 / 23, 8 / 16])
    scores = evaluate_segmenter(_ColourRule(), images, labels, 2, batch_size=1)
    assert scores["miou"] == pytest.approx((15 / 23 + 0.5) / 2)


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_small_segmenter_keeps_any_input_size_at_every_depth(levels: int) -> None:
    model = SmallSegmenter(5, width=4, levels=levels).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64) * 2 - 1).shape == (2, 5, 64, 64)
        assert model(torch.rand(1, 3, 60, 70) * 2 - 1).shape == (1, 5, 60, 70)
    # One encoder and one decoder per level, each level doubling the width.
    assert len(model.encoders) == len(model.decoders) == levels
    assert model.mid[0].out_channels == 4 * 2**levels


def test_small_segmenter_needs_a_level() -> None:
    with pytest.raises(ValueError, match="levels must be >= 1"):
        SmallSegmenter(3, levels=0)


def test_drn_d_22_builds_and_keeps_the_input_size() -> None:
    model = DRNSeg().eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64) * 2 - 1).shape == (2, 19, 64, 64)
        assert model(torch.rand(1, 3, 60, 68) * 2 - 1).shape == (1, 19, 60, 68)
    n_params = sum(p.numel() for p in model.base.parameters())
    assert 15.8e6 < n_params < 15.95e6  # DRN-D-22 is 16.4M with its 1000-way classifier


def test_drn_d_22_loads_a_drn_checkpoint(tmp_path: Path) -> None:
    source = DRNSeg(seed=3)
    # As saved by the drn code: DataParallel prefixes, no BatchNorm step counters.
    state = {
        f"module.{k}": v
        for k, v in source.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    path = tmp_path / DRN_WEIGHTS_FILE
    torch.save({"state_dict": state, "epoch": 250}, path)
    model = load_drn_d_22(path)
    torch.testing.assert_close(model.seg.weight, source.seg.weight)
    assert not model.training
    torch.save({"seg.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(UserError):
        load_drn_d_22(tmp_path / "wrong.pth")


def test_missing_drn_weights_is_a_one_line_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for call in (lambda: load_drn_d_22(), lambda: load_drn_d_22(tmp_path / "x.pth")):
        with pytest.raises(UserError) as info:
            call()
        assert "\n" not in str(info.value)
        assert DRN_WEIGHTS_FILE in str(info.value)
