"""The column kinds a :class:`neas.tabular.TableEncoder` reads beyond numbers and categories.

Dates become numbers (:class:`DateColumn`): year, month, day, weekday (1 = Monday), hour (when
any value has a time of day) and seconds since 1970-01-01 (UTC); a missing or unparsable date is
the fit column's median date. Free text with many distinct values (more than
:data:`CARDINALITY_THRESHOLD`, skrub's ``TableVectorizer`` split) becomes skrub's
``MinHashEncoder`` features (:class:`TextColumn`): hashes of the text's character n-grams, so an
unseen string lands near the strings it resembles; a missing value is all zeros. A category of
as many values, short ones (codes, states, names that repeat), is target-encoded when the labels
are known (:class:`TargetColumn`): one feature per class, the smoothed share of that class among
the rows holding the value. All are recorded as plain JSON (no pickled objects); :func:`id_like`
names the columns that are row ids.

>>> import pandas as pd
>>> dates = pd.Series(["2024-01-05", "2024-03-01", None], name="d")
>>> enc = as_dates(dates)
>>> enc.format, enc.parts
('%Y-%m-%d', ('year', 'month', 'day', 'weekday', 'total_seconds'))
>>> enc.transform(dates)[:, :4].tolist()
[[2024.0, 1.0, 5.0, 5.0], [2024.0, 3.0, 1.0, 5.0], [2024.0, 2.0, 2.0, 5.0]]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neas.errors import DataError

#: Text columns with more distinct values than this are high-cardinality (skrub's
#: ``TableVectorizer`` default): hashed by MinHash instead of one-hot.
CARDINALITY_THRESHOLD = 40
#: MinHash features per high-cardinality text column (skrub's default).
TEXT_COMPONENTS = 30
#: Text whose values have at least this many words (median) is free text, never an id.
FREE_TEXT_WORDS = 3
#: What the encoded parts of a date are, in order; ``hour`` only when the fit column has times.
DATE_PARTS = ("year", "month", "day", "weekday", "hour", "total_seconds")
_ID_NAME = re.compile(r"(?i:(^|[^a-z])(id|uuid|guid|index|key)$|^id([^a-z]|$))|[a-z](Id|ID)$")
_PROBE = "neas: a fixed text whose hashes pin skrub's MinHash"


def _utc(series: pd.Series, fmt: str | None) -> pd.Series:
    """``series`` as naive UTC datetimes (NaT where missing or not a date in ``fmt``)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        out = series
    else:
        text = series.astype(object).where(series.notna(), None)
        out = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce", utc=True)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out.astype("datetime64[ns]")


def as_dates(series: pd.Series) -> DateColumn | None:
    """A fitted :class:`DateColumn` if ``series`` holds datetimes or text that parses as dates
    in one format (skrub's ``ToDatetime`` guesses it), else ``None``."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return DateColumn.fit(series)
    from skrub import ToDatetime
    from skrub.core import RejectColumn

    text = series.dropna().astype(str)
    if text.empty or text.str.fullmatch(r"\s*[-+]?\d+(\.\d*)?\s*").any():
        return None  # plain numbers are no dates, whatever format would parse them
    try:
        fmt = ToDatetime().fit(text.astype(object).rename(series.name)).format_
    except (RejectColumn, ValueError, TypeError, OverflowError):
        return None
    return DateColumn.fit(series, fmt=fmt) if fmt else None


@dataclass(frozen=True)
class DateColumn:
    """A date column's encoding: its text ``format`` (``None``: a datetime column), the encoded
    ``parts`` (:data:`DATE_PARTS`) and the ``median`` date (seconds since 1970) for missing ones."""

    format: str | None
    parts: tuple[str, ...]
    median: float

    @classmethod
    def fit(cls, series: pd.Series, *, fmt: str | None = None) -> DateColumn:
        dates = _utc(series, fmt).dropna()
        seconds = (dates - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
        times = bool((dates != dates.dt.normalize()).any())
        parts = tuple(p for p in DATE_PARTS if p != "hour" or times)
        return cls(fmt, parts, float(seconds.median()) if len(seconds) else 0.0)

    def transform(self, series: pd.Series) -> np.ndarray:
        """N x len(parts) float64."""
        dates = _utc(series, self.format)
        dates = dates.fillna(pd.Timestamp(0) + pd.Timedelta(seconds=self.median))
        values = {
            "year": dates.dt.year,
            "month": dates.dt.month,
            "day": dates.dt.day,
            "weekday": dates.dt.day_of_week + 1,
            "hour": dates.dt.hour,
            "total_seconds": (dates - pd.Timestamp(0)) / pd.Timedelta(seconds=1),
        }
        return np.stack([values[p].to_numpy(np.float64) for p in self.parts], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "parts": list(self.parts), "median": self.median}

    @classmethod
    def from_dict(cls, data: Any) -> DateColumn:
        fmt, parts = _get(data, "format", (str, type(None))), _get(data, "parts", list)
        if not set(parts) <= set(DATE_PARTS):
            raise DataError(f"unknown date parts {parts}; known: {', '.join(DATE_PARTS)}")
        return cls(fmt, tuple(parts), float(_get(data, "median", (int, float))))


def _minhash(values: pd.Series, components: int) -> np.ndarray:
    """skrub's MinHash (fast hashing, n-grams 2-4) of text values, scaled into [-1, 1]."""
    from skrub import MinHashEncoder

    text = (
        values.astype(object).where(values.notna(), None).map(lambda v: v if v is None else str(v))
    )
    text = pd.Series(text.to_numpy(object), name="text", dtype=object)
    encoder = MinHashEncoder(n_components=components, hashing="fast", ngram_range=(2, 4))
    out = encoder.fit(text).transform(text).to_numpy(np.float64)
    return out / 2.0**31  # int32 hashes; an exact power-of-two rescale


