"""The provider directory in Open Referral UK's profile of HSDS 3.0: what the public `/oruk` API
answers and what `GET /directory/hsds` exports.

Pure functions over directory records (read from the directory projection); no I/O. Only the
fields the UK profile declares are written, and only from what the provider told the registry:
nothing is made up to fill a field the profile requires. Where a required field has no value
the object that needs it is left out instead, so every reference still resolves:

- the profile requires every organisation to describe itself: a provider that gave no
  description is left out, with its services, until it gives one (`publishable`);
- an address needs its first line, town, county (`state_province`) and postcode; without one of
  them the provider has no location, and its services no service_at_location.

Every id is derived (uuid5) from our own ids, so two answers about the same state are identical
and a consumer can follow a record from one read to the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from council.kernel.contracts.provider_registry import ProviderStatus, StandingKind
from council.kernel.taxonomy import Taxonomy, Term
from council.services.provider_registry.projections.directory import Capability, DirectoryProvider

HSDS_VERSION = "HSDS-UK-3.0"
PROFILE_URL = "https://openreferraluk.org/developers/specifications"
OPENAPI_URL = "https://openreferraluk.org/specifications/3.0/openapi.json"
# Namespace of every id derived here; changing it changes every id consumers hold.
HSDS_NAMESPACE = uuid5(NAMESPACE_URL, "https://council-integrator/directory/hsds")
COUNTRY = "GB"
# What the public directory lists: providers the council has approved, or is growing.
PUBLISHED_STATUSES = (ProviderStatus.APPROVED.value, ProviderStatus.INCUBATING.value)

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


# --------------------------------------------------------------------------- ids


def _id(*parts: object) -> str:
    return str(uuid5(HSDS_NAMESPACE, "/".join(str(p) for p in parts)))


def organization_id(provider_id: UUID) -> str:
    # The provider id is already a stable UUID: keeping it lets people go from the directory
    # straight to GET /providers/{id}.
    return str(provider_id)


def service_id(provider_id: UUID, capability_id: str) -> str:
    return _id("service", provider_id, capability_id)


def location_id(provider_id: UUID) -> str:
    return _id("location", provider_id)


def service_at_location_id(svc_id: str, loc_id: str) -> str:
    return _id("service_at_location", svc_id, loc_id)


def taxonomy_id(tax: Taxonomy) -> str:
    return _id("taxonomy", tax.id)


def taxonomy_term_id(tax: Taxonomy, code: str) -> str:
    return _id("taxonomy_term", tax.id, code)


# --------------------------------------------------------------------------- entities


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Absent values are left out, never written as null or as an empty string or list."""
    if value is not None and value != [] and value != "":
        target[key] = value


def publishable(provider: DirectoryProvider) -> bool:
    """Whether the provider can be published as the profile asks: it has described itself."""
    return _text(provider.description) is not None


def organization_of(provider: DirectoryProvider, *, nested: bool = True) -> dict[str, Any]:
    """The provider as an HSDS organization (a `publishable` one)."""
    description = _text(provider.description) or ""
    org_id = organization_id(provider.provider_id)
    org: dict[str, Any] = {"id": org_id, "name": provider.name, "description": description}
    _put(org, "email", _text(provider.contact.get("email")))
    _put(org, "website", _text(provider.website))
    if nested:
        _put(org, "organization_identifiers", [
            {
                "id": _id("organization_identifier", provider.provider_id, kind),
                "organization_id": org_id,
                "identifier_scheme": scheme.scheme,
                "identifier_type": scheme.type,
                "identifier": value,
            }
            for kind, value in sorted(provider.identifiers.items())
            if value
            for scheme in [identifier_scheme(kind, value)]
        ])
    return org


def address_of(provider: DirectoryProvider) -> dict[str, Any] | None:
    """The provider's postal address; None unless every field the profile requires is known."""
    address = provider.address or {}
    lines = [line.strip() for line in address.get("lines") or [] if _text(line)]
    town, county = _text(address.get("town")), _text(address.get("county"))
    postcode = _text(address.get("postcode"))
    if not lines or town is None or county is None or postcode is None:
        return None
    return {
        "id": _id("address", provider.provider_id),
        "location_id": location_id(provider.provider_id),
        # "the first line(s) of the address": the profile has no second line
        "address_1": ", ".join(lines),
        "city": town,
        "state_province": county,
        "postal_code": postcode,
        "country": COUNTRY,
        "address_type": "physical",
    }


