"""Tables to feature matrices: numeric columns with missing values imputed, text columns one-hot.

A :class:`TableEncoder` is fitted once (``fit``) and recorded (``to_dict``) with the run, the
exported model's manifest and ``model.pt``, so serving applies exactly the same encoding
(``transform``) to new rows. Numeric columns: missing values become the column's median.
Categorical columns (text, ``category`` dtype): one 0/1 feature per category seen in the fit;
a missing or unseen value sets none of them. Torch is not needed here.

>>> import pandas as pd
>>> frame = pd.DataFrame({"age": [30, None, 50], "city": ["Oslo", "Rome", None]})
>>> enc = TableEncoder.fit(frame)
>>> enc.features
('age', 'city=Oslo', 'city=Rome')
>>> enc.transform(frame).tolist()
[[30.0, 1.0, 0.0], [40.0, 0.0, 1.0], [50.0, 0.0, 0.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neas.errors import DataError

#: A text column with more distinct values than this is refused (an id or free text).
MAX_CATEGORIES = 100


def _is_categorical(series: pd.Series) -> bool:
    """Text (or mixed) values; a column of numbers stored as objects counts as numeric."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    values = series.dropna()
    return bool(len(values)) and bool(pd.to_numeric(values, errors="coerce").isna().any())


@dataclass(frozen=True)
class TableEncoder:
    """The fitted encoding of a table's columns (see the module docstring)."""

    columns: tuple[str, ...]
    medians: dict[str, float]
    categories: dict[str, tuple[str, ...]]

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> TableEncoder:
        """Read each column's kind, its median (numeric) or categories (text)."""
        if frame.shape[1] == 0:
            raise DataError("the table has no feature columns")
        medians: dict[str, float] = {}
        categories: dict[str, tuple[str, ...]] = {}
        for name in frame.columns:
            col = frame[name]
            if _is_categorical(col):
                values = sorted({str(v) for v in col.dropna()})
                if len(values) > MAX_CATEGORIES:
                    raise DataError(
                        f"column {name!r} has {len(values)} distinct text values (more than "
                        f"{MAX_CATEGORIES}): it looks like an id or free text; drop it or encode "
                        "it as numbers first"
                    )
                categories[str(name)] = tuple(values)
            else:
                values = pd.to_numeric(col, errors="coerce").astype(float)
                finite = values[np.isfinite(values)]
                medians[str(name)] = float(finite.median()) if len(finite) else 0.0
        return cls(tuple(str(c) for c in frame.columns), medians, categories)

    @property
    def features(self) -> tuple[str, ...]:
        """The names of the encoded features, in order."""
        out: list[str] = []
        for name in self.columns:
            if name in self.categories:
                out += [f"{name}={v}" for v in self.categories[name]]
            else:
                out.append(name)
        return tuple(out)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode ``frame`` (the fitted columns, any order, extra columns ignored): N x F."""
        frame = frame.rename(columns=str)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(f"the table lacks column(s) {', '.join(missing)}")
        parts = []
        for name in self.columns:
            col = frame[name]
            if name in self.categories:
                text = col.map(lambda v: None if pd.isna(v) else str(v))
                parts += [(text == v).to_numpy(np.float32) for v in self.categories[name]]
            else:
                values = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
                if np.isinf(values).any():
                    raise DataError(f"column {name!r} holds infinite values")
                parts.append(np.where(np.isnan(values), self.medians[name], values))
        return np.stack(parts, axis=1).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "table",
            "columns": list(self.columns),
            "medians": dict(self.medians),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "features": list(self.features),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableEncoder:
        return cls(
            columns=tuple(data["columns"]),
            medians={k: float(v) for k, v in data["medians"].items()},
            categories={k: tuple(v) for k, v in data["categories"].items()},
        )


def read_csv(path: str, *, target: str | None) -> tuple[pd.DataFrame, pd.Series]:
    """The feature columns and the label column ``target`` of a CSV file; one-line errors."""
    if not target:
        raise DataError(f"{path} is a table: name its label column with --target COLUMN")
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read CSV file {path}: {first}") from None
    if target not in frame.columns:
        raise DataError(
            f"{path} has no column {target!r}; columns: {', '.join(map(str, frame.columns))}"
        )
    labels = frame[target]
    if labels.isna().any():
        raise DataError(
            f"{path}: the target column {target!r} has {int(labels.isna().sum())} missing "
            "value(s); drop those rows first"
        )
    return frame.drop(columns=[target]), labels
