"""The integrator's network view reflects every lifecycle change through the shared log, in both
deployments: the registry records a change, the relay publishes it, the network projection
applies it, and the view says what happened, when, why and by whom. A rebuild from the log gives
the same view."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from council.kernel.context import CommandContext, command_context
from council.kernel.contracts import all_specs
from council.kernel.contracts.provider_registry import SOURCE as REGISTRY
from council.kernel.contracts.provider_registry import OrganisationType, ProviderStatus, SizeBand
from council.kernel.envelope import EventEnvelope
from council.kernel.errors import InvalidInput
from council.platform.eventlog import EventLog, open_event_log
from council.platform.eventstore import open_application, store_database
from council.platform.identity import Role, TokenStore
from council.platform.projection import ProjectionRunner
from council.platform.relay import OutboxRelay
from council.platform.runtime import create_service_app
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.services.integrator.domain import NetworkProvider
from council.services.integrator.projections import (
    IGNORED,
    NetworkProjection,
    get_provider,
    list_providers,
    network_summary,
)
from council.services.integrator.service import SPEC as INTEGRATOR
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

ADMIN = "integrator_admin:sam"
S = ProviderStatus


class Network:
    """The registry with its outbox relay, and the integrator's network projection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = open_application(ProviderRegistry, settings)
        self.identity = open_database(settings, "identity")
        self.tokens = TokenStore(self.identity)
        self.registry.credentials = self.tokens
        self.store_db = store_database(settings, "provider_registry")
        self.views = open_database(settings, "integrator_views")
        self.logs: list[EventLog] = [open_event_log(settings), open_event_log(settings)]
        self.relay = OutboxRelay(self.registry, self.logs[0], self.store_db)
        self.runner = ProjectionRunner(NetworkProjection(), self.views, self.logs[1])

    def sync(self) -> None:
        self.relay.drain()
        self.runner.catch_up()

    def view(self, provider_id: UUID) -> NetworkProvider:
        """The provider in the network once everything stored so far has been projected."""
        self.sync()
        found = get_provider(self.views, provider_id)
        assert found is not None, f"{provider_id} is not in the network view"
        return found

    def last_event(self, provider_id: UUID) -> EventEnvelope:
        return self.registry.history(provider_id)[-1]

    def decided(self, provider_id: UUID, status: ProviderStatus, reason: str) -> NetworkProvider:
        """The view after a decision: the status, and when, why and by whom it was taken."""
        view = self.view(provider_id)
        last = self.last_event(provider_id)
        assert (view.status, view.status_reason, view.status_changed_by) == (
            status, reason, ADMIN)
        assert view.status_changed_at == view.updated_at == last.occurred_at
        return view

    def log_types(self) -> set[str]:
        reader = open_event_log(self.settings)
        self.logs.append(reader)
        topic = reader.topic_for(REGISTRY)
        types: set[str] = set()
        position: dict[str, int] = {}
        empty = 0
        while empty < 3:  # Kafka may answer empty while a fetch is in flight
            batch = reader.read([topic], position, 1000)
            empty = 0 if batch else empty + 1
            for record in batch:
                position[record.partition_key] = record.offset + 1
                types.add(record.envelope.type)
        return types

    def close(self) -> None:
        for event_log in self.logs:
            event_log.close()
        self.registry.close()
        for db in (self.store_db, self.views, self.identity):
            db.close()


@pytest.fixture
def network(settings: Settings) -> Iterator[Network]:
    built = Network(settings)
    with command_context(CommandContext(actor=ADMIN)):
        yield built
    built.close()


def register(network: Network, **body: Any) -> UUID:
    provider_id, created = network.registry.register_provider(NewProvider.model_validate(body))
    assert created
    return provider_id


# ---------------------------------------------------------------------- scenarios


