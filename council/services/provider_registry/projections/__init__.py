"""Read models of the provider registry, built only from its events on the shared log.

The directory projection keeps every provider with its details, capabilities and standing, plus
what search needs: a lowercased `search_text`, a casefolded sort name and one row per area a
provider serves. JSON values are stored as TEXT so the same SQL runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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
    ProviderApproved,
    ProviderCapabilityAdded,
    ProviderCapabilityRemoved,
    ProviderCredentialsRotated,
    ProviderDetails,
    ProviderDetailsUpdated,
    ProviderExited,
    ProviderGraduated,
    ProviderRegistered,
    ProviderReinstated,
    ProviderRejected,
    ProviderReviewStarted,
    ProviderStatus,
    ProviderSuspended,
    QualityRatingRecorded,
)
from council.kernel.envelope import EventEnvelope
from council.kernel.taxonomy import taxonomy
from council.platform.projection import Projection, ensure_layout
from council.platform.sql import Database, Tx
from council.services.provider_registry.projections.directory import (
    Accreditation,
    Capability,
    DirectoryProvider,
    QualityRating,
)

S = ProviderStatus

# Lifecycle events and the status each leaves the provider in.
STATUS_EVENTS: dict[str, tuple[type[BaseModel], ProviderStatus]] = {
    "ProviderReviewStarted": (ProviderReviewStarted, S.UNDER_REVIEW),
    "ProviderApproved": (ProviderApproved, S.APPROVED),
    "ProviderRejected": (ProviderRejected, S.REJECTED),
    "ProviderSuspended": (ProviderSuspended, S.SUSPENDED),
    "ProviderReinstated": (ProviderReinstated, S.APPROVED),
    "ProviderExited": (ProviderExited, S.EXITED),
    "IncubationStarted": (IncubationStarted, S.INCUBATING),
    "ProviderGraduated": (ProviderGraduated, S.APPROVED),
}

# Registry events whose content the directory shows (lifecycle ones are in STATUS_EVENTS).
CONTENT_EVENTS = frozenset({
    "ProviderRegistered", "ProviderDetailsUpdated", "ProviderCapabilityAdded",
    "ProviderCapabilityRemoved", "AccreditationAdded", "AccreditationRemoved",
    "QualityRatingRecorded",
})

# Registry events the directory deliberately does not show (they still move `updated_at`):
IGNORED_EVENTS: dict[str, type[BaseModel]] = {
    # Declared interests inform the council's decisions; they are not directory information.
    "ConflictOfInterestDeclared": ConflictOfInterestDeclared,
    # Progress inside an incubation plan; the status (incubating) already shows in the directory.
    "IncubationMilestoneMet": IncubationMilestoneMet,
    # Credential bookkeeping: security, not directory information.
    "ProviderCredentialsRotated": ProviderCredentialsRotated,
}

_TABLES = (
    "CREATE TABLE IF NOT EXISTS directory_providers ("
    " provider_id TEXT PRIMARY KEY, name TEXT NOT NULL, sort_name TEXT NOT NULL,"
    " organisation_type TEXT NOT NULL, status TEXT NOT NULL, description TEXT, website TEXT,"
    " identifiers TEXT NOT NULL, contact TEXT NOT NULL, address TEXT, postcode TEXT, town TEXT,"
    " areas_served TEXT NOT NULL, sme_band TEXT, sme_size TEXT, members TEXT NOT NULL,"
    " registered_at TEXT NOT NULL, updated_at TEXT NOT NULL, status_changed_at TEXT NOT NULL,"
    " search_text TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS directory_providers_order"
    " ON directory_providers (sort_name, provider_id)",
    "CREATE TABLE IF NOT EXISTS directory_capabilities ("
    " provider_id TEXT NOT NULL, capability_id TEXT NOT NULL, category TEXT NOT NULL,"
    " description TEXT, areas TEXT NOT NULL, capacity TEXT,"
    " PRIMARY KEY (provider_id, capability_id))",
    "CREATE INDEX IF NOT EXISTS directory_capabilities_category"
    " ON directory_capabilities (category)",
    # Every area a provider serves (its own and its capabilities'), casefolded, for filtering.
    "CREATE TABLE IF NOT EXISTS directory_areas ("
    " area_key TEXT NOT NULL, provider_id TEXT NOT NULL, PRIMARY KEY (area_key, provider_id))",
    "CREATE TABLE IF NOT EXISTS directory_accreditations ("
    " provider_id TEXT NOT NULL, accreditation_id TEXT NOT NULL, kind TEXT NOT NULL,"
    " name TEXT NOT NULL, issuer TEXT, reference TEXT, valid_from TEXT, expires_on TEXT,"
    " cover_gbp BIGINT, PRIMARY KEY (provider_id, accreditation_id))",
    "CREATE TABLE IF NOT EXISTS directory_quality_ratings ("
    " provider_id TEXT NOT NULL, rating_id TEXT NOT NULL, scheme TEXT NOT NULL,"
    " rating TEXT NOT NULL, rated_on TEXT NOT NULL, reference TEXT,"
    " PRIMARY KEY (provider_id, rating_id))",
)
TABLE_NAMES = (
    "directory_providers", "directory_capabilities", "directory_areas",
    "directory_accreditations", "directory_quality_ratings",
)
# Bump when the tables above change shape: the read model is then dropped and replayed.
# 2: directory_providers.sme_size, the headcount and turnover an SME gave (the CSV export
# carries them so that it imports back unchanged).
SCHEMA_VERSION = 2
MARKER = "directory_schema"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def area_key(area: str) -> str:
    """How areas are compared: case-insensitive, surrounding and repeated spaces ignored."""
    return " ".join(area.split()).casefold()


def sort_key(name: str) -> str:
    return name.casefold()


class DirectoryProjection(Projection):
    """The registry's provider directory: search, HSDS and CSV exports read from here."""

    name = "provider_registry.directory"
    sources = (REGISTRY,)

    def create(self, tx: Tx) -> None:
        ensure_layout(tx, self, MARKER, SCHEMA_VERSION)
        for ddl in _TABLES:
            tx.execute(ddl)

    def drop(self, tx: Tx) -> None:
        for table in (*TABLE_NAMES, MARKER):
            tx.execute(f"DROP TABLE IF EXISTS {table}")

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        if event.source != REGISTRY:
            return
        at = event.occurred_at.isoformat()
        kind = event.type
        if kind == "ProviderRegistered":
            self._registered(tx, ProviderRegistered.model_validate(event.data), at)
        elif kind in STATUS_EVENTS:
            model, status = STATUS_EVENTS[kind]
            provider_id = model.model_validate(event.data).provider_id  # type: ignore[attr-defined]
            tx.execute(
                "UPDATE directory_providers SET status = ?, status_changed_at = ?, updated_at = ?"
                " WHERE provider_id = ?",
                (status.value, at, at, str(provider_id)),
            )
        elif kind == "ProviderDetailsUpdated":
            self._details_updated(tx, event.data, at)
        elif kind == "ProviderCapabilityAdded":
            added = ProviderCapabilityAdded.model_validate(event.data)
            tx.execute(
                "INSERT INTO directory_capabilities (provider_id, capability_id, category,"
                " description, areas, capacity) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (provider_id, capability_id) DO UPDATE SET"
                " category = excluded.category, description = excluded.description,"
                " areas = excluded.areas, capacity = excluded.capacity",
                (str(added.provider_id), added.capability_id, added.category, added.description,
                 _json(added.areas),
                 _json(added.capacity.model_dump(mode="json")) if added.capacity else None),
            )
            self._refresh(tx, added.provider_id, at)
        elif kind == "ProviderCapabilityRemoved":
            removed = ProviderCapabilityRemoved.model_validate(event.data)
            tx.execute(
                "DELETE FROM directory_capabilities WHERE provider_id = ? AND capability_id = ?",
                (str(removed.provider_id), removed.capability_id),
            )
            self._refresh(tx, removed.provider_id, at)
        elif kind == "AccreditationAdded":
            acc = AccreditationAdded.model_validate(event.data)
            tx.execute(
                "INSERT INTO directory_accreditations (provider_id, accreditation_id, kind, name,"
                " issuer, reference, valid_from, expires_on, cover_gbp)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (provider_id, accreditation_id) DO UPDATE SET kind = excluded.kind,"
                " name = excluded.name, issuer = excluded.issuer,"
                " reference = excluded.reference, valid_from = excluded.valid_from,"
                " expires_on = excluded.expires_on, cover_gbp = excluded.cover_gbp",
                (str(acc.provider_id), acc.accreditation_id, acc.kind.value, acc.name, acc.issuer,
                 acc.reference, acc.valid_from.isoformat() if acc.valid_from else None,
                 acc.expires_on.isoformat() if acc.expires_on else None, acc.cover_gbp),
            )
            self._touch(tx, acc.provider_id, at)
        elif kind == "AccreditationRemoved":
            gone = AccreditationRemoved.model_validate(event.data)
            tx.execute(
                "DELETE FROM directory_accreditations"
                " WHERE provider_id = ? AND accreditation_id = ?",
                (str(gone.provider_id), gone.accreditation_id),
            )
            self._touch(tx, gone.provider_id, at)
        elif kind == "QualityRatingRecorded":
            rated = QualityRatingRecorded.model_validate(event.data)
            tx.execute(
                "INSERT INTO directory_quality_ratings (provider_id, rating_id, scheme, rating,"
                " rated_on, reference) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (provider_id, rating_id) DO UPDATE SET scheme = excluded.scheme,"
                " rating = excluded.rating, rated_on = excluded.rated_on,"
                " reference = excluded.reference",
                (str(rated.provider_id), rated.rating_id, rated.scheme, rated.rating,
                 rated.rated_on.isoformat(), rated.reference),
            )
            self._touch(tx, rated.provider_id, at)
        elif kind in IGNORED_EVENTS:
            # Validated all the same: a malformed event should fail loudly, not pass unseen.
            ignored = IGNORED_EVENTS[kind].model_validate(event.data)
            self._touch(tx, ignored.provider_id, at)  # type: ignore[attr-defined]
        # Any other type (a newer contract than this code) is passed over untouched.

    # ------------------------------------------------------------------ helpers

    def _registered(self, tx: Tx, data: ProviderRegistered, at: str) -> None:
        address = data.address.model_dump(mode="json") if data.address else None
        identifiers = data.identifiers.model_dump(mode="json") if data.identifiers else {}
        contact = data.contact.model_dump(mode="json") if data.contact else {}
        tx.execute(
            "INSERT INTO directory_providers (provider_id, name, sort_name, organisation_type,"
            " status, description, website, identifiers, contact, address, postcode, town,"
            " areas_served, sme_band, sme_size, members, registered_at, updated_at,"
            " status_changed_at, search_text)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')"
            " ON CONFLICT (provider_id) DO NOTHING",
            (str(data.provider_id), data.name, sort_key(data.name),
             data.organisation_type.value, S.APPLIED.value, data.description, data.website,
             _json(_present(identifiers)), _json(_present(contact)),
             _json(address) if address else None, address and address.get("postcode"),
             address and address.get("town"), _json(data.areas_served),
             data.sme_size.band.value if data.sme_size else None,
             _json(_size(data.sme_size.model_dump(mode="json"))) if data.sme_size else None,
             _json([str(m) for m in data.members]), at, at, at),
        )
        self._refresh(tx, data.provider_id, at)

    def _details_updated(self, tx: Tx, raw: dict[str, Any], at: str) -> None:
        data = ProviderDetailsUpdated.model_validate(raw)
        given: dict[str, Any] = raw.get("changes") or {}
        changes = data.changes.model_dump(mode="json")
        # The contract says only changed fields are present, but the registry's envelopes carry
        # every field, unset ones as null. While that holds, a null cannot tell "cleared" from
        # "not given", so it is read as "not given"; once only changed fields are sent, a null
        # that is present means cleared.
        every_field_sent = set(given) >= set(ProviderDetails.model_fields)
        fields = [
            k for k in ProviderDetails.model_fields
            if k in given and (changes[k] is not None or not every_field_sent)
        ]
        if not fields:
            self._touch(tx, data.provider_id, at)
            return
        columns: dict[str, Any] = {}
        for key in fields:
            value = changes[key]
            if key == "name":
                if value:
                    columns.update(name=value, sort_name=sort_key(value))
            elif key in ("description", "website"):
                columns[key] = value
            elif key in ("identifiers", "contact"):
                columns[key] = _json(_present(value or {}))
            elif key == "address":
                columns.update(address=_json(value) if value else None,
                               postcode=value.get("postcode") if value else None,
                               town=value.get("town") if value else None)
            elif key in ("areas_served", "members"):
                columns[key] = _json(value or [])
            elif key == "sme_size":
                columns["sme_band"] = value.get("band") if value else None
                columns["sme_size"] = _json(_size(value)) if value else None
        if columns:
            assignments = ", ".join(f"{column} = ?" for column in columns)
            tx.execute(
                f"UPDATE directory_providers SET {assignments} WHERE provider_id = ?",
                (*columns.values(), str(data.provider_id)),
            )
        self._refresh(tx, data.provider_id, at)

    def _touch(self, tx: Tx, provider_id: UUID, at: str) -> None:
        tx.execute(
            "UPDATE directory_providers SET updated_at = ? WHERE provider_id = ?",
            (at, str(provider_id)),
        )

    def _refresh(self, tx: Tx, provider_id: UUID, at: str) -> None:
        """Recompute what search reads (search text, areas) after the provider changed."""
        pid = str(provider_id)
        rows = tx.execute(
            "SELECT name, description, town, postcode, areas_served, identifiers"
            " FROM directory_providers WHERE provider_id = ?",
            (pid,),
        )
        if not rows:
            return  # events of a provider registered before this log began: nothing to show
        name, description, town, postcode, areas_json, identifiers_json = rows[0]
        capabilities = tx.execute(
            "SELECT category, areas FROM directory_capabilities WHERE provider_id = ?"
            " ORDER BY category, capability_id",
            (pid,),
        )
        served: list[str] = json.loads(areas_json)
        capability_areas = [a for _, areas in capabilities for a in json.loads(areas)]
        terms = taxonomy().terms
        pieces = [name, description, town, postcode]
        if postcode:
            pieces.append(postcode.replace(" ", ""))
        pieces += served + capability_areas
        pieces += [terms[c].name if c in terms else c for c, _ in capabilities]
        pieces += list(json.loads(identifiers_json).values())
        search_text = "\n".join(p for p in pieces if p).lower()
        tx.execute(
            "UPDATE directory_providers SET search_text = ?, updated_at = ? WHERE provider_id = ?",
            (search_text, at, pid),
        )
        tx.execute("DELETE FROM directory_areas WHERE provider_id = ?", (pid,))
        keys = sorted({area_key(a) for a in served + capability_areas if area_key(a)})
        tx.executemany(
            "INSERT INTO directory_areas (area_key, provider_id) VALUES (?, ?)",
            [(key, pid) for key in keys],
        )


