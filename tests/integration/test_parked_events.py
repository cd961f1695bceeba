"""No event can stop a read model (PostgreSQL and Kafka, where the tester found it): an event a
read model cannot apply (text with NUL, which PostgreSQL refuses) is parked with its reason,
every later event is applied, /ready and /metrics name what is parked, the CLI lists it, and
`council projections retry` applies it once the projection is fixed.

The poisonous events are put on the shared log as a producer did before the services refused
NUL at their edge: events on the log stay there for good, whatever the edge accepts now."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from council.kernel.envelope import EventEnvelope
from council.platform.eventlog import open_event_log
from council.platform.projection import Projection
from council.platform.settings import Settings
from council.services.integrator.projections.network import NetworkProjection
from council.services.outcomes.processes.payments import PaymentsToSettle
from council.services.outcomes.projections.deliveries import DeliveriesProjection, get_delivery_row
from council.services.provider_registry.projections import DirectoryProjection
from council.tools.cli import main as council
from tests.unit.test_api import _sample
from tests.unit.test_deliveries_api import (
    World,
    build_world,
    call,
    eventually,
    post,
    report,
    runtime_of,
)
from tests.waiting import eventually as wait_until

DEADLINE_SECONDS = 90.0


@pytest.fixture
def settings(postgres_url: str, kafka_bootstrap: str, pg_schema_prefix: str,
             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    env = {"COUNCIL_DATABASE_URL": postgres_url, "COUNCIL_SCHEMA_PREFIX": pg_schema_prefix,
           "COUNCIL_LOG_URL": f"kafka://{kafka_bootstrap}",
           "COUNCIL_TOPIC_PREFIX": pg_schema_prefix, "COUNCIL_VAR_DIR": str(tmp_path)}
    for name, value in env.items():  # what `council ...` reads, run here below
        monkeypatch.setenv(name, value)
    return Settings(var_dir=tmp_path, database_url=postgres_url, schema_prefix=pg_schema_prefix,
                    log_url=f"kafka://{kafka_bootstrap}", topic_prefix=pg_schema_prefix,
                    relay_interval=0.01)


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    with ExitStack() as stack:
        yield build_world(stack, settings, DEADLINE_SECONDS)


def events_of(settings: Settings, source: str, kind: str) -> list[EventEnvelope]:
    log = open_event_log(settings)
    try:
        return [r.envelope for records in log.read_all([log.topic_for(source)])
                for r in records if r.type == kind]
    finally:
        log.close()


def poisoned(template: EventEnvelope, stream_id: UUID, **data: Any) -> EventEnvelope:
    """A copy of a real event for a new stream, with `data` changed."""
    id_field = next(k for k, v in template.data.items() if str(v) == template.stream_id)
    return template.model_copy(update={
        "event_id": uuid4(), "stream_id": str(stream_id), "stream_position": 1,
        "data": {**template.data, id_field: str(stream_id), **data}})


def publish(settings: Settings, *events: EventEnvelope) -> None:
    log = open_event_log(settings)
    try:
        log.append(list(events))
    finally:
        log.close()


def tolerate_nul(monkeypatch: pytest.MonkeyPatch, *kinds: type[Projection]) -> None:
    """The fix: the projection writes NUL as U+FFFD, which PostgreSQL takes."""
    for kind in kinds:
        original = kind.apply_all

        def fixed(self: Projection, tx: Any, events: Any, original: Any = original) -> None:
            original(self, tx, [e.model_copy(update={"data": json.loads(
                json.dumps(e.data).replace("\\u0000", "\ufffd"))}) for e in events])

        monkeypatch.setattr(kind, "apply_all", fixed)


def ready(client: Any) -> tuple[int, dict[str, Any]]:
    response = client.get("/ready")
    return response.status_code, response.json()


def test_a_delivery_report_the_read_model_cannot_store_is_parked_and_retried(
        world: World, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = world.settings
    first = post(world, report(world.agreements["active"]))
    assert first.status_code == 201, first.text
    wait_until(lambda: events_of(settings, "outcomes", "DeliveryReported"), bool,
               DEADLINE_SECONDS)
    template = events_of(settings, "outcomes", "DeliveryReported")[0]
    bad_id = uuid4()
    poison = poisoned(template, bad_id, location="Northshire\x00Hall",
                      idempotency_key="nul-1")
    # The payments process has a bug for this one event too (its marks park it as well).
    marking = PaymentsToSettle.apply_all

    def buggy(self: PaymentsToSettle, tx: Any, events: Any) -> None:
        if any(e.event_id == poison.event_id for e in events):
            raise KeyError("a field the payments process did not expect")
        marking(self, tx, events)

    monkeypatch.setattr(PaymentsToSettle, "apply_all", buggy)
    publish(settings, poison)
    later = post(world, report(world.agreements["active"]))
    assert later.status_code == 201, later.text

    # Every later report reaches the read model and GET /deliveries.
    views = runtime_of(world.outcomes).views
    later_id = UUID(later.json()["delivery_id"])
    eventually(lambda: get_delivery_row(views, later_id), lambda row: row is not None,
               DEADLINE_SECONDS)
    listed = world.outcomes.get("/deliveries", headers=world.auth["hillside"]).text
    assert str(later_id) in listed

    # /ready names what is parked, and why; /metrics counts it; the CLI lists it.
    status, body = eventually(lambda: ready(world.outcomes),
                              lambda answer: len(answer[1].get("parked") or {}) == 2,
                              DEADLINE_SECONDS)
    assert status == 503
    assert body["status"] == "not ready"
    (parked,) = body["parked"]["outcomes.deliveries"]["items"]
    assert parked["event_id"] == str(poison.event_id)
    assert parked["type"] == "DeliveryReported"
    assert "0x00" in parked["reason"] or "NUL" in parked["reason"]
    (marked,) = body["parked"]["outcomes.payments_process"]["items"]
    assert "KeyError" in marked["reason"]
    assert str(poison.event_id) in body["checks"]["parked"]
    metrics = world.outcomes.get("/metrics").text
    assert _sample(metrics, "council_projection_parked_events",
                   projection="outcomes.deliveries") == 1
    assert _sample(metrics, "council_projection_parked_events",
                   projection="outcomes.agreements") == 0
    assert council(["projections", "parked"]) == 0
    listing = capsys.readouterr().out
    assert str(poison.event_id) in listing
    assert "outcomes.payments_process" in listing

    # Retried before the fix: still parked (exit code 1). After it: applied and removed.
    assert council(["projections", "retry", "--projection", "outcomes.deliveries"]) == 1
    tolerate_nul(monkeypatch, DeliveriesProjection)
    monkeypatch.setattr(PaymentsToSettle, "apply_all", marking)
    assert council(["projections", "retry"]) == 0
    row = get_delivery_row(views, bad_id)
    assert row is not None
    assert row.location == "Northshire\ufffdHall"
    status, body = ready(world.outcomes)
    assert body["parked"] == {}
    assert body["checks"]["parked"] == "ok"
    assert status == 200, body


def test_a_provider_the_directory_and_network_cannot_store_is_parked_and_retried(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = world.settings
    template = events_of(settings, "provider_registry", "ProviderRegistered")[0]
    bad_id = uuid4()
    poison = poisoned(template, bad_id, name="Brookfield\x00Tool Library")
    publish(settings, poison)
    later = call(world.registry, "/providers",
                 {"name": "Castleton Men's Shed", "organisation_type": "community_group"},
                 world.admin)["provider_id"]

    # The later provider reaches the directory (registry) and the network (integrator).
    eventually(lambda: world.registry.get("/providers?q=Castleton",
                                          headers=world.admin).text,
               lambda text: later in text, DEADLINE_SECONDS)
    eventually(lambda: world.integrator.get(f"/network/providers/{later}",
                                            headers=world.admin).status_code,
               lambda code: code == 200, DEADLINE_SECONDS)
    for client, name in ((world.registry, DirectoryProjection.name),
                         (world.integrator, NetworkProjection.name)):
        status, body = eventually(lambda c=client: ready(c),
                                  lambda answer, n=name: n in (answer[1].get("parked") or {}),
                                  DEADLINE_SECONDS)
        assert status == 503
        (parked,) = body["parked"][name]["items"]
        assert parked["event_id"] == str(poison.event_id)
        assert parked["type"] == "ProviderRegistered"

    tolerate_nul(monkeypatch, DirectoryProjection, NetworkProjection)
    assert council(["projections", "retry"]) == 0
    assert world.integrator.get(f"/network/providers/{bad_id}",
                                headers=world.admin).status_code == 200
    for client in (world.registry, world.integrator):
        status, body = ready(client)
        assert body["parked"] == {}
        assert status == 200, body
