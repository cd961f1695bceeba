"""Money, one rule for the whole platform.

Amounts are pounds as `Decimal` with at most two places (what every contract accepts), and are
kept in read models as whole pence (`int`), so sums are exact in SQLite and PostgreSQL alike.
A figure that is worked out (a share, a pro-rated payment, a cost per outcome) is rounded to the
penny half up, once, where the rule that produces it says so.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

PENNY = Decimal("0.01")


def to_penny(amount: Decimal) -> Decimal:
    """A worked-out amount of pounds rounded to the penny, half up (£1.005 -> £1.01)."""
    return amount.quantize(PENNY, rounding=ROUND_HALF_UP)


def pence(amount: Decimal) -> int:
    """Pounds as whole pence (£12.34 -> 1234), rounded to the penny half up first."""
    return int(to_penny(amount).scaleb(2))


def pounds(amount: int) -> Decimal:
    """Whole pence as pounds with two places (1234 -> £12.34)."""
    return Decimal(int(amount)).scaleb(-2)