def _size(size: dict[str, Any]) -> dict[str, Any]:
    return {"headcount": size["headcount"], "turnover_gbp": size["turnover_gbp"]}


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class SearchFilters:
    categories: frozenset[str] | None = None  # any of these (a category and those below it)
    area: str | None = None
    organisation_type: str | None = None
    statuses: frozenset[str] | None = None
    text: str | None = None


_PROVIDER_COLUMNS = (
    "provider_id, name, organisation_type, status, registered_at, updated_at,"
    " status_changed_at, description, website, identifiers, contact, address, areas_served,"
    " sme_band, members, sme_size"
)


def _order(db: Database) -> str:
    # Code-point order in both databases, whatever PostgreSQL's locale would say.
    collate = ' COLLATE "C"' if db.dialect == "postgres" else ""
    return f" ORDER BY sort_name{collate}, name{collate}, provider_id"


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(filters: SearchFilters) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.categories is not None:
        codes = sorted(filters.categories)
        clauses.append(
            "provider_id IN (SELECT provider_id FROM directory_capabilities"
            f" WHERE category IN ({', '.join('?' * len(codes))}))"
        )
        params += codes
    if filters.area is not None:
        clauses.append("provider_id IN (SELECT provider_id FROM directory_areas"
                       " WHERE area_key = ?)")
        params.append(area_key(filters.area))
    if filters.organisation_type is not None:
        clauses.append("organisation_type = ?")
        params.append(filters.organisation_type)
    if filters.statuses:
        statuses = sorted(filters.statuses)
        clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
        params += statuses
    if filters.text:
        clauses.append("search_text LIKE ? ESCAPE '\\'")
        params.append(_like_pattern(filters.text.lower()))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _provider(row: Sequence[Any], capabilities: Sequence[Capability] = (),
              accreditations: Sequence[Accreditation] = (),
              ratings: Sequence[QualityRating] = ()) -> DirectoryProvider:
    (pid, name, kind, status, registered_at, updated_at, status_changed_at, description,
     website, identifiers, contact, address, areas, sme_band, members, sme_size) = row
    return DirectoryProvider(
        provider_id=UUID(pid), name=name, organisation_type=kind, status=status,
        registered_at=registered_at, updated_at=updated_at, status_changed_at=status_changed_at,
        description=description, website=website, identifiers=json.loads(identifiers),
        contact=json.loads(contact), address=json.loads(address) if address else None,
        areas_served=tuple(json.loads(areas)), sme_band=sme_band,
        sme_size=json.loads(sme_size) if sme_size else None,
        members=tuple(json.loads(members)), capabilities=tuple(capabilities),
        accreditations=tuple(accreditations), quality_ratings=tuple(ratings),
    )


