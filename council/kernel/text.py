"""The text, numbers and dates every service accepts from outside (HTTP bodies and query
parameters, CSV rows, Kafka messages), checked at the edge so nothing reaches a store that it
cannot hold or a reader cannot show.

Text never holds control characters (NUL, escape, DEL, the C1 controls) or lone surrogates:
PostgreSQL refuses NUL in text (a 500 where a 422 was due), terminals and spreadsheets act on
the others, and the audit trail must read the same everywhere. Multi-line fields (descriptions,
reasons, notes) may hold newlines and tabs; every other field is one line. Every text has a
bounded length.

Use these types for new fields rather than a bare `str`:

- `Text`: one line, 1-200 characters (a name, a title, a label);
- `ShortText`: one line, 1-50 characters (a unit);
- `Key`: one line, 1-200 characters, not stripped (an idempotency key, a code);
- `LongText`: multi-line, 1-4,000 characters (a description, a note);
- `Reason`: multi-line, 3-2,000 characters (why a decision was taken);
- `SearchText` (0-200) and `QueryName` (1-200): one line, for a query parameter;
- `PathId` (1-100): one line, an id in a path that is not a UUID;
- another length: ``Annotated[str, StringConstraints(...), ONE_LINE]`` (or MULTI_LINE).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

# Multi-line text may hold these; no text holds any other control character.
_LAYOUT = frozenset("\n\r\t")
MAX_OFFSET = 1_000_000  # how far into a list a page may start
# Business dates (terms, ratings, milestones): within this window, so a typo (0001-01-01,
# 9999-12-31) is refused at the edge rather than stored and summed.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2200, 12, 31)


def control_character(value: str, multiline: bool = False) -> str | None:
    """The first character of `value` a text may not hold (described), or None."""
    for char in value:
        if multiline and char in _LAYOUT:
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or (not multiline and category in ("Zl", "Zp")):
            return f"U+{ord(char):04X}"
    return None


def without_controls(value: str) -> str:
    """`value` without the characters no text may hold: for the web pages' search boxes, which
    answer a page rather than refuse (an API refuses them, naming the parameter)."""
    return "".join(c for c in value if control_character(c) is None)


def _checked(multiline: bool) -> Callable[[Any], Any]:
    # Before any stripping: "a\x0b" is refused, not stored as "a" (a sender who put a control
    # character in a field learns so, whichever end of it the character was at).
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the type check says what is wrong with it
        found = control_character(value, multiline)
        if found is not None:
            kind = "" if multiline else "a line break or "
            raise ValueError(f"must not hold {kind}a control character (found {found})")
        return value

    return check


# The checks themselves, for a text type of another length:
# Annotated[str, StringConstraints(max_length=...), ONE_LINE].
ONE_LINE = BeforeValidator(_checked(multiline=False))
MULTI_LINE = BeforeValidator(_checked(multiline=True))


def _strip(low: int, high: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=low, max_length=high)


Text = Annotated[str, _strip(1, 200), ONE_LINE]
ShortText = Annotated[str, _strip(1, 50), ONE_LINE]
Key = Annotated[str, _strip(1, 200), ONE_LINE]
LongText = Annotated[str, _strip(1, 4000), MULTI_LINE]
Reason = Annotated[str, _strip(3, 2000), MULTI_LINE]
# Query parameters: free text (blank allowed: it means "not given") and codes or names.
SearchText = Annotated[str, StringConstraints(max_length=200), ONE_LINE]
QueryName = Annotated[str, StringConstraints(min_length=1, max_length=200), ONE_LINE]
# An id that is not a UUID (a business case's, a milestone's), as a path parameter.
PathId = Annotated[str, StringConstraints(min_length=1, max_length=100), ONE_LINE]


_DATE_TIME = re.compile(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ].*")


def _plain_date(value: Any) -> Any:
    """A date as JSON or a query gives it must be YYYY-MM-DD: a date-time is refused rather
    than cut to its date (pydantic would accept 2026-04-01T00:00:00), as is a number (pydantic
    would read it as a Unix time)."""
    if isinstance(value, str) and _DATE_TIME.fullmatch(value):
        raise ValueError("a date is YYYY-MM-DD, not a date-time")
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("a date is YYYY-MM-DD, not a number")
    return value


def _plausible(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"must be between {EARLIEST_DATE} and {LATEST_DATE}")
    return value


# A business date: YYYY-MM-DD within the documented window (EARLIEST_DATE..LATEST_DATE).
BusinessDate = Annotated[date, BeforeValidator(_plain_date), AfterValidator(_plausible)]
# The start of a page of results.
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET)]
