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
from datetime import UTC, datetime

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