def approve_suspend_reinstate_exit(network: Network) -> UUID:
    """A VCSE: applied -> under review -> approved -> suspended -> reinstated -> exited, with a
    name change and a capability added and removed on the way."""
    registry = network.registry
    provider_id = register(network, name="Northshire Care Trust", organisation_type="vcse",
                           areas_served=["North", "East"])
    view = network.view(provider_id)
    assert (view.name, view.organisation_type, view.status) == (
        "Northshire Care Trust", OrganisationType.VCSE, S.APPLIED)
    assert view.areas_served == ["North", "East"]
    registered = network.last_event(provider_id)
    assert view.status_changed_at == view.registered_at == registered.occurred_at
    assert view.status_reason is None
    assert view.sme_size_band is None
    assert view.capabilities == []
    assert view.incubation is None
    registered_at = view.registered_at

    registry.start_review(provider_id, "application complete")
    network.decided(provider_id, S.UNDER_REVIEW, "application complete")

    credentials = registry.approve(provider_id, "meets the council's standards")
    assert credentials.principal.provider_id == provider_id
    network.decided(provider_id, S.APPROVED, "meets the council's standards")

    capability_id = registry.add_capability(provider_id, NewCapability.model_validate({
        "category": "home-care", "description": "Personal care at home", "areas": ["North"],
        "capacity": {"amount": 400, "unit": "hours of care per week"},
    }))
    view = network.view(provider_id)
    [capability] = view.capabilities
    assert (capability.capability_id, capability.category, capability.areas) == (
        capability_id, "home-care", ["North"])
    assert capability.capacity is not None
    assert (capability.capacity.amount, capability.capacity.unit) == (
        400, "hours of care per week")
    assert view.status is S.APPROVED  # details change, decisions stay
    assert view.updated_at == network.last_event(provider_id).occurred_at
    assert view.status_changed_at < view.updated_at

    registry.update_details(provider_id, DetailsUpdate.model_validate(
        {"name": "Northshire Care Cooperative", "areas_served": ["North"]}))
    view = network.view(provider_id)
    assert (view.name, view.areas_served, view.registered_at) == (
        "Northshire Care Cooperative", ["North"], registered_at)
    assert len(view.capabilities) == 1

    registry.suspend(provider_id, "safeguarding checks lapsed")
    network.decided(provider_id, S.SUSPENDED, "safeguarding checks lapsed")
    registry.reinstate(provider_id, "checks renewed")
    network.decided(provider_id, S.APPROVED, "checks renewed")

    registry.remove_capability(provider_id, capability_id, "stopped home care")
    assert network.view(provider_id).capabilities == []

    registry.exit(provider_id, "agreement ended by mutual consent")
    view = network.decided(provider_id, S.EXITED, "agreement ended by mutual consent")
    assert view.name == "Northshire Care Cooperative"
    return provider_id


def incubate_and_graduate(network: Network) -> UUID:
    """An SME: review -> incubating -> every milestone met -> graduated (approved); its size
    band follows its details; standing and credentials leave the network view as it was."""
    registry = network.registry
    provider_id = register(network, name="Riverside Meals", organisation_type="sme",
                           sme_size={"headcount": 4, "turnover_gbp": 150_000})
    assert network.view(provider_id).sme_size_band is SizeBand.MICRO
    registry.update_details(provider_id, DetailsUpdate.model_validate(
        {"sme_size": {"headcount": 30, "turnover_gbp": 3_000_000}}))
    view = network.view(provider_id)
    assert (view.sme_size_band, view.name, view.status) == (
        SizeBand.SMALL, "Riverside Meals", S.APPLIED)

    registry.add_capability(provider_id, NewCapability(category="home-care"))
    registry.start_review(provider_id, "new to council work")
    milestones = registry.incubate(provider_id, IncubationPlan.model_validate({
        "support_plan": "mentoring and a first small grant",
        "milestones": [{"title": "food hygiene rating 5"}, {"title": "first 100 meals"}],
        "reason": "promising, needs support to scale",
    }))
    view = network.decided(provider_id, S.INCUBATING, "promising, needs support to scale")
    assert view.incubation is not None
    assert (view.incubation.milestones_total, view.incubation.milestones_met) == (2, 0)
    assert network_summary(network.views).active_providers_by_category.get("home-care") is None

    for met, milestone_id in enumerate(milestones, start=1):
        registry.meet_milestone(provider_id, milestone_id, "inspection report attached")
        view = network.view(provider_id)
        assert view.incubation is not None
        assert view.incubation.milestones_met == met
        assert view.status is S.INCUBATING

    registry.graduate(provider_id, "all milestones met")
    view = network.decided(provider_id, S.APPROVED, "all milestones met")
    assert view.incubation is not None
    assert view.incubation.milestones_met == 2

    # Events the network view passes over deliberately: the view does not move.
    registry.add_accreditation(provider_id, NewAccreditation.model_validate(
        {"kind": "insurance", "name": "Public liability", "cover_gbp": 5_000_000}))
    accreditation_id = registry.add_accreditation(provider_id, NewAccreditation.model_validate(
        {"kind": "certification", "name": "ISO 9001"}))
    registry.remove_accreditation(provider_id, accreditation_id, "recorded in error")
    registry.record_quality_rating(provider_id, NewQualityRating(
        scheme="Food Standards Agency", rating="5", rated_on=date(2025, 1, 10)))
    registry.declare_conflict_of_interest(provider_id, NewConflictOfInterest(
        declared_by="a commissioning officer", interest="relative is a director",
        declared_on=date(2025, 2, 1)))
    registry.rotate_credentials(provider_id)
    assert network.view(provider_id) == view
    return provider_id


