"""The standing projection: what the council's pages show of one provider beyond its place in the
network, from the registry's events on the shared log: its profile (description, website,
contact, address, identifiers), its standing (accreditations, certifications, insurance and
safeguarding checks with their validity; dated quality ratings; declared conflicts of interest)
and its incubation plan with each milestone met or not.

Whether an accreditation has expired depends on the day it is read, so the tables keep dates
and the query flags them against the day asked about, never the day an event was applied.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from council.kernel.contracts.provider_registry import SOURCE as REGISTRY
from council.kernel.contracts.provider_registry import (
    AccreditationAdded,
    AccreditationRemoved,
    ConflictOfInterestDeclared,
    IncubationMilestoneMet,
    IncubationStarted,
    ProviderDetailsUpdated,
    ProviderRegistered,
    QualityRatingRecorded,
)
from council.kernel.envelope import EventEnvelope
from council.platform.projection import TableProjection
from council.platform.sql import Database, Tx

SCHEMA_VERSION = 1
EXPIRES_SOON = timedelta(days=90)  # flagged on the page so a renewal can be chased in time

_PROFILE_FIELDS = ("description", "website", "identifiers", "contact", "address")

_TABLES = (
    "CREATE TABLE IF NOT EXISTS st_profiles ("
    " provider_id TEXT PRIMARY KEY, details TEXT NOT NULL, support_plan TEXT,"
    " milestones TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS st_accreditations ("
    " provider_id TEXT NOT NULL, accreditation_id TEXT NOT NULL, kind TEXT NOT NULL,"
    " name TEXT NOT NULL, issuer TEXT, reference TEXT, valid_from TEXT, expires_on TEXT,"
    " cover_gbp BIGINT, removed_reason TEXT, PRIMARY KEY (provider_id, accreditation_id))",
    "CREATE TABLE IF NOT EXISTS st_ratings ("
    " provider_id TEXT NOT NULL, rating_id TEXT NOT NULL, scheme TEXT NOT NULL,"
    " rating TEXT NOT NULL, rated_on TEXT NOT NULL, reference TEXT,"
    " PRIMARY KEY (provider_id, rating_id))",
    "CREATE TABLE IF NOT EXISTS st_conflicts ("
    " provider_id TEXT NOT NULL, declaration_id TEXT NOT NULL, declared_by TEXT NOT NULL,"
    " interest TEXT NOT NULL, declared_on TEXT NOT NULL,"
    " PRIMARY KEY (provider_id, declaration_id))",
)
_DROPPED = ("st_profiles", "st_accreditations", "st_ratings", "st_conflicts", "st_schema")


class StandingProjection(TableProjection):
    name = "integrator.standing"
    sources = (REGISTRY,)

    marker = "st_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        data = event.data
        match event.type:
            case "ProviderRegistered":
                registered = ProviderRegistered.model_validate(data)
                details = registered.model_dump(mode="json", include=set(_PROFILE_FIELDS))
                tx.execute(
                    "INSERT INTO st_profiles (provider_id, details, milestones)"
                    " VALUES (?, ?, '[]') ON CONFLICT (provider_id) DO NOTHING",
                    (str(registered.provider_id), json.dumps(details)),
                )
            case "ProviderDetailsUpdated":
                self._details(tx, ProviderDetailsUpdated.model_validate(data))
            case "AccreditationAdded":
                added = AccreditationAdded.model_validate(data)
                tx.execute(
                    "INSERT INTO st_accreditations (provider_id, accreditation_id, kind, name,"
                    " issuer, reference, valid_from, expires_on, cover_gbp)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (provider_id, accreditation_id) DO NOTHING",
                    (str(added.provider_id), added.accreditation_id, added.kind.value,
                     added.name, added.issuer, added.reference, _iso(added.valid_from),
                     _iso(added.expires_on), added.cover_gbp),
                )
            case "AccreditationRemoved":
                removed = AccreditationRemoved.model_validate(data)
                tx.execute(
                    "UPDATE st_accreditations SET removed_reason = ?"
                    " WHERE provider_id = ? AND accreditation_id = ?",
                    (removed.reason, str(removed.provider_id), removed.accreditation_id),
                )
            case "QualityRatingRecorded":
                rated = QualityRatingRecorded.model_validate(data)
                tx.execute(
                    "INSERT INTO st_ratings (provider_id, rating_id, scheme, rating, rated_on,"
                    " reference) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (provider_id, rating_id) DO NOTHING",
                    (str(rated.provider_id), rated.rating_id, rated.scheme, rated.rating,
                     rated.rated_on.isoformat(), rated.reference),
                )
            case "ConflictOfInterestDeclared":
                declared = ConflictOfInterestDeclared.model_validate(data)
                tx.execute(
                    "INSERT INTO st_conflicts (provider_id, declaration_id, declared_by,"
                    " interest, declared_on) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (provider_id, declaration_id) DO NOTHING",
                    (str(declared.provider_id), declared.declaration_id, declared.declared_by,
                     declared.interest, declared.declared_on.isoformat()),
                )
            case "IncubationStarted":
                started = IncubationStarted.model_validate(data)
                milestones = [{**m.model_dump(mode="json"), "met": False, "evidence": None}
                              for m in started.milestones]
                tx.execute(
                    "UPDATE st_profiles SET support_plan = ?, milestones = ?"
                    " WHERE provider_id = ?",
                    (started.support_plan, json.dumps(milestones), str(started.provider_id)),
                )
            case "IncubationMilestoneMet":
                self._milestone_met(tx, IncubationMilestoneMet.model_validate(data))
            case _:
                pass  # lifecycle and capabilities are the network projection's

    @staticmethod
    def _details(tx: Tx, updated: ProviderDetailsUpdated) -> None:
        rows = tx.execute("SELECT details FROM st_profiles WHERE provider_id = ?",
                          (str(updated.provider_id),))
        if not rows:
            return
        details: dict[str, Any] = json.loads(rows[0][0])
        # On the log every field of `changes` is present, null where unchanged.
        changes = updated.changes.model_dump(mode="json", include=set(_PROFILE_FIELDS))
        details.update({k: v for k, v in changes.items() if v is not None})
        tx.execute("UPDATE st_profiles SET details = ? WHERE provider_id = ?",
                   (json.dumps(details), str(updated.provider_id)))

    @staticmethod
    def _milestone_met(tx: Tx, met: IncubationMilestoneMet) -> None:
        rows = tx.execute("SELECT milestones FROM st_profiles WHERE provider_id = ?",
                          (str(met.provider_id),))
        if not rows:
            return
        milestones = json.loads(rows[0][0])
        for milestone in milestones:
            if milestone["milestone_id"] == met.milestone_id:
                milestone.update(met=True, evidence=met.evidence)
        tx.execute("UPDATE st_profiles SET milestones = ? WHERE provider_id = ?",
                   (json.dumps(milestones), str(met.provider_id)))


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


# ---------------------------------------------------------------------- views


class Accreditation(BaseModel):
    accreditation_id: str
    kind: str
    name: str
    issuer: str | None
    reference: str | None
    valid_from: date | None
    expires_on: date | None
    cover_gbp: int | None
    expired: bool
    expires_soon: bool
    removed_reason: str | None


class QualityRating(BaseModel):
    scheme: str
    rating: str
    rated_on: date
    reference: str | None


class ConflictOfInterest(BaseModel):
    declared_by: str
    interest: str
    declared_on: date


class IncubationMilestone(BaseModel):
    milestone_id: str
    title: str
    due_on: date | None
    met: bool
    evidence: str | None


class ProviderStanding(BaseModel):
    """A provider's profile and standing, as of `today` for expiry."""

    provider_id: UUID
    details: dict[str, Any]
    accreditations: list[Accreditation]
    quality_ratings: list[QualityRating]
    conflicts_of_interest: list[ConflictOfInterest]
    support_plan: str | None
    milestones: list[IncubationMilestone]


