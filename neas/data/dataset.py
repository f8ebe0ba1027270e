"""The ``Dataset`` contract, the ``Raw`` arrays every reader returns, and their checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neas.errors import DataError


@dataclass(frozen=True, eq=False)
class Dataset:
    """Normalised splits of a classification dataset (images, or a table's rows).

    ``x_*`` are ``float32`` arrays N x C x H x W, normalised with the train split's per-channel
    ``mean``/``std`` (given in the raw float scale, e.g. after uint8 / 255); ``y_*`` are ``int64``
    labels in ``0 .. num_classes - 1`` indexing ``class_names``.

    Example:
        >>> from neas.data import load_dataset
        >>> ds = load_dataset("digits")
        >>> ds.x_train.shape[1:] == ds.input_shape
        True
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    preprocessing: dict | None = None  # a table's encoding (``neas.tabular.TableEncoder``)

    def __post_init__(self) -> None:
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 4 or x.shape[1:] != self.x_train.shape[1:]:
                raise DataError(f"x_{split} has shape {x.shape}; expected N x {self.input_shape}")
            if len(x) != len(y):
                raise DataError(f"x_{split} has {len(x)} samples but y_{split} has {len(y)}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def is_table(self) -> bool:
        """Rows of features (N x F x 1 x 1), as CSV files and 2-D arrays give."""
        return self.input_shape[1:] == (1, 1)

    @property
    def image_size(self) -> int:
        """Side of the (square) images; raises :class:`DataError` for non-square images."""
        h, w = self.x_train.shape[2:]
        if h != w:
            raise DataError(f"dataset {self.name!r} has non-square images ({h}x{w})")
        return int(h)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)


@dataclass(frozen=True, eq=False)
class Raw:
    """What a reader returns: arrays in raw float scale, before splitting and normalising."""

    x: np.ndarray  # float32 N x C x H x W, raw scale
    y: np.ndarray  # int64 in 0 .. len(class_names) - 1
    class_names: tuple[str, ...]
    x_test: np.ndarray | None = None  # official test split, if the dataset has one
    y_test: np.ndarray | None = None
    preprocessing: dict | None = None
    x_val: np.ndarray | None = None  # a fixed val split (then x_test is fixed too)
    y_val: np.ndarray | None = None


def to_float(x: np.ndarray, where: str) -> np.ndarray:
    """Pixels (or features) as float32; uint8 images scaled to [0, 1]."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype.kind not in "iubf":
        raise DataError(f"{where}: x has dtype {x.dtype}; expected numeric pixel values")
    return x.astype(np.float32)


def checked(
    x: np.ndarray, y: np.ndarray, names: tuple[str, ...], *, where: str = "", min_classes: int = 2
) -> Raw:
    """Validate shapes, finiteness, label range and class count."""
    where = f"{where}: " if where else ""
    if x.ndim != 4:
        raise DataError(f"{where}x has shape {x.shape}; expected N x C x H x W")
    if len(x) != len(y):
        raise DataError(f"{where}x has {len(x)} samples but y has {len(y)} labels")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{where}x contains NaN or inf values")
    if len(y) and (y.min() < 0 or y.max() >= len(names)):
        raise DataError(f"{where}labels must lie in 0..{len(names) - 1}")
    if len(np.unique(y)) < min_classes:
        raise DataError(f"{where}need at least 2 classes, found {len(np.unique(y))}")
    if not len(y):
        raise DataError(f"{where}no samples")
    return Raw(np.ascontiguousarray(x), y, names)


def labels_of(y: np.ndarray, *, where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer labels and class names (sorted unique values) from integer or text labels."""
    if y.ndim != 1:
        raise DataError(f"{where}: y has shape {y.shape}; expected one label per sample")
    if y.dtype.kind in "USO":
        values = y.astype(str)
    elif y.dtype.kind in "iub" or (
        y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(np.mod(y, 1) == 0)
    ):
        values = y.astype(np.int64)
    else:
        raise DataError(f"{where}: y has dtype {y.dtype}; expected integer or string labels")
    uniq, labels = np.unique(values, return_inverse=True)
    return labels.astype(np.int64), tuple(str(u) for u in uniq)
