"""The built-in datasets: scikit-learn's digits (bundled), MNIST and Fashion-MNIST (IDX files;
Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` by default)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neas.data.dataset import Raw, checked, to_float
from neas.data.idx import read_idx
from neas.errors import DataError

BUILTIN: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "cifar10")
#: Where the Debian package ``dataset-fashion-mnist`` installs the IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def read_digits(data_dir: str | os.PathLike[str] | None = None) -> Raw:
    """scikit-learn's 8x8 digits (1,797 images), scaled to [0, 1]; no official test split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images[:, None] / 16.0).astype(np.float32)
    return checked(x, d.target.astype(np.int64), tuple(str(i) for i in range(10)))


def read_mnist_like(source: str, data_dir: str | os.PathLike[str] | None) -> Raw:
    """MNIST or Fashion-MNIST from their four IDX files (official test split kept)."""
    default = FASHION_MNIST_DIR if source == "fashion-mnist" else None
    names = _FASHION_NAMES if source == "fashion-mnist" else tuple(str(i) for i in range(10))
    root = Path(data_dir) if data_dir is not None else default
    if root is None:
        raise DataError("mnist needs --data-dir: a folder with the four MNIST IDX files")
    arrays = []
    for stem in _IDX_FILES:
        path = next((p for p in (root / f"{stem}.gz", root / stem) if p.is_file()), None)
        if path is None:
            hint = (
                " (install the Debian package dataset-fashion-mnist or pass --data-dir)"
                if source == "fashion-mnist"
                else ""
            )
            raise DataError(f"missing {source} file {root / stem}[.gz]{hint}")
        arrays.append(read_idx(path))
    xtr, ytr, xte, yte = arrays
    where = str(root)
    if xtr.ndim != 3 or xte.ndim != 3 or ytr.ndim != 1 or yte.ndim != 1:
        raise DataError(f"{root}: IDX images must be N x H x W and labels N")
    train = checked(to_float(xtr[:, None], where), ytr.astype(np.int64), names, where=where)
    test = checked(
        to_float(xte[:, None], where), yte.astype(np.int64), names, where=where, min_classes=1
    )
    return Raw(train.x, train.y, names, test.x, test.y)
