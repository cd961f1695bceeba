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
from council.services.provider_registry.spreadsheet import (
    ADDRESS_LINE_COLUMNS,
    FORMULA_STARTS,
    LIST_SEPARATOR,
    NAMES,
)

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
    sme_size: dict[str, int] | None = None  # headcount and turnover_gbp, as the SME gave them
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

# The spreadsheet's columns, shared with the CSV import (see spreadsheet.py).
CSV_COLUMNS: tuple[str, ...] = NAMES
# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
_FORMULA_STARTS = FORMULA_STARTS


def safe_cell(value: object) -> str:
    """The cell as text, defused: anything a spreadsheet would run as a formula gets a '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _latest_ratings(ratings: Sequence[QualityRating]) -> str:
    latest: dict[str, QualityRating] = {}
    for r in sorted(ratings, key=lambda r: (r.rated_on, r.rating_id)):
        latest[r.scheme] = r
    return "; ".join(f"{s}: {r.rating} ({r.rated_on})" for s, r in sorted(latest.items()))


def _listed(values: Iterable[str]) -> str:
    return f"{LIST_SEPARATOR} ".join(values)


def csv_row(provider: DirectoryProvider, tax: Taxonomy) -> dict[str, str]:
    address = provider.address or {}
    lines = list(address.get("lines") or [])
    size = provider.sme_size or {}
    standing = sorted(provider.accreditations, key=lambda a: (a.kind, a.name, a.accreditation_id))
    expiries = [a.expires_on for a in standing if a.expires_on]
    categories = provider.categories
    capability_areas = dict.fromkeys(
        area for c in sorted(provider.capabilities, key=lambda c: c.category) for area in c.areas
    )
    raw: dict[str, object] = {
        # the provider's own details, as the import reads them
        "name": provider.name,
        "organisation_type": provider.organisation_type,
        "description": provider.description,
        "website": provider.website,
        "companies_house": provider.identifiers.get("companies_house"),
        "charity_number": provider.identifiers.get("charity_number"),
        "ukprn": provider.identifiers.get("ukprn"),
        "contact_name": provider.contact.get("name"),
        "contact_email": provider.contact.get("email"),
        "contact_phone": provider.contact.get("phone"),
        **{column: lines[i] if i < len(lines) else None
           for i, column in enumerate(ADDRESS_LINE_COLUMNS)},
        "town": address.get("town"),
        "county": address.get("county"),
        "postcode": address.get("postcode"),
        "areas_served": _listed(provider.areas_served),
        "headcount": size.get("headcount"),
        "turnover_gbp": size.get("turnover_gbp"),
        "members": _listed(provider.members),
        # the registry's record
        "provider_id": provider.provider_id,
        "status": provider.status,
        "status_changed_at": provider.status_changed_at,
        "sme_band": provider.sme_band,
        "categories": _listed(categories),
        "category_names": _listed(
            tax.terms[c].name if c in tax.terms else c for c in categories
        ),
        "capability_areas": _listed(capability_areas),
        "accreditations": _listed(
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
    """One row per provider, RFC 4180 quoting (CRLF line ends), formula cells defused; the
    columns and their types are spreadsheet.COLUMNS (its data package: providers_package)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, quoting=csv.QUOTE_MINIMAL)
    writer.writeheader()
    for provider in providers:
        writer.writerow(csv_row(provider, tax))
    return out.getvalue()
