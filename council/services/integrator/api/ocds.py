"""Open contracting data: the integrator's commissioning as OCDS 1.1 release and record packages,
made from the integrator's events as the OCDS read model files them under their needs
(council.services.integrator.projections.ocds; the mapping is ocds_releases), and kept until
the read models move (council.platform.readcache).

Published as OCP's publication guidance asks: open to anyone without a token, from any web page
(CORS: the service's `public_prefixes`), in pages a reader follows by the package's `links.next`
(the API guidance's and the pagination extension's `links`). The ocid prefix and the publisher
come from COUNCIL_OCDS_* environment variables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from council.kernel.errors import NotFound
from council.platform.readcache import Answer, ReadCache
from council.platform.runtime import Runtime
from council.services.integrator.domain.notices import NOTICE_TYPES
from council.services.integrator.projections.network import get_provider
from council.services.integrator.projections.notices import EXTENSIONS, notice_releases
from council.services.integrator.projections.ocds import ocds_events
from council.services.integrator.projections.ocds_releases import (
    DEFAULT_OCID_PREFIX,
    Publisher,
    ocid_for,
    provider_ids_in,
    record_package,
    release_package,
    releases_for,
)
from council.services.integrator.projections.performance import kpi_assessments

PREFIX = "/ocds"
MAX_PAGE = 100_000
MAX_PER_PAGE = 1000
router = APIRouter(prefix=PREFIX, tags=["open contracting (public)"])

NeedFilter = Annotated[
    UUID | None, Query(description="only this need's contracting process")
]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page number, from 1")]
PerPage = Annotated[int, Query(
    ge=1, le=MAX_PER_PAGE, description="releases (or records) a page; `links.next` is the "
    "next page's address, absent on the last")]


class OcdsSettings(BaseSettings):
    """How the council publishes open contracting data."""

    model_config = SettingsConfigDict(env_prefix="COUNCIL_OCDS_", extra="ignore")

    ocid_prefix: str = Field(
        default=DEFAULT_OCID_PREFIX, pattern=r"^ocds-[a-z0-9]{6}$",
        description="the council's ocid prefix, registered with the Open Contracting Partnership",
    )
    publisher_name: str = Field(default="Council Integrator", min_length=1)
    publisher_uri: str | None = None
    license: str | None = Field(default=None, description="URL of the data's licence")
    publication_policy: str | None = Field(default=None, description="URL of the policy")

    @property
    def publisher(self) -> Publisher:
        return Publisher(self.publisher_name, uri=self.publisher_uri)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _releases(runtime: Runtime, settings: OcdsSettings, need_id: UUID | None,
              notices: bool = False) -> list[Any]:
    # A need's releases depend on its own events alone: read only those (the OCDS read model).
    events = ocds_events(runtime.views, need_id)
    names: dict[UUID, str] = {}
    for provider_id in provider_ids_in(events):
        found = get_provider(runtime.views, provider_id)
        if found is not None:
            names[provider_id] = found.name
    releases = releases_for(events, names, settings.ocid_prefix)
    if notices:
        releases = notice_releases(events, releases, kpi_assessments(runtime.views),
                                   settings.ocid_prefix)
    if need_id is None:
        return releases
    ocid = ocid_for(need_id, settings.ocid_prefix)
    chosen = [r for r in releases if r["ocid"] == ocid]
    if not chosen:
        raise NotFound(f"no need {need_id} in the integrator's records")
    return chosen


def _published(releases: list[Any]) -> datetime | None:
    # A package made on demand dates from its latest release; an empty one from now.
    return None if releases else datetime.now(UTC)


def _links(request: Request, page: int, per_page: int, total: int) -> dict[str, str]:
    """`next` and `prev` page addresses, each there only when that page is."""
    links = {}
    if page * per_page < total:
        links["next"] = str(request.url.include_query_params(page=page + 1, per_page=per_page))
    if page > 1:
        links["prev"] = str(request.url.include_query_params(page=page - 1, per_page=per_page))
    return links


def _paged(package: dict[str, Any], links: dict[str, str]) -> Answer:
    if links:
        package["links"] = links
    # The bytes JSONResponse would send.
    return Answer(json.dumps(package, ensure_ascii=False, allow_nan=False,
                             separators=(",", ":")).encode())


def _kept(request: Request, settings: OcdsSettings, make: Callable[[], Answer]) -> Response:
    """The package `make` gives, kept until the read models move (or the settings change):
    the same for everyone, since publication is open."""
    cache: ReadCache = request.app.state.read_cache
    return cache.answer(request, f"public\n{settings.model_dump_json()}", make)


@router.get("/releases", response_class=JSONResponse)
def ocds_releases(request: Request, need_id: NeedFilter = None, page: Page = 1,
                  per_page: PerPage = 100) -> Response:
    """An OCDS 1.1 release package: the releases of every commissioning need (one contracting
    process each) in the order they happened, a page at a time, or only one need's with
    `?need_id=`. No two releases of a process share a date (one that would tie is dated a
    second later), so the order in which OCDS merges them is unambiguous."""
    settings = OcdsSettings()

    def make() -> Answer:
        every = _releases(_runtime(request), settings, need_id)
        releases = every[(page - 1) * per_page: page * per_page]
        package = release_package(
            releases, uri=str(request.url), publisher=settings.publisher,
            published_date=_published(releases), license_url=settings.license,
            publication_policy=settings.publication_policy,
        )
        return _paged(package, _links(request, page, per_page, len(every)))

    return _kept(request, settings, make)


NoticeTypeFilter = Annotated[
    str | None, Query(pattern=r"^UK(7|9|10|11)$", description="only notices of this type: "
                      "UK7, UK9, UK10 or UK11")]


@router.get("/notices", response_class=JSONResponse)
def ocds_notices(request: Request, need_id: NeedFilter = None,
                 notice_type: NoticeTypeFilter = None, page: Page = 1,
                 per_page: PerPage = 100) -> Response:
    """Procurement Act 2023 transparency notices as an OCDS release package, in the form Find a
    Tender publishes them: a release per notice (UK7 contract details, UK9 contract
    performance, UK10 contract change, UK11 contract termination), the notice a document with
    its `noticeType`, KPIs rated on the Act's scale. Derived from the integrator's events and
    the performance figures that reach it from the outcomes service."""
    settings = OcdsSettings()

    def make() -> Answer:
        every = _releases(_runtime(request), settings, need_id, notices=True)
        if notice_type is not None:
            kind = NOTICE_TYPES[notice_type]
            every = [r for r in every if r["tag"] == list(kind.tags) and r["id"].endswith(
                f"-{kind.code}")]
        releases = every[(page - 1) * per_page: page * per_page]
        package = release_package(
            releases, uri=str(request.url), publisher=settings.publisher,
            published_date=_published(releases), license_url=settings.license,
            publication_policy=settings.publication_policy,
        )
        package["extensions"] = list(EXTENSIONS)
        return _paged(package, _links(request, page, per_page, len(every)))

    return _kept(request, settings, make)


def _records(request: Request, need_id: UUID | None, page: int, per_page: int) -> Response:
    settings = OcdsSettings()
    return _kept(request, settings, lambda: _record_page(request, settings, need_id, page,
                                                         per_page))


def _record_page(request: Request, settings: OcdsSettings, need_id: UUID | None, page: int,
                 per_page: int) -> Answer:
    every = _releases(_runtime(request), settings, need_id)
    ocids = list(dict.fromkeys(r["ocid"] for r in every))  # in order of first appearance
    chosen = set(ocids[(page - 1) * per_page: page * per_page])
    releases = [r for r in every if r["ocid"] in chosen]
    # Each record's releases are all in the release package of its own need.
    source = request.url_for("ocds_releases")
    packages = [str(source.include_query_params(need_id=ocid.split("-", 2)[2]))
                for ocid in ocids if ocid in chosen]
    package = record_package(
        releases, uri=str(request.url), publisher=settings.publisher,
        published_date=_published(releases), packages=packages,
        license_url=settings.license, publication_policy=settings.publication_policy,
    )
    return _paged(package, _links(request, page, per_page, len(ocids)))


@router.get("/records", response_class=JSONResponse)
def ocds_records(request: Request, page: Page = 1, per_page: PerPage = 100) -> Response:
    """An OCDS 1.1 record package: one record per commissioning need, with its releases and the
    compiled release (where the process stands now), a page of records at a time."""
    return _records(request, None, page, per_page)


@router.get("/records/{need_id}", response_class=JSONResponse)
def ocds_record(need_id: UUID, request: Request) -> Response:
    """The record of one commissioning need, as a record package holding that one record."""
    return _records(request, need_id, 1, 1)
