"""Tables to feature matrices: any DataFrame's columns as numbers, recorded for serving.

A :class:`TableEncoder` is fitted once (``fit``) and recorded (``to_dict``, plain JSON) with the
run, the exported model's manifest and ``model.pt``, so serving applies exactly the same encoding
(``transform``, or ``load_ensemble(...).encode_table(frame)``) to new rows. What each column
becomes (the kinds and thresholds of skrub's ``TableVectorizer``):

- numbers: missing values become the column's median; a column with more than
  :data:`QUANTILE_MIN_DISTINCT` distinct values is then mapped through its fitted quantiles
  (:data:`QUANTILES` of them) to normal scores, as scikit-learn's ``QuantileTransformer(
  output_distribution="normal")`` does (the preprocessing of TabM and of Gorishniy et al.'s
  MLPs: skewed and heavy-tailed columns reach the network spread, not squeezed next to an
  outlier). A column of text counts as numeric when
  every value is a number, a missing-value marker (:data:`MISSING_MARKERS`) or a number with
  thousands separators (``"1,234,567.5"``); durations count in seconds;
- dates (datetime columns, or text that parses as dates in one format): year, month, day,
  weekday, hour (if any value has a time) and seconds since 1970 (``neas.table_columns``);
- text with at most 40 distinct values (``category`` dtype included): one 0/1 feature per
  category seen in the fit; a missing or unseen value sets none of them;
- text with more: short values that repeat (codes, states, names of a few words) fitted with
  the labels become their target encoding, one feature per class
  (``neas.table_columns.TargetColumn``: the fit rows cross-fitted, each encoded from the
  others' labels); free text, and any such column fitted without labels, become skrub's
  ``MinHashEncoder`` features. Paired on mlc_churn (51 states, 3,500 training rows, seeds
  0-2, ``benchmarks/tables.py``): 90.62 % with 30 MinHash features of ``state``, 94.60 %
  with its target encoding (``benchmarks/RESULTS.md``, notes on real tables);
- dropped, with one logged notice naming them: all-missing columns and row ids (more than 40
  values, all distinct: short text such as names or codes, or integers counting up by one or
  under an id-like name). A table left with no column, or with no rows, is a ``DataError``.

Torch is not needed here.

>>> import pandas as pd
>>> frame = pd.DataFrame({"age": [30, None, 50], "city": ["Oslo", "Rome", None]})
>>> enc = TableEncoder.fit(frame)
>>> enc.features
('age', 'city=Oslo', 'city=Rome')
>>> enc.transform(frame).tolist()
[[30.0, 1.0, 0.0], [40.0, 0.0, 1.0], [50.0, 0.0, 0.0]]
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype as is_datetime

from neas.errors import DataError
from neas.table_columns import (
    CARDINALITY_THRESHOLD,
    DateColumn,
    TargetColumn,
    TextColumn,
    as_dates,
    id_like,
    short_values,
)

log = logging.getLogger(__name__)

#: Text read as a missing value: pandas' own markers (``NA``, ``N/A``, ``NaN``, ``null``, empty,
#: ...) and ``?`` and ``-``.
MISSING_MARKERS = frozenset(
    {"", "?", "-", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL", "None",
     "#N/A", "#N/A N/A", "#NA", "<NA>", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN"}
)  # fmt: skip
#: The largest magnitude a float32 feature holds.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: The version of ``TableEncoder.to_dict``'s record (version 1: numbers and categories only;
#: version 2: no target-encoded columns).
VERSION = 3
#: Numeric columns with more distinct values than this get the quantile (normal-score) map,
#: fitted on at most QUANTILES grid points; the others (flags, small codes) keep their values.
QUANTILE_MIN_DISTINCT = 10
QUANTILES = 256
#: Probabilities are clipped to [bound, 1 - bound] before the normal quantile (scikit-learn's).
_BOUND = 1e-7


def fit_quantiles(values: np.ndarray) -> tuple[float, ...] | None:
    """The quantile grid of a numeric column (finite values), or ``None`` when it has at most
    :data:`QUANTILE_MIN_DISTINCT` distinct values.

    >>> q = fit_quantiles(np.arange(100.0))
    >>> len(q), q[0], q[-1], fit_quantiles(np.array([0.0, 1.0, 1.0]))
    (100, 0.0, 99.0, None)
    """
    finite = values[np.isfinite(values)]
    if len(np.unique(finite)) <= QUANTILE_MIN_DISTINCT:
        return None
    grid = np.nanquantile(finite, np.linspace(0.0, 1.0, min(QUANTILES, len(finite))))
    return tuple(float(v) for v in np.maximum.accumulate(grid))


def normal_scores(values: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """``values`` through the quantile grid to standard-normal scores (scikit-learn's
    ``QuantileTransformer`` rule: the mean of the increasing and the decreasing interpolation,
    so that ties land in the middle of their range).

    >>> normal_scores(np.array([0.0, 50.0, 99.0, 1e9]), fit_quantiles(np.arange(100.0))).round(2)
    array([-5.2 ,  0.01,  5.2 ,  5.2 ])
    """
    from scipy.special import ndtri

    q = np.asarray(quantiles, dtype=np.float64)
    ref = np.linspace(0.0, 1.0, len(q))
    p = 0.5 * (np.interp(values, q, ref) - np.interp(-values, -q[::-1], -ref[::-1]))
    return ndtri(np.clip(p, _BOUND, 1.0 - _BOUND))


_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?(?:[eE][+-]?\d+)?")


def _clean(value: Any) -> Any:
    """A missing-value marker as ``None``; ``"1,234.5"`` as ``"1234.5"``; anything else as is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text in MISSING_MARKERS:
        return None
    return text.replace(",", "") if _GROUPED.fullmatch(text) else value


