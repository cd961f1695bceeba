"""The provider directory's records, and the directory as a spreadsheet CSV (the Open Referral
UK form is in council.services.provider_registry.oruk).

Pure functions over directory records (read from the directory projection); no I/O.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from council.kernel.taxonomy import Taxonomy

# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Capability:
    capability_id: str
    category: str
    description: str | None = None
    areas: tuple[str, ...] = ()
    capacity: dict[str, Any] | None = None


@dataclass(frozen=True)
class Accreditation:
    accreditation_id: str
    kind: str
    name: str
    issuer: str | None = None
    reference: str | None = None
    valid_from: str | None = None
    expires_on: str | None = None
    cover_gbp: int | None = None


@dataclass(frozen=True)
class QualityRating:
    rating_id: str
    scheme: str
    rating: str
    rated_on: str
    reference: str | None = None


@dataclass(frozen=True)
class DirectoryProvider:
    """One provider as the directory projection holds it."""

    provider_id: UUID
    name: str
    organisation_type: str
    status: str
    registered_at: str
    updated_at: str
    status_changed_at: str
    description: str | None = None
    website: str | None = None
    identifiers: dict[str, str] = field(default_factory=dict)
    contact: dict[str, Any] = field(default_factory=dict)
    address: dict[str, Any] | None = None
    areas_served: tuple[str, ...] = ()
    sme_band: str | None = None
    members: tuple[str, ...] = ()
    capabilities: tuple[Capability, ...] = ()
    accreditations: tuple[Accreditation, ...] = ()
    quality_ratings: tuple[QualityRating, ...] = ()

    @property
    def postcode(self) -> str | None:
        return (self.address or {}).get("postcode")

    @property
    def town(self) -> str | None:
        return (self.address or {}).get("town")

    @property
    def categories(self) -> list[str]:
        return sorted({c.category for c in self.capabilities})


# --------------------------------------------------------------------------- CSV

CSV_COLUMNS: tuple[str, ...] = (
    "provider_id", "name", "organisation_type", "status", "status_changed_at", "description",
    "website", "email", "phone", "companies_house", "charity_number", "ukprn", "address",
    "town", "postcode", "areas_served", "sme_band", "members", "categories",
    "category_names", "capability_areas", "accreditations", "earliest_expiry",
    "quality_ratings", "registered_at", "updated_at",
)
# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text, defused: anything a spreadsheet would run as a formula gets a '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _latest_ratings(ratings: Sequence[QualityRating]) -> str:
    latest: dict[str, QualityRating] = {}
    for r in sorted(ratings, key=lambda r: (r.rated_on, r.rating_id)):
        latest[r.scheme] = r
    return "; ".join(f"{s}: {r.rating} ({r.rated_on})" for s, r in sorted(latest.items()))


def csv_row(provider: DirectoryProvider, tax: Taxonomy) -> dict[str, str]:
    address = provider.address or {}
    standing = sorted(provider.accreditations, key=lambda a: (a.kind, a.name, a.accreditation_id))
    expiries = [a.expires_on for a in standing if a.expires_on]
    categories = provider.categories
    capability_areas = dict.fromkeys(
        area for c in sorted(provider.capabilities, key=lambda c: c.category) for area in c.areas
    )
    raw: dict[str, object] = {
        "provider_id": provider.provider_id,
        "name": provider.name,
        "organisation_type": provider.organisation_type,
        "status": provider.status,
        "status_changed_at": provider.status_changed_at,
        "description": provider.description,
        "website": provider.website,
        "email": provider.contact.get("email"),
        "phone": provider.contact.get("phone"),
        "companies_house": provider.identifiers.get("companies_house"),
        "charity_number": provider.identifiers.get("charity_number"),
        "ukprn": provider.identifiers.get("ukprn"),
        "address": ", ".join(address.get("lines") or []),
        "town": address.get("town"),
        "postcode": address.get("postcode"),
        "areas_served": "; ".join(provider.areas_served),
        "sme_band": provider.sme_band,
        "members": "; ".join(provider.members),
        "categories": "; ".join(categories),
        "category_names": "; ".join(
            tax.terms[c].name if c in tax.terms else c for c in categories
        ),
        "capability_areas": "; ".join(capability_areas),
        "accreditations": "; ".join(
            f"{a.kind}: {a.name}" + (f" (expires {a.expires_on})" if a.expires_on else "")
            for a in standing
        ),
        "earliest_expiry": min(expiries) if expiries else None,
        "quality_ratings": _latest_ratings(provider.quality_ratings),
        "registered_at": provider.registered_at,
        "updated_at": provider.updated_at,
    }
    return {column: safe_cell(raw[column]) for column in CSV_COLUMNS}


def providers_csv(providers: Iterable[DirectoryProvider], tax: Taxonomy) -> str:
    """One row per provider, RFC 4180 quoting (CRLF line ends), formula cells defused."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    for provider in providers:
        writer.writerow(csv_row(provider, tax))
    return out.getvalue()
