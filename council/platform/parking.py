"""Parked work: what a worker following the log could not apply, set aside so it goes on.

A read model that cannot apply an event (a character its database refuses, a field its code
did not expect, a bug) would otherwise fail on that event for ever and apply nothing after it:
one bad event from one sender would stall every later report. Instead the runner *parks* it: a
row here (which projection, where on the log, the event's id and type, why, when, and the record
itself), written in the same transaction that moves the projection's position past it, and goes
on with every later event.

Ordering: a parked event is missing from its stream's state, so later events of that stream
apply on a state without it (a correction of a parked report finds nothing to correct). That
is the price of going on; the alternative, holding back the whole stream, would let one bad
event from one sender hold back everything keyed with it. So anything parked makes `/ready`
say "not ready", naming each parked event with its reason, and `council projections retry`
applies them once the cause is fixed (a fixed projection, or a fixed database), whereupon they
are removed. Only failures of the event are parked: a database or broker that cannot be
reached fails every event alike, and the runner waits and tries again instead (`transient`).

The same table holds work of other kinds that a worker set aside (the payments process's
settlement of one agreement's period): `item` names it, `record` is empty.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from eventsourcing import persistence

from council.kernel.errors import InfrastructureUnavailable
from council.platform.sql import Database, Tx, table_exists

TABLE = (
    "CREATE TABLE IF NOT EXISTS projection_parked ("
    " projection TEXT NOT NULL, item TEXT NOT NULL, log_partition TEXT, log_offset BIGINT,"
    " event_id TEXT, event_type TEXT, reason TEXT NOT NULL, parked_at TEXT NOT NULL,"
    " attempts INTEGER NOT NULL, record TEXT,"
    " PRIMARY KEY (projection, item))"
)
REASON_LIMIT = 2000  # characters of a reason kept (a validation error can be long)
SHOWN = 20  # parked items /ready lists per projection (the count covers them all)


@dataclass(frozen=True)
class Parked:
    """One parked item."""

    projection: str
    item: str
    log_partition: str | None
    log_offset: int | None
    event_id: str | None
    event_type: str | None
    reason: str
    parked_at: str
    attempts: int
    record: bytes | None

    def summary(self) -> dict[str, Any]:
        """What /ready and the CLI show (never the record: it may hold personal data)."""
        return {"item": self.item, "partition": self.log_partition, "offset": self.log_offset,
                "event_id": self.event_id, "type": self.event_type, "reason": self.reason,
                "parked_at": self.parked_at, "attempts": self.attempts}


def text(value: object, limit: int = REASON_LIMIT) -> str:
    """Text any database takes: NUL (which PostgreSQL refuses in text, and which may well be
    why the event was parked) written as \\u0000, cut at `limit` characters."""
    found = str(value).replace("\x00", "\\u0000")
    return found if len(found) <= limit else found[: limit - 1] + "\u2026"


def reason_of(exc: BaseException) -> str:
    return text(f"{type(exc).__name__}: {exc}")


def transient(exc: BaseException) -> bool:
    """Whether a failure is of the infrastructure (a database or broker that cannot be reached,
    a lock or serialisation conflict): every event would fail alike, so nothing is parked and
    the work is tried again later. Anything else is taken as the event's (or the code's for
    that event) and parks it."""
    kinds: tuple[type[BaseException], ...] = (
        InfrastructureUnavailable, OSError, sqlite3.OperationalError, sqlite3.InterfaceError,
        psycopg.OperationalError, psycopg.InterfaceError, persistence.OperationalError,
        persistence.InterfaceError,
    )
    seen: BaseException | None = exc
    for _ in range(5):  # the adapters wrap the driver's error: look at what they wrap too
        if seen is None:
            return False
        if isinstance(seen, kinds):
            return True
        seen = seen.__cause__
    return False


def park(tx: Tx, projection: str, item: str, reason: str, *, log_partition: str | None = None,
         log_offset: int | None = None, event_id: str | None = None,
         event_type: str | None = None, record: bytes | None = None) -> None:
    """Set `item` aside with `reason` (again: its reason and attempts are updated)."""
    tx.execute(
        "INSERT INTO projection_parked (projection, item, log_partition, log_offset, event_id,"
        " event_type, reason, parked_at, attempts, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)"
        " ON CONFLICT (projection, item) DO UPDATE SET reason = excluded.reason,"
        " attempts = projection_parked.attempts + 1",
        (projection, text(item, 500), log_partition, log_offset,
         None if event_id is None else text(event_id, 100),
         None if event_type is None else text(event_type, 200), text(reason),
         datetime.now(UTC).isoformat(timespec="seconds"),
         None if record is None else base64.b64encode(record).decode("ascii")),
    )


def unpark(tx: Tx, projection: str, item: str) -> None:
    tx.execute("DELETE FROM projection_parked WHERE projection = ? AND item = ?",
               (projection, item))


def forget(tx: Tx, projection: str) -> None:
    """Forget everything parked for a projection (it is being rebuilt from the log)."""
    tx.execute("DELETE FROM projection_parked WHERE projection = ?", (projection,))


def parked(db: Database, projections: Sequence[str] | None = None) -> list[Parked]:
    """What is parked in this database (for these projections), in log order."""
    with db.reading() as tx:
        if not _exists(tx, db):
            return []
        rows = tx.execute(
            "SELECT projection, item, log_partition, log_offset, event_id, event_type, reason,"
            " parked_at, attempts, record FROM projection_parked"
            " ORDER BY projection, log_partition, log_offset, item")
    found = [Parked(str(p), str(i), _opt(lp), None if lo is None else int(lo), _opt(e), _opt(t),
                    str(r), str(at), int(n),
                    None if rec is None else base64.b64decode(str(rec)))
             for p, i, lp, lo, e, t, r, at, n, rec in rows]
    return [p for p in found if projections is None or p.projection in projections]


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _exists(tx: Tx, db: Database) -> bool:
    """Whether the table is there (a reader may look before any runner made it)."""
    return table_exists(tx, db.dialect, "projection_parked")
