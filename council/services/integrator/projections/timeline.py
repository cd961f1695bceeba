"""The timeline projection: every event of every service on the shared log, kept for people to
read (the council's audit timeline, a provider's history), with what each is about.

An event is "about" its own stream and every id its data names (a party's provider id, an
agreement id, a measure id...), found by walking the data rather than by knowing each type, so
events added later are indexed without a change here. Nothing is summarised: the page shows the
data as it was published.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from council.kernel.contracts.integrator import SOURCE as INTEGRATOR
from council.kernel.contracts.outcomes import SOURCE as OUTCOMES
from council.kernel.contracts.provider_registry import SOURCE as REGISTRY
from council.kernel.envelope import EventEnvelope
from council.platform.projection import TableProjection
from council.platform.sql import Database, Tx

SCHEMA_VERSION = 1

_TABLES = (
    "CREATE TABLE IF NOT EXISTS tl_events ("
    " event_id TEXT PRIMARY KEY, source TEXT NOT NULL, type TEXT NOT NULL,"
    " stream_id TEXT NOT NULL, stream_position BIGINT NOT NULL, occurred_at TEXT NOT NULL,"
    " recorded_at TEXT NOT NULL, actor TEXT, organisation TEXT, correlation_id TEXT,"
    " data TEXT NOT NULL, search_text TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS tl_events_occurred ON tl_events (occurred_at)",
    "CREATE TABLE IF NOT EXISTS tl_subjects ("
    " subject_id TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (subject_id, event_id))",
)
_DROPPED = ("tl_events", "tl_subjects", "tl_schema")


def subjects_of(event: EventEnvelope) -> set[str]:
    """Its stream and every UUID its data names under a key ending in _id or _ids (or
    `members`): what the event is about."""
    found = {event.stream_id}

    def walk(value: Any, key: str = "") -> Iterator[str]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, str(k))
        elif isinstance(value, list):
            for item in value:
                yield from walk(item, key)
        elif isinstance(value, str) and key.endswith(("_id", "_ids", "members")):
            try:
                yield str(UUID(value))
            except ValueError:
                return

    found.update(walk(event.data))
    return found


class TimelineProjection(TableProjection):
    name = "integrator.timeline"
    sources = (REGISTRY, INTEGRATOR, OUTCOMES)

    marker = "tl_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        data = json.dumps(event.data, sort_keys=True, default=str)
        event_id = str(event.event_id)
        tx.execute(
            "INSERT INTO tl_events (event_id, source, type, stream_id, stream_position,"
            " occurred_at, recorded_at, actor, organisation, correlation_id, data, search_text)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            (event_id, event.source, event.type, event.stream_id, event.stream_position,
             event.occurred_at.isoformat(), event.recorded_at.isoformat(), event.actor,
             event.organisation, event.correlation_id, data,
             " ".join([event.type, event.actor or "", data]).casefold()),
        )
        tx.executemany(
            "INSERT INTO tl_subjects (subject_id, event_id) VALUES (?, ?)"
            " ON CONFLICT (subject_id, event_id) DO NOTHING",
            [(subject, event_id) for subject in sorted(subjects_of(event))],
        )


# ---------------------------------------------------------------------- queries


class TimelineEvent(BaseModel):
    event_id: str
    source: str
    type: str
    stream_id: str
    stream_position: int
    occurred_at: datetime
    recorded_at: datetime
    actor: str | None
    organisation: str | None
    correlation_id: str | None
    data: dict[str, Any]


class TimelinePage(BaseModel):
    events: list[TimelineEvent]
    total: int = 0  # matching the filters, across every page


def _like(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def timeline(
    db: Database,
    *,
    source: str | None = None,
    types: Sequence[str] = (),
    actor: str | None = None,
    subjects: Sequence[str] = (),
    q: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
    hidden_types: Sequence[str] = (),
    within: Sequence[tuple[Sequence[str], str | None]] = (),
) -> TimelinePage:
    """Events newest first (by when they happened); filters combine. `q` words must all appear
    in the type, actor or data (any case); `subjects` keeps events about any of those ids.
    `hidden_types` are left out; `within` (a scope: council.services.integrator.domain.access) keeps
    only events that, for every (ids, organisation) given, are about one of the ids or recorded on
    behalf of the organisation (any case)."""
    where: list[str] = []
    params: list[Any] = []
    if source:
        where.append("source = ?")
        params.append(source)
    if types:
        where.append(f"type IN ({','.join('?' * len(types))})")
        params.extend(types)
    if hidden_types:
        where.append(f"type NOT IN ({','.join('?' * len(hidden_types))})")
        params.extend(hidden_types)
    for ids, organisation in within:
        about = [f"event_id IN (SELECT event_id FROM tl_subjects WHERE subject_id IN"
                 f" ({','.join('?' * len(ids))}))"] if ids else []
        params.extend(ids)
        if organisation:
            about.append("LOWER(COALESCE(organisation, '')) = ?")
            params.append(organisation.casefold())
        where.append(f"({' OR '.join(about)})" if about else "1 = 0")
    if actor:
        where.append("LOWER(COALESCE(actor, '')) LIKE ? ESCAPE '\\'")
        params.append(_like(actor))
    if subjects:
        where.append("event_id IN (SELECT event_id FROM tl_subjects WHERE subject_id IN"
                     f" ({','.join('?' * len(subjects))}))")
        params.extend(subjects)
    for word in (q or "").split():
        where.append("search_text LIKE ? ESCAPE '\\'")
        params.append(_like(word))
    if since is not None:
        where.append("occurred_at >= ?")
        params.append(since.isoformat())
    if until is not None:
        where.append("occurred_at <= ?")
        params.append(until.isoformat())
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with db.transaction() as tx:
        ((total,),) = tx.execute(f"SELECT COUNT(*) FROM tl_events{clause}", params)
        rows = tx.execute(
            "SELECT event_id, source, type, stream_id, stream_position, occurred_at,"
            f" recorded_at, actor, organisation, correlation_id, data FROM tl_events{clause}"
            " ORDER BY occurred_at DESC, source, stream_id, stream_position DESC"
            " LIMIT ? OFFSET ?", (*params, limit, offset))
    return TimelinePage(total=int(total), events=[
        TimelineEvent(event_id=e, source=s, type=t, stream_id=sid, stream_position=pos,
                      occurred_at=o, recorded_at=r, actor=a, organisation=org,
                      correlation_id=c, data=json.loads(d))
        for e, s, t, sid, pos, o, r, a, org, c, d in rows
    ])


def event_types(db: Database) -> dict[str, list[str]]:
    """The event types seen on the log, by source."""
    with db.transaction() as tx:
        rows = tx.execute("SELECT DISTINCT source, type FROM tl_events ORDER BY source, type")
    found: dict[str, list[str]] = {}
    for source, kind in rows:
        found.setdefault(str(source), []).append(str(kind))
    return found
