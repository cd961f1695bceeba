"""The network projection: every provider in the council's network, from the shared log.

Each provider's row follows its onboarding lifecycle (status, and when, why and by whom the
latest decision was taken), its details (name, organisation type, SME size band, areas served,
partnership members) and its capabilities (service category, areas, capacity), so the market
view can count active providers per service category and organisation type.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from council.kernel.context import command_context
from council.kernel.contracts.provider_registry import SOURCE as REGISTRY
from council.kernel.contracts.provider_registry import (
    Capacity,
    Identifiers,
    IncubationMilestoneMet,
    IncubationStarted,
    LifecycleDecision,
    OrganisationType,
    ProviderApproved,
    ProviderCapabilityAdded,
    ProviderCapabilityRemoved,
    ProviderDetailsUpdated,
    ProviderExited,
    ProviderGraduated,
    ProviderRegistered,
    ProviderReinstated,
    ProviderRejected,
    ProviderReviewStarted,
    ProviderStatus,
    ProviderSuspended,
)
from council.kernel.envelope import EventEnvelope
from council.platform.projection import TableProjection, event_context
from council.platform.sql import Database, Row, Tx, insert_rows
from council.services.integrator.domain import (
    ACTIVE,
    IncubationProgress,
    NetworkCapability,
    NetworkProvider,
    NetworkSummary,
)

S = ProviderStatus
# The registry's lifecycle decisions: the event, its data's model, and the status it leaves.
_DECISIONS: dict[str, tuple[type[LifecycleDecision], ProviderStatus]] = {
    "ProviderReviewStarted": (ProviderReviewStarted, S.UNDER_REVIEW),
    "ProviderApproved": (ProviderApproved, S.APPROVED),
    "ProviderRejected": (ProviderRejected, S.REJECTED),
    "ProviderSuspended": (ProviderSuspended, S.SUSPENDED),
    "ProviderReinstated": (ProviderReinstated, S.APPROVED),
    "ProviderExited": (ProviderExited, S.EXITED),
    "ProviderGraduated": (ProviderGraduated, S.APPROVED),
}

# Registry events that do not change the network view, deliberately: a provider's standing
# (accreditations, quality ratings, declared interests) is the standing projection's
# (projections/standing.py, for the web pages), and credentials belong to the identity store.
# Any other type this projection does not know (a newer event, another version) is passed over
# without harm.
IGNORED = frozenset({
    "AccreditationAdded",
    "AccreditationRemoved",
    "QualityRatingRecorded",
    "ConflictOfInterestDeclared",
    "ProviderCredentialsRotated",
})

# Bump when the tables below change shape: the read model is then dropped and replayed from the
# log when the service starts (the log is the source of truth; this is only a view of it).
# 3: network_providers.identifiers, the provider's registration numbers (Companies House,
# charity, UKPRN), which the transparency registers publish.
SCHEMA_VERSION = 3

_TABLES = (
    "CREATE TABLE IF NOT EXISTS network_providers ("
    " provider_id TEXT PRIMARY KEY, name TEXT NOT NULL, organisation_type TEXT NOT NULL,"
    " status TEXT NOT NULL, status_changed_at TEXT NOT NULL, status_reason TEXT,"
    " status_changed_by TEXT, sme_size_band TEXT, areas_served TEXT NOT NULL,"
    " members TEXT NOT NULL, milestones_total INTEGER, milestones_met INTEGER,"
    " registered_at TEXT NOT NULL, updated_at TEXT NOT NULL, identifiers TEXT)",
    "CREATE INDEX IF NOT EXISTS network_providers_status ON network_providers (status)",
    "CREATE TABLE IF NOT EXISTS network_capabilities ("
    " provider_id TEXT NOT NULL, capability_id TEXT NOT NULL, category TEXT NOT NULL,"
    " description TEXT, areas TEXT NOT NULL, capacity_amount BIGINT, capacity_unit TEXT,"
    " PRIMARY KEY (provider_id, capability_id))",
    "CREATE INDEX IF NOT EXISTS network_capabilities_category"
    " ON network_capabilities (category)",
    # Registrations per organisation type, kept by increments: a double-applied event would
    # show here (the crash tests rely on it).
    "CREATE TABLE IF NOT EXISTS network_counts ("
    " organisation_type TEXT PRIMARY KEY, providers INTEGER NOT NULL)",
)
_DROPPED = ("network_providers", "network_capabilities", "network_counts", "network_schema")


class NetworkProjection(TableProjection):
    name = "integrator.network"
    sources = (REGISTRY,)

    marker = "network_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    # Registrations held back while a batch is applied (None: apply at once).
    _held: list[EventEnvelope] | None = None

    def apply_all(self, tx: Tx, events: Sequence[EventEnvelope]) -> None:
        """Events in log order, each through `apply`, but each run of registrations written
        in two statements (the providers' rows, then the counts per organisation type)
        instead of two per registration. The same rows as one at a time: within a run each
        registration inserts its own provider (a key of its own, nothing else touches it),
        counts only add up, and any other event first writes the run before it."""
        self._held = []
        try:
            for event in events:
                if event.type == "ProviderRegistered":  # held: no context needed to hold it
                    self.apply(tx, event)
                    continue
                with command_context(event_context(event)):
                    self.apply(tx, event)
            self._write_held(tx)
        finally:
            self._held = None

    def _write_held(self, tx: Tx) -> None:
        if self._held:
            self._registered(tx, self._held)
            self._held = []

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        if event.type == "ProviderRegistered" and self._held is not None:
            self._held.append(event)
            return
        self._write_held(tx)  # later events may be about the providers registered before
        data = event.data
        decision = _DECISIONS.get(event.type)
        if decision is not None:
            model, status = decision
            decided = model.model_validate(data)
            self._decided(tx, event, decided.provider_id, status, decided.reason)
            return
        match event.type:
            case "ProviderRegistered":
                self._registered(tx, [event])
            case "IncubationStarted":
                self._incubating(tx, event, IncubationStarted.model_validate(data))
            case "IncubationMilestoneMet":
                met = IncubationMilestoneMet.model_validate(data)
                self._update(tx, event, met.provider_id,
                             milestones_met="COALESCE(milestones_met, 0) + 1")
            case "ProviderDetailsUpdated":
                self._details_updated(tx, event, ProviderDetailsUpdated.model_validate(data))
            case "ProviderCapabilityAdded":
                self._capability_added(tx, event, ProviderCapabilityAdded.model_validate(data))
            case "ProviderCapabilityRemoved":
                removed = ProviderCapabilityRemoved.model_validate(data)
                tx.execute(
                    "DELETE FROM network_capabilities WHERE provider_id = ? AND capability_id = ?",
                    (str(removed.provider_id), removed.capability_id),
                )
                self._update(tx, event, removed.provider_id)
            case _:
                pass  # IGNORED above, or a type this projection does not know

    # ------------------------------------------------------------------ appliers

    def _registered(self, tx: Tx, events: Sequence[EventEnvelope]) -> None:
        """Registrations (ProviderRegistered events), in two statements."""
        if not events:
            return
        rows: list[tuple[str | None, ...]] = []
        counts: Counter[str] = Counter()
        for event in events:
            data = ProviderRegistered.model_validate(event.data)
            at = event.occurred_at.isoformat()
            rows.append((
                str(data.provider_id), data.name, data.organisation_type.value,
                S.APPLIED.value, at, event.actor,
                data.sme_size.band.value if data.sme_size else None,
                json.dumps(data.areas_served), json.dumps([str(m) for m in data.members]), at,
                at, _identifiers(data.identifiers)))
            counts[data.organisation_type.value] += 1
        insert_rows(
            tx, "INSERT INTO network_providers (provider_id, name, organisation_type, status,"
            " status_changed_at, status_changed_by, sme_size_band, areas_served, members,"
            " registered_at, updated_at, identifiers) VALUES", rows,
            "ON CONFLICT (provider_id) DO NOTHING")
        insert_rows(  # a row per organisation type
            tx, "INSERT INTO network_counts (organisation_type, providers) VALUES",
            sorted(counts.items()),
            "ON CONFLICT (organisation_type)"
            " DO UPDATE SET providers = network_counts.providers + excluded.providers")

    def _decided(self, tx: Tx, event: EventEnvelope, provider_id: UUID, status: ProviderStatus,
                 reason: str) -> None:
        tx.execute(
            "UPDATE network_providers SET status = ?, status_changed_at = ?, status_reason = ?,"
            " status_changed_by = ?, updated_at = ? WHERE provider_id = ?",
            (status.value, event.occurred_at.isoformat(), reason, event.actor,
             event.occurred_at.isoformat(), str(provider_id)),
        )

    def _incubating(self, tx: Tx, event: EventEnvelope, data: IncubationStarted) -> None:
        self._decided(tx, event, data.provider_id, S.INCUBATING, data.reason)
        tx.execute(
            "UPDATE network_providers SET milestones_total = ?, milestones_met = 0"
            " WHERE provider_id = ?",
            (len(data.milestones), str(data.provider_id)),
        )

    def _details_updated(self, tx: Tx, event: EventEnvelope, data: ProviderDetailsUpdated) -> None:
        # On the log every field of `changes` is present, null where unchanged, so a null is
        # read as "unchanged" (the registry refuses to clear a name or an SME's size anyway).
        changes = data.changes
        values: dict[str, Any] = {}
        if changes.name is not None:
            values["name"] = changes.name
        if changes.areas_served is not None:
            values["areas_served"] = json.dumps(changes.areas_served)
        if changes.sme_size is not None:
            values["sme_size_band"] = changes.sme_size.band.value
        if changes.members is not None:
            values["members"] = json.dumps([str(m) for m in changes.members])
        if changes.identifiers is not None:
            values["identifiers"] = _identifiers(changes.identifiers)
        if values:
            self._update(tx, event, data.provider_id, values)

    def _capability_added(
        self, tx: Tx, event: EventEnvelope, data: ProviderCapabilityAdded
    ) -> None:
        tx.execute(
            "INSERT INTO network_capabilities (provider_id, capability_id, category,"
            " description, areas, capacity_amount, capacity_unit) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (provider_id, capability_id) DO NOTHING",
            (str(data.provider_id), data.capability_id, data.category, data.description,
             json.dumps(data.areas), data.capacity.amount if data.capacity else None,
             data.capacity.unit if data.capacity else None),
        )
        self._update(tx, event, data.provider_id)

    @staticmethod
    def _update(tx: Tx, event: EventEnvelope, provider_id: UUID,
                values: dict[str, Any] | None = None, **expressions: str) -> None:
        """Set columns to `values` (parameters) and `expressions` (SQL), and updated_at."""
        values = values or {}
        sets = [f"{column} = ?" for column in values]
        sets += [f"{column} = {sql}" for column, sql in expressions.items()]
        sets.append("updated_at = ?")
        tx.execute(
            f"UPDATE network_providers SET {', '.join(sets)} WHERE provider_id = ?",
            (*values.values(), event.occurred_at.isoformat(), str(provider_id)),
        )


def _identifiers(identifiers: Identifiers | None) -> str:
    given = identifiers.model_dump(exclude_none=True) if identifiers else {}
    return json.dumps(given, sort_keys=True)


# ---------------------------------------------------------------------- queries


def provider_identifiers(tx: Tx, provider_ids: list[str]) -> dict[str, dict[str, str]]:
    """Each provider's registration numbers by scheme (companies_house, charity_number,
    ukprn), as the registry last published them; {} for one that gave none."""
    found: dict[str, dict[str, str]] = {}
    for i in range(0, len(provider_ids), 500):
        chunk = provider_ids[i:i + 500]
        for provider_id, identifiers in tx.execute(
            "SELECT provider_id, identifiers FROM network_providers WHERE provider_id IN"
            f" ({','.join('?' * len(chunk))})", chunk,
        ):
            found[str(provider_id)] = json.loads(identifiers) if identifiers else {}
    return found

_COLUMNS = (
    "provider_id, name, organisation_type, status, status_changed_at, status_reason,"
    " status_changed_by, sme_size_band, areas_served, members, milestones_total, milestones_met,"
    " registered_at, updated_at"
)


def _provider(row: Row, capabilities: list[NetworkCapability]) -> NetworkProvider:
    (provider_id, name, kind, status, changed_at, reason, changed_by, band, areas, members,
     total, met, registered_at, updated_at) = row
    return NetworkProvider(
        provider_id=provider_id, name=name, organisation_type=kind, status=status,
        status_changed_at=datetime.fromisoformat(changed_at), status_reason=reason,
        status_changed_by=changed_by, sme_size_band=band, areas_served=json.loads(areas),
        members=json.loads(members), capabilities=capabilities,
        incubation=(IncubationProgress(milestones_total=total, milestones_met=met or 0)
                    if total is not None else None),
        registered_at=datetime.fromisoformat(registered_at),
        updated_at=datetime.fromisoformat(updated_at),
    )


def _capabilities(tx: Tx, provider_ids: list[str]) -> dict[str, list[NetworkCapability]]:
    found: dict[str, list[NetworkCapability]] = {p: [] for p in provider_ids}
    for i in range(0, len(provider_ids), 500):
        chunk = provider_ids[i:i + 500]
        rows = tx.execute(
            "SELECT provider_id, capability_id, category, description, areas, capacity_amount,"
            f" capacity_unit FROM network_capabilities WHERE provider_id IN"
            f" ({','.join('?' * len(chunk))}) ORDER BY provider_id, category, capability_id",
            chunk,
        )
        for provider_id, capability_id, category, description, areas, amount, unit in rows:
            found[str(provider_id)].append(NetworkCapability(
                capability_id=capability_id, category=category, description=description,
                areas=json.loads(areas),
                capacity=Capacity(amount=amount, unit=unit) if unit is not None else None,
            ))
    return found


def list_providers(
    db: Database,
    limit: int = 1000,
    offset: int = 0,
    *,
    status: ProviderStatus | None = None,
    organisation_type: OrganisationType | None = None,
    category: str | None = None,
) -> list[NetworkProvider]:
    """Providers in the network, by name; filters combine (all must hold)."""
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status.value)
    if organisation_type is not None:
        where.append("organisation_type = ?")
        params.append(organisation_type.value)
    if category is not None:
        where.append(
            "provider_id IN (SELECT provider_id FROM network_capabilities WHERE category = ?)")
        params.append(category)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM network_providers{clause}"
            " ORDER BY name, provider_id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        capabilities = _capabilities(tx, [str(r[0]) for r in rows])
    return [_provider(r, capabilities[str(r[0])]) for r in rows]


def get_provider(db: Database, provider_id: UUID) -> NetworkProvider | None:
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM network_providers WHERE provider_id = ?", (str(provider_id),)
        )
        if not rows:
            return None
        capabilities = _capabilities(tx, [str(provider_id)])
    return _provider(rows[0], capabilities[str(provider_id)])


def provider_counts(db: Database) -> dict[str, int]:
    """Registrations per organisation type (whatever became of the providers since)."""
    with db.reading() as tx:
        return _counts(tx)


def _counts(tx: Tx) -> dict[str, int]:
    rows = tx.execute("SELECT organisation_type, providers FROM network_counts")
    return {str(kind): int(n) for kind, n in rows}


def active_providers(db: Database) -> dict[str, dict[str, int]]:
    """Active (approved) providers per service category, by organisation type."""
    with db.reading() as tx:
        return _active(tx)


def _active(tx: Tx) -> dict[str, dict[str, int]]:
    rows = tx.execute(
        "SELECT c.category, p.organisation_type, COUNT(DISTINCT p.provider_id)"
        " FROM network_capabilities c JOIN network_providers p ON p.provider_id = c.provider_id"
        " WHERE p.status = ? GROUP BY c.category, p.organisation_type",
        (ACTIVE.value,),
    )
    found: dict[str, dict[str, int]] = {}
    for category, kind, n in sorted(rows):
        found.setdefault(str(category), {})[str(kind)] = int(n)
    return found


def network_summary(db: Database) -> NetworkSummary:
    """The network in figures, all read at one moment."""
    with db.reading() as tx:
        by_type = _counts(tx)
        by_status = {
            str(status): int(n) for status, n in tx.execute(
                "SELECT status, COUNT(*) FROM network_providers GROUP BY status")
        }
        active = _active(tx)
    return NetworkSummary(
        providers_by_organisation_type=by_type,
        providers_by_status=by_status,
        active_providers_by_category={c: sum(kinds.values()) for c, kinds in active.items()},
        active_providers_by_category_and_organisation_type=active,
    )
