"""Event-store recorders that write many events per statement, for every service's store.

The library's recorders are correct but slow for big saves: SQLite runs one INSERT per event,
PostgreSQL quotes an array of composite values as text in Python. These keep the library's
semantics (one transaction per save, notification ids in the order the events were given and
committed in that order) and change only how the rows travel. `council.platform.eventstore`
configures them for every CouncilApplication.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier


class BatchInsertSQLiteRecorder(SQLiteApplicationRecorder):
    """The SQLite event store, inserting a save's events a few hundred to a statement.

    The library's recorder runs one INSERT per event, and Python's sqlite3 lets go of the
    interpreter lock around each: while any other thread of the process is busy (the relay and
    the projections are, as soon as a delivery batch's first chunk is committed), taking the
    lock back waits out the interpreter's switch interval each time, once per event of a
    big save. Rows keep the order given, so notification ids
    (rowids) follow it as before."""

    ROWS_PER_STATEMENT = 250  # 4 parameters a row: far below SQLite's limit of 32,766

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any
    ) -> Sequence[int] | None:
        notification_ids: list[int] = []
        for start in range(0, len(stored_events), self.ROWS_PER_STATEMENT):
            part = stored_events[start:start + self.ROWS_PER_STATEMENT]
            params: list[Any] = []
            for stored in part:
                originator_id = stored.originator_id
                params.extend((originator_id.hex if isinstance(originator_id, UUID)
                               else originator_id, stored.originator_version, stored.topic,
                               stored.state))
            c.execute(f"INSERT INTO {self.events_table_name} VALUES "
                      f"{','.join(['(?,?,?,?)'] * len(part))} RETURNING rowid", params)
            # Rows are inserted in the order given, each with the next rowid.
            notification_ids.extend(sorted(int(row[0]) for row in c.fetchall()))
        return notification_ids


class ArrayInsertPostgresRecorder(PostgresApplicationRecorder):
    """The PostgreSQL event store, inserting a save's events with one statement of four arrays
    sent in binary, instead of an array of composite values the driver quotes as text in
    Python, value by value. As in the library, the
    table is locked first so notification ids are committed in order, and the ids come back in
    the order the events were given."""

    def __init__(self, datastore: PostgresDatastore, *,
                 events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._insert_arrays = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(schema=Identifier(datastore.schema), table=Identifier(events_table_name),
                 id_type=Identifier(datastore.originator_id_type))

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(self._insert_arrays, (
            [s.originator_id for s in stored_events],
            [s.originator_version for s in stored_events],
            [s.topic for s in stored_events],
            [s.state for s in stored_events],
        ))
