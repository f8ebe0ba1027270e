import pytest

from neas.budget import BudgetError, format_macs, parse_budget


@pytest.mark.parametrize(
    "text,macs",
    [
        ("600M", 600_000_000),
        ("1.2G", 1_200_000_000),
        ("500k", 500_000),
        ("3e8", 300_000_000),
        ("12345", 12345),
        (" 600m ", 600_000_000),
        (2_000_000, 2_000_000),
    ],
)
def test_parse_budget(text: str, macs: int) -> None:
    assert parse_budget(text) == macs


@pytest.mark.parametrize("text", ["", "600X", "abc", "-5M", "0", "1.2.3G", "nan"])
def test_bad_budgets_raise(text: str) -> None:
    with pytest.raises(BudgetError, match="budget"):
        parse_budget(text)


def test_format_macs() -> None:
    assert format_macs(600_000_000) == "600.0M"
    assert format_macs(1_500) == "1.5k"
