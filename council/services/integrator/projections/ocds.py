"""The read model behind the open contracting data: the integrator's events, filed under the
commissioning need (the contracting process) whose streams they are on.

OCDS releases are made from a process's events in business-time order, with release dates
nudged so no two in a process tie (council.services.integrator.projections.ocds_releases); that
order is not the log's, so the releases themselves are not kept here, only the events, each under
its need. A need's releases depend only on the streams of its need and its agreements, whole (the
mapping merges streams in order, so a stream's other events, such as a stage reached, decide when
its next ones come): `/ocds/records/{need_id}` reads one need's events instead of the whole log, and
the whole package reads this table instead of the log.

A need's stream opens with NeedDefined, an agreement's with AgreementDrafted naming its need;
a stream's events arrive in order, so every later event of a stream finds it filed here.
Streams opened otherwise (lessons, schemes of delegation, audit reads) are not kept.
"""

from __future__ import annotations

from uuid import UUID

from council.kernel.contracts.integrator import SOURCE as INTEGRATOR
from council.kernel.envelope import EventEnvelope
from council.platform.projection import TableProjection
from council.platform.sql import Database, Tx

SCHEMA_VERSION = 1

OPENERS = frozenset({"NeedDefined", "AgreementDrafted"})  # each names its need

_TABLES = (
    "CREATE TABLE IF NOT EXISTS ocds_streams ("
    " stream_id TEXT PRIMARY KEY, need_id TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ocds_events ("
    " event_id TEXT PRIMARY KEY, need_id TEXT NOT NULL, envelope TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ocds_events_need ON ocds_events (need_id)",
)


class OcdsProjection(TableProjection):
    name = "integrator.ocds"
    sources = (INTEGRATOR,)

    marker = "ocds_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = ("ocds_events", "ocds_streams", "ocds_schema")

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        if event.type in OPENERS:
            need_id = str(event.data["need_id"])
            tx.execute("INSERT INTO ocds_streams (stream_id, need_id) VALUES (?, ?)"
                       " ON CONFLICT (stream_id) DO NOTHING", (event.stream_id, need_id))
        else:
            rows = tx.execute("SELECT need_id FROM ocds_streams WHERE stream_id = ?",
                              (event.stream_id,))
            if not rows:
                return  # not a need's or an agreement's stream
            need_id = str(rows[0][0])
        tx.execute(
            "INSERT INTO ocds_events (event_id, need_id, envelope) VALUES (?, ?, ?)"
            " ON CONFLICT (event_id) DO NOTHING",
            (str(event.event_id), need_id, event.to_json().decode()))


def ocds_events(db: Database, need_id: UUID | None = None) -> list[EventEnvelope]:
    """The events OCDS publishes, of one need or (None) of every need, in no particular order
    (council.services.integrator.projections.ocds_releases orders them)."""
    with db.reading() as tx:
        if need_id is None:
            rows = tx.execute("SELECT envelope FROM ocds_events")
        else:
            rows = tx.execute("SELECT envelope FROM ocds_events WHERE need_id = ?",
                              (str(need_id),))
    return [EventEnvelope.from_json(envelope) for (envelope,) in rows]

