"""Where a run's scalars and sample grids go: TensorBoard (``RUN/tb``) and/or Weights & Biases.

``TrainConfig.logger`` (``--logger``) is a comma list of ``tensorboard``, ``wandb`` and ``none``.
TensorBoard is optional as it always was: without the ``tensorboard`` package its scalars are
skipped. ``wandb`` is imported only when asked for; it keeps one W&B run per sesim run (its id is
saved in ``RUN/wandb_id``, so a resumed run continues the same W&B run), honours ``WANDB_MODE``
(``offline`` writes locally), ``WANDB_PROJECT`` (default ``sesim``) and ``WANDB_DIR`` (default:
the run folder).
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from pathlib import Path
from typing import Any

from torch import Tensor

from sesim.errors import UserError
from sesim.runs import atomic_write


def tensorboard_writer(run_dir: Path) -> Any:
    """A ``SummaryWriter`` on ``run_dir/tb``, or None without the tensorboard package."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional: the tensorboard package
    except Exception:  # tensorboard missing: scalars go only to the progress bar
        return None
    return SummaryWriter(str(run_dir / "tb"))


class RunLogger:
    """Scalars and image grids of one run, sent to every logger named in ``names``.

    Args:
        run_dir: the run folder.
        names: comma list of ``tensorboard``, ``wandb``, ``none``.
        config: the resolved config as a dict (recorded by W&B).
    Raises:
        UserError: ``wandb`` asked for but not installed.
    """

    def __init__(self, run_dir: Path, names: str, config: dict[str, Any] | None = None) -> None:
        wanted = {name.strip() for name in names.split(",")}
        self.tb = tensorboard_writer(run_dir) if "tensorboard" in wanted else None
        self.wandb: Any = _wandb_run(run_dir, config) if "wandb" in wanted else None

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Log ``{tag: value}`` at ``step``."""
        if self.tb is not None:
            for tag, value in values.items():
                self.tb.add_scalar(tag, value, step)
        if self.wandb is not None:
            self.wandb.log(dict(values), step=step)

    def images(self, tag: str, images: Tensor, step: int, nrow: int = 8) -> None:
        """Log a batch of images as one grid.

        Args:
            tag: the name of the grid.
            images: (N, 3, H, W) in [0, 1], on the CPU.
            step: the training step.
            nrow: images per row of the W&B grid.
        """
        if self.tb is not None:
            self.tb.add_images(tag, images, step)
        if self.wandb is not None:
            import wandb  # optional: imported only when asked for (already checked)
            from torchvision.utils import make_grid

            grid = make_grid(images, nrow=nrow)
            array = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
            self.wandb.log({tag: wandb.Image(array)}, step=step)

    def close(self) -> None:
        """Flush and close every logger."""
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def check_loggers(names: str) -> None:
    """Fail early, in one line, when a logger named in ``names`` cannot be used.

    Raises:
        UserError: ``wandb`` asked for but not installed.
    """
    if "wandb" in {name.strip() for name in names.split(",")} and not importlib.util.find_spec(
        "wandb"
    ):
        raise UserError(_NO_WANDB)


_NO_WANDB = (
    "--logger wandb needs the wandb package: pip install wandb (or drop wandb from --logger)"
)


def _wandb_run(run_dir: Path, config: dict[str, Any] | None) -> Any:
    try:
        import wandb  # optional: imported only when asked for
    except ImportError:
        raise UserError(_NO_WANDB) from None
    id_file = run_dir / "wandb_id"
    if id_file.is_file():
        run_id = id_file.read_text().strip()
    else:
        run_id = uuid.uuid4().hex[:12]
        atomic_write(id_file, run_id + "\n")
    return wandb.init(
        project=os.environ.get("WANDB_PROJECT", "sesim"),
        name=run_dir.resolve().name,
        id=run_id,
        resume="allow",
        dir=os.environ.get("WANDB_DIR") or str(run_dir),
        config=config,
    )
