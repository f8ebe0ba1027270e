"""CSV tables: the label column named by ``target``, the others encoded by
``neas.tabular.TableEncoder`` (recorded in the dataset, so serving encodes the same way).

The encoder is fitted on the rows the job trains and validates on, never on its test rows:
``split`` draws the test rows first (the same stratified rule and seed ``split_raw`` uses
after, so both name the same rows), the encoder learns its medians, quantiles and target
encodings from the others (their own target encodings cross-fitted), and the test rows are
encoded as serving will encode new rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from neas.config import TEST_FRACTION, VAL_FRACTION
from neas.data.dataset import Raw, checked, labels_of
from neas.data.splits import split
from neas.errors import DataError
from neas.tabular import TableEncoder, read_csv


@dataclass(frozen=True)
class TableRead:
    """What reading a table needs besides its path: the label column and the split that will be
    drawn from it (``load_dataset``'s seed and fractions)."""

    target: str | None = None
    seed: int = 0
    val_fraction: float = VAL_FRACTION
    test_fraction: float = TEST_FRACTION


def read_table_csv(path: Path, options: TableRead) -> Raw:
    """A CSV table: ``options.target`` is the label column, the rest encoded by
    ``TableEncoder`` fitted on the rows outside the test split."""
    frame, y = read_csv(str(path), target=options.target)
    try:
        labels, names, test = _test_rows(frame, y, options)
        fit = np.setdiff1d(np.arange(len(labels)), test)
        encoder, x_fit = TableEncoder.fit_transform(frame.iloc[fit], labels[fit], seed=options.seed)
        x = np.empty((len(frame), x_fit.shape[1]), dtype=np.float32)
        x[fit] = x_fit
        x[test] = encoder.transform(frame.iloc[test])
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    raw = checked(x[:, :, None, None], labels, names, where=str(path))
    return Raw(raw.x, raw.y, raw.class_names, preprocessing=encoder.to_dict())


def _test_rows(
    frame: pd.DataFrame, y: pd.Series, options: TableRead
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """The labels, the class names and the rows ``split`` will hold out for test. A table too
    small to split is refused, but a fault of its columns (no rows, infinite values) is named
    first: a label-free fit of the encoder finds it."""
    if 0 in frame.shape:
        TableEncoder.fit(frame)  # no rows or no feature columns: its one line
    try:
        labels, names = labels_of(y.to_numpy(), where="the target column")
        _, _, test = split(
            labels,
            class_names=names,
            has_test=False,
            seed=options.seed,
            val_fraction=options.val_fraction,
            test_fraction=options.test_fraction,
        )
    except DataError:
        TableEncoder.fit_transform(frame, None)
        raise
    return labels, names, test