def _chunks(ids: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def _capabilities_of(tx: Tx, ids: Sequence[str]) -> dict[str, list[Capability]]:
    found: dict[str, list[Capability]] = {}
    for chunk in _chunks(ids):
        rows = tx.execute(
            "SELECT provider_id, capability_id, category, description, areas, capacity"
            f" FROM directory_capabilities WHERE provider_id IN ({', '.join('?' * len(chunk))})"
            " ORDER BY provider_id, category, capability_id",
            tuple(chunk),
        )
        for pid, cid, category, description, areas, capacity in rows:
            found.setdefault(pid, []).append(Capability(
                cid, category, description, tuple(json.loads(areas)),
                json.loads(capacity) if capacity else None,
            ))
    return found


def _standing_of(
    tx: Tx, ids: Sequence[str]
) -> tuple[dict[str, list[Accreditation]], dict[str, list[QualityRating]]]:
    accreditations: dict[str, list[Accreditation]] = {}
    ratings: dict[str, list[QualityRating]] = {}
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        for row in tx.execute(
            "SELECT provider_id, accreditation_id, kind, name, issuer, reference, valid_from,"
            f" expires_on, cover_gbp FROM directory_accreditations WHERE provider_id IN ({marks})"
            " ORDER BY provider_id, accreditation_id",
            tuple(chunk),
        ):
            pid, aid, kind, name, issuer, reference, valid_from, expires_on, cover = row
            accreditations.setdefault(pid, []).append(Accreditation(
                aid, kind, name, issuer, reference, valid_from, expires_on,
                int(cover) if cover is not None else None,
            ))
        for row in tx.execute(
            "SELECT provider_id, rating_id, scheme, rating, rated_on, reference"
            f" FROM directory_quality_ratings WHERE provider_id IN ({marks})"
            " ORDER BY provider_id, rated_on, rating_id",
            tuple(chunk),
        ):
            pid, rid, scheme, rating, rated_on, reference = row
            ratings.setdefault(pid, []).append(
                QualityRating(rid, scheme, rating, rated_on, reference)
            )
    return accreditations, ratings


def search_providers(
    db: Database, filters: SearchFilters, limit: int = 100, offset: int = 0
) -> tuple[int, list[DirectoryProvider]]:
    """How many providers match, and one page of them (with their capabilities)."""
    where, params = _where(filters)
    with db.transaction() as tx:
        total = int(tx.execute(f"SELECT COUNT(*) FROM directory_providers{where}", params)[0][0])
        rows = tx.execute(
            f"SELECT {_PROVIDER_COLUMNS} FROM directory_providers{where}{_order(db)}"
            " LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        capabilities = _capabilities_of(tx, [r[0] for r in rows])
    return total, [_provider(r, capabilities.get(r[0], ())) for r in rows]


def directory_providers(
    db: Database, statuses: Sequence[str] | None = None
) -> list[DirectoryProvider]:
    """Every provider (in the given statuses) with capabilities and standing, in name order."""
    where, params = _where(SearchFilters(statuses=frozenset(statuses) if statuses else None))
    with db.transaction() as tx:
        rows = tx.execute(
            f"SELECT {_PROVIDER_COLUMNS} FROM directory_providers{where}{_order(db)}", params
        )
        ids = [r[0] for r in rows]
        capabilities = _capabilities_of(tx, ids)
        accreditations, ratings = _standing_of(tx, ids)
    return [
        _provider(r, capabilities.get(r[0], ()), accreditations.get(r[0], ()),
                  ratings.get(r[0], ()))
        for r in rows
    ]


def directory_snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the directory's tables, sorted: to compare a live build with a rebuild."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    with db.transaction() as tx:
        for table in TABLE_NAMES:
            snapshot[table] = sorted(
                (tuple(row) for row in tx.execute(f"SELECT * FROM {table}")), key=repr
            )
    return snapshot


def projections() -> Sequence[Projection]:
    return (DirectoryProjection(),)
