"""The report's HTML: its style sheet, numbers written for people and the pieces (tables,
label/value rows, notes) every section is built from."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.8em; }
h3 { margin-top: 1.6em; }
.scroll { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
td { white-space: nowrap; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
tr.chosen td { font-weight: bold; background: #fff6d5; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
.muted { color: #777; }
.note, ul.notes { color: #444; font-size: .9em; max-width: 62em; }
ul.notes { padding-left: 1.2em; } ul.notes li { margin: .15em 0; }
pre { background: #f6f8fa; border: 1px solid #e5e5e5; padding: .7em; font-size: .85em;
      max-width: 100%; overflow-x: auto; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
code { font-size: .88em; }
pre code { font-size: 1em; }
details { margin: .4em 0 1em; } summary { cursor: pointer; color: #245; }
table.arch { font-size: .78em; margin: .3em 0 .4em; }
table.arch td, table.arch th { padding: .2em .35em; text-align: center; }
table.arch th.l { text-align: left; }
table.arch td.shared { background: #dbe9f7; }
table.arch td.own { background: #e3f3e1; }
table.arch td.skip { background: #f5f5f5; color: #999; font-style: italic; }
table.arch td.head { background: #fbe7c6; }
table.arch td.gap { border: none; background: none; }
.ens { border-left: 3px solid #dbe9f7; padding-left: 1em; margin: 1em 0 2em; }
"""

_NA = "–"


# --- numbers for people -----------------------------------------------------------------------


def _finite(v: Any) -> float | None:
    """``v`` as a finite float, or None (missing, NaN, text)."""
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _count(v: Any) -> str:
    """A count (MACs, parameters) to three significant digits.

    >>> _count(6_416_000), _count(881_308), _count(600e6), _count(999_999), _count(42)
    ('6.42M', '881k', '600M', '1M', '42')
    """
    f = _finite(v)
    if f is None:
        return _NA
    for unit, div in (("", 1.0), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)):
        text = f"{f / div:.3g}"
        if "e" not in text and abs(float(text)) < 1000:
            return text + unit
    return f"{f / 1e12:.0f}T"


def _size(n: int) -> str:
    """A file size: ``3.56 MB``."""
    text = _count(n)
    return f"{text[:-1]} {text[-1]}B" if text[-1:].isalpha() else f"{text} bytes"


def _pct(v: Any) -> str:
    """A fraction as a percentage with two decimals.

    >>> _pct(0.932), _pct(float("nan"))
    ('93.20%', '–')
    """
    f = _finite(v)
    return _NA if f is None else f"{100 * f:.2f}%"


def _ms(v: Any) -> str:
    """Milliseconds to three significant digits, never in scientific notation.

    >>> _ms(8.5528), _ms(13.07), _ms(0.0314), _ms(0.00012)
    ('8.55', '13.1', '0.0314', '0.00012')
    """
    f = _finite(v)
    if f is None:
        return _NA
    if f >= 100:
        return f"{f:.0f}"
    if f >= 10:
        return f"{f:.1f}"
    return f"{f:.6f}".rstrip("0").rstrip(".") if f < 0.01 else f"{f:.3g}"


def _seconds(v: Any) -> str:
    f = _finite(v)
    if f is None:
        return _NA
    if f < 120:
        return f"{f:.1f} s"
    return f"{int(f // 60)} min {f % 60:.0f} s"


def _int(v: Any) -> str:
    """A whole number (K, split, generation, epoch); anything else as text."""
    f = _finite(v)
    if f is None:
        return _NA if v is None or isinstance(v, (int, float)) else str(v)
    return str(int(f)) if f.is_integer() else f"{f:g}"


def _plain(v: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals (NLL, hypervolume, Kendall tau)."""
    f = _finite(v)
    if f is None:
        return _NA if v is None or isinstance(v, (int, float)) else str(v)
    return f"{f:.{digits}f}"


def _auto(v: Any) -> str:
    """A value of a column neas does not know: whole numbers as such, counts as ``6.42M``,
    fractions with four decimals; never scientific notation."""
    f = _finite(v)
    if f is None:
        return _NA if v is None or isinstance(v, (int, float)) else str(v)
    if f.is_integer():
        return str(int(f)) if abs(f) < 10_000 else _count(f)
    return _count(f) if abs(f) >= 1000 else f"{f:.4f}"


def _threshold(v: Any) -> str:
    f = _finite(v)
    return _NA if f is None else f"{f:g}" if f == 0 or abs(f) >= 1e-4 else f"{f:.6f}"


def _humanise(key: str) -> str:
    """A label for a column neas does not know: words, not a snake_case key."""
    return str(key).replace("_", " ")


# --- HTML pieces --------------------------------------------------------------------------------


def _e(v: Any) -> str:
    return html.escape(str(v))


def _kv(rows: dict[str, Any]) -> str:
    """Label / value rows; values are already formatted text (None rows are left out)."""
    body = "".join(
        f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>'
        for k, v in rows.items()
        if v is not None
    )
    return f'<div class="scroll"><table>{body}</table></div>'


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, chosen: int | None = None
) -> str:
    """A table in a horizontally scrolling box; cells are text, except each row's first cell,
    which is HTML (already escaped: it may hold a link)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="chosen"' if i == chosen else ""
        cells = "".join(
            f'<td class="l">{c}</td>' if j == 0 else f"<td>{_e(c)}</td>" for j, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _notes(items: Sequence[tuple[str, str]]) -> str:
    """Explanations of the measures a table shows: ``<ul>`` of "<b>name</b>: sentence"."""
    lis = "".join(f"<li><b>{_e(name)}</b>: {text}</li>" for name, text in items if text)
    return f'<ul class="notes">{lis}</ul>'