#: Extension dtypes the encoder reads as they are (their missing values are NaN or NaT).
_KEPT_DTYPES = (pd.CategoricalDtype, pd.DatetimeTZDtype, pd.PeriodDtype, pd.IntervalDtype)


def _nullable(col: pd.Series) -> bool:
    """Whether ``col`` has one of pandas' nullable dtypes (``string``, ``Int64``, ``Float64``,
    ``boolean``, Arrow-backed), whose missing value ``pd.NA`` compares as ``<NA>``."""
    dtype = col.dtype
    return isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(
        dtype, _KEPT_DTYPES
    )


def _plain(col: pd.Series) -> pd.Series:
    """A nullable column (:func:`_nullable`) as numpy's kind: numbers and booleans as float64
    (missing: NaN), anything else as objects (missing: ``None``)."""
    if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
        return col.astype("float64")
    return col.astype(object).where(col.notna(), None)


def _frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its column names as text and its nullable columns :func:`_plain`: what
    every method of the encoder reads (converted once, where a frame comes in)."""
    frame = frame.rename(columns=str)
    nullable = [i for i in range(frame.shape[1]) if _nullable(frame.iloc[:, i])]
    if not nullable:
        return frame
    frame = frame.copy()
    for i in nullable:
        frame.isetitem(i, _plain(frame.iloc[:, i]))
    return frame


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


def _kind(name: str, col: pd.Series, *, labelled: bool) -> tuple[str, Any]:
    """What a column becomes: ``("number", median)``, ``("date", DateColumn)``,
    ``("category", values)``, ``("target", None)`` (fitted with the labels, later),
    ``("text", TextColumn)`` or ``("drop", reason)``."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    if col.map(_clean).isna().all():
        return "drop", "no values"
    if pd.api.types.is_timedelta64_dtype(col):
        col = col / pd.Timedelta(seconds=1)
    numbers, numeric = _numbers(col) if not is_datetime(col) else (None, False)
    if numbers is not None and numeric:
        if id_like(name, numbers, numeric=True):
            return "drop", "a row id"
        finite = numbers[np.isfinite(numbers)]
        return "number", float(finite.median()) if len(finite) else 0.0
    dates = as_dates(col)
    if dates is not None:
        return "date", dates
    text = col.map(lambda v: None if pd.isna(v) else str(v)).astype(object)
    values = sorted(set(text.dropna()))
    if len(values) <= CARDINALITY_THRESHOLD:
        return "category", tuple(values)
    if id_like(name, text, numeric=False):
        return "drop", "an id: every value distinct"
    if labelled and short_values(text):
        return "target", None
    return "text", TextColumn.fit()


