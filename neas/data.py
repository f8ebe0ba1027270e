"""Image classification datasets as normalised numpy arrays.

One entry point, :func:`load_dataset`, turns a built-in name (``digits``, ``mnist``,
``fashion-mnist``, ``cifar10``), an ``.npz`` file or a folder of class sub-folders into a
:class:`Dataset`: deterministic stratified train/val/test splits, ``float32`` images laid out
N x C x H x W and normalised per channel with the train split's mean and std. Bad data raises
:class:`DataError` with one line that names the problem. Torch is not needed here.

Example:
    >>> ds = load_dataset("digits", seed=0)
    >>> ds.input_shape, ds.num_classes
    ((1, 8, 8), 10)
"""

from __future__ import annotations

import codecs
import gzip
import json
import math
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from neas.config import VAL_FRACTION
from neas.errors import DataError
from neas.tabular import TableEncoder, read_csv

__all__ = ["BUILTIN", "FASHION_MNIST_DIR", "DataError", "Dataset", "load_dataset"]

BUILTIN: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "cifar10")
#: Default fractions of the data held out for validation and test.
TEST_FRACTION = 0.2
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
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Normalised splits of an image classification dataset.

    ``x_*`` are ``float32`` arrays N x C x H x W, normalised with the train split's per-channel
    ``mean``/``std`` (given in the raw float scale, e.g. after uint8 / 255); ``y_*`` are ``int64``
    labels in ``0 .. num_classes - 1`` indexing ``class_names``.

    Example:
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
class _Raw:
    x: np.ndarray  # float32 N x C x H x W, raw scale
    y: np.ndarray  # int64 in 0 .. len(class_names) - 1
    class_names: tuple[str, ...]
    x_test: np.ndarray | None = None  # official test split, if the dataset has one
    y_test: np.ndarray | None = None
    preprocessing: dict | None = None
    x_val: np.ndarray | None = None  # a fixed val split (then x_test is fixed too)
    y_val: np.ndarray | None = None


