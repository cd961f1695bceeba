"""HTTP entry point: the public directory as an Open Referral UK (HSDS 3.0, UK profile) API.

Open to anyone without a token, from any web page (CORS: the service's `public_prefixes`), and
read-only: it answers GET alone. It reads the directory projection, so it follows the shared log a
moment behind the registry's own writes. Providers approved or incubating are listed; the
mapping is council.services.provider_registry.oruk.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from council.kernel.errors import InvalidInput, NotFound
from council.kernel.taxonomy import Taxonomy, taxonomy
from council.kernel.text import SearchText
from council.platform.runtime import Runtime
from council.platform.sql import Database
from council.services.provider_registry import oruk
from council.services.provider_registry.projections import directory_providers

PREFIX = "/oruk"
MAX_PAGE = 100_000
MAX_PER_PAGE = 200
router = APIRouter(prefix=PREFIX, tags=["open referral uk (public)"])

Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page number, from 1")]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="items a page")]
Search = Annotated[SearchText | None, Query(
    description="words that must all appear in a service's name, description, organisation, "
    "category or areas; case-insensitive")]
TermId = Annotated[UUID | None, Query(
    description="services in this taxonomy term or a term below it (GET /oruk/taxonomy_terms)")]
TaxonomyId = Annotated[UUID | None, Query(description="services with a term of this taxonomy")]
OrganizationId = Annotated[UUID | None, Query(description="services of this organisation")]
ModifiedAfter = Annotated[datetime | None, Query(
    description="services whose record changed at or after this moment (ISO 8601, with offset)")]
Format = Annotated[str, Query(
    pattern="^json$", description="only `json`: the profile's `ndjson` stream is not offered")]
Postcode = Annotated[str | None, Query(
    max_length=10, pattern=r"^[A-Za-z0-9 ]*$",
    description="services at this postcode, or in this postcode district (its outward code)")]
Json = dict[str, Any]


def _views(request: Request) -> Database:
    runtime: Runtime = request.app.state.runtime
    return runtime.views


def _offers(request: Request) -> list[oruk.Offer]:
    return oruk.offers(directory_providers(_views(request), list(oruk.PUBLISHED_STATUSES)))


def _filters(tax: Taxonomy, search: str | None, taxonomy_term_id: UUID | None,
             taxonomy_id: UUID | None, organization_id: UUID | None,
             modified_after: datetime | None, postcode: str | None = None
             ) -> oruk.ServiceFilters:
    codes = None
    if taxonomy_term_id is not None:
        code = next((c for c in tax.terms if oruk.taxonomy_term_id(tax, c)
                     == str(taxonomy_term_id)), None)
        codes = frozenset(tax.under(code)) if code is not None else frozenset()
    if modified_after is not None and modified_after.utcoffset() is None:
        raise InvalidInput("modified_after", "give the moment with its offset (Z or +01:00)")
    return oruk.ServiceFilters(
        search=search.strip() if search and search.strip() else None,
        taxonomy_term_codes=codes,
        taxonomy_id=str(taxonomy_id) if taxonomy_id else None,
        organization_id=str(organization_id) if organization_id else None,
        modified_after=modified_after,
        postcode=postcode.strip() if postcode and postcode.strip() else None,
    )


@router.get("/", response_class=JSONResponse)
def api_details() -> Json:
    """What this API is: the HSDS version and profile it follows, and where its definition is."""
    return {"version": oruk.HSDS_VERSION, "profile": oruk.PROFILE_URL,
            "openapi_url": oruk.OPENAPI_URL}


@router.get("/services", response_class=JSONResponse)
def services(
    request: Request, search: Search = None, page: Page = 1, per_page: PerPage = 50,
    format: Format = "json", taxonomy_term_id: TermId = None, taxonomy_id: TaxonomyId = None,
    organization_id: OrganizationId = None, modified_after: ModifiedAfter = None,
) -> Json:
    """A page of services (one per capability of a listed provider), in the providers' name
    order, with their one-to-one fields and organisation (the profile's `service_list`; a
    service in full is at /services/{id})."""
    tax = taxonomy()
    filters = _filters(tax, search, taxonomy_term_id, taxonomy_id, organization_id,
                       modified_after)
    chosen = oruk.matching(_offers(request), filters, tax)
    body = oruk.page_of(chosen, page, per_page)
    body["contents"] = [oruk.service_of(o.provider, o.capability, tax, nested=False)
                        for o in body["contents"]]
    return body


@router.get("/services/{id}", response_class=JSONResponse)
def service(id: UUID, request: Request) -> Json:
    """One service with everything related to it: organisation, areas, location, categories."""
    offer = next((o for o in _offers(request) if o.id == str(id)), None)
    if offer is None:
        raise NotFound(f"no service {id} in the directory")
    return oruk.service_of(offer.provider, offer.capability, taxonomy())


@router.get("/service_at_locations", response_class=JSONResponse)
def service_at_locations(
    request: Request, search: Search = None, page: Page = 1, per_page: PerPage = 50,
    format: Format = "json", taxonomy_term_id: TermId = None, taxonomy_id: TaxonomyId = None,
    organization_id: OrganizationId = None, modified_after: ModifiedAfter = None,
    postcode: Postcode = None,
) -> Json:
    """A page of services at their locations (a service whose provider gave no complete address
    has none); `postcode` matches the location's postcode or postcode district."""
    tax = taxonomy()
    filters = _filters(tax, search, taxonomy_term_id, taxonomy_id, organization_id,
                       modified_after, postcode)
    items = [item for offer in oruk.matching(_offers(request), filters, tax)
             if (item := oruk.service_at_location_item(offer, tax)) is not None]
    return oruk.page_of(items, page, per_page)