@dataclass(frozen=True)
class TableEncoder:
    """The fitted encoding of a table's columns (see the module docstring).

    ``inputs`` are the fitted table's columns, ``columns`` those encoded (in order), each in
    ``medians`` (numbers), ``categories`` (one-hot text), ``dates``, ``texts`` (MinHash) or
    ``targets`` (target-encoded categories); ``dropped`` maps the other columns to the reason.

    Fitted with labels (``fit(frame, y)``), a table's many-valued categories are target-encoded:
    the rows it was fitted on must then be encoded by :meth:`fit_transform` (cross-fitted), any
    other rows by :meth:`transform`."""

    columns: tuple[str, ...]
    medians: dict[str, float]
    categories: dict[str, tuple[str, ...]]
    dates: dict[str, DateColumn] = field(default_factory=dict)
    texts: dict[str, TextColumn] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    quantiles: dict[str, tuple[float, ...]] = field(default_factory=dict)
    targets: dict[str, TargetColumn] = field(default_factory=dict)

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, y: np.ndarray | None = None, *, seed: int = 0
    ) -> TableEncoder:
        """Read each column's kind and what encoding it needs (median, categories, ...); with
        the labels ``y`` (class indices, one per row), target-encode many-valued categories."""
        return cls._fit_with_targets(_frame(frame), y, seed=seed)[0]

    @classmethod
    def fit_transform(
        cls, frame: pd.DataFrame, y: np.ndarray | None, *, seed: int = 0
    ) -> tuple[TableEncoder, np.ndarray]:
        """The encoder fitted on ``frame`` (with the labels ``y``, if given) and ``frame``
        encoded, its target-encoded columns cross-fitted (``seed`` draws the folds)."""
        frame = _frame(frame)
        enc, fitted = cls._fit_with_targets(frame, y, seed=seed)
        return enc, enc._encode(frame, fitted)

    @classmethod
    def _fit_with_targets(
        cls, frame: pd.DataFrame, y: np.ndarray | None, *, seed: int
    ) -> tuple[TableEncoder, dict[str, np.ndarray]]:
        """The fitted encoder and its target-encoded columns' cross-fitted features (``frame``
        as :func:`_frame` gives it)."""
        if y is not None and len(y) != len(frame):
            raise DataError(f"the table has {len(frame)} rows but {len(y)} labels")
        enc = cls._fit(frame, labelled=y is not None)
        if not enc.targets:
            return enc, {}
        targets, fitted = {}, {}
        for name in enc.targets:
            targets[name], fitted[name] = TargetColumn.fit_transform(
                frame[name], np.asarray(y), seed=seed
            )
        return replace(enc, targets=targets), fitted

    @classmethod
    def _fit(cls, frame: pd.DataFrame, *, labelled: bool = False) -> TableEncoder:
        """The encoder but for its target encodings: ``targets`` names the columns to target-
        encode (``labelled``), each mapped to ``None`` until ``fit_transform`` fits it."""
        if frame.shape[1] == 0:
            raise DataError("the table has no feature columns")
        if frame.shape[0] == 0:
            raise DataError("the table has no rows")
        parts: dict[str, dict[str, Any]] = {
            k: {} for k in ("number", "category", "date", "text", "target", "drop")
        }
        for name in frame.columns:
            kind, value = _kind(name, frame[name], labelled=labelled)
            parts[kind][name] = value
        dropped = parts["drop"]
        kept = tuple(c for c in frame.columns if c not in dropped)
        if not kept:
            raise DataError(
                "the table has no usable feature column: "
                + ", ".join(f"{k!r} is {why}" for k, why in dropped.items())
            )
        if dropped:
            log.warning(
                "table: dropped column(s) "
                + ", ".join(f"{k!r} ({why})" for k, why in dropped.items())
            )
        quantiles = {}
        for name in parts["number"]:
            col = frame[name]
            if pd.api.types.is_timedelta64_dtype(col):
                col = col / pd.Timedelta(seconds=1)
            grid = fit_quantiles(_numbers(col)[0].to_numpy(np.float64))
            if grid is not None:
                quantiles[name] = grid
        return cls(
            kept,
            parts["number"],
            parts["category"],
            parts["date"],
            parts["text"],
            dropped,
            tuple(frame.columns),
            quantiles,
            parts["target"],
        )

    @property
    def features(self) -> tuple[str, ...]:
        """The names of the encoded features, in order."""
        out: list[str] = []
        for name in self.columns:
            if name in self.categories:
                out += [f"{name}={v}" for v in self.categories[name]]
            elif name in self.dates:
                out += [f"{name}_{p}" for p in self.dates[name].parts]
            elif name in self.texts:
                out += [f"{name}_minhash{i}" for i in range(self.texts[name].components)]
            elif name in self.targets:
                out += [f"{name}_target{i}" for i in range(self.targets[name].components)]
            else:
                out.append(name)
        return tuple(out)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode ``frame`` (the fitted columns, any order, extra columns ignored): N x F."""
        return self._encode(_frame(frame), {})

    def _encode(self, frame: pd.DataFrame, fitted: dict[str, np.ndarray]) -> np.ndarray:
        """``transform``, the target-encoded columns in ``fitted`` taken from there."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(f"the table lacks column(s) {', '.join(missing)}")
        parts = []
        for name in self.columns:
            col = frame[name]
            if name in self.categories:
                text = col.map(lambda v: None if pd.isna(v) else str(v))
                parts += [(text == v).to_numpy(np.float32) for v in self.categories[name]]
            elif name in self.dates:
                parts += list(self.dates[name].transform(col).T)
            elif name in self.texts:
                parts += list(self.texts[name].transform(col).T)
            elif name in self.targets:
                values = fitted[name] if name in fitted else self.targets[name].transform(col)
                parts += list(values.T)
            else:
                if pd.api.types.is_timedelta64_dtype(col):
                    col = col / pd.Timedelta(seconds=1)
                values = _numbers(col)[0].to_numpy(np.float64)
                if np.isinf(values).any():
                    raise DataError(f"column {name!r} holds infinite values")
                if (np.abs(values) > FLOAT32_MAX).any():
                    raise DataError(
                        f"column {name!r} holds values too large for float32 features (beyond "
                        f"{FLOAT32_MAX:.3g}); rescale it first"
                    )
                values = np.where(np.isnan(values), self.medians[name], values)
                if name in self.quantiles:
                    values = normal_scores(values, self.quantiles[name])
                parts.append(values)
        return np.stack(parts, axis=1).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "table",
            "version": VERSION,
            "inputs": list(self.inputs),
            "columns": list(self.columns),
            "medians": dict(self.medians),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "dates": {k: v.to_dict() for k, v in self.dates.items()},
            "texts": {k: v.to_dict() for k, v in self.texts.items()},
            "dropped": dict(self.dropped),
            "quantiles": {k: list(v) for k, v in self.quantiles.items()},
            "targets": {k: v.to_dict() for k, v in self.targets.items()},
            "features": list(self.features),
        }

    @classmethod
    def from_dict(cls, data: Any) -> TableEncoder:
        """The encoder ``to_dict`` wrote (version 1, numbers and categories only, 2, without
        target-encoded columns, or :data:`VERSION`); a one-line ``DataError`` for anything
        else."""
        if not isinstance(data, dict) or data.get("kind", "table") != "table":
            raise DataError("the table encoding is not a dict of kind 'table'")
        version = data.get("version", 1)
        if version not in range(1, VERSION + 1) or isinstance(version, bool):
            raise DataError(f"table encoding version {version!r}; this neas reads 1 to {VERSION}")
        v2 = version >= 2
        since = {"dates": 2, "texts": 2, "dropped": 2, "quantiles": 2, "targets": 3}

        def names(key: str) -> tuple[str, ...]:
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DataError(f"the table encoding's {key!r} is not a list of names")
            return tuple(value)

        def table(key: str, read: Any) -> dict[str, Any]:
            value = data.get(key, {}) if version >= since.get(key, 1) else {}
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise DataError(f"the table encoding's {key!r} is not a dict by column")
            try:
                return {k: read(v) for k, v in value.items()}
            except (TypeError, ValueError) as exc:
                if isinstance(exc, DataError):
                    raise
                raise DataError(f"the table encoding's {key!r}: {exc}") from None

        def number(v: Any) -> float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{v!r} is not a number")
            return float(v)

        def grid(v: Any) -> tuple[float, ...]:
            if not isinstance(v, list) or len(v) < 2:
                raise TypeError("a quantile grid is not a list of at least two numbers")
            out = tuple(number(x) for x in v)
            if not all(np.isfinite(out)) or any(b < a for a, b in zip(out, out[1:])):
                raise TypeError("a quantile grid is not finite and non-decreasing")
            return out

        def labels(v: Any) -> tuple[str, ...]:
            if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
                raise TypeError("categories are not a list of text")
            return tuple(v)

        columns = names("columns")
        enc = cls(
            columns=columns,
            medians=table("medians", number),
            categories=table("categories", labels),
            dates=table("dates", DateColumn.from_dict),
            texts=table("texts", TextColumn.from_dict),
            dropped=table("dropped", str),
            inputs=names("inputs") if v2 else columns,
            quantiles=table("quantiles", grid),
            targets=table("targets", TargetColumn.from_dict),
        )
        kinds = (enc.medians, enc.categories, enc.dates, enc.texts, enc.targets)
        if any(sum(c in k for k in kinds) != 1 for c in columns) or sum(map(len, kinds)) != len(
            columns
        ):
            raise DataError("the table encoding's columns do not match their encodings")
        if any(c not in enc.medians for c in enc.quantiles):
            raise DataError("the table encoding has quantiles for a column that is no number")
        return enc


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
