"""A log that went backwards, noticed: a reader's saved position past a partition's end, a
partition gone, a topic whose partition count is not the platform's.

Readers keep their own positions (with their read models, or the ingest's offsets). If the
broker comes back empty, or from an older copy, or a topic is made again with other partitions,
those positions point past what the log now holds: reading from them finds nothing, and a reader
would say it has nothing left to read while every later record waits unread. So each reader
checks now and then (`LogWatch.check`) what its log adapter saw on its latest fetches
(`EventLog.findings`), and for what it finds:

- says so: an error in its log, and a row in `log_findings` in its database, which `/ready`
  shows ("not ready", naming the reader and what it found) until an operator acknowledges it
  (`council log acknowledge`): the log lost records, so the audit trail and any read model
  rebuilt from the log now lack them, which someone must look into;
- reads such a partition again from its start: records there are new to this reader, and
  those it has seen (a log restored from an older copy) are recognised as duplicates (by
  stream position, or by idempotency key for the delivery ingest), so going on is safe.

A finding is acted on only when two checks in a row make it (a moment apart): a reader's
position may move in its database while its adapter's latest fetch is older.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from council.platform.sql import Database, Tx, table_exists

log = structlog.get_logger("log_findings")

TABLE = (
    "CREATE TABLE IF NOT EXISTS log_findings ("
    " reader TEXT NOT NULL, about TEXT NOT NULL, finding TEXT NOT NULL, found_at TEXT NOT NULL,"
    " PRIMARY KEY (reader, about))"
)
CHECK_EVERY_S = 5.0


@dataclass(frozen=True)
class LogFinding:
    """Something wrong between a reader's position and the log: `about` a partition
    ("topic:partition") or a topic; `rewind_to`, where to read that partition from now (None:
    nothing to read again)."""

    about: str
    text: str
    rewind_to: int | None = None


class LogWatch:
    """One reader's checks of its log (see the module docstring)."""

    def __init__(self, reader: str, db: Database,
                 find: Callable[[dict[str, int]], list[LogFinding]]) -> None:
        self.reader = reader
        self.db = db
        self.find = find
        self.every = CHECK_EVERY_S
        self._checked = 0.0
        self._suspects: dict[str, LogFinding] = {}

    @staticmethod
    def create(tx: Tx) -> None:
        tx.execute(TABLE)

    def check(self, position: dict[str, int], force: bool = False) -> dict[str, int]:
        """Check (at most every `every` seconds, unless `force` and not since the last
        second); returns the partitions to read again and where from."""
        now = time.monotonic()
        if now - self._checked < (min(self.every, 1.0) if force else self.every):
            return {}
        self._checked = now
        found = {f.about: f for f in self.find(position)}
        confirmed = [f for about, f in found.items() if self._suspects.get(about) == f]
        self._suspects = found
        if confirmed:
            self._record(confirmed)
        return {f.about: f.rewind_to for f in confirmed if f.rewind_to is not None}

    def _record(self, found: list[LogFinding]) -> None:
        at = datetime.now(UTC).isoformat(timespec="seconds")
        with self.db.transaction() as tx:
            known = {str(a): str(t) for a, t in tx.execute(
                "SELECT about, finding FROM log_findings WHERE reader = ?", (self.reader,))}
            new = [f for f in found if known.get(f.about) != f.text]
            tx.executemany(
                "INSERT INTO log_findings (reader, about, finding, found_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (reader, about) DO UPDATE SET finding = excluded.finding,"
                " found_at = excluded.found_at",
                [(self.reader, f.about, f.text, at) for f in new])
        for f in new:  # once each, not at every check while it lasts
            log.error("log_went_backwards" if f.rewind_to is not None else "log_changed",
                      reader=self.reader, about=f.about, finding=f.text,
                      read_again_from=f.rewind_to)


def forget_findings(tx: Tx, reader: str) -> None:
    """Forget a reader's findings (it is reading the log again from its beginning)."""
    tx.execute(TABLE)
    tx.execute("DELETE FROM log_findings WHERE reader = ?", (reader,))


def findings(db: Database) -> list[dict[str, Any]]:
    """The findings recorded in this database, oldest first."""
    with db.reading() as tx:
        if not _exists(tx, db):
            return []
        rows = tx.execute("SELECT reader, about, finding, found_at FROM log_findings"
                          " ORDER BY found_at, reader, about")
    return [{"reader": str(r), "about": str(a), "finding": str(f), "found_at": str(at)}
            for r, a, f, at in rows]


def acknowledge(db: Database) -> int:
    """Forget every finding recorded in this database (an operator has looked into them);
    returns how many there were."""
    with db.transaction() as tx:
        if not _exists(tx, db):
            return 0
        count = int(tx.execute("SELECT COUNT(*) FROM log_findings")[0][0])
        tx.execute("DELETE FROM log_findings")
    return count


def _exists(tx: Tx, db: Database) -> bool:
    return table_exists(tx, db.dialect, "log_findings")
