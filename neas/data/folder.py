"""Folders of class sub-folders of same-sized images (png, jpg, jpeg, bmp, gif; not resized)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neas.data.dataset import Raw, checked, to_float
from neas.errors import DataError

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def read_image_folder(root: Path) -> Raw:
    """Read ``root/<class>/<image>``; images take the first image's mode (L or RGB)."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - pillow is a dependency
        raise DataError("reading image folders needs pillow: pip install pillow") from exc
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class sub-folders")
    images: list[np.ndarray] = []
    labels: list[int] = []
    mode: str | None = None
    size: tuple[int, int] | None = None
    for label, folder in enumerate(classes):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"class folder {folder} holds no images ({', '.join(_IMAGE_SUFFIXES)})")
        for file in files:
            try:
                with Image.open(file) as img:
                    if mode is None:
                        mode = "L" if img.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
                        size = img.size
                    if img.size != size:
                        raise DataError(
                            f"{file} is {img.size[0]}x{img.size[1]} but earlier "
                            f"images are {size[0]}x{size[1]}; resize them first"
                        )
                    images.append(np.asarray(img.convert(mode), dtype=np.uint8))
            except OSError as exc:
                raise DataError(f"cannot read image {file}: {exc}") from exc
            labels.append(label)
    x = np.stack(images)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    names = tuple(c.name for c in classes)
    return checked(
        to_float(x, str(root)), np.asarray(labels, dtype=np.int64), names, where=str(root)
    )
