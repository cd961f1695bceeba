"""Business time: when things happened, as opposed to when the platform recorded them.

Normally both are now. Loading historic records (a council's existing agreements, the demo data)
runs inside `business_time(...)` so each event keeps the date it really happened (its
`occurred_at`), while its `recorded_at` stays the true moment of recording: nothing pretends to
have been recorded in the past, and "as of" views follow business time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time

_business_now: ContextVar[datetime | None] = ContextVar("council_business_now", default=None)


def now() -> datetime:
    """The business time: the one set by `business_time`, else the real time (UTC)."""
    given = _business_now.get()
    return given if given is not None else datetime.now(UTC)


@contextmanager
def business_time(at: datetime) -> Iterator[None]:
    if at.tzinfo is None:
        raise ValueError("business time must carry a timezone")
    token = _business_now.set(at.astimezone(UTC))
    try:
        yield
    finally:
        _business_now.reset(token)


_END_OF_DAY = time(23, 59, 59, 999999)


def parse_moment(text: str, *, end_of_day: bool = False) -> datetime:
    """An ISO date or date-time as a moment in UTC: a date means the start of that day, or its
    end when it closes a range (`end_of_day`); a date-time naming no zone is UTC. ValueError
    (saying what is expected) for anything else."""
    stripped = text.strip()
    try:
        if len(stripped) == 10:
            day = date.fromisoformat(stripped)
            return datetime.combine(day, _END_OF_DAY if end_of_day else time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO date (2025-03-31) or date-time (2025-03-31T17:00:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def moment_text(moment: datetime, *, end_of_day: bool = False) -> str:
    """The text `parse_moment` reads back as `moment`: the date alone when it is the start (or,
    with `end_of_day`, the end) of a UTC day."""
    moment = moment.astimezone(UTC)
    if moment.timetz().replace(tzinfo=None) == (_END_OF_DAY if end_of_day else time(0)):
        return moment.date().isoformat()
    return moment.isoformat()
