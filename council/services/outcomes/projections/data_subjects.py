"""Service users named in delivery reports, by data subject, and the erasures made, projected
from the outcomes service's DeliveryReported and DataSubjectErased events.

Rules the read model follows:

- It holds each report's sealed records as the event carries them (subject id, key id, nonce,
  ciphertext): never plaintext. Personal data is opened only when read, by a reader who may see
  it, with the key from the vault (council.services.outcomes.adapters.personal_data); once a
  subject's key is erased the rows stay and simply no longer open. So nothing here is purged on
  erasure, and a rebuild from the log gives the same rows.
- Indexed by subject: what the council holds about one person (a subject access request) is
  one query, by subject id.
- Erasures are listed as recorded: which subject, under which legal basis, why, who, when.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from council.kernel.contracts.outcomes import SOURCE, DataSubjectErased, LegalBasis
from council.kernel.envelope import EventEnvelope
from council.platform.projection import TableProjection
from council.platform.sql import Database, Tx

# Bump when the tables below change shape: the read model is then dropped and replayed.
SCHEMA_VERSION = 1

_TABLES = (
    "CREATE TABLE IF NOT EXISTS oc_service_users ("
    " delivery_id TEXT NOT NULL, ordinal INTEGER NOT NULL, subject_id TEXT NOT NULL,"
    " agreement_id TEXT NOT NULL, provider_id TEXT NOT NULL, sealed TEXT NOT NULL,"
    " reported_at TEXT NOT NULL, PRIMARY KEY (delivery_id, ordinal))",
    "CREATE INDEX IF NOT EXISTS oc_service_users_subject ON oc_service_users (subject_id)",
    "CREATE TABLE IF NOT EXISTS oc_erasures ("
    " erasure_id TEXT PRIMARY KEY, subject_id TEXT NOT NULL, legal_basis TEXT NOT NULL,"
    " reason TEXT NOT NULL, requested_on TEXT, erased_at TEXT NOT NULL, erased_by TEXT)",
)
_DROPPED = ("oc_service_users", "oc_erasures", "oc_data_subjects_schema")
_CHUNK = 500  # ids per IN (...) list


class SubjectRecord(BaseModel):
    """One report naming the subject, with the record sealed in it."""

    delivery_id: UUID
    agreement_id: UUID
    provider_id: UUID
    reported_at: datetime
    sealed: dict[str, Any]


class ErasureRow(BaseModel):
    erasure_id: UUID
    subject_id: UUID
    legal_basis: LegalBasis
    reason: str
    requested_on: date | None
    erased_at: datetime
    erased_by: str | None


class DataSubjectsProjection(TableProjection):
    name = "outcomes.data_subjects"
    sources = (SOURCE,)
    types = frozenset({"DeliveryReported", "DataSubjectErased"})

    marker = "oc_data_subjects_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        if event.type == "DeliveryReported":
            named = event.data.get("service_users")
            if not named:  # nearly every report: nothing to do
                return
            data = event.data
            tx.executemany(
                "INSERT INTO oc_service_users (delivery_id, ordinal, subject_id, agreement_id,"
                " provider_id, sealed, reported_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (delivery_id, ordinal) DO NOTHING",
                [(data["delivery_id"], i, record["subject_id"], data["agreement_id"],
                  data["provider_id"], json.dumps(record, sort_keys=True),
                  event.occurred_at.isoformat())
                 for i, record in enumerate(named)],
            )
        elif event.type == "DataSubjectErased":
            erased = DataSubjectErased.model_validate(event.data)
            tx.execute(
                "INSERT INTO oc_erasures (erasure_id, subject_id, legal_basis, reason,"
                " requested_on, erased_at, erased_by) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (erasure_id) DO NOTHING",
                (str(erased.erasure_id), str(erased.subject_id), erased.legal_basis.value,
                 erased.reason, erased.requested_on.isoformat() if erased.requested_on else None,
                 event.occurred_at.isoformat(), event.actor),
            )


# ---------------------------------------------------------------------- queries


def sealed_records(db: Database, delivery_ids: Sequence[UUID]) -> dict[UUID, list[dict[str, Any]]]:
    """The sealed service user records of these reports (only those that name anyone)."""
    found: dict[UUID, list[dict[str, Any]]] = {}
    ids = sorted({str(i) for i in delivery_ids})
    with db.reading() as tx:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            rows = tx.execute(
                "SELECT delivery_id, sealed FROM oc_service_users WHERE delivery_id IN"
                f" ({','.join('?' * len(chunk))}) ORDER BY delivery_id, ordinal", chunk)
            for delivery_id, sealed in rows:
                found.setdefault(UUID(delivery_id), []).append(json.loads(sealed))
    return found


def records_of(db: Database, subject_id: UUID) -> list[SubjectRecord]:
    """Every report naming this subject, oldest first."""
    with db.reading() as tx:
        rows = tx.execute(
            "SELECT delivery_id, agreement_id, provider_id, reported_at, sealed"
            " FROM oc_service_users WHERE subject_id = ? ORDER BY reported_at, delivery_id",
            (str(subject_id),))
    return [SubjectRecord(delivery_id=d, agreement_id=a, provider_id=p, reported_at=r,
                          sealed=json.loads(s)) for d, a, p, r, s in rows]


def list_erasures(db: Database, subject_id: UUID | None = None) -> list[ErasureRow]:
    """Erasures, newest first (or the one of a subject)."""
    where, params = ("WHERE subject_id = ?", (str(subject_id),)) if subject_id else ("", ())
    with db.reading() as tx:
        rows = tx.execute(
            "SELECT erasure_id, subject_id, legal_basis, reason, requested_on, erased_at,"
            f" erased_by FROM oc_erasures {where} ORDER BY erased_at DESC, erasure_id", params)
    return [ErasureRow(erasure_id=e, subject_id=s, legal_basis=b, reason=r, requested_on=q,
                       erased_at=t, erased_by=w) for e, s, b, r, q, t, w in rows]