@dataclass(frozen=True)
class TextColumn:
    """A high-cardinality text column as ``components`` MinHash features; ``probe`` holds the
    hashes of a fixed text, so a skrub that hashes differently is refused, not silently wrong."""

    components: int
    probe: tuple[float, ...]

    @classmethod
    def fit(cls, components: int = TEXT_COMPONENTS) -> TextColumn:
        return cls(components, tuple(_minhash(pd.Series([_PROBE]), components)[0].tolist()))

    def transform(self, series: pd.Series) -> np.ndarray:
        """N x components float64."""
        if tuple(_minhash(pd.Series([_PROBE]), self.components)[0].tolist()) != self.probe:
            import skrub

            raise DataError(
                f"the installed skrub {skrub.__version__} hashes text differently from the one "
                "this encoding was fitted with; install that skrub version or fit again"
            )
        return _minhash(series, self.components)

    def to_dict(self) -> dict[str, Any]:
        return {"encoder": "minhash", "components": self.components, "probe": list(self.probe)}

    @classmethod
    def from_dict(cls, data: Any) -> TextColumn:
        if _get(data, "encoder", str) != "minhash":
            raise DataError(f"unknown text encoder {data['encoder']!r}; known: minhash")
        components, probe = _get(data, "components", int), _get(data, "probe", list)
        if not 0 < components <= 1024 or len(probe) != components:
            raise DataError(f"a text column has {components} components and {len(probe)} probes")
        return cls(components, tuple(float(v) for v in probe))


#: The level a missing value of a target-encoded column is counted as (a value of its own).
MISSING_LEVEL = "\x00missing"
#: Folds of the cross-fitting that encodes a target-encoded column's own fit rows.
TARGET_FOLDS = 5


def short_values(values: pd.Series) -> bool:
    """Whether text values are short (median under :data:`FREE_TEXT_WORDS` words): names and
    codes, not free text."""
    words = values.dropna().astype(str).str.split().str.len()
    return bool(len(words)) and bool(words.median() < FREE_TEXT_WORDS)


def _levels(series: pd.Series) -> np.ndarray:
    """A column's values as text, a missing one as :data:`MISSING_LEVEL` (N x 1, object)."""
    text = series.astype(object).map(lambda v: MISSING_LEVEL if pd.isna(v) else str(v))
    return text.to_numpy(object)[:, None]


