"""``load_dataset``: a source read by its reader (``neas.data.registry``), split and
normalised into a ``Dataset``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neas.config import (
    MAX_TRAIN,
    TEST_FRACTION,
    VAL_FRACTION,
    DataOptions,
    check_float,
    check_int,
)
from neas.data.builtin import BUILTIN
from neas.data.dataset import Dataset, Raw
from neas.data.registry import read_source
from neas.data.splits import normalise, split, stratified
from neas.data.table import TableRead
from neas.errors import ConfigError


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
    table = TableRead(target, seed, val_fraction, test_fraction)
    raw = read_source(source, data_dir, table)
    name = source if source in BUILTIN else Path(source).stem
    return split_raw(
        raw,
        name=name,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        max_train=max_train,
    )


def split_raw(
    raw: Raw,
    *,
    name: str,
    seed: int = 0,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
    max_train: int | None = None,
) -> Dataset:
    """A read source (``Raw``) split and normalised into the ``Dataset`` named ``name``
    (``load_dataset``'s rules; its fixed splits kept)."""
    has_test = raw.x_test is not None and raw.y_test is not None
    # the checks ``DataOptions`` makes, for callers that pass numbers here directly
    check_float("--val-fraction", val_fraction, 0, 1, open_low=True, open_high=True)
    if max_train is not None:
        check_int("--max-train", max_train, 1, MAX_TRAIN)
    if not has_test and not (0.0 < test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ConfigError(
            f"test_fraction must be in (0, 1) with val_fraction + test_fraction < 1, "
            f"got {test_fraction} and {val_fraction}"
        )
    if raw.x_val is not None and raw.y_val is not None:  # fixed splits: nothing to split
        idx_train, idx_val, idx_test = np.arange(len(raw.y)), None, None
    else:
        idx_train, idx_val, idx_test = split(
            raw.y,
            class_names=raw.class_names,
            has_test=has_test,
            seed=seed,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
        )
    if max_train is not None and len(idx_train) > max_train:
        idx_train, _ = stratified(
            idx_train,
            raw.y,
            take=len(idx_train) - max_train,
            seed=seed,
            what=f"max_train={max_train} subsample",
        )
    if raw.x_test is not None and raw.y_test is not None:
        x_test, y_test = raw.x_test, raw.y_test
    else:
        x_test, y_test = raw.x[idx_test], raw.y[idx_test]
    if raw.x_val is not None and raw.y_val is not None:
        x_val, y_val = raw.x_val, raw.y_val
    else:
        x_val, y_val = raw.x[idx_val], raw.y[idx_val]
    mean, std, (x_train, x_val, x_test) = normalise(raw.x[idx_train], x_val, x_test)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=raw.y[idx_train].copy(),
        x_val=x_val,
        y_val=np.ascontiguousarray(y_val, dtype=np.int64),
        x_test=x_test,
        y_test=np.ascontiguousarray(y_test, dtype=np.int64),
        mean=mean,
        std=std,
        class_names=raw.class_names,
        preprocessing=raw.preprocessing,
    )


def load_data(options: DataOptions) -> Dataset:
    """The dataset ``options`` (``--data`` and its companions) name: :func:`load_dataset`."""
    return load_dataset(
        options.source,
        data_dir=options.data_dir,
        seed=options.seed,
        max_train=options.max_train,
        target=options.target,
        val_fraction=options.val_fraction,
    )