def location_of(provider: DirectoryProvider, *, nested: bool = True) -> dict[str, Any] | None:
    """The provider's premises as a physical location; None without a complete address."""
    address = address_of(provider)
    if address is None:
        return None
    location: dict[str, Any] = {
        "id": location_id(provider.provider_id),
        "location_type": "physical",
        "name": provider.name,
    }
    if nested:
        location["addresses"] = [address]
    return location


def taxonomy_term_of(tax: Taxonomy, code: str) -> dict[str, Any]:
    term = tax.terms[code]
    row: dict[str, Any] = {
        "id": taxonomy_term_id(tax, code),
        "name": term.name,
        "description": term.description,
        "taxonomy": tax.name,
        "taxonomy_id": taxonomy_id(tax),
        "term": code,
    }
    if term.parent is not None and term.parent in tax.terms:
        row["parent_id"] = taxonomy_term_id(tax, term.parent)
    return row


def taxonomy_of(tax: Taxonomy) -> dict[str, Any]:
    return {"id": taxonomy_id(tax), "name": tax.name, "description": tax.description,
            "version": tax.version}


def taxonomy_terms(tax: Taxonomy) -> list[dict[str, Any]]:
    """Every term, each top-level category followed by the terms below it."""
    return [taxonomy_term_of(tax, code) for code in tax.tree_order()]


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


def last_modified(provider: DirectoryProvider) -> str:
    """When the provider's record (and so any of its services) last changed, in UTC."""
    moment = datetime.fromisoformat(provider.updated_at)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def service_of(
    provider: DirectoryProvider, capability: Capability, tax: Taxonomy, *, nested: bool = True
) -> dict[str, Any]:
    """One capability of the provider as an HSDS service: in full (`nested`, as
    /services/{id} answers) or with its one-to-one fields only (as a list's items)."""
    term: Term | None = tax.terms.get(capability.category)
    category_name = term.name if term else capability.category
    svc_id = service_id(provider.provider_id, capability.capability_id)
    service: dict[str, Any] = {
        "id": svc_id,
        "organization_id": organization_id(provider.provider_id),
        "name": f"{category_name} — {provider.name}",
    }
    _put(service, "description", _text(capability.description))
    _put(service, "url", _text(provider.website))
    _put(service, "email", _text(provider.contact.get("email")))
    service["status"] = SERVICE_STATUS.get(provider.status, "inactive")
    _put(service, "accreditations", _accreditation_text(provider))
    service["last_modified"] = last_modified(provider)
    service["organization"] = organization_of(provider, nested=nested)
    if not nested:
        return service
    areas = list(capability.areas) or list(provider.areas_served)
    _put(service, "service_areas", [
        {"id": _id("service_area", svc_id, area), "service_id": svc_id, "name": area}
        for area in dict.fromkeys(areas)  # distinct, in the order given
    ])
    location = location_of(provider)
    if location is not None:
        service["service_at_locations"] = [{
            "id": service_at_location_id(svc_id, location["id"]),
            "service_id": svc_id,
            "location_id": location["id"],
            "location": location,
        }]
    if tax.has(capability.category):
        term_id = taxonomy_term_id(tax, capability.category)
        service["attributes"] = [{
            "id": _id("attribute", svc_id, term_id),
            "link_id": svc_id,
            "taxonomy_term_id": term_id,
            "link_type": "category",
            "taxonomy_term": taxonomy_term_of(tax, capability.category),
        }]
    return service


# --------------------------------------------------------------------------- the directory


@dataclass(frozen=True)
class Offer:
    """One service: a capability of a provider, with what the filters look at."""

    provider: DirectoryProvider
    capability: Capability

    @property
    def id(self) -> str:
        return service_id(self.provider.provider_id, self.capability.capability_id)

    @property
    def location_id(self) -> str | None:
        location = location_of(self.provider, nested=False)
        return None if location is None else str(location["id"])

    @property
    def service_at_location_id(self) -> str | None:
        loc_id = self.location_id
        return None if loc_id is None else service_at_location_id(self.id, loc_id)


def offers(providers: Iterable[DirectoryProvider]) -> list[Offer]:
    """Every service of these providers (the publishable ones), in the providers' order, then
    by category."""
    return [
        Offer(provider, capability)
        for provider in providers
        if publishable(provider)
        for capability in sorted(provider.capabilities,
                                 key=lambda c: (c.category, c.capability_id))
    ]


