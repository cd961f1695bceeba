"""Reading the outcomes service's event store in bulk, beneath the event-sourcing library: the
first event of many delivery reports in one query, on SQLite and PostgreSQL alike, so a batch of
thousands of reports is checked against what is stored without a read per report."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier


def first_events(recorder: Any, ids: list[UUID]) -> list[StoredEvent]:
    """The first stored event of each of these aggregates, read straight from the event
    store's table: one query for many ids (the library reads one aggregate at a time)."""
    if isinstance(recorder, SQLiteAggregateRecorder):
        marks = ",".join("?" * len(ids))
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT originator_id, topic, state FROM {recorder.events_table_name}"
                f" WHERE originator_version = 1 AND originator_id IN ({marks})",
                [i.hex for i in ids],
            )
            return [StoredEvent(originator_id=UUID(row["originator_id"]),
                                originator_version=1, topic=row["topic"],
                                state=row["state"]) for row in cursor.fetchall()]
    if isinstance(recorder, PostgresAggregateRecorder):
        statement = SQL(
            "SELECT originator_id, topic, state FROM {schema}.{table}"
            " WHERE originator_id = ANY(%s) AND originator_version = 1"
        ).format(schema=Identifier(recorder.datastore.schema),
                 table=Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, (ids,))
            return [StoredEvent(originator_id=UUID(str(row["originator_id"])),
                                originator_version=1, topic=row["topic"],
                                state=bytes(row["state"])) for row in cursor.fetchall()]
    # Any other recorder: one select per report.
    return [event for i in ids for event in recorder.select_events(i, limit=1)]
