"""The registry's directory projection in both deployments (embedded: SQLite + file log; scale:
PostgreSQL + Kafka): the read model built live, batch by batch while the registry changes and
with the relay republishing a batch, equals one rebuilt from the log, and one built from scratch
in a second database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from council.kernel.context import CommandContext, command_context
from council.kernel.taxonomy import taxonomy
from council.platform.eventlog import EventLog, open_event_log
from council.platform.eventstore import open_application, store_database
from council.platform.identity import TokenStore
from council.platform.projection import ProjectionRunner
from council.platform.relay import OutboxRelay
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.provider_registry.application import ProviderRegistry
from council.services.provider_registry.domain.commands import (
    DetailsUpdate,
    IncubationPlan,
    NewAccreditation,
    NewCapability,
    NewConflictOfInterest,
    NewProvider,
    NewQualityRating,
)
from council.services.provider_registry.oruk import hsds_export
from council.services.provider_registry.projections import (
    DirectoryProjection,
    SearchFilters,
    directory_providers,
    directory_snapshot,
    search_providers,
)
from council.services.provider_registry.projections.directory import providers_csv

REASON = "decided by the commissioning panel"


class Parts:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = open_application(ProviderRegistry, settings)
        self.tokens = TokenStore(open_database(settings, "identity"))
        self.registry.credentials = self.tokens
        self.store_db = store_database(settings, "provider_registry")
        self.views = open_database(settings, "provider_registry_views")
        self.databases: list[Database] = [self.store_db, self.views, self.tokens.db]
        self.logs: list[EventLog] = []

    def log(self) -> EventLog:
        self.logs.append(open_event_log(self.settings))
        return self.logs[-1]

    def relay(self) -> OutboxRelay:
        return OutboxRelay(self.registry, self.log(), self.store_db, batch_size=5)

    def runner(self, views: Database | None = None) -> ProjectionRunner:
        return ProjectionRunner(DirectoryProjection(), views or self.views, self.log())

    def database(self, name: str) -> Database:
        self.databases.append(open_database(self.settings, name))
        return self.databases[-1]

    def close(self) -> None:
        for event_log in self.logs:
            event_log.close()
        self.registry.close()
        for db in self.databases:
            db.close()


@pytest.fixture
def parts(settings: Settings) -> Iterator[Parts]:
    built = Parts(settings)
    yield built
    built.close()


def settle(runner: ProjectionRunner, limit: int = 1000) -> None:
    """Apply everything on the log, in batches of `limit`; a broker may answer empty while a
    fetch is still in flight, so stop only after several empty reads in a row."""
    empty = 0
    while empty < 3:
        empty = 0 if runner.run_once(limit) else empty + 1


def publish(parts: Parts) -> None:
    assert parts.relay().drain() >= 0


APPLICANTS: list[dict[str, Any]] = [
    {"name": "Hillside Community Kitchen", "organisation_type": "community_group",
     "address": {"lines": ["2 Chapel Lane"], "town": "Leeds", "postcode": "LS6 3AA"},
     "areas_served": ["Headingley"], "contact": {"email": "hello@hillside.example"}},
    {"name": "Aire Valley Care Ltd", "organisation_type": "sme",
     "identifiers": {"companies_house": "01234567"},
     "sme_size": {"headcount": 40, "turnover_gbp": 3_000_000},
     "address": {"lines": ["4 Canal Wharf"], "town": "Leeds", "postcode": "LS11 5PS"}},
    {"name": "St Mary's Carers Trust", "organisation_type": "vcse",
     "identifiers": {"charity_number": "1123456"}, "description": "Support for carers"},
    {"name": "Glasgow Befrienders", "organisation_type": "vcse",
     "identifiers": {"charity_number": "SC012345"}},
    {"name": "Northern Skills College", "organisation_type": "public_body",
     "identifiers": {"ukprn": "10012345"}, "address": {"postcode": "LS2 8AA"}},
    {"name": "Digital Neighbours CIC", "organisation_type": "community_group"},
    {"name": "Broad Acre Facilities plc", "organisation_type": "large_private"},
    {"name": "zeta Transport Co-op", "organisation_type": "community_group",
     "areas_served": ["Armley", "Bramley"]},
]


def build_directory(parts: Parts, live: ProjectionRunner) -> dict[str, UUID]:
    """Change the registry in stages, publishing and projecting (in small batches) between."""
    r = parts.registry
    ids: dict[str, UUID] = {}
    with command_context(CommandContext(actor="test:registrar")):
        for body in APPLICANTS:
            ids[body["name"]] = r.register_provider(NewProvider.model_validate(body))[0]
        ids["Riverside Youth Partnership"] = r.register_provider(NewProvider.model_validate({
            "name": "Riverside Youth Partnership", "organisation_type": "partnership",
            "members": [ids["Hillside Community Kitchen"], ids["St Mary's Carers Trust"]],
        }))[0]
    publish(parts)
    settle(live, limit=4)

    kitchen, care, carers, befrienders, college, digital, builders, transport = (
        ids[a["name"]] for a in APPLICANTS
    )
    with command_context(CommandContext(actor="test:officer")):
        capability = {
            kitchen: [("weight-management", ["Headingley"])],
            care: [("home-care", ["Leeds", "Bradford"]), ("reablement", [])],
            carers: [("carers-support", ["Bradford"])],
            befrienders: [("day-opportunities", [])],
            college: [("adult-learning", ["Leeds"])],
            digital: [("digital-inclusion", [])],
            transport: [("community-transport", ["Armley"]), ("catering", [])],
        }
        added: dict[UUID, list[str]] = {}
        for provider_id, capabilities in capability.items():
            for category, areas in capabilities:
                added.setdefault(provider_id, []).append(r.add_capability(
                    provider_id, NewCapability.model_validate(
                        {"category": category, "areas": areas,
                         "capacity": {"amount": 10, "unit": "places"}})))
        accreditation = r.add_accreditation(care, NewAccreditation.model_validate(
            {"kind": "certification", "name": "ISO 9001", "expires_on": "2030-01-01"}))
        r.add_accreditation(care, NewAccreditation.model_validate(
            {"kind": "insurance", "name": "Public liability", "cover_gbp": 5_000_000}))
        r.record_quality_rating(care, NewQualityRating.model_validate(
            {"scheme": "CQC", "rating": "Good", "rated_on": "2025-06-01"}))
        r.declare_conflict_of_interest(care, NewConflictOfInterest.model_validate(
            {"declared_by": "Cllr Jones", "interest": "a relative works there",
             "declared_on": "2025-07-01"}))
        r.update_details(kitchen, DetailsUpdate.model_validate(
            {"description": "Cooking clubs for families", "areas_served": ["Hyde Park"]}))
        r.update_details(transport, DetailsUpdate.model_validate({"name": "Zeta Transport"}))
    publish(parts)
    settle(live, limit=3)

    # A relay that dies between appending a batch and saving its position: the next one
    # publishes that batch again, and the projection must count it once.
    with command_context(CommandContext(actor="test:admin")):
        for provider_id in ids.values():
            r.start_review(provider_id, REASON)
        for provider_id in (kitchen, care, carers, befrienders, college, transport):
            r.approve(provider_id, REASON)
        r.suspend(befrienders, REASON)
        r.reject(builders, REASON)
        r.incubate(digital, IncubationPlan.model_validate({
            "support_plan": "mentoring", "milestones": [{"title": "policy adopted"}],
            "reason": REASON}))
        r.exit(transport, REASON)
        r.rotate_credentials(care)
        r.remove_capability(care, added[care][1], "no longer offered")
        r.remove_accreditation(care, accreditation, "lapsed")
    crashing = parts.relay()

    def crash(*_: object) -> None:
        raise RuntimeError("killed between append and saving the position")

    crashing._save = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        crashing.relay_once()
    settle(live, limit=2)
    publish(parts)
    settle(live, limit=5)
    return ids


def read_model(parts: Parts, views: Database) -> dict[str, Any]:
    providers = directory_providers(views)
    return {
        "rows": directory_snapshot(views),
        "hsds": hsds_export(directory_providers(views, ["approved", "suspended"]), taxonomy()),
        "csv": providers_csv(providers, taxonomy()),
        "search": search_providers(views, SearchFilters(text="leeds"), limit=500),
    }


def test_directory_built_live_equals_a_rebuild_from_the_log(parts: Parts) -> None:
    live = parts.runner()
    ids = build_directory(parts, live)
    built_live = read_model(parts, parts.views)

    statuses = {p.name: p.status for p in directory_providers(parts.views)}
    assert statuses == {
        "Hillside Community Kitchen": "approved", "Aire Valley Care Ltd": "approved",
        "St Mary's Carers Trust": "approved", "Glasgow Befrienders": "suspended",
        "Northern Skills College": "approved", "Digital Neighbours CIC": "incubating",
        "Broad Acre Facilities plc": "rejected", "Zeta Transport": "exited",
        "Riverside Youth Partnership": "under_review",
    }
    care = next(p for p in directory_providers(parts.views)
                if p.provider_id == ids["Aire Valley Care Ltd"])
    assert [c.category for c in care.capabilities] == ["home-care"]
    assert [a.name for a in care.accreditations] == ["Public liability"]
    assert len(built_live["rows"]["directory_capabilities"]) == 8  # an exit keeps the record

    live.rebuild()
    settle(live)
    assert read_model(parts, parts.views) == built_live

    elsewhere = parts.database("provider_registry_views_copy")
    settle(parts.runner(elsewhere), limit=1000)
    assert read_model(parts, elsewhere) == built_live
