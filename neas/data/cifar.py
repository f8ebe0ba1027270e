"""CIFAR-10's python-pickle batches, read with a restricted unpickler: no code of the file's
choosing runs."""

from __future__ import annotations

import codecs
import os
import pickle
from pathlib import Path

import numpy as np

from neas.data.dataset import Raw, checked, to_float
from neas.errors import DataError

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


def unpickle_cifar(path: Path) -> object:
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


def read_cifar10(data_dir: str | os.PathLike[str] | None) -> Raw:
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
        return unpickle_cifar(path)

    meta = unpickle("batches.meta")
    label_names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(label_names, list) or not all(isinstance(n, bytes) for n in label_names):
        raise DataError(f"{root / 'batches.meta'} has no list of b'label_names'")
    names = tuple(n.decode(errors="replace") for n in label_names)
    files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = [_cifar_batch(root / n, unpickle(n)) for n in files]
    xs, ys = [b[0] for b in batches], [b[1] for b in batches]
    where = str(root)
    train = checked(
        to_float(np.concatenate(xs[:5]), where), np.concatenate(ys[:5]), names, where=where
    )
    test = checked(to_float(xs[5], where), ys[5], names, where=where, min_classes=1)
    return Raw(train.x, train.y, names, test.x, test.y)