@dataclass(frozen=True)
class ServiceFilters:
    """The ORUK list filters; None is "any"."""

    search: str | None = None
    taxonomy_term_codes: frozenset[str] | None = None  # a term and the terms below it
    taxonomy_id: str | None = None
    organization_id: str | None = None
    modified_after: datetime | None = None
    postcode: str | None = None  # a full postcode or its outward code, spaces ignored


def _postcode_key(value: str) -> str:
    return "".join(value.split()).upper()


def _matches_postcode(provider: DirectoryProvider, wanted: str) -> bool:
    address = address_of(provider)
    if address is None:
        return False
    have = _postcode_key(address["postal_code"])
    key = _postcode_key(wanted)
    outward = address["postal_code"].split()[0].upper() if " " in address["postal_code"] else ""
    return key in (have, outward)


def _haystack(offer: Offer, tax: Taxonomy) -> str:
    term = tax.terms.get(offer.capability.category)
    parts = [offer.provider.name, offer.provider.description, offer.capability.description,
             offer.capability.category, term.name if term else None,
             *offer.capability.areas, *offer.provider.areas_served]
    return " ".join(p for p in parts if p).casefold()


def matching(found: Sequence[Offer], filters: ServiceFilters, tax: Taxonomy) -> list[Offer]:
    chosen = []
    words = filters.search.casefold().split() if filters.search else []
    for offer in found:
        category = offer.capability.category
        if filters.taxonomy_term_codes is not None and category not in filters.taxonomy_term_codes:
            continue
        if filters.taxonomy_id is not None and (
                filters.taxonomy_id != taxonomy_id(tax) or not tax.has(category)):
            continue
        if filters.organization_id is not None and (
                filters.organization_id != organization_id(offer.provider.provider_id)):
            continue
        if filters.modified_after is not None and (
                datetime.fromisoformat(offer.provider.updated_at) < filters.modified_after):
            continue
        if filters.postcode is not None and not _matches_postcode(offer.provider,
                                                                   filters.postcode):
            continue
        if words:
            haystack = _haystack(offer, tax)
            if not all(word in haystack for word in words):
                continue
        chosen.append(offer)
    return chosen


def service_at_location_item(offer: Offer, tax: Taxonomy) -> dict[str, Any] | None:
    """A service_at_location as a list's item: its location and service, one-to-one fields."""
    location = location_of(offer.provider, nested=False)
    if location is None:
        return None
    return {
        "id": service_at_location_id(offer.id, location["id"]),
        "service_id": offer.id,
        "location_id": location["id"],
        "location": location,
        "service": service_of(offer.provider, offer.capability, tax, nested=False),
    }


def service_at_location_full(offer: Offer) -> dict[str, Any] | None:
    location = location_of(offer.provider)
    if location is None:
        return None
    return {
        "id": service_at_location_id(offer.id, location["id"]),
        "service_id": offer.id,
        "location_id": location["id"],
        "location": location,
    }


def page_of(items: Sequence[Any], page: int, per_page: int) -> dict[str, Any]:
    """A page as the profile's list answers have it: the counts, then `contents`."""
    total = len(items)
    pages = -(-total // per_page)  # ceiling division
    contents = list(items[(page - 1) * per_page: page * per_page])
    return {
        "total_items": total,
        "total_pages": pages,
        "page_number": page,
        "size": len(contents),
        "first_page": page == 1,
        "last_page": page >= pages,
        "empty": not contents,
        "contents": contents,
    }


# --------------------------------------------------------------------------- flat export


def hsds_export(providers: Iterable[DirectoryProvider], tax: Taxonomy) -> dict[str, Any]:
    """The directory as HSDS collections in the UK profile's fields, every reference
    resolvable: what `GET /directory/hsds` answers (for the council: any status, but only the
    `publishable` providers)."""
    organizations: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    locations: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    attributes: list[dict[str, Any]] = []
    found = [p for p in providers if publishable(p)]
    for provider in found:
        organizations.append(organization_of(provider))
        location = location_of(provider)
        if location is not None:
            locations.append(location)
    for offer in offers(found):
        service = service_of(offer.provider, offer.capability, tax)
        service.pop("organization", None)
        links += [{k: v for k, v in link.items() if k != "location"}
                  for link in service.pop("service_at_locations", [])]
        attributes += [{k: v for k, v in attribute.items() if k != "taxonomy_term"}
                       for attribute in service.pop("attributes", [])]
        services.append(service)
    return {
        "organization": organizations,
        "service": services,
        "location": locations,
        "service_at_location": links,
        "taxonomy": [taxonomy_of(tax)],
        "taxonomy_term": taxonomy_terms(tax),
        "attribute": attributes,
    }
