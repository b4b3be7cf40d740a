"""sesim: structure-preserving unpaired image translation with the spatially-correlative loss.

The loss library (`sesim.losses`, `sesim.features`) drops into any training loop; the rest of
the package trains, evaluates and exports the paper's one-sided translation models.
:class:`sesim.Translator` runs a trained generator from Python::

    from sesim import Translator
    t = Translator.from_run("runs/horse2zebra")  # or Translator.from_pretrained(EXPORT_DIR)
    t("horse.jpg").save("zebra.png")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sesim.version import __version__

__all__ = ["Translator", "__version__"]

if TYPE_CHECKING:
    from sesim.translator import Translator


def __getattr__(name: str) -> Any:
    # Imported on first use: ``import sesim`` (and ``sesim --version``) stays free of torch.
    if name == "Translator":
        from sesim.translator import Translator

        return Translator
    raise AttributeError(f"module 'sesim' has no attribute {name!r}")
