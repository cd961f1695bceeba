"""The provider directory as open data: Open Referral UK / HSDS 3.0 JSON and a spreadsheet CSV.

Pure functions over directory records (read from the directory projection); no I/O. Every id in
the HSDS export is derived (uuid5) from our own ids, so two exports of the same state are
identical and a consumer can follow a record from one export to the next.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from services.provider_registry.taxonomy import Taxonomy, Term
from shared.contracts.provider_registry import OrganisationType, ProviderStatus, StandingKind

HSDS_VERSION = "3.0"
# Namespace of every id this export derives; changing it changes every id consumers hold.
HSDS_NAMESPACE = uuid5(NAMESPACE_URL, "https://council-integrator/directory/hsds")
COUNTRY = "GB"


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


# --------------------------------------------------------------------------- vocabulary

ORGANISATION_TYPE_LABELS: dict[str, str] = {
    OrganisationType.PUBLIC_BODY: "public body",
    OrganisationType.VCSE: "voluntary, community or social enterprise (VCSE)",
    OrganisationType.SME: "small or medium-sized enterprise (SME)",
    OrganisationType.LARGE_PRIVATE: "large private company",
    OrganisationType.COMMUNITY_GROUP: "community group",
    OrganisationType.PARTNERSHIP: "partnership, consortium or joint venture",
}

# HSDS service status for each lifecycle status of the provider delivering it.
SERVICE_STATUS: dict[str, str] = {
    ProviderStatus.APPROVED: "active",
    ProviderStatus.INCUBATING: "active",
    ProviderStatus.SUSPENDED: "temporarily closed",
    ProviderStatus.APPLIED: "inactive",
    ProviderStatus.UNDER_REVIEW: "inactive",
    ProviderStatus.EXITED: "defunct",
    ProviderStatus.REJECTED: "defunct",
}


@dataclass(frozen=True)
class IdentifierScheme:
    scheme: str  # org-id.guide list code
    type: str


def identifier_scheme(kind: str, value: str) -> IdentifierScheme:
    """The org-id.guide scheme of one of our registered identifiers."""
    if kind == "companies_house":
        return IdentifierScheme("GB-COH", "company")
    if kind == "charity_number":
        if value.upper().startswith("SC"):  # Office of the Scottish Charity Regulator
            return IdentifierScheme("GB-SC", "charity")
        return IdentifierScheme("GB-CHC", "charity")  # Charity Commission, England and Wales
    if kind == "ukprn":
        return IdentifierScheme("GB-UKPRN", "learning provider")
    return IdentifierScheme(kind, kind)


# --------------------------------------------------------------------------- HSDS ids


def _id(*parts: object) -> str:
    return str(uuid5(HSDS_NAMESPACE, "/".join(str(p) for p in parts)))


def organization_id(provider_id: UUID) -> str:
    # The provider id is already a stable UUID: keeping it lets people go from the export
    # straight to GET /providers/{id}.
    return str(provider_id)


def service_id(provider_id: UUID, capability_id: str) -> str:
    return _id("service", provider_id, capability_id)


def location_id(provider_id: UUID) -> str:
    return _id("location", provider_id)


def taxonomy_id(tax: Taxonomy) -> str:
    return _id("taxonomy", tax.id)


def taxonomy_term_id(tax: Taxonomy, code: str) -> str:
    return _id("taxonomy_term", tax.id, code)


# --------------------------------------------------------------------------- HSDS export


def _text(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """HSDS fields are typed strings: absent values are left out, never written as null."""
    if value is not None and value != [] and value != "":
        target[key] = value


def organization_of(provider: DirectoryProvider) -> dict[str, Any]:
    org_id = organization_id(provider.provider_id)
    kind = ORGANISATION_TYPE_LABELS.get(provider.organisation_type, provider.organisation_type)
    org: dict[str, Any] = {
        "id": org_id,
        "name": provider.name,
        # HSDS requires a description; say what we know rather than leave it blank.
        "description": _text(provider.description)
        or f"{provider.name}: {kind} in the council's provider network.",
    }
    _put(org, "email", _text(provider.contact.get("email")))
    _put(org, "website", _text(provider.website))
    _put(org, "legal_status", kind)
    _put(org, "organization_identifiers", [
        {
            "id": _id("organization_identifier", provider.provider_id, kind_),
            "organization_id": org_id,
            "identifier_scheme": scheme.scheme,
            "identifier_type": scheme.type,
            "identifier": value,
        }
        for kind_, value in sorted(provider.identifiers.items())
        if value
        for scheme in [identifier_scheme(kind_, value)]
    ])
    phone = _text(provider.contact.get("phone"))
    if phone:
        org["phones"] = [{
            "id": _id("phone", provider.provider_id),
            "organization_id": org_id,
            "number": phone,
            "type": "voice",
        }]
    return org


def location_of(provider: DirectoryProvider) -> dict[str, Any] | None:
    """The provider's address as a physical location; None when it gave no address."""
    address = provider.address
    if not address or not address.get("postcode"):
        return None
    loc_id = location_id(provider.provider_id)
    lines = [line for line in address.get("lines") or [] if line]
    town = _text(address.get("town"))
    postal: dict[str, Any] = {
        "id": _id("address", provider.provider_id),
        "location_id": loc_id,
        "address_1": lines[0] if lines else "",
        "city": town or (lines[-1] if len(lines) > 1 else ""),
        "state_province": "",  # required by HSDS; the registry does not record counties
        "postal_code": address["postcode"],
        "country": COUNTRY,
        "address_type": "physical",
    }
    _put(postal, "address_2", ", ".join(lines[1:]))
    return {
        "id": loc_id,
        "location_type": "physical",
        "organization_id": organization_id(provider.provider_id),
        "name": provider.name,
        "addresses": [postal],
    }


