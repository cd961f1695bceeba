"""The audit chain on both deployments, and on Kafka across partitions: PostgreSQL event store,
the real broker, a source's sequence spread over three partitions by stream id and put back
together by `verify`. A Kafka log cannot be edited in place, so the tampering tests copy a real
topic, record by record and partition by partition, into a fresh one with one event edited,
removed, moved or added, as someone rewriting the broker's data would, and verify the copy.
Every service's own store (SQLite or PostgreSQL) is checked against its chain too: an event
edited in it or deleted from it fails, named; a forged tip is named, and so is the genuine
event after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from council.platform.audit.keys import load_signing_key
from council.platform.audit.trail import verify_log
from council.platform.audit.verify import Kind, Report
from council.platform.eventlog import LogRecord
from council.platform.eventlog.kafka import KafkaEventLog
from council.platform.settings import SERVICE_NAMES, Settings
from council.services.integrator.adapters.evidence_bundle import export_bundle, verify_bundle
from tests.unit.audit_support import (
    REGISTRY,
    Stack,
    Trail,
    forged_tip,
    only_break,
    parsed,
    resealed,
)

Partitions = dict[int, list[bytes]]


def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "embedded":
        return Settings(var_dir=tmp_path, log_url="embedded")
    return Settings(
        var_dir=tmp_path, database_url=request.getfixturevalue("postgres_url"),
        schema_prefix=request.getfixturevalue("pg_schema_prefix"),
        log_url=f"kafka://{request.getfixturevalue('kafka_bootstrap')}",
        topic_prefix=request.getfixturevalue("pg_schema_prefix"))


@pytest.fixture(params=["embedded", "scale"])
def trail(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Trail]:
    built = Trail(deployment(request, tmp_path))
    yield built
    built.close()


@pytest.fixture(params=["embedded", "scale"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    built = Stack(deployment(request, tmp_path))
    built.write()
    built.publish()
    yield built
    built.close()


def records(trail: Trail, source: str = REGISTRY) -> list[LogRecord]:
    event_log = trail.log()
    topic = event_log.topic_for(source)
    return [r for batch in event_log.read_all([topic]) for r in batch]


def test_the_chain_verifies_on_both_deployments_through_a_crash(trail: Trail) -> None:
    trail.register(40)
    crashing = trail.relay(batch_size=9)

    def crash(*_: object) -> None:
        raise RuntimeError("killed between append and saving the position")

    crashing._save = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        crashing.relay_once()
    trail.relay(batch_size=9).drain()
    trail.checkpoint()
    found = records(trail)
    if trail.settings.log_url.startswith("kafka://"):
        assert len({r.partition for r in found}) == 3  # the sequence spans the partitions
    report = trail.verify()
    assert report.intact, [b.describe() for b in report.breaks]
    chain = report.chains[0]
    assert chain.events == 40 + 14
    assert chain.duplicates == 9  # the batch published twice, recognised by its bytes
    assert chain.checkpoints == 1
    sequences = sorted(parsed(r.value)["sequence"] for r in found)
    assert sequences[-1] == 54


def test_an_export_holds_each_chain_in_sequence_order(trail: Trail, tmp_path: Path) -> None:
    trail.register(30)
    trail.relay(batch_size=8).drain()
    trail.checkpoint()
    key = load_signing_key(trail.settings)
    bundle = export_bundle(trail.log(), tmp_path / "bundle", key, sources=(REGISTRY,)).path
    lines = (bundle / "events" / f"{REGISTRY}.ndjson").read_bytes().splitlines()
    assert [parsed(line)["sequence"] for line in lines] == list(range(1, 41))
    assert sorted(lines) == sorted({r.value for r in records(trail)})  # the log's own bytes
    report = verify_bundle(bundle, key=key.public_key())
    assert report.intact
    assert report.checkpoints == 1


# --- tampering with a Kafka log ----------------------------------------------------------------


@pytest.fixture
def kafka_trail(postgres_url: str, kafka_bootstrap: str, pg_schema_prefix: str,
                tmp_path: Path) -> Iterator[Trail]:
    settings = Settings(var_dir=tmp_path, database_url=postgres_url,
                        schema_prefix=pg_schema_prefix, log_url=f"kafka://{kafka_bootstrap}",
                        topic_prefix=pg_schema_prefix)
    built = Trail(settings)
    built.register(30)
    built.relay(batch_size=8).drain()
    built.checkpoint()
    yield built
    built.close()


def by_partition(found: list[LogRecord]) -> Partitions:
    partitions: Partitions = {}
    for record in sorted(found, key=lambda r: (r.partition, r.offset)):
        partitions.setdefault(record.partition, []).append(record.value)
    return partitions


def copy_with(trail: Trail, prefix: str, change: Callable[[Partitions], None]) -> Report:
    """Copy the registry's and the audit topic into topics under `prefix`, each record to the
    partition it came from, with `change` made to the registry's; verify the copy."""
    bootstrap = trail.settings.log_url.removeprefix("kafka://")
    assert prefix != trail.settings.topic_prefix
    copy = KafkaEventLog(bootstrap, topic_prefix=prefix, partitions=3,
                         sources=(REGISTRY, "audit"))
    producer: Any = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for source in (REGISTRY, "audit"):
            partitions = by_partition(records(trail, source))
            if source == REGISTRY:
                change(partitions)
            for partition, values in partitions.items():
                for value in values:
                    producer.send(copy.topic_for(source), value=value, partition=partition)
        producer.flush(timeout=30)
        report, _ = verify_log(copy, sources=(REGISTRY,), key=trail.public_key)
        return report
    finally:
        producer.close()
        copy.close()


