"""The agreements the outcomes service knows of, projected from the integrator's events on the
shared log: each agreement's status (drafted, active, ended), its parties' provider ids and its
term. Delivery reports are accepted only against an agreement that is active here and names the
reporting provider as a party.

The status follows the integrator's commissioning view: AgreementDrafted makes an agreement
drafted, AgreementActivated active, AgreementEnded ended; AgreementExtended moves its end date.
Each agreement's events come from one stream, so they arrive in order on the shared log.

The term, which bounds what payment by results pays for, runs from its start (starts_on) to its
end: ends_on as extended, or the day it ended if that is earlier. Its payment frequency (how
often results are paid: the rate card's periodicity follows it) comes from the reward terms it
was drafted with; agreements drafted before it was recorded have none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from uuid import UUID

from council.kernel.contracts.integrator import SOURCE as INTEGRATOR
from council.kernel.contracts.integrator import (
    AgreementActivated,
    AgreementDrafted,
    AgreementEnded,
    AgreementExtended,
)
from council.kernel.envelope import EventEnvelope
from council.platform.projection import TableProjection
from council.platform.sql import Database, Tx
from council.services.outcomes.domain.acceptance import AgreementInfo

# Bump when the tables below change shape: the read model is then dropped and replayed.
SCHEMA_VERSION = 2  # 2: each agreement's payment frequency

DRAFTED, ACTIVE, ENDED = "drafted", "active", "ended"

_TABLES = (
    "CREATE TABLE IF NOT EXISTS oc_agreements ("
    " agreement_id TEXT PRIMARY KEY, status TEXT NOT NULL, title TEXT NOT NULL,"
    " starts_on TEXT NOT NULL, ends_on TEXT NOT NULL, activated_on TEXT, ended_on TEXT,"
    " payment_frequency TEXT, updated_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS oc_agreement_parties ("
    " agreement_id TEXT NOT NULL, provider_id TEXT NOT NULL,"
    " PRIMARY KEY (agreement_id, provider_id))",
    "CREATE INDEX IF NOT EXISTS oc_agreement_parties_provider"
    " ON oc_agreement_parties (provider_id)",
)
_DROPPED = ("oc_agreements", "oc_agreement_parties", "oc_agreements_schema")
_CHUNK = 500  # ids per IN (...) list


class AgreementsProjection(TableProjection):
    name = "outcomes.agreements"
    sources = (INTEGRATOR,)
    types = frozenset({"AgreementDrafted", "AgreementActivated", "AgreementExtended",
                       "AgreementEnded"})

    marker = "oc_agreements_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        at = event.occurred_at.isoformat()
        match event.type:
            case "AgreementDrafted":
                drafted = AgreementDrafted.model_validate(event.data)
                agreement_id = str(drafted.agreement_id)
                reward = drafted.reward_terms
                frequency = reward.payment_frequency if reward is not None else None
                tx.execute(
                    "INSERT INTO oc_agreements (agreement_id, status, title, starts_on, ends_on,"
                    " payment_frequency, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (agreement_id) DO NOTHING",
                    (agreement_id, DRAFTED, drafted.title, drafted.starts_on.isoformat(),
                     drafted.ends_on.isoformat(), frequency.value if frequency else None, at),
                )
                tx.executemany(
                    "INSERT INTO oc_agreement_parties (agreement_id, provider_id) VALUES (?, ?)"
                    " ON CONFLICT (agreement_id, provider_id) DO NOTHING",
                    [(agreement_id, str(p.provider_id)) for p in drafted.parties],
                )
            case "AgreementActivated":
                activated = AgreementActivated.model_validate(event.data)
                tx.execute(
                    "UPDATE oc_agreements SET status = ?, activated_on = ?, updated_at = ?"
                    " WHERE agreement_id = ?",
                    (ACTIVE, activated.activated_on.isoformat(), at,
                     str(activated.agreement_id)),
                )
            case "AgreementExtended":
                extended = AgreementExtended.model_validate(event.data)
                tx.execute(
                    "UPDATE oc_agreements SET ends_on = ?, updated_at = ? WHERE agreement_id = ?",
                    (extended.new_end.isoformat(), at, str(extended.agreement_id)),
                )
            case "AgreementEnded":
                ended = AgreementEnded.model_validate(event.data)
                tx.execute(
                    "UPDATE oc_agreements SET status = ?, ended_on = ?, updated_at = ?"
                    " WHERE agreement_id = ?",
                    (ENDED, ended.ended_on.isoformat(), at, str(ended.agreement_id)),
                )


def term_end(ends_on: date, ended_on: date | None) -> date:
    """The last day of an agreement's term: its end date, or the day it ended if earlier."""
    return min(ends_on, ended_on) if ended_on is not None else ends_on


def lookup_agreements(db: Database, agreement_ids: Sequence[UUID]) -> dict[UUID, AgreementInfo]:
    """What the shared log has said so far about these agreements: one query per 500 ids (a
    delivery batch names few agreements, so normally one query per batch). Agreements the log
    has not mentioned (yet) are absent from the answer."""
    wanted = sorted({str(i) for i in agreement_ids})
    facts: dict[str, tuple[str, date, date, str | None]] = {}
    parties: dict[str, set[UUID]] = {}
    if not wanted:
        return {}
    with db.reading() as tx:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = tx.execute(
                "SELECT a.agreement_id, a.status, a.starts_on, a.ends_on, a.ended_on,"
                " a.payment_frequency, p.provider_id FROM oc_agreements a"
                " LEFT JOIN oc_agreement_parties p ON p.agreement_id = a.agreement_id"
                f" WHERE a.agreement_id IN ({marks})",
                chunk,
            )
            for agreement_id, status, starts, ends, ended, frequency, provider_id in rows:
                facts[agreement_id] = (
                    status, date.fromisoformat(starts),
                    term_end(date.fromisoformat(ends),
                             date.fromisoformat(ended) if ended else None), frequency)
                found = parties.setdefault(agreement_id, set())
                if provider_id is not None:
                    found.add(UUID(provider_id))
    return {
        UUID(agreement_id): AgreementInfo(UUID(agreement_id), status,
                                          frozenset(parties[agreement_id]), starts, ends,
                                          frequency)
        for agreement_id, (status, starts, ends, frequency) in facts.items()
    }