def _accreditation_text(provider: DirectoryProvider) -> str | None:
    held = [
        a for a in sorted(provider.accreditations, key=lambda a: (a.name, a.accreditation_id))
        if a.kind in (StandingKind.ACCREDITATION, StandingKind.CERTIFICATION)
    ]
    parts = []
    for a in held:
        text = a.name + (f" ({a.issuer})" if a.issuer else "")
        parts.append(text + (f", valid until {a.expires_on}" if a.expires_on else ""))
    return "; ".join(parts) or None


def service_of(
    provider: DirectoryProvider, capability: Capability, tax: Taxonomy
) -> dict[str, Any]:
    term: Term | None = tax.terms.get(capability.category)
    category_name = term.name if term else capability.category
    svc_id = service_id(provider.provider_id, capability.capability_id)
    service: dict[str, Any] = {
        "id": svc_id,
        "organization_id": organization_id(provider.provider_id),
        "name": f"{category_name} — {provider.name}",
        "description": _text(capability.description)
        or (term.description if term else f"{category_name} from {provider.name}."),
        "status": SERVICE_STATUS.get(provider.status, "inactive"),
    }
    _put(service, "email", _text(provider.contact.get("email")))
    _put(service, "url", _text(provider.website))
    _put(service, "accreditations", _accreditation_text(provider))
    areas = list(capability.areas) or list(provider.areas_served)
    _put(service, "service_areas", [
        {"id": _id("service_area", svc_id, area), "service_id": svc_id, "name": area}
        for area in dict.fromkeys(areas)  # distinct, in the order given
    ])
    return service


def taxonomy_records(tax: Taxonomy) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The shipped service taxonomy as an HSDS taxonomy and its terms (parents first)."""
    tax_id = taxonomy_id(tax)
    taxonomy_rows = [{"id": tax_id, "name": tax.name, "description": tax.description,
                      "version": tax.version}]
    terms = []
    for code in sorted(tax.terms, key=lambda c: (_depth(tax, c), c)):
        term = tax.terms[code]
        row: dict[str, Any] = {
            "id": taxonomy_term_id(tax, code),
            "code": code,
            "name": term.name,
            "description": term.description,
            "taxonomy": tax.name,
            "taxonomy_id": tax_id,
            "language": "en",
        }
        if term.parent:
            row["parent_id"] = taxonomy_term_id(tax, term.parent)
        terms.append(row)
    return taxonomy_rows, terms


def _depth(tax: Taxonomy, code: str) -> int:
    depth, parent = 0, tax.terms[code].parent
    while parent is not None and parent in tax.terms and depth < len(tax.terms):
        depth, parent = depth + 1, tax.terms[parent].parent
    return depth


def hsds_export(providers: Iterable[DirectoryProvider], tax: Taxonomy) -> dict[str, Any]:
    """The directory as HSDS 3.0 collections, each sorted, every reference resolvable."""
    organizations: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    locations: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    attributes: list[dict[str, Any]] = []
    for provider in providers:
        organizations.append(organization_of(provider))
        location = location_of(provider)
        if location is not None:
            locations.append(location)
        for capability in sorted(provider.capabilities,
                                 key=lambda c: (c.category, c.capability_id)):
            service = service_of(provider, capability, tax)
            services.append(service)
            if location is not None:
                links.append({
                    "id": _id("service_at_location", service["id"], location["id"]),
                    "service_id": service["id"],
                    "location_id": location["id"],
                })
            if tax.has(capability.category):
                term_id = taxonomy_term_id(tax, capability.category)
                attributes.append({
                    "id": _id("attribute", service["id"], term_id),
                    "link_id": service["id"],
                    "link_type": "category",
                    "link_entity": "service",
                    "taxonomy_term_id": term_id,
                })
    taxonomies, terms = taxonomy_records(tax)
    return {
        "organization": organizations,
        "service": services,
        "location": locations,
        "service_at_location": links,
        "taxonomy": taxonomies,
        "taxonomy_term": terms,
        "attribute": attributes,
    }


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
