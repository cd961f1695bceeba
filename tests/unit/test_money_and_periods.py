"""The kernel's one rule for money and one definition of a period, worked by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from council.kernel.money import pence, pounds, to_penny
from council.kernel.periods import (
    Period,
    ended,
    overlaps,
    period_bounds,
    period_of,
    period_order,
    periodicity_of,
    quarter_of,
    quarters,
)


def test_money_rounds_half_up_to_the_penny_and_keeps_whole_pence() -> None:
    # £1.005 is half a penny over £1.00: half up gives £1.01 (banker's rounding would give £1.00).
    assert to_penny(Decimal("1.005")) == Decimal("1.01")
    assert to_penny(Decimal("2.675")) == Decimal("2.68")
    # A third of £100: £33.333... -> £33.33.
    assert to_penny(Decimal(100) / 3) == Decimal("33.33")
    assert pence(Decimal("12.34")) == 1234
    assert pence(Decimal("0.005")) == 1
    assert pounds(1234) == Decimal("12.34")
    assert pounds(pence(Decimal("955633.00"))) == Decimal("955633.00")


def test_a_period_is_a_month_or_a_calendar_quarter() -> None:
    q2 = Period.parse("2026-Q2")
    assert (q2.first, q2.last, q2.days) == (date(2026, 4, 1), date(2026, 6, 30), 91)
    feb = Period.parse("2024-02")  # a leap year: 29 days
    assert (feb.first, feb.last, feb.days) == (date(2024, 2, 1), date(2024, 2, 29), 29)
    assert Period.parse("2025-Q4").next() == Period.parse("2026-Q1")
    assert Period.parse("2025-12").next().label == "2026-01"
    assert period_bounds("2023-Q4") == (date(2023, 10, 1), date(2023, 12, 31))
    for wrong in ("2026-13", "2026-Q5", "2026-4", "26-Q1", ""):
        with pytest.raises(ValueError, match="neither a month"):
            Period.parse(wrong)


def test_the_period_a_day_falls_in() -> None:
    day = date(2026, 5, 14)
    assert period_of(day, "monthly") == "2026-05"
    assert period_of(day, "quarterly") == quarter_of(day) == "2026-Q2"
    assert Period.containing(day, "quarterly").label == "2026-Q2"
    assert periodicity_of("2026-05") == "monthly"
    assert periodicity_of("2026-Q2") == "quarterly"
    with pytest.raises(ValueError, match="periodicity"):
        period_of(day, "annually")


def test_periods_order_ended_and_overlap_a_term() -> None:
    # A quarter sorts before its last month (same last day, earlier first day).
    assert sorted(["2026-06", "2026-Q2", "2026-04"], key=period_order) == [
        "2026-04", "2026-Q2", "2026-06"]
    assert ended("2026-Q1", date(2026, 4, 1))
    assert not ended("2026-Q1", date(2026, 3, 31))  # its last day: not over yet
    term = (date(2023, 10, 2), date(2025, 3, 31))
    assert not overlaps("2023-Q3", term)
    assert overlaps("2023-Q4", term)  # 91 of its 92 days
    assert overlaps("2025-Q1", term)
    assert not overlaps("2025-04", term)
    assert overlaps("1999-01", None)  # no term known: every period counts
    assert quarters("2025-11", "2026-Q2") == ["2025-Q4", "2026-Q1", "2026-Q2"]
