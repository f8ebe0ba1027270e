"""Tables to feature matrices: numeric columns with missing values imputed, text columns one-hot.

A :class:`TableEncoder` is fitted once (``fit``) and recorded (``to_dict``) with the run, the
exported model's manifest and ``model.pt``, so serving applies exactly the same encoding
(``transform``) to new rows. Numeric columns: missing values become the column's median. A
column of text counts as numeric when every value is a number, a missing-value marker
(:data:`MISSING_MARKERS`) or a number with thousands separators (``"1,234,567.5"``).
Categorical columns (other text, ``category`` dtype): one 0/1 feature per category seen in the
fit; a missing or unseen value sets none of them. Torch is not needed here.

>>> import pandas as pd
>>> frame = pd.DataFrame({"age": [30, None, 50], "city": ["Oslo", "Rome", None]})
>>> enc = TableEncoder.fit(frame)
>>> enc.features
('age', 'city=Oslo', 'city=Rome')
>>> enc.transform(frame).tolist()
[[30.0, 1.0, 0.0], [40.0, 0.0, 1.0], [50.0, 0.0, 0.0]]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neas.errors import DataError

#: A text column with more distinct values than this is refused (an id or free text).
MAX_CATEGORIES = 100


#: Text read as a missing value: pandas' own markers (``NA``, ``N/A``, ``NaN``, ``null``, empty,
#: ...) and ``?`` and ``-``.
MISSING_MARKERS = frozenset(
    {"", "?", "-", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL", "None",
     "#N/A", "#N/A N/A", "#NA", "<NA>", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN"}
)  # fmt: skip
#: The largest magnitude a float32 feature holds.
FLOAT32_MAX = float(np.finfo(np.float32).max)
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?(?:[eE][+-]?\d+)?")


def _clean(value: Any) -> Any:
    """A missing-value marker as ``None``; ``"1,234.5"`` as ``"1234.5"``; anything else as is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text in MISSING_MARKERS:
        return None
    return text.replace(",", "") if _GROUPED.fullmatch(text) else value


def _numbers(series: pd.Series) -> tuple[pd.Series, bool]:
    """The column as float64 (NaN where a value is missing or no number) and whether every value
    is a number or missing (a numeric column)."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.astype(float), True
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    cleaned = series.map(_clean)
    values = pd.to_numeric(cleaned, errors="coerce").astype(float)
    return values, not bool((values.isna() & cleaned.notna()).any())


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
            numbers, numeric = _numbers(col)
            if not numeric:
                values = sorted({str(v) for v in col.dropna()})
                if len(values) > MAX_CATEGORIES:
                    raise DataError(
                        f"column {name!r} has {len(values)} distinct text values (more than "
                        f"{MAX_CATEGORIES}): it looks like an id or free text; drop it or encode "
                        "it as numbers first"
                    )
                categories[str(name)] = tuple(values)
            else:
                finite = numbers[np.isfinite(numbers)]
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
                values = _numbers(col)[0].to_numpy(np.float64)
                if np.isinf(values).any():
                    raise DataError(f"column {name!r} holds infinite values")
                if (np.abs(values) > FLOAT32_MAX).any():
                    raise DataError(
                        f"column {name!r} holds values too large for float32 features (beyond "
                        f"{FLOAT32_MAX:.3g}); rescale it first"
                    )
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
    """The feature columns and the label column ``target`` of a CSV file; one-line errors.

    :data:`MISSING_MARKERS` (``?``, ``-``, ``NA``, ``N/A``, ``NaN``, ``null``, empty, ...) read
    as missing values; a target column named twice in the header is refused."""
    if not target:
        raise DataError(f"{path} is a table: name its label column with --target COLUMN")
    try:
        frame = pd.read_csv(path, na_values=sorted(MISSING_MARKERS), low_memory=False)
        # pandas renames a repeated column name ("label" -> "label.1"): read the header as written
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read CSV file {path}: {first}") from None
    repeats = int((header.iloc[0] == target).sum()) if len(header) else 0
    if repeats > 1:
        raise DataError(
            f"{path}: the header names the target column {target!r} {repeats} times; "
            "rename or drop the extra copies"
        )
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
