"""MACs budgets as strings: ``"600M"``, ``"1.2G"``, ``"500k"``, ``"3e8"``, ``"12345"``."""

from __future__ import annotations

import math
import re

from neas.errors import BudgetError

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)\s*$")


def parse_budget(text: str | int | float) -> int:
    """Parse a MACs budget into an integer number of multiply-accumulates.

    >>> parse_budget("600M"), parse_budget("1.2G"), parse_budget("500k"), parse_budget("3e8")
    (600000000, 1200000000, 500000, 300000000)
    >>> parse_budget("0.4")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neas.errors.BudgetError: invalid budget '0.4': it must be at least 1 MAC ...
    """
    if isinstance(text, bool):
        raise BudgetError(f"invalid budget {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _PATTERN.match(str(text))
        if match is None:
            raise BudgetError(
                f"invalid budget {text!r}: use a number with an optional k/M/G suffix, "
                "e.g. 600M, 1.2G, 500k, 3e8"
            )
        value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise BudgetError(
            f"invalid budget {text!r}: it must be at least 1 MAC (a suffix scales it: 0.4M is "
            "400,000)"
        )
    return int(round(value))


def format_macs(macs: float) -> str:
    """Format a MACs count with a short suffix.

    >>> format_macs(612_345_678)
    '612.3M'
    """
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(macs) >= scale:
            return f"{macs / scale:.1f}{suffix}"
    return f"{macs:.0f}"