# ---------------------------------------------------------------------- tests


def test_approval_suspension_reinstatement_and_exit_reach_the_network(network: Network) -> None:
    approve_suspend_reinstate_exit(network)


def test_incubation_milestones_and_graduation_reach_the_network(network: Network) -> None:
    provider_id = incubate_and_graduate(network)
    summary = network_summary(network.views)
    assert summary.active_providers_by_category == {"home-care": 1}
    assert summary.active_providers_by_category_and_organisation_type == {
        "home-care": {"sme": 1}}
    assert [p.provider_id for p in list_providers(
        network.views, status=S.APPROVED, category="home-care")] == [provider_id]


def test_the_whole_network_its_figures_filters_and_a_rebuild(network: Network) -> None:
    registry = network.registry
    exited = approve_suspend_reinstate_exit(network)
    graduated = incubate_and_graduate(network)

    rejected = register(network, name="Hilltop Youth Club", organisation_type="community_group")
    registry.reject(rejected, "outside the council's area")
    network.decided(rejected, S.REJECTED, "outside the council's area")

    approved = register(network, name="County Leisure Trust", organisation_type="public_body")
    registry.add_capability(approved, NewCapability(category="day-opportunities"))
    registry.add_capability(approved, NewCapability(category="home-care"))
    registry.start_review(approved, "shared service offer")
    registry.approve(approved, "shared service agreed")
    # An exited provider cannot be a member; the approved and the graduated one can.
    with pytest.raises(InvalidInput, match="exited"):
        register(network, name="Northshire Care Partnership",
                 organisation_type="partnership", members=[exited, graduated])
    partnership = register(network, name="Northshire Care Partnership",
                           organisation_type="partnership", members=[approved, graduated])
    registry.add_capability(partnership, NewCapability(category="day-opportunities"))
    view = network.view(partnership)
    assert (view.status, view.members) == (S.APPLIED, [approved, graduated])

    summary = network_summary(network.views)
    assert summary.providers_by_organisation_type == {
        "vcse": 1, "sme": 1, "community_group": 1, "partnership": 1, "public_body": 1}
    assert summary.providers_by_status == {
        "exited": 1, "approved": 2, "rejected": 1, "applied": 1}
    # Only approved providers are active: the partnership has only applied.
    assert summary.active_providers_by_category_and_organisation_type == {
        "day-opportunities": {"public_body": 1}, "home-care": {"public_body": 1, "sme": 1}}
    assert summary.active_providers_by_category == {"day-opportunities": 1, "home-care": 2}

    def names(**filters: Any) -> list[str]:
        return [p.name for p in list_providers(network.views, **filters)]

    assert names() == ["County Leisure Trust", "Hilltop Youth Club", "Northshire Care Cooperative",
                       "Northshire Care Partnership", "Riverside Meals"]
    assert names(status=S.APPROVED) == ["County Leisure Trust", "Riverside Meals"]
    assert names(category="day-opportunities") == [
        "County Leisure Trust", "Northshire Care Partnership"]
    assert names(status=S.APPROVED, organisation_type=OrganisationType.SME,
                 category="home-care") == ["Riverside Meals"]
    assert names(category="no-such-category") == []
    assert names(limit=2, offset=1) == ["Hilltop Youth Club", "Northshire Care Cooperative"]

    # The scenario put every event type the registry publishes on the log; the projection
    # handles each, or passes over those listed as ignored.
    registry_types = {spec.type for spec in all_specs() if spec.source == REGISTRY}
    assert network.log_types() == registry_types
    assert registry_types > IGNORED

    live = (list_providers(network.views), network_summary(network.views))
    assert network.runner.rebuild() == len(network.registry.history(exited)) + sum(
        len(network.registry.history(p)) for p in (graduated, rejected, partnership, approved))
    assert (list_providers(network.views), network_summary(network.views)) == live