def load_dataset(
    source: str = "digits",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
    max_train: int | None = None,
    target: str | None = None,
) -> Dataset:
    """Load a built-in dataset, an ``.npz`` or CSV file or an image folder as a :class:`Dataset`.

    ``source`` is one of :data:`BUILTIN` or a path. An ``.npz`` holds ``x`` (N x H x W,
    N x H x W x C with C in {1, 3, 4}, N x C x H x W with C in {1, 3}, or a table N x F) and
    ``y`` (N integer or string labels; class names are the sorted unique labels), and for a
    table optionally ``preprocessing`` (the JSON text of the ``TableEncoder`` that made it). A CSV
    file is a table whose label column is ``target``; its other columns are encoded by
    ``neas.tabular.TableEncoder`` (numbers, dates, categories, text; ids dropped), recorded in
    ``Dataset.preprocessing``. Tables become N x F x 1 x 1 arrays. A folder holds one sub-folder per
    class of same-sized png/jpg/jpeg/bmp/gif images (not resized). ``mnist`` and ``cifar10`` read
    their standard files from ``data_dir``; ``fashion-mnist`` defaults to :data:`FASHION_MNIST_DIR`.

    Splits are stratified and fixed by ``seed``. Datasets with an official test split keep it as
    test and take ``val_fraction`` of the train part as val; others are split into
    train/val/test with ``val_fraction`` and ``test_fraction`` of the whole. ``max_train`` caps
    only the train split (stratified subsample); val and test are left whole.

    Example:
        >>> ds = load_dataset("digits", seed=1, max_train=200)
        >>> len(ds.x_train), ds.class_names[:3]
        (200, ('0', '1', '2'))
    """
    raw = _load_source(source, data_dir, target)
    has_test = raw.x_test is not None and raw.y_test is not None
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if not has_test and not (0.0 < test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ValueError(
            f"test_fraction must be in (0, 1) with val_fraction + test_fraction < 1, "
            f"got {test_fraction} and {val_fraction}"
        )
    if max_train is not None and max_train < 1:
        raise ValueError(f"max_train must be a positive int or None, got {max_train}")
    if raw.x_val is not None and raw.y_val is not None:  # fixed splits: nothing to split
        idx_train, idx_val, idx_test = np.arange(len(raw.y)), None, None
    else:
        idx_train, idx_val, idx_test = _split(
            raw.y,
            class_names=raw.class_names,
            has_test=has_test,
            seed=seed,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
        )
    if max_train is not None and len(idx_train) > max_train:
        idx_train, _ = _stratified(
            idx_train,
            raw.y,
            take=len(idx_train) - max_train,
            seed=seed,
            what=f"max_train={max_train} subsample",
        )
    x_train = raw.x[idx_train]
    mean = x_train.mean(axis=(0, 2, 3), dtype=np.float64)
    std = x_train.std(axis=(0, 2, 3), dtype=np.float64)
    std = np.where(std > 1e-8, std, 1.0)  # constant channel: centre only
    m, s = (a.astype(np.float32)[None, :, None, None] for a in (mean, std))

    def norm(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((x - m) / s, dtype=np.float32)

    if raw.x_test is not None and raw.y_test is not None:
        x_test, y_test = raw.x_test, raw.y_test
    else:
        x_test, y_test = raw.x[idx_test], raw.y[idx_test]
    if raw.x_val is not None and raw.y_val is not None:
        x_val, y_val = raw.x_val, raw.y_val
    else:
        x_val, y_val = raw.x[idx_val], raw.y[idx_val]
    name = source if source in BUILTIN else Path(source).stem
    return Dataset(
        name=name,
        x_train=norm(x_train),
        y_train=raw.y[idx_train].copy(),
        x_val=norm(x_val),
        y_val=np.ascontiguousarray(y_val, dtype=np.int64),
        x_test=norm(x_test),
        y_test=np.ascontiguousarray(y_test, dtype=np.int64),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        class_names=raw.class_names,
        preprocessing=raw.preprocessing,
    )


def _load_source(
    source: str, data_dir: str | os.PathLike[str] | None, target: str | None = None
) -> _Raw:
    """Read ``source`` in raw float scale; ``x_test`` is set when it has an official test."""
    if source == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.images[:, None] / 16.0).astype(np.float32)
        return _checked(x, d.target.astype(np.int64), tuple(str(i) for i in range(10)))
    if source in ("mnist", "fashion-mnist"):
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
            arrays.append(_read_idx(path))
        xtr, ytr, xte, yte = arrays
        where = str(root)
        if xtr.ndim != 3 or xte.ndim != 3 or ytr.ndim != 1 or yte.ndim != 1:
            raise DataError(f"{root}: IDX images must be N x H x W and labels N")
        train = _checked(_to_float(xtr[:, None], where), ytr.astype(np.int64), names, where=where)
        test = _checked(
            _to_float(xte[:, None], where), yte.astype(np.int64), names, where=where, min_classes=1
        )
        return _Raw(train.x, train.y, names, test.x, test.y)
    if source == "cifar10":
        return _load_cifar10(data_dir)
    path = Path(source)
    if path.is_dir():
        return _load_image_folder(path)
    if path.suffix == ".npz" and path.is_file():
        return _load_npz(path)
    if path.suffix.lower() == ".csv" and path.is_file():
        return _load_csv(path, target)
    if path.suffix in (".npz", ".csv") or os.sep in source or path.suffix:
        raise DataError(f"data file or folder not found: {source}")
    raise DataError(f"unknown dataset {source!r}; built-in datasets are: {', '.join(BUILTIN)}")


def _read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated: its header names {ndim} dimensions")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    body = data[4 + 4 * ndim :]
    if len(body) != math.prod(dims) * dtype.itemsize:
        raise DataError(f"{path}: header says shape {dims} but the file holds {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


#: The only globals a CIFAR-10 python batch may name: numpy array, scalar and dtype
#: reconstruction (old and new numpy module paths) and ``_codecs.encode`` (bytes in protocol-2
#: pickles). None of them runs code of the file's choosing.
_CIFAR_GLOBALS: dict[tuple[str, str], object] = {
    (mod, name): obj
    for mods, name, obj in (
        (("numpy.core.multiarray", "numpy._core.multiarray"), "_reconstruct", None),
        (("numpy.core.multiarray", "numpy._core.multiarray"), "scalar", None),
        (("numpy.core.numeric", "numpy._core.numeric"), "_frombuffer", None),
        (("numpy",), "ndarray", np.ndarray),
        (("numpy",), "dtype", np.dtype),
        (("_codecs",), "encode", codecs.encode),
    )
    for mod in mods
}
#: Everything ``pickle.load`` can raise on a damaged or hand-made file.
_PICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    MemoryError,
    UnicodeDecodeError,
)


def _numpy_internal(name: str) -> object:
    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
    return getattr(core.numeric if name == "_frombuffer" else core.multiarray, name)


class _CifarUnpickler(pickle.Unpickler):
    """A pickle reader that builds only numpy arrays, dtypes, lists, dicts, bytes and numbers:
    any other global (a function or class that a hostile file would call) is refused."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _CIFAR_GLOBALS:
            raise DataError(
                f"{getattr(self, 'path', 'cifar10 file')} names {module}.{name}, which a CIFAR-10 "
                "batch never does; neas refuses to load it (download the python version of "
                "CIFAR-10 again)"
            )
        obj = _CIFAR_GLOBALS[(module, name)]
        return obj if obj is not None else _numpy_internal(name)


def _unpickle_cifar(path: Path) -> object:
    """One CIFAR-10 batch file, read with :class:`_CifarUnpickler` (no code runs)."""
    try:
        with path.open("rb") as f:
            reader = _CifarUnpickler(f, encoding="bytes")
            reader.path = path  # type: ignore[attr-defined]
            return reader.load()
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"cannot read cifar10 file {path}: {exc.strerror or exc}") from None
    except _PICKLE_ERRORS as exc:
        raise DataError(
            f"{path} is not a CIFAR-10 python batch (damaged: {type(exc).__name__}); "
            "download the python version of CIFAR-10 again"
        ) from None


def _cifar_batch(path: Path, batch: object) -> tuple[np.ndarray, np.ndarray]:
    """Images N x 3 x 32 x 32 (uint8) and labels of one unpickled batch, checked."""
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path} is not a CIFAR-10 batch (no b'data' and b'labels' entries)")
    try:
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"data is {data.dtype} {data.shape}, expected uint8 N x 3072")
        if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
            raise ValueError(f"labels are {labels.dtype} {labels.shape}, expected {len(data)} ints")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path} is not a CIFAR-10 batch: {exc}") from None
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _load_cifar10(data_dir: str | os.PathLike[str] | None) -> _Raw:
    """Read the python-pickle CIFAR-10 folder with a restricted unpickler (no code runs)."""
    if data_dir is None:
        raise DataError("cifar10 needs --data-dir: the cifar-10-batches-py folder or its parent")
    root = Path(data_dir)
    if not (root / "batches.meta").is_file() and (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"

    def unpickle(name: str) -> object:
        path = root / name
        if not path.is_file():
            raise DataError(f"missing cifar10 file {path}; pass the cifar-10-batches-py folder")
        return _unpickle_cifar(path)

    meta = unpickle("batches.meta")
    label_names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(label_names, list) or not all(isinstance(n, bytes) for n in label_names):
        raise DataError(f"{root / 'batches.meta'} has no list of b'label_names'")
    names = tuple(n.decode(errors="replace") for n in label_names)
    files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = [_cifar_batch(root / n, unpickle(n)) for n in files]
    xs, ys = [b[0] for b in batches], [b[1] for b in batches]
    where = str(root)
    train = _checked(
        _to_float(np.concatenate(xs[:5]), where), np.concatenate(ys[:5]), names, where=where
    )
    test = _checked(_to_float(xs[5], where), ys[5], names, where=where, min_classes=1)
    return _Raw(train.x, train.y, names, test.x, test.y)


def _load_npz(path: Path) -> _Raw:
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
    labels, names = _labels(np.concatenate(ys), where=str(path))
    parts = np.split(labels, np.cumsum([len(y) for y in ys])[:-1])
    raws = [  # the training part needs two classes; fixed val/test splits may hold one
        _checked(_to_float(x, str(path)), lab, names, where=str(path), min_classes=1 if i else 2)
        for i, (x, lab) in enumerate(zip(xs, parts))
    ]
    preprocessing = _npz_encoding(recorded, xs[0].shape[1:], path)
    if len(raws) == 1:
        return _Raw(raws[0].x, raws[0].y, names, preprocessing=preprocessing)
    by = dict(zip(splits, raws))
    val = by.get("_val")
    return _Raw(
        by[""].x,
        by[""].y,
        names,
        by["_test"].x,
        by["_test"].y,
        preprocessing=preprocessing,
        x_val=None if val is None else val.x,
        y_val=None if val is None else val.y,
    )


def _npz_encoding(recorded: np.ndarray | None, shape: tuple, path: Path) -> dict | None:
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


def _layout(x: np.ndarray, path: Path) -> np.ndarray:
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


def _labels(y: np.ndarray, *, where: str) -> tuple[np.ndarray, tuple[str, ...]]:
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


def _load_csv(path: Path, target: str | None) -> _Raw:
    """A CSV table: ``target`` is the label column, the rest encoded by ``TableEncoder``."""
    frame, y = read_csv(str(path), target=target)
    try:
        encoder = TableEncoder.fit(frame)
        x = encoder.transform(frame)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    labels, names = _labels(y.to_numpy(), where=str(path))
    raw = _checked(x[:, :, None, None], labels, names, where=str(path))
    return _Raw(raw.x, raw.y, raw.class_names, preprocessing=encoder.to_dict())


def _load_image_folder(root: Path) -> _Raw:
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
    return _checked(
        _to_float(x, str(root)), np.asarray(labels, dtype=np.int64), names, where=str(root)
    )


def _to_float(x: np.ndarray, where: str) -> np.ndarray:
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype.kind not in "iubf":
        raise DataError(f"{where}: x has dtype {x.dtype}; expected numeric pixel values")
    return x.astype(np.float32)


def _checked(
    x: np.ndarray, y: np.ndarray, names: tuple[str, ...], *, where: str = "", min_classes: int = 2
) -> _Raw:
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
    return _Raw(np.ascontiguousarray(x), y, names)


def _split(
    y: np.ndarray,
    *,
    class_names: tuple[str, ...],
    has_test: bool,
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified ``(train, val, test)`` indices; ``test`` is empty when ``has_test``."""
    need = 2 if has_test else 3
    counts = np.bincount(y, minlength=len(class_names))
    present = np.flatnonzero(counts)
    smallest = present[np.argmin(counts[present])]
    if counts[smallest] < need:
        raise DataError(
            f"class {class_names[smallest]!r} has only {counts[smallest]} sample(s); a stratified "
            f"split needs at least {need} per class"
        )
    idx = np.arange(len(y))
    if has_test:
        train, val = _stratified(idx, y, take=val_fraction, seed=seed, what="train/val")
        return train, val, idx[:0]
    rest, test = _stratified(idx, y, take=test_fraction, seed=seed, what="test")
    train, val = _stratified(
        rest, y, take=val_fraction / (1.0 - test_fraction), seed=seed, what="train/val"
    )
    return train, val, test


def _stratified(
    idx: np.ndarray, y: np.ndarray, *, take: float | int, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into ``(kept, taken)`` stratified by ``y[idx]``; sorted for stable order."""
    try:
        kept, taken = train_test_split(idx, test_size=take, stratify=y[idx], random_state=seed)
    except ValueError as exc:
        raise DataError(f"too few samples per class for a stratified {what} split: {exc}") from exc
    return np.sort(kept), np.sort(taken)
