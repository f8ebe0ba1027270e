"""Which reader reads a source: built-in names first, then paths by what they are.

A reader is ``read(source, data_dir, table) -> Raw`` (``table``: a ``TableRead``, what a CSV
table's reader needs). Built-in datasets are looked up by name
(``BUILT_IN``); any other source is a path, and the first entry of ``BY_PATH`` whose test it
passes reads it (a folder of class sub-folders, an ``.npz``, a CSV table). A new format is one
entry here and one module beside the others.

>>> [name for name, _, _ in BY_PATH]
['image folder', 'npz', 'csv']
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from neas.data.builtin import BUILTIN, read_digits, read_mnist_like
from neas.data.cifar import read_cifar10
from neas.data.dataset import Raw
from neas.data.folder import read_image_folder
from neas.data.npz import read_npz
from neas.data.table import TableRead, read_table_csv
from neas.errors import DataError

DataDir = str | os.PathLike[str] | None
Reader = Callable[[str, DataDir, TableRead], Raw]

BUILT_IN: dict[str, Reader] = {
    "digits": lambda source, data_dir, table: read_digits(data_dir),
    "mnist": lambda source, data_dir, table: read_mnist_like(source, data_dir),
    "fashion-mnist": lambda source, data_dir, table: read_mnist_like(source, data_dir),
    "cifar10": lambda source, data_dir, table: read_cifar10(data_dir),
}
assert tuple(BUILT_IN) == BUILTIN  # one list of names: the CLI's help shows BUILTIN

#: (name, test on the path, reader) for sources that are paths, tried in order.
BY_PATH: tuple[tuple[str, Callable[[Path], bool], Reader], ...] = (
    ("image folder", Path.is_dir, lambda s, d, t: read_image_folder(Path(s))),
    ("npz", lambda p: p.suffix == ".npz" and p.is_file(), lambda s, d, t: read_npz(Path(s))),
    (
        "csv",
        lambda p: p.suffix.lower() == ".csv" and p.is_file(),
        lambda s, d, t: read_table_csv(Path(s), t),
    ),
)


def read_source(source: str, data_dir: DataDir = None, table: TableRead | None = None) -> Raw:
    """Read ``source`` in raw float scale; ``Raw.x_test`` is set when it has an official test
    split. An unknown name or a missing path is a one-line ``DataError``."""
    if source in BUILT_IN:
        return BUILT_IN[source](source, data_dir, table or TableRead())
    path = Path(source)
    for _, matches, read in BY_PATH:
        if matches(path):
            return read(source, data_dir, table or TableRead())
    if path.suffix in (".npz", ".csv") or os.sep in source or path.suffix:
        raise DataError(f"data file or folder not found: {source}")
    raise DataError(f"unknown dataset {source!r}; built-in datasets are: {', '.join(BUILTIN)}")
