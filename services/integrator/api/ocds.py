"""Open contracting data: the integrator's commissioning as OCDS 1.1 release and record packages,
made from the integrator's events as the OCDS read model files them under their needs
(services.integrator.projections.ocds; the mapping is services.integrator.ocds), and kept
until the read models move (shared.readcache).

The ocid prefix and the publisher come from COUNCIL_OCDS_* environment variables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.integrator.ocds import (
    DEFAULT_OCID_PREFIX,
    Publisher,
    ocid_for,
    provider_ids_in,
    record_package,
    release_package,
    releases_for,
)
from services.integrator.projections.network import get_provider
from services.integrator.projections.ocds import ocds_events
from shared.errors import NotFound
from shared.identity import COUNCIL_READERS, Principal, require
from shared.readcache import Answer, cached
from shared.web import Runtime

router = APIRouter(prefix="/ocds", tags=["open contracting"])

Reader = Annotated[Principal, Depends(require(*COUNCIL_READERS))]
NeedFilter = Annotated[
    UUID | None, Query(description="only this need's contracting process")
]


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


def _releases(runtime: Runtime, settings: OcdsSettings, need_id: UUID | None) -> list[Any]:
    # A need's releases depend on its own events alone: read only those.
    events = ocds_events(runtime.views, need_id)
    names: dict[UUID, str] = {}
    for provider_id in provider_ids_in(events):
        found = get_provider(runtime.views, provider_id)
        if found is not None:
            names[provider_id] = found.name
    releases = releases_for(events, names, settings.ocid_prefix)
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


def _kept(request: Request, principal: Principal, settings: OcdsSettings,
          make: Callable[[], Any]) -> Response:
    """The package `make` gives, kept until the read models move (or the settings change)."""
    # The bytes JSONResponse would send.
    return cached(request, principal, lambda: Answer(json.dumps(
        make(), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()),
                  also=settings.model_dump_json())


@router.get("/releases", response_class=JSONResponse)
def ocds_releases(request: Request, principal: Reader, need_id: NeedFilter = None) -> Response:
    """An OCDS 1.1 release package: every release of every commissioning need (one contracting
    process each), oldest first, or only one need's with `?need_id=`."""
    settings = OcdsSettings()

    def make() -> Any:
        releases = _releases(_runtime(request), settings, need_id)
        return release_package(
            releases, uri=str(request.url), publisher=settings.publisher,
            published_date=_published(releases), license_url=settings.license,
            publication_policy=settings.publication_policy,
        )

    return _kept(request, principal, settings, make)


def _records(request: Request, principal: Principal, need_id: UUID | None) -> Response:
    settings = OcdsSettings()

    def make() -> Any:
        releases = _releases(_runtime(request), settings, need_id)
        source = request.url_for("ocds_releases")
        if need_id is not None:
            source = source.include_query_params(need_id=str(need_id))
        return record_package(
            releases, uri=str(request.url), publisher=settings.publisher,
            published_date=_published(releases), packages=[str(source)],
            license_url=settings.license, publication_policy=settings.publication_policy,
        )

    return _kept(request, principal, settings, make)


@router.get("/records", response_class=JSONResponse)
def ocds_records(request: Request, principal: Reader) -> Response:
    """An OCDS 1.1 record package: one record per commissioning need, with its releases and the
    compiled release (where the process stands now)."""
    return _records(request, principal, None)


@router.get("/records/{need_id}", response_class=JSONResponse)
def ocds_record(need_id: UUID, request: Request, principal: Reader) -> Response:
    """The record of one commissioning need, as a record package holding that one record."""
    return _records(request, principal, need_id)