def standing_of(db: Database, provider_id: UUID, today: date) -> ProviderStanding | None:
    key = str(provider_id)
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT details, support_plan, milestones FROM st_profiles WHERE provider_id = ?",
            (key,))
        if not rows:
            return None
        accreditations = tx.execute(
            "SELECT accreditation_id, kind, name, issuer, reference, valid_from, expires_on,"
            " cover_gbp, removed_reason FROM st_accreditations WHERE provider_id = ?"
            " ORDER BY removed_reason IS NOT NULL, expires_on, name", (key,))
        ratings = tx.execute(
            "SELECT scheme, rating, rated_on, reference FROM st_ratings WHERE provider_id = ?"
            " ORDER BY rated_on DESC, scheme", (key,))
        conflicts = tx.execute(
            "SELECT declared_by, interest, declared_on FROM st_conflicts WHERE provider_id = ?"
            " ORDER BY declared_on", (key,))
    details, plan, milestones = rows[0]
    return ProviderStanding(
        provider_id=provider_id, details=json.loads(details), support_plan=plan,
        milestones=json.loads(milestones),
        accreditations=[_accreditation(row, today) for row in accreditations],
        quality_ratings=[QualityRating(scheme=s, rating=r, rated_on=on, reference=ref)
                         for s, r, on, ref in ratings],
        conflicts_of_interest=[ConflictOfInterest(declared_by=by, interest=i, declared_on=on)
                               for by, i, on in conflicts],
    )


def _accreditation(row: tuple[Any, ...], today: date) -> Accreditation:
    (accreditation_id, kind, name, issuer, reference, valid_from, expires_on, cover,
     removed) = row
    ends = date.fromisoformat(expires_on) if expires_on else None
    return Accreditation(
        accreditation_id=accreditation_id, kind=kind, name=name, issuer=issuer,
        reference=reference, valid_from=valid_from, expires_on=ends, cover_gbp=cover,
        expired=ends is not None and ends < today,
        expires_soon=ends is not None and today <= ends <= today + EXPIRES_SOON,
        removed_reason=removed,
    )


def expired_counts(db: Database, today: date) -> dict[str, int]:
    """Per provider, how many of its accreditations (not removed) have expired by `today`."""
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT provider_id, COUNT(*) FROM st_accreditations WHERE removed_reason IS NULL"
            " AND expires_on IS NOT NULL AND expires_on < ? GROUP BY provider_id",
            (today.isoformat(),))
    return {str(p): int(n) for p, n in rows}
