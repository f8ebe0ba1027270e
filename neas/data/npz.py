"""``.npz`` files: ``x`` and ``y`` (images in several layouts, or a table), optional fixed
splits and a table's recorded encoding; object arrays (pickles) are never loaded."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from neas.data.dataset import Raw, checked, labels_of, to_float
from neas.errors import DataError
from neas.tabular import TableEncoder


def read_npz(path: Path) -> Raw:
    """Read ``x`` and ``y`` (and, optionally, fixed splits ``x_val``/``y_val`` and
    ``x_test``/``y_test``) from an ``.npz`` file, accepting a table or the image layouts."""
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an .npz file (not a zip archive); save it with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise DataError(f"{path} lacks array(s) {missing}; it holds {f.files}")
            arrays = {k: f[k] for k in _NPZ_KEYS if k in f.files}
            recorded = f["preprocessing"] if "preprocessing" in f.files else None
    except DataError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(
                f"{path} holds object arrays (pickled Python objects), which neas never loads; "
                "save plain numeric or string arrays"
            ) from None
        raise DataError(f"cannot read {path}: {exc}; save it with numpy.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"cannot read {path}: {exc}; expected an .npz file from numpy.savez"
        ) from None
    return raw_from_arrays(arrays, recorded, where=str(path))


def raw_from_arrays(
    arrays: dict[str, np.ndarray], recorded: np.ndarray | None = None, *, where: str
) -> Raw:
    """``x`` and ``y`` (and optional fixed splits ``x_val``/``y_val``, ``x_test``/``y_test``)
    as an ``.npz`` holds them, checked and laid out as a ``Raw`` (``where`` names them in
    errors); ``recorded``: the table encoding's JSON text. The estimator hands its arrays here
    in memory."""
    path = where
    for split in ("val", "test"):
        if (f"x_{split}" in arrays) != (f"y_{split}" in arrays):
            raise DataError(f"{path}: x_{split} and y_{split} come together")
    if "x_val" in arrays and "x_test" not in arrays:
        raise DataError(f"{path}: a fixed val split (x_val) needs a fixed test split (x_test)")
    splits = [s for s in ("", "_val", "_test") if f"x{s}" in arrays]
    xs = [_layout(arrays[f"x{s}"], path) for s in splits]
    for s, x in zip(splits[1:], xs[1:]):
        if x.shape[1:] != xs[0].shape[1:]:
            raise DataError(
                f"{path}: x{s} holds samples of shape {x.shape[1:]} but x holds {xs[0].shape[1:]}"
            )
    ys = [arrays[f"y{s}"] for s in splits]
    if any(y.ndim != 1 for y in ys):
        raise DataError(f"{path}: labels must be 1-D, one per sample")
    labels, names = labels_of(np.concatenate(ys), where=str(path))
    parts = np.split(labels, np.cumsum([len(y) for y in ys])[:-1])
    raws = [  # the training part needs two classes; fixed val/test splits may hold one
        checked(to_float(x, str(path)), lab, names, where=str(path), min_classes=1 if i else 2)
        for i, (x, lab) in enumerate(zip(xs, parts))
    ]
    preprocessing = _npz_encoding(recorded, xs[0].shape[1:], path)
    if len(raws) == 1:
        return Raw(raws[0].x, raws[0].y, names, preprocessing=preprocessing)
    by = dict(zip(splits, raws))
    val = by.get("_val")
    return Raw(
        by[""].x,
        by[""].y,
        names,
        by["_test"].x,
        by["_test"].y,
        preprocessing=preprocessing,
        x_val=None if val is None else val.x,
        y_val=None if val is None else val.y,
    )


def _npz_encoding(recorded: np.ndarray | None, shape: tuple, path: str) -> dict | None:
    """An ``.npz``'s optional ``preprocessing``: the JSON text of the ``TableEncoder`` that made
    its table (``NEASClassifier`` writes it), checked against the table's features."""
    if recorded is None:
        return None
    try:
        data = json.loads(str(recorded.item()))
        encoder = TableEncoder.from_dict(data)
    except (ValueError, TypeError) as exc:  # DataError is a ValueError
        raise DataError(f"{path}: preprocessing is no table encoding: {exc}") from None
    if shape != (len(encoder.features), 1, 1):
        raise DataError(
            f"{path}: preprocessing encodes {len(encoder.features)} features, x holds {shape}"
        )
    return encoder.to_dict()


_NPZ_KEYS = ("x", "y", "x_val", "y_val", "x_test", "y_test")


def _layout(x: np.ndarray, path: str) -> np.ndarray:
    """A table N x F or an image array as N x C x H x W."""
    if x.ndim == 2:  # a table: N x F features as N x F x 1 x 1
        return x[:, :, None, None]
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[2] == x.shape[3]:
        return x  # N x C x H x W
    if x.ndim == 4 and x.shape[3] in (1, 3, 4):
        return x.transpose(0, 3, 1, 2)
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    raise DataError(
        f"{path}: x has shape {x.shape}; expected a table N x F, N x H x W, N x H x W x C "
        "(C in 1, 3, 4) or N x C x H x W (C in 1, 3)"
    )
