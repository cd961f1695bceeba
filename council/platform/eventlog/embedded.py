"""The embedded shared log: one SQLite file under var/, shared by the service processes.

SQLite gives several processes safe concurrent appends (a write lock per append) and readers
that never block writers (WAL). One partition per topic: on one machine order per stream is all
we need, and a single partition also gives a total order within each source.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path

from council.kernel.errors import InfrastructureUnavailable
from council.platform.eventlog.findings import LogFinding
from council.platform.eventlog.port import (
    Appendable,
    EventLog,
    LogPosition,
    LogRecord,
    partition_key,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    stream_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    value BLOB NOT NULL,
    UNIQUE (topic, "offset")
);
"""


class EmbeddedEventLog(EventLog):
    def __init__(self, path: Path, topic_prefix: str = "council") -> None:
        super().__init__(topic_prefix)
        self.path = Path(path)
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise InfrastructureUnavailable(f"embedded log at {self.url}: {exc}") from None

    @property
    def url(self) -> str:
        return f"embedded://{self.path}"

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    def append(self, envelopes: Sequence[Appendable]) -> None:
        if not envelopes:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = []
            ordered = sorted(envelopes, key=lambda e: e.source)  # stable: keeps order per source
            for source, group in groupby(ordered, key=lambda e: e.source):
                topic = self.topic_for(source)
                (next_offset,) = conn.execute(
                    'SELECT COALESCE(MAX("offset") + 1, 0) FROM log_records WHERE topic = ?',
                    (topic,),
                ).fetchone()
                for i, env in enumerate(group):
                    rows.append(
                        (topic, next_offset + i, env.stream_id, str(env.event_id), env.to_json())
                    )
            conn.executemany(
                'INSERT INTO log_records (topic, "offset", stream_id, event_id, value) '
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def read(self, topics: Sequence[str], position: LogPosition, limit: int) -> list[LogRecord]:
        conn = self._conn()
        found: list[tuple[str, list[tuple[int, int, bytes]]]] = []
        for topic in topics:
            start = position.get(partition_key(topic, 0), 0)
            rows = conn.execute(
                'SELECT seq, "offset", value FROM log_records '
                'WHERE topic = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
                (topic, start, limit),
            ).fetchall()
            if rows:
                found.append((topic, rows))
        if len(found) == 1:  # one source: its records are in the order they were appended
            topic, rows = found[0]
            return [LogRecord(topic, 0, offset, value) for _, offset, value in rows]
        # Interleave sources in the order they were appended; each topic stays a prefix.
        merged = sorted((seq, topic, offset, value) for topic, rows in found
                        for seq, offset, value in rows)
        return [LogRecord(topic, 0, offset, value) for _, topic, offset, value in merged[:limit]]

    def end_position(self, topics: Sequence[str]) -> LogPosition | None:
        marks = ",".join("?" * len(topics))
        rows = self._conn().execute(
            f'SELECT topic, MAX("offset") + 1 FROM log_records WHERE topic IN ({marks})'
            " GROUP BY topic", tuple(topics)).fetchall()
        return {partition_key(topic, 0): int(end) for topic, end in rows}

    def findings(self, topics: Sequence[str], position: LogPosition) -> list[LogFinding]:
        ends = self.end_position(topics) or {}
        keys = {partition_key(topic, 0) for topic in topics}
        return [LogFinding(key, f"the saved position {at} of {key} is past the log's end "
                           f"{ends.get(key, 0)}: the log lost records this reader had read (a "
                           "log file replaced by an older or empty one); read again from its "
                           "start", rewind_to=0)
                for key, at in sorted(position.items())
                if key in keys and at > ends.get(key, 0)]

    def ping(self) -> None:
        try:
            self._conn().execute("SELECT 1 FROM log_records LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise InfrastructureUnavailable(f"embedded log at {self.url}: {exc}") from None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
