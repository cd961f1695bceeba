"""Periods of account, one definition for the whole platform: a month ("2026-04") or a calendar
quarter ("2026-Q2", April to June), each from its first day to its last, both included.

Payments, performance, concentration and the demo data all count in these periods, so a figure
for "2025-Q3" means the same days wherever it is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from council.kernel import clock

MONTHLY, QUARTERLY = "monthly", "quarterly"
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^([0-9]{4})-Q([1-4])$")

Term = tuple[date, date]  # an agreement's first and last day


@dataclass(frozen=True)
class Period:
    """A month or a calendar quarter: its label and its first and last day."""

    label: str
    first: date
    last: date

    @classmethod
    def parse(cls, label: str) -> Period:
        """The period a label names; ValueError for anything but 2026-04 or 2026-Q2."""
        if found := _MONTH.match(label):
            year, month = int(found[1]), int(found[2])
            first = date(year, month, 1)
            after = date(year + month // 12, month % 12 + 1, 1)
        elif found := _QUARTER.match(label):
            year, quarter = int(found[1]), int(found[2])
            first = date(year, 3 * quarter - 2, 1)
            after = date(year + quarter // 4, (3 * quarter) % 12 + 1, 1)
        else:
            raise ValueError(f"{label!r} is neither a month (2026-04) nor a quarter (2026-Q2)")
        return cls(label, first, after - timedelta(days=1))

    @classmethod
    def containing(cls, day: date, periodicity: str) -> Period:
        """The period of `periodicity` ("monthly" or "quarterly") that holds `day`."""
        return cls.parse(period_of(day, periodicity))

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def next(self) -> Period:
        return Period.containing(self.last + timedelta(days=1), periodicity_of(self.label))


def period_of(day: date, periodicity: str) -> str:
    """The label of the period of `periodicity` ("monthly" or "quarterly") holding `day`."""
    if periodicity == MONTHLY:
        return f"{day.year:04d}-{day.month:02d}"
    if periodicity == QUARTERLY:
        return quarter_of(day)
    raise ValueError(f"unknown periodicity {periodicity!r}")


def quarter_of(day: date) -> str:
    """The calendar quarter holding `day`: 2026-05-14 -> 2026-Q2."""
    return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"


def periodicity_of(period: str) -> str:
    """"monthly" for a month, "quarterly" for a quarter."""
    if _MONTH.match(period):
        return MONTHLY
    if _QUARTER.match(period):
        return QUARTERLY
    raise ValueError(f"{period!r} is neither a month (2026-04) nor a quarter (2026-Q2)")


def period_bounds(period: str) -> tuple[date, date]:
    """The first and last day of a period."""
    found = Period.parse(period)
    return found.first, found.last


def period_order(period: str) -> tuple[date, date]:
    """Sort key: periods by their last day, then their first (a quarter before its last month)."""
    first, last = period_bounds(period)
    return last, first


def quarters(first: str, last: str) -> list[str]:
    """The quarters from the one holding period `first` to the one holding period `last`."""
    found: list[str] = []
    quarter = Period.parse(quarter_of(period_bounds(first)[0]))
    final = quarter_of(period_bounds(last)[1])
    while quarter.label <= final:
        found.append(quarter.label)
        quarter = quarter.next()
    return found


def ended(period: str, today: date) -> bool:
    """Whether the period is over on `today` (else its figures are provisional)."""
    return period_bounds(period)[1] < today


def today_or_now(today: date | None) -> date:
    """The day a view is read for: given ("as of" a date), or today in business time."""
    return today if today is not None else clock.now().date()


def overlaps(period: str, term: Term | None) -> bool:
    """Whether the period shares a day with the term (always, when the term is not known)."""
    if term is None:
        return True
    first, last = period_bounds(period)
    return first <= term[1] and last >= term[0]