@router.get("/service_at_locations/{id}", response_class=JSONResponse)
def service_at_location(id: UUID, request: Request) -> Json:
    """One service at its location, the location in full."""
    offer = next((o for o in _offers(request) if o.service_at_location_id == str(id)), None)
    found = oruk.service_at_location_full(offer) if offer is not None else None
    if found is None:
        raise NotFound(f"no service_at_location {id} in the directory")
    return found


@router.get("/taxonomies", response_class=JSONResponse)
def taxonomies(search: Search = None, page: Page = 1, per_page: PerPage = 50,
               format: Format = "json") -> Json:
    """The taxonomies the services are classified by (the council's service categories)."""
    found = [oruk.taxonomy_of(taxonomy())]
    if search and search.strip():
        found = [t for t in found if search.strip().casefold() in t["name"].casefold()]
    return oruk.page_of(found, page, per_page)


@router.get("/taxonomies/{id}", response_class=JSONResponse)
def taxonomy_by_id(id: UUID) -> Json:
    """One taxonomy."""
    found = oruk.taxonomy_of(taxonomy())
    if found["id"] != str(id):
        raise NotFound(f"no taxonomy {id}")
    return found


@router.get("/taxonomy_terms", response_class=JSONResponse)
def taxonomy_terms(
    search: Search = None, page: Page = 1, per_page: PerPage = 50, format: Format = "json",
    taxonomy_id: TaxonomyId = None,
    top_only: Annotated[bool, Query(description="only terms with no parent")] = False,
    parent_id: Annotated[UUID | None, Query(description="only the terms under this one")] = None,
) -> Json:
    """The taxonomy's terms, each top-level category followed by the terms below it."""
    terms = oruk.taxonomy_terms(taxonomy())
    if taxonomy_id is not None:
        terms = [t for t in terms if t["taxonomy_id"] == str(taxonomy_id)]
    if top_only:
        terms = [t for t in terms if "parent_id" not in t]
    if parent_id is not None:
        terms = [t for t in terms if t.get("parent_id") == str(parent_id)]
    if search and search.strip():
        words = search.casefold().split()
        terms = [t for t in terms
                 if all(w in f"{t['name']} {t['term']} {t['description']}".casefold()
                        for w in words)]
    return oruk.page_of(terms, page, per_page)


@router.get("/taxonomy_terms/{id}", response_class=JSONResponse)
def taxonomy_term(id: UUID) -> Json:
    """One taxonomy term."""
    found = next((t for t in oruk.taxonomy_terms(taxonomy()) if t["id"] == str(id)), None)
    if found is None:
        raise NotFound(f"no taxonomy term {id}")
    return found
