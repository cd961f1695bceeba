"""The log of audit reads: who read the audit trail, what they asked for, within which scope,
when, and how much they were given; from the integrator's AuditReadStarted / AuditReadFinished
events on the shared log."""

from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from council.kernel.contracts.integrator import SOURCE as INTEGRATOR
from council.kernel.contracts.integrator import AuditEndpoint, AuditReadFinished, AuditReadStarted
from council.kernel.envelope import EventEnvelope
from council.platform.projection import TableProjection
from council.platform.sql import Database, Row, Tx

SCHEMA_VERSION = 1

_TABLES = (
    "CREATE TABLE IF NOT EXISTS audit_reads ("
    " read_id TEXT PRIMARY KEY, token_id TEXT NOT NULL, role TEXT NOT NULL,"
    " label TEXT NOT NULL, endpoint TEXT NOT NULL, query TEXT NOT NULL, scope TEXT NOT NULL,"
    " correlation_id TEXT, started_at TEXT NOT NULL, finished_at TEXT, returned BIGINT,"
    " completed BOOLEAN)",
    "CREATE INDEX IF NOT EXISTS audit_reads_token ON audit_reads (token_id, started_at)",
)


class AuditReadView(BaseModel):
    read_id: UUID
    token_id: str
    role: str
    label: str
    endpoint: AuditEndpoint
    query: dict[str, str] = Field(description="the filters applied, within the token's scope")
    scope: dict[str, str]
    correlation_id: str | None
    started_at: datetime
    finished_at: datetime | None = Field(description="none while (or if) it never finished")
    returned: int | None = Field(description="events streamed, providers in the state, or "
                                             "reads listed")
    completed: bool | None = Field(description="whether the reader received all of it")


class AuditReadsProjection(TableProjection):
    name = "integrator.audit_reads"
    sources = (INTEGRATOR,)

    marker = "audit_reads_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = ("audit_reads", "audit_reads_schema")

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        if event.type == "AuditReadStarted":
            started = AuditReadStarted.model_validate(event.data)
            tx.execute(
                "INSERT INTO audit_reads (read_id, token_id, role, label, endpoint, query, scope,"
                " correlation_id, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (str(started.read_id), started.token_id, started.role, started.label,
                 started.endpoint.value, json.dumps(started.query, sort_keys=True),
                 json.dumps(started.scope, sort_keys=True), event.correlation_id,
                 event.occurred_at.isoformat()),
            )
        elif event.type == "AuditReadFinished":
            finished = AuditReadFinished.model_validate(event.data)
            tx.execute(
                "UPDATE audit_reads SET finished_at = ?, returned = ?, completed = ?"
                " WHERE read_id = ?",
                (event.occurred_at.isoformat(), finished.returned, finished.completed,
                 str(finished.read_id)),
            )


def _view(row: Row) -> AuditReadView:
    (read_id, token_id, role, label, endpoint, query, scope, correlation_id, started_at,
     finished_at, returned, completed) = row
    return AuditReadView(
        read_id=read_id, token_id=token_id, role=role, label=label, endpoint=endpoint,
        query=json.loads(query), scope=json.loads(scope), correlation_id=correlation_id,
        started_at=started_at, finished_at=finished_at,
        returned=None if returned is None else int(returned),
        completed=None if completed is None else bool(completed),
    )


def list_reads(db: Database, *, token_id: str | None = None, limit: int = 100,
               offset: int = 0) -> list[AuditReadView]:
    """Audit reads, newest first; only one token's with `token_id`."""
    where, params = ("WHERE token_id = ?", [token_id]) if token_id is not None else ("", [])
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT read_id, token_id, role, label, endpoint, query, scope, correlation_id,"
            " started_at, finished_at, returned, completed FROM audit_reads"
            f" {where} ORDER BY started_at DESC, read_id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
    return [_view(row) for row in rows]
