"""HTTP entry point: the provider directory, read from the directory projection (so it follows
the shared log a moment behind the registry's own writes). Search for council staff, and exports
as Open Referral UK / HSDS 3.0 JSON and as CSV for spreadsheets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from council.kernel.contracts.provider_registry import OrganisationType, ProviderStatus, SizeBand
from council.kernel.taxonomy import taxonomy
from council.kernel.text import MAX_OFFSET, SearchText
from council.platform.identity import COUNCIL_READERS, Principal, require
from council.platform.runtime import Runtime
from council.platform.sql import Database
from council.platform.tables import csv_response
from council.services.provider_registry.oruk import hsds_export
from council.services.provider_registry.projections import (
    SearchFilters,
    directory_providers,
    search_providers,
)
from council.services.provider_registry.projections.directory import (
    DirectoryProvider,
    providers_csv,
)
from council.services.provider_registry.spreadsheet import providers_package

router = APIRouter(tags=["directory"])

CouncilReader = Annotated[Principal, Depends(require(*COUNCIL_READERS))]
Statuses = Annotated[
    list[ProviderStatus] | None,
    Query(description="repeat to match any of several statuses (status=approved&status=...)"),
]


class ProviderSummary(BaseModel):
    provider_id: UUID
    name: str
    organisation_type: OrganisationType
    status: ProviderStatus
    description: str | None
    website: str | None
    town: str | None
    postcode: str | None
    areas_served: list[str]
    sme_band: SizeBand | None
    categories: list[str]
    registered_at: datetime
    updated_at: datetime


class ProviderPage(BaseModel):
    total: int
    providers: list[ProviderSummary]


def _views(request: Request) -> Database:
    runtime: Runtime = request.app.state.runtime
    return runtime.views


def _summary(p: DirectoryProvider) -> ProviderSummary:
    return ProviderSummary(
        provider_id=p.provider_id, name=p.name,
        organisation_type=OrganisationType(p.organisation_type),
        status=ProviderStatus(p.status), description=p.description, website=p.website,
        town=p.town, postcode=p.postcode, areas_served=list(p.areas_served),
        sme_band=SizeBand(p.sme_band) if p.sme_band else None, categories=p.categories,
        registered_at=datetime.fromisoformat(p.registered_at),
        updated_at=datetime.fromisoformat(p.updated_at),
    )


def _invalid_query(name: str, value: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, naming the parameter."""
    return HTTPException(
        422,
        detail=[{"type": "value_error", "loc": ["query", name], "msg": message, "input": value}],
    )


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


@router.get("/providers", response_model=ProviderPage)
def find_providers(
    request: Request,
    _: CouncilReader,
    category: Annotated[SearchText | None, Query(
        description="a service category code (GET /taxonomy); matches its sub-categories too",
    )] = None,
    area: Annotated[SearchText | None, Query(
        description="an area served (by the provider or one of its "
        "capabilities); case-insensitive, whole name",
    )] = None,
    organisation_type: OrganisationType | None = None,
    status: Statuses = None,
    q: Annotated[SearchText | None, Query(
        description="free text: part of a name, description, town, postcode, "
        "area, category or identifier; case-insensitive",
    )] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ProviderPage:
    """Search the provider directory; results are ordered by name, then id."""
    categories = None
    category = _blank_to_none(category)
    if category is not None:
        if not taxonomy().has(category):
            raise _invalid_query(
                "category", category,
                f"unknown category {category!r}: not a category of the service taxonomy "
                "(GET /taxonomy lists them)",
            )
        categories = frozenset(taxonomy().under(category))
    filters = SearchFilters(
        categories=categories,
        area=_blank_to_none(area),
        organisation_type=organisation_type.value if organisation_type else None,
        statuses=frozenset(s.value for s in status) if status else None,
        text=_blank_to_none(q),
    )
    total, page = search_providers(_views(request), filters, limit, offset)
    return ProviderPage(total=total, providers=[_summary(p) for p in page])


def _statuses(given: list[ProviderStatus] | None, default: list[str] | None) -> list[str] | None:
    return [s.value for s in given] if given else default


@router.get("/directory/hsds")
def directory_hsds(request: Request, _: CouncilReader, status: Statuses = None) -> JSONResponse:
    """The directory as HSDS 3.0 collections in Open Referral UK's fields (organization,
    service, location, service_at_location, taxonomy, taxonomy_term, attribute), for the
    council: only approved providers unless `status` says otherwise. The public, paged form is
    the ORUK API under /oruk. Ids are the same in both and stable from one export to the
    next."""
    providers = directory_providers(
        _views(request), _statuses(status, [ProviderStatus.APPROVED.value])
    )
    body: dict[str, Any] = hsds_export(providers, taxonomy())
    return JSONResponse(body)


@router.get("/directory/providers.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "headers": {"Link": {
                "description": "the CSV's data package (rel=describedby)",
                "schema": {"type": "string"}}}}})
def directory_csv(request: Request, _: CouncilReader, status: Statuses = None) -> Response:
    """One row per provider (every status unless `status` narrows it), for spreadsheets; it
    imports back unchanged through POST /providers/import. Its columns and their types are in
    the data package the `Link` header points at (/directory/providers.datapackage.json). Cells
    a spreadsheet would run as formulas are prefixed with an apostrophe."""
    providers = directory_providers(_views(request), _statuses(status, None))
    return csv_response(providers_csv(providers, taxonomy()), "providers.csv",
                        str(request.url_for("directory_csv_package")))


@router.get("/directory/providers.datapackage.json")
def directory_csv_package(request: Request, _: CouncilReader) -> JSONResponse:
    """The Frictionless data package (Table Schema) of /directory/providers.csv: every column
    with its type, so identifiers and postcodes stay text and dates are read as dates."""
    return JSONResponse(providers_package(str(request.url_for("directory_csv"))))
