"""Demo material for single-image translation: two pictures that ship with matplotlib.

Nothing is downloaded: matplotlib, a dependency of sesim, installs a few sample files with its
package data (``matplotlib/mpl-data/sample_data``, read through
``matplotlib.cbook.get_sample_data``). Two of them make a single-image pair:

- source (photo): ``grace_hopper.jpg``, the 512x600 portrait of Grace Hopper (US Navy photo,
  public domain);
- target (illustration): ``Minduka_Present_Blue_Pack.png``, a 128x128 clip-art gift box in flat
  blue and white with an RGBA transparent background (composited on white when loaded), so the
  translation repaints the photo in that flat, clip-art palette.

The target is just large enough for 128-px crops (the ``single-image`` preset) and fine for the
64-px crops of ``single-image-tiny``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sesim.errors import UserError

#: matplotlib sample file used as the source (domain A) image.
SAMPLE_SOURCE = "grace_hopper.jpg"
#: matplotlib sample file used as the target (domain B, style) image.
SAMPLE_TARGET = "Minduka_Present_Blue_Pack.png"


def _sample_path(name: str) -> Path:
    """Path of one of matplotlib's sample files (without opening it)."""
    import matplotlib.cbook  # heavy: imported only when the sample images are asked for

    try:
        path = Path(matplotlib.cbook.get_sample_data(name, asfileobj=False))
    except (OSError, ValueError) as exc:  # sample data stripped by a repackager
        raise UserError(
            f"matplotlib's sample image {name} is missing ({exc}); reinstall matplotlib from its "
            f"wheel or give your own images with --source and --target"
        ) from None
    if not path.is_file():
        raise UserError(
            f"matplotlib's sample image {path} is missing; reinstall matplotlib from its wheel "
            f"or give your own images with --source and --target"
        )
    return path


def sample_images(dest: Path | None = None) -> tuple[Path, Path]:
    """The demo pair: a photo to translate and an illustration whose style is learned.

    Args:
        dest: a folder to copy both files into (created when missing; existing copies are
            overwritten); None returns the paths inside matplotlib's installation (read-only
            for most users, but fine to train from).
    Returns:
        (source, target): paths of ``grace_hopper.jpg`` and ``Minduka_Present_Blue_Pack.png``.

    Raises:
        UserError: matplotlib was installed without its sample data.
    """
    source, target = _sample_path(SAMPLE_SOURCE), _sample_path(SAMPLE_TARGET)
    if dest is None:
        return source, target
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in (source, target):
        copy = dest / path.name
        shutil.copyfile(path, copy)
        copies.append(copy)
    return copies[0], copies[1]