def fullest(partitions: Partitions) -> list[bytes]:
    return max(partitions.values(), key=len)


def test_an_untouched_copy_verifies(kafka_trail: Trail, unique_prefix: str) -> None:
    report = copy_with(kafka_trail, f"{unique_prefix}copy", lambda partitions: None)
    assert report.intact
    assert report.chains[0].events == 40


def test_an_edited_event_on_kafka_fails_at_that_event(kafka_trail: Trail,
                                                      unique_prefix: str) -> None:
    edited: dict[str, Any] = {}

    def edit(partitions: Partitions) -> None:
        values = fullest(partitions)
        edited.update(parsed(values[3]))
        values[3] = values[3].replace(b"Provider", b"Pr0vider", 1)

    broken = only_break(copy_with(kafka_trail, f"{unique_prefix}copy", edit))
    assert (broken.kind, broken.sequence, broken.event_id) == (
        Kind.HASH_MISMATCH, edited["sequence"], edited["event_id"])
    assert broken.place is not None
    assert broken.place.offset == 3


def test_a_deleted_event_on_kafka_fails_as_missing(kafka_trail: Trail,
                                                   unique_prefix: str) -> None:
    removed: dict[str, Any] = {}

    def delete(partitions: Partitions) -> None:
        removed.update(parsed(fullest(partitions).pop(2)))

    broken = only_break(copy_with(kafka_trail, f"{unique_prefix}copy", delete))
    assert (broken.kind, broken.sequence) == (Kind.MISSING, removed["sequence"])


def test_reordered_events_on_kafka_fail_as_out_of_order(kafka_trail: Trail,
                                                        unique_prefix: str) -> None:
    moved: dict[str, Any] = {}

    def swap(partitions: Partitions) -> None:
        values = fullest(partitions)
        moved.update(parsed(values[4]))
        values[4], values[5] = values[5], values[4]

    broken = only_break(copy_with(kafka_trail, f"{unique_prefix}copy", swap))
    assert (broken.kind, broken.sequence, broken.event_id) == (
        Kind.OUT_OF_ORDER, moved["sequence"], moved["event_id"])


def test_an_inserted_event_on_kafka_fails_as_inserted(kafka_trail: Trail,
                                                      unique_prefix: str) -> None:
    forged: dict[str, Any] = {}

    def insert(partitions: Partitions) -> None:
        values = fullest(partitions)
        forged.update(parsed(values[3]))
        forged["event_id"] = "00000000-0000-4000-8000-000000000002"
        forged["actor"] = "someone:else"
        values.insert(3, resealed(forged))

    broken = only_break(copy_with(kafka_trail, f"{unique_prefix}copy", insert))
    assert (broken.kind, broken.sequence, broken.event_id) == (
        Kind.INSERTED, forged["sequence"], forged["event_id"])


# --- every service's store against its chain ---------------------------------------------------

# A text in each service's second stored event (a review, a finished read, a measurement).
EDITS = {REGISTRY: (b"documents in order", b"documents forged!"),
         "integrator": (b'"returned":3', b'"returned":9'),
         "outcomes": (b"housing register", b"council estimate")}


def test_an_untouched_stack_verifies_with_its_stores(stack: Stack) -> None:
    report = stack.verify()
    assert report.intact, [b.describe() for b in report.breaks]
    assert {c.source: c.stored for c in report.chains if c.source != "audit"} == {
        REGISTRY: 4, "integrator": 4, "outcomes": 2}


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_an_edit_in_any_store_fails_naming_the_event(stack: Stack, service: str) -> None:
    notification_id, envelope = stack.stored(service, 2)
    stack.edit(service, notification_id, *EDITS[service])
    broken = only_break(stack.verify())
    assert (broken.kind, broken.source, broken.sequence, broken.event_id) == (
        Kind.STORE_EDITED, service, 2, envelope["event_id"])
    assert f"stream {envelope['stream_id']}" in broken.detail


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_deletion_from_any_store_fails_naming_the_event(stack: Stack, service: str) -> None:
    notification_id, envelope = stack.stored(service, 2)
    stack.delete(service, notification_id)
    broken = only_break(stack.verify())
    assert (broken.kind, broken.source, broken.sequence, broken.event_id) == (
        Kind.STORE_MISSING, service, 2, envelope["event_id"])


def test_a_forged_tip_and_the_genuine_event_after_it_are_named(stack: Stack) -> None:
    forged = forged_tip(stack)
    broken = only_break(stack.verify())
    assert (broken.kind, broken.event_id) == (Kind.STORE_MISSING, forged["event_id"])
    stack.write(1)
    stack.publish()  # batches of three, each signed as it is published
    _, genuine = stack.stored(REGISTRY, 5)
    report = stack.verify(stores=False)
    inserted = [b for b in report.breaks if b.kind is Kind.INSERTED]
    assert [(b.sequence, b.event_id) for b in inserted] == [
        (forged["sequence"], forged["event_id"])]
    assert f"event {genuine['event_id']}" in inserted[0].detail