@dataclass(frozen=True)
class TargetColumn:
    """A high-cardinality category as its target encoding (scikit-learn's ``TargetEncoder``,
    ``smooth="auto"``: each value's class shares shrunk towards the shares over all fit rows, the
    more the fewer rows hold it): one feature per class (one, the second class's share, for two
    classes). ``levels`` are the fit values (a missing value is the level :data:`MISSING_LEVEL`),
    ``encodings[j][i]`` feature j of level i, ``prior[j]`` feature j of an unseen value.

    A model must not learn from a row's encoding of its own label, so the fit rows' features
    come from :meth:`fit_transform`: cross-fitted over :data:`TARGET_FOLDS` folds, each row
    encoded from the others. Rows not fitted on (validation or test rows scored later, serving)
    get :meth:`transform`, the encoding of all fit rows.

    >>> s = pd.Series(["a", "b", "a", "c", None, "a"] * 5)
    >>> col, fitted = TargetColumn.fit_transform(s, np.array([0, 1, 1, 0, 1, 0] * 5), seed=0)
    >>> col.levels[1:], fitted.shape, col.transform(pd.Series(["b", "zz"])).round(2).tolist()
    (('a', 'b', 'c'), (30, 1), [[1.0], [0.5]])
    """

    levels: tuple[str, ...]
    encodings: tuple[tuple[float, ...], ...]
    prior: tuple[float, ...]

    @classmethod
    def fit_transform(
        cls, series: pd.Series, y: np.ndarray, *, seed: int
    ) -> tuple[TargetColumn, np.ndarray]:
        """The column fitted on (``series``, ``y``) and ``series``'s cross-fitted features."""
        import warnings

        from sklearn.model_selection import StratifiedKFold
        from sklearn.preprocessing import TargetEncoder

        folds = StratifiedKFold(TARGET_FOLDS, shuffle=True, random_state=seed)
        enc = TargetEncoder(cv=folds)
        with warnings.catch_warnings():  # classes with fewer rows than folds: still fine
            warnings.simplefilter("ignore", UserWarning)
            fitted = enc.fit_transform(_levels(series), np.asarray(y))
        prior = np.atleast_1d(np.asarray(enc.target_mean_, dtype=np.float64))
        col = cls(
            tuple(str(v) for v in enc.categories_[0]),
            tuple(tuple(float(v) for v in e) for e in enc.encodings_),
            tuple(float(v) for v in prior),
        )
        return col, np.asarray(fitted, dtype=np.float64)

    @property
    def components(self) -> int:
        return len(self.prior)

    def transform(self, series: pd.Series) -> np.ndarray:
        """N x components float64: each value's encoding, an unseen one's ``prior``."""
        index = {v: i for i, v in enumerate(self.levels)}
        rows = np.array([index.get(v, -1) for v in _levels(series)[:, 0]], dtype=np.int64)
        table = np.vstack([np.asarray(self.encodings, dtype=np.float64).T, self.prior])
        return table[rows]  # row -1: the prior

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoder": "target",
            "levels": list(self.levels),
            "encodings": [list(e) for e in self.encodings],
            "prior": list(self.prior),
        }

    @classmethod
    def from_dict(cls, data: Any) -> TargetColumn:
        if _get(data, "encoder", str) != "target":
            raise DataError(f"unknown category encoder {data['encoder']!r}; known: target")
        levels, encodings = _get(data, "levels", list), _get(data, "encodings", list)
        prior = _get(data, "prior", list)
        if not all(isinstance(v, str) for v in levels) or not 0 < len(prior) <= 1024:
            raise DataError("a target-encoded column's levels or prior are malformed")
        if len(encodings) != len(prior) or any(
            not isinstance(e, list) or len(e) != len(levels) for e in encodings
        ):
            raise DataError("a target-encoded column's encodings do not match its levels")
        try:
            values = [np.asarray(e, dtype=np.float64) for e in (*encodings, prior)]
        except (TypeError, ValueError):
            raise DataError("a target-encoded column's encodings are not numbers") from None
        if not all(np.all(np.isfinite(v)) for v in values):
            raise DataError("a target-encoded column's encodings are not finite")
        return cls(
            tuple(levels),
            tuple(tuple(float(v) for v in e) for e in encodings),
            tuple(float(v) for v in prior),
        )


def id_like(name: str, values: pd.Series, *, numeric: bool) -> bool:
    """Whether a column is a row id: more than :data:`CARDINALITY_THRESHOLD` values, none
    missing, all distinct; integers counting up by one or under an id-like name (``id``,
    ``user_id``, ``key``); text of short values (names, codes; not free text)."""
    n = len(values)
    if n <= CARDINALITY_THRESHOLD or values.isna().any() or values.nunique() < n:
        return False
    if numeric:
        ints = values.to_numpy(np.float64)
        if not np.all(np.mod(ints, 1) == 0):
            return False
        return bool(ints.max() - ints.min() == n - 1 or _ID_NAME.search(name))
    return short_values(values)


def _get(data: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    """``data[key]`` checked to be a ``kind``; one-line ``DataError`` otherwise."""
    if not isinstance(data, dict) or key not in data:
        raise DataError(f"a table column's encoding lacks {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise DataError(f"a table column's {key!r} is a {type(value).__name__}, not {names}")
    return value
