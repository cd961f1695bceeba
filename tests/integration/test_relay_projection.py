"""Outbox relay and projection runner against both deployments: nothing lost, nothing doubled,
whatever crashes where."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from council.kernel.context import CommandContext, command_context
from council.kernel.contracts.provider_registry import OrganisationType
from council.kernel.envelope import EventEnvelope
from council.platform.eventlog import open_event_log
from council.platform.eventstore import open_application, store_database
from council.platform.projection import ProjectionRunner
from council.platform.relay import OutboxRelay
from council.platform.settings import Settings
from council.platform.sql import Tx, open_database
from council.services.integrator.projections import (
    NetworkProjection,
    list_providers,
    provider_counts,
)
from council.services.provider_registry.application import ProviderRegistry
from council.services.provider_registry.domain.commands import NewProvider

KINDS = list(OrganisationType)


def applicant(i: int, earlier: list[uuid.UUID]) -> NewProvider:
    """Provider i, of the i-th organisation type in turn, with what that type needs: an SME
    gives its size; a partnership names two providers registered before it."""
    kind = KINDS[i % len(KINDS)]
    body: dict[str, object] = {"name": f"Provider {i}", "organisation_type": kind}
    if kind is OrganisationType.SME:
        body["sme_size"] = {"headcount": 12, "turnover_gbp": 900_000}
    if kind is OrganisationType.PARTNERSHIP:
        body["members"] = earlier[:2]
    return NewProvider.model_validate(body)


def register(registry: ProviderRegistry, count: int) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    with command_context(CommandContext(actor="test:registrar")):
        for i in range(count):
            ids.append(registry.register_provider(applicant(i, ids))[0])
    return ids


class Parts:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = open_application(ProviderRegistry, settings)
        self.store_db = store_database(settings, "provider_registry")
        self.views = open_database(settings, "integrator_views")
        self.logs = []  # type: ignore[var-annotated]

    def relay(self) -> OutboxRelay:
        self.logs.append(open_event_log(self.settings))
        return OutboxRelay(self.registry, self.logs[-1], self.store_db, batch_size=20)

    def runner(self) -> ProjectionRunner:
        self.logs.append(open_event_log(self.settings))
        return ProjectionRunner(NetworkProjection(), self.views, self.logs[-1])

    def log_records(self) -> list[EventEnvelope]:
        reader = open_event_log(self.settings)
        self.logs.append(reader)
        topic = reader.topic_for("provider_registry")
        found: list[EventEnvelope] = []
        empty = 0
        position: dict[str, int] = {}
        while empty < 3:  # Kafka may answer empty while a fetch is in flight
            batch = reader.read([topic], position, 1000)
            empty = 0 if batch else empty + 1
            for record in batch:
                position[record.partition_key] = record.offset + 1
                found.append(record.envelope)
        return found

    def close(self) -> None:
        for event_log in self.logs:
            event_log.close()
        self.registry.close()
        self.store_db.close()
        self.views.close()


@pytest.fixture
def parts(settings: Settings) -> Iterator[Parts]:
    built = Parts(settings)
    yield built
    built.close()


def expected_counts(n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in range(n):
        counts[KINDS[i % len(KINDS)].value] = counts.get(KINDS[i % len(KINDS)].value, 0) + 1
    return counts


def test_every_stored_event_reaches_the_log_once_in_store_order(parts: Parts) -> None:
    ids = register(parts.registry, 45)
    relay = parts.relay()
    assert relay.pending() == 45
    assert relay.drain() == 45
    assert relay.pending() == 0
    assert parts.relay().drain() == 0  # a restarted relay resumes from its stored position
    published = parts.log_records()
    assert sorted(e.stream_id for e in published) == sorted(str(i) for i in ids)
    by_partition_order = [e for e in published if e.stream_id == str(ids[0])]
    assert len(by_partition_order) == 1
    assert {e.actor for e in published} == {"test:registrar"}


def test_relay_crash_after_append_republishes_and_projection_counts_once(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(parts.registry, 50)
    crashing = parts.relay()

    def crash(*_: object) -> None:
        raise RuntimeError("killed between append and saving the position")

    monkeypatch.setattr(crashing, "_save", crash)
    with pytest.raises(RuntimeError):
        crashing.relay_once()  # 20 events appended, position not saved
    assert parts.relay().drain() == 50  # the restarted relay publishes those 20 again

    published = parts.log_records()
    assert len(published) == 70
    assert len({e.event_id for e in published}) == 50  # duplicates keep their ids

    runner = parts.runner()
    runner.catch_up()
    assert provider_counts(parts.views) == expected_counts(50)
    assert len(list_providers(parts.views)) == 50


class WorkerDied(BaseException):
    """The process dying mid-batch (as kill -9 would): unlike an event the projection cannot
    apply, which the runner parks, nothing of the batch may be kept."""


class Exploding(NetworkProjection):
    def __init__(self, after: int) -> None:
        self.left = after

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        self.left -= 1
        if self.left < 0:
            raise WorkerDied("projection worker died mid-batch")
        super().apply(tx, event)


def test_projection_crash_mid_batch_applies_nothing_of_that_batch(parts: Parts) -> None:
    register(parts.registry, 30)
    parts.relay().drain()
    parts.logs.append(open_event_log(parts.settings))
    dying = ProjectionRunner(Exploding(after=12), parts.views, parts.logs[-1])
    with pytest.raises(WorkerDied):
        dying.catch_up(limit=1000)
    # The whole failed batch rolled back: rows and position stay together.
    applied = sum(provider_counts(parts.views).values())
    assert applied == len(list_providers(parts.views))
    assert applied < 30

    parts.runner().catch_up()
    assert provider_counts(parts.views) == expected_counts(30)


def test_rebuild_from_the_log_gives_the_same_read_model(parts: Parts) -> None:
    register(parts.registry, 25)
    parts.relay().drain()
    runner = parts.runner()
    runner.catch_up()
    live = (list_providers(parts.views), provider_counts(parts.views))
    assert runner.rebuild() >= 25
    assert (list_providers(parts.views), provider_counts(parts.views)) == live
    assert runner.position() != {}


def test_unknown_event_types_pass_through_projection_without_harm(parts: Parts) -> None:
    register(parts.registry, 3)
    parts.relay().drain()
    writer = open_event_log(parts.settings)
    parts.logs.append(writer)
    first = parts.log_records()[0]
    future = first.model_copy(update={
        "event_id": uuid.uuid4(), "type": "ProviderRenamedV9", "stream_position": 2,
        "data": {"novel": True},
    })
    writer.append([future])
    runner = parts.runner()
    runner.catch_up()
    assert sum(provider_counts(parts.views).values()) == 3
    assert any(e.type == "ProviderRenamedV9" for e in parts.log_records())