def test_the_network_over_http(network: Network, settings: Settings) -> None:
    graduated = incubate_and_graduate(network)
    register(network, name="Hilltop Youth Club", organisation_type="community_group")
    network.sync()
    reader = network.tokens.create(Role.COUNCIL_STAFF, "market team").token
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        client.headers["Authorization"] = f"Bearer {reader}"

        def get(path: str) -> Any:
            response = client.get(path)
            assert response.status_code == 200, response.text
            return response.json()

        [listed] = get("/network/providers?status=approved&organisation_type=sme"
                       "&category=home-care")
        assert listed == get(f"/network/providers/{graduated}")
        assert (listed["status"], listed["status_reason"], listed["sme_size_band"]) == (
            "approved", "all milestones met", "small")
        assert listed["capabilities"][0]["category"] == "home-care"
        assert listed["incubation"] == {"milestones_total": 2, "milestones_met": 2}
        assert [p["name"] for p in get("/network/providers?status=applied")] == [
            "Hilltop Youth Club"]
        assert get("/network/providers?category=day-opportunities") == []
        assert get("/network/summary") == {
            "providers_by_organisation_type": {"sme": 1, "community_group": 1},
            "providers_by_status": {"approved": 1, "applied": 1},
            "active_providers_by_category": {"home-care": 1},
            "active_providers_by_category_and_organisation_type": {"home-care": {"sme": 1}},
        }
        for bad in ("status=registered", "organisation_type=charity", "category="):
            response = client.get(f"/network/providers?{bad}")
            assert response.status_code == 422, (bad, response.text)
            assert bad.split("=")[0] in response.text
        missing = client.get(f"/network/providers/{uuid4()}")
        assert missing.status_code == 404
        assert client.get("/network/providers/not-a-uuid").status_code == 422


def test_a_read_model_of_an_older_layout_is_replayed_from_the_log_on_start(
    network: Network,
) -> None:
    incubate_and_graduate(network)
    network.sync()
    live = (list_providers(network.views), network_summary(network.views))
    with network.views.transaction() as tx:  # as the first slice left it: positions at the end
        for table in ("network_schema", "network_providers", "network_capabilities"):
            tx.execute(f"DROP TABLE {table}")
        tx.execute(
            "CREATE TABLE network_providers (provider_id TEXT PRIMARY KEY, name TEXT NOT NULL,"
            " organisation_type TEXT NOT NULL, status TEXT NOT NULL, registered_at TEXT NOT NULL,"
            " updated_at TEXT NOT NULL)"
        )
    assert network.runner.position() != {}

    network.logs.append(open_event_log(network.settings))
    restarted = ProjectionRunner(NetworkProjection(), network.views, network.logs[-1])
    assert restarted.position() == {}
    restarted.catch_up()
    assert (list_providers(network.views), network_summary(network.views)) == live
