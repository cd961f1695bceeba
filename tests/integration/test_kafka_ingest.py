"""Delivery reports over Kafka, against a real Kafka-protocol broker: valid reports land in the
outcomes store and (through the relay) on the shared log, invalid ones reach the rejects topic
with the reason and the original payload, replays are accepted once, and neither a consumer that
dies mid-stream nor a broker that goes away loses or doubles anything.

The outcomes store is SQLite in a temporary directory and, where marked, PostgreSQL. Which
agreements exist is normally read from the agreements projection; here `app.agreements` is a
fixed lookup (`StaticAgreements`) so these tests need no integrator.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from council.platform.eventlog import open_event_log
from council.platform.eventstore import open_application, store_database
from council.platform.identity import Role, TokenStore
from council.platform.relay import OutboxRelay
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.services.outcomes.adapters.kafka_ingest import (
    MAX_MESSAGE_BYTES,
    KafkaDeliveryIngest,
    inbound_topic,
    partition_shares,
    rejects_topic,
)
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.acceptance import AgreementInfo
from council.services.outcomes.domain.aggregates import delivery_id_for
from council.tools.tansu import free_port, start_broker

pytestmark = pytest.mark.integration

DAY = (date.today() - timedelta(days=10)).isoformat()
Headers = list[tuple[str, bytes]]
ANY_FIELD = "(the report as a whole, or the field the validator names)"


class StaticAgreements:
    """A fixed agreement lookup (picklable, for the consumer started in another process)."""

    def __init__(self, agreements: dict[UUID, AgreementInfo]) -> None:
        self.agreements = agreements

    def __call__(self, agreement_ids: Sequence[UUID]) -> dict[UUID, AgreementInfo]:
        return {i: self.agreements[i] for i in agreement_ids if i in self.agreements}


def report(key: str, agreement_id: UUID, **changes: Any) -> bytes:
    body: dict[str, Any] = {"idempotency_key": key, "agreement_id": str(agreement_id),
                            "activity_type": "sessions_delivered", "quantity": 3,
                            "period_start": DAY, "period_end": DAY}
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def bearer(token: str) -> Headers:
    return [("authorization", f"Bearer {token}".encode())]


@dataclass(frozen=True)
class Sent:
    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int
    offset: int


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class World:
    """Two providers with tokens, their agreements (active and not), a council token, the
    outcomes store, and the ingest under test."""

    def __init__(self, settings: Settings, batch_size: int = 500) -> None:
        self.settings = settings
        self.bootstrap = settings.log_url.removeprefix("kafka://")
        self.provider_a, self.provider_b = uuid4(), uuid4()
        self.agreement_a, self.drafted_a, self.ended_a, self.agreement_b = (
            uuid4(), uuid4(), uuid4(), uuid4())
        self.agreements = {
            self.agreement_a: AgreementInfo(self.agreement_a, "active",
                                            frozenset({self.provider_a})),
            self.drafted_a: AgreementInfo(self.drafted_a, "drafted", frozenset({self.provider_a})),
            self.ended_a: AgreementInfo(self.ended_a, "ended", frozenset({self.provider_a})),
            self.agreement_b: AgreementInfo(self.agreement_b, "active",
                                            frozenset({self.provider_b})),
        }
        self.app = open_application(Outcomes, settings)
        self.app.agreements = StaticAgreements(self.agreements)
        self.identity = open_database(settings, "identity")
        self.tokens = TokenStore(self.identity)
        self.token_a = self.tokens.create(Role.PROVIDER, "Age UK Northshire",
                                          self.provider_a).token
        self.token_b = self.tokens.create(Role.PROVIDER, "Northshire Leisure",
                                          self.provider_b).token
        self.council_token = self.tokens.create(Role.COMMISSIONER, "Jo Smith").token
        self.store_db = store_database(settings, Outcomes.service)
        self.batch_size = batch_size
        self.ingest = self.new_ingest()
        self.ingest.ensure_topics()
        self.inbound = inbound_topic(settings)
        self.rejects = rejects_topic(settings)
        self._closing: list[Any] = [self.ingest]

    def new_ingest(self) -> KafkaDeliveryIngest:
        """A fresh consumer, as after a restart: it knows only the offsets stored."""
        ingest = KafkaDeliveryIngest.for_settings(self.app, self.tokens, self.store_db,
                                                  self.settings, batch_size=self.batch_size)
        assert ingest is not None
        return ingest

    def send(self, messages: Sequence[tuple[bytes | None, bytes | None, Headers]],
             ) -> list[Sent]:
        """Produce (key, value, headers) in order; returns where each landed."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                 enable_idempotence=True, linger_ms=2)
        try:
            futures = [producer.send(self.inbound, key=k, value=v, headers=h)
                       for k, v, h in messages]
            producer.flush(timeout=30)
            metas = [f.get(timeout=30) for f in futures]
        finally:
            producer.close(timeout=5)
        return [Sent(k, v, h, m.partition, m.offset)
                for (k, v, h), m in zip(messages, metas, strict=True)]

    def as_a(self, value: bytes | None) -> tuple[bytes, bytes | None, Headers]:
        return str(self.provider_a).encode(), value, bearer(self.token_a)

    def as_b(self, value: bytes | None) -> tuple[bytes, bytes | None, Headers]:
        return str(self.provider_b).encode(), value, bearer(self.token_b)

    def consumed(self) -> int:
        return sum(self.ingest.position().values())

    def consume(self, ingest: KafkaDeliveryIngest | None = None, until: int | None = None,
                timeout: float = 60) -> None:
        """Run `ingest` until the stored offsets cover `until` messages in all."""
        ingest = ingest or self.ingest
        deadline = time.monotonic() + timeout
        while sum(ingest.position().values()) < (until or 0):
            ingest.run_once()
            assert time.monotonic() < deadline, "the ingest did not read every message in time"

    def stored_events(self, delivery_id: UUID) -> int:
        return len(self.app.recorder.select_events(delivery_id))

    def stored_reports(self) -> list[UUID]:
        """The delivery id of every DeliveryReport.Reported in the store, repeats included."""
        found: list[UUID] = []
        start = 1
        while page := self.app.recorder.select_notifications(start, 1000):
            found.extend(n.originator_id for n in page if n.topic.endswith("Reported"))
            start = page[-1].id + 1
        return found

    def read_rejects(self, at_least: int, timeout: float = 30) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in read_topic(self.bootstrap, self.rejects,
                                                        at_least, timeout)]

    def close(self) -> None:
        for closeable in self._closing:
            closeable.close()
        self.app.close()
        self.store_db.close()
        self.identity.close()


def read_topic(bootstrap: str, topic: str, at_least: int, timeout: float = 30) -> list[Any]:
    """Every record of `topic` from the start, waiting for `at_least` (and a moment more, so
    a surplus shows)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             fetch_max_wait_ms=100)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < at_least and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        for _ in range(3):
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, kafka_bootstrap: str,
             unique_prefix: str) -> Settings:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        prefix = request.getfixturevalue("pg_schema_prefix")
        return Settings(database_url=url, schema_prefix=prefix,
                        log_url=f"kafka://{kafka_bootstrap}", topic_prefix=unique_prefix)
    return Settings(var_dir=tmp_path, log_url=f"kafka://{kafka_bootstrap}",
                    topic_prefix=unique_prefix)


@pytest.fixture
def sqlite_settings(tmp_path: Path, kafka_bootstrap: str, unique_prefix: str) -> Settings:
    return Settings(var_dir=tmp_path, log_url=f"kafka://{kafka_bootstrap}",
                    topic_prefix=unique_prefix)


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    built = World(settings)
    try:
        yield built
    finally:
        built.close()


# --------------------------------------------------------------------------- what lands where


def test_valid_reports_land_in_the_store_and_on_the_shared_log(world: World) -> None:
    valid = [world.as_a(report(f"a-{i}", world.agreement_a, quantity=i + 1)) for i in range(40)]
    valid += [world.as_b(report(f"b-{i}", world.agreement_b, activity_type="meals"))
              for i in range(10)]
    world.send(valid)
    world.consume(until=len(valid))

    assert world.ingest.counts.accepted == len(valid)
    assert world.ingest.counts.rejected == 0
    expected = {delivery_id_for(world.provider_a, f"a-{i}") for i in range(40)}
    expected |= {delivery_id_for(world.provider_b, f"b-{i}") for i in range(10)}
    assert sorted(world.stored_reports(), key=str) == sorted(expected, key=str)
    stored = world.app.delivery(delivery_id_for(world.provider_a, "a-7"))
    assert (stored.channel, stored.quantity, stored.agreement_id) == (
        "kafka", 8, world.agreement_a)

    event_log = open_event_log(world.settings)
    try:
        relay = OutboxRelay(world.app, event_log, world.store_db)
        assert relay.drain() == len(valid)
        records = [r for batch in event_log.read_all([event_log.topic_for("outcomes")])
                   for r in batch]
    finally:
        event_log.close()
    published = [r.envelope for r in records if r.envelope.type == "DeliveryReported"]
    assert sorted(UUID(e.stream_id) for e in published) == sorted(expected)
    for envelope in published:
        assert envelope.data["channel"] == "kafka"
        provider = UUID(envelope.data["provider_id"])
        assert envelope.organisation == str(provider)
        label = "Age UK Northshire" if provider == world.provider_a else "Northshire Leisure"
        assert envelope.actor == f"provider:{label}"


def test_invalid_reports_reach_the_rejects_topic_with_the_reason(world: World) -> None:
    a = world.agreement_a
    key_a = str(world.provider_a).encode()
    cases: list[tuple[tuple[bytes | None, bytes | None, Headers], str | None, str,
                      UUID | None]] = [
        # (message, field, words in the reason, provider named in the reject)
        (world.as_a(report("x1", a, activity_type="juggling")), "activity_type",
         "not a known activity type", world.provider_a),
        (world.as_a(report("x2", a, quantity=-4)), "quantity", "greater than 0",
         world.provider_a),
        (world.as_a(b'{"idempotency_key": "x3", "agreement_id": '), None, "not valid JSON",
         world.provider_a),
        (world.as_a(b'["a list", "not a report"]'), None, "JSON object", world.provider_a),
        (world.as_a(report("x4", a, period_start=DAY, period_end="2001-01-01")), ANY_FIELD,
         "period_end is before period_start", world.provider_a),
        (world.as_a(report("x5", a, colour="blue")), "colour", "Extra inputs",
         world.provider_a),
        (world.as_a(report("x20", a, location="Hall\u0000")), "location", "control character",
         world.provider_a),
        (world.as_a(report("x21", a, period_start=f"{DAY}T00:00:00")), "period_start",
         "not a date-time", world.provider_a),
        (world.as_a(report("x22", a, quantity="1e-999999999")), "quantity", "decimal places",
         world.provider_a),
        (world.as_a(None), None, "empty message", world.provider_a),
        (world.as_a(b" " * (MAX_MESSAGE_BYTES + 1)), None, "over the limit", world.provider_a),
        ((key_a, report("x6", a), []), "headers.authorization", "missing credentials", None),
        ((key_a, report("x7", a), bearer("cit_000000000000_forged")),
         "headers.authorization", "invalid or revoked token", None),
        ((key_a, report("x8", a), [("authorization", world.token_a.encode())]),
         "headers.authorization", "Bearer <provider token>", None),
        ((key_a, report("x9", a), bearer(world.council_token)), "headers.authorization",
         "role commissioner may not report delivery", None),
        # provider A reporting against provider B's agreement (keyed as B: the key proves
        # nothing, the token says who reports)
        ((str(world.provider_b).encode(), report("x10", world.agreement_b),
          bearer(world.token_a)), "agreement_id", "not one of this provider's",
         world.provider_a),
        (world.as_a(report("x11", world.drafted_a)), "agreement_id", "drafted, not active",
         world.provider_a),
        (world.as_a(report("x12", world.ended_a)), "agreement_id", "ended, not active",
         world.provider_a),
        (world.as_a(report("x13", uuid4())), "agreement_id", "no agreement", world.provider_a),
    ]
    good = [world.as_a(report("ok-1", a)), world.as_b(report("ok-2", world.agreement_b))]
    sent = world.send([c[0] for c in cases] + good)
    world.consume(until=len(sent))

    assert world.ingest.counts.accepted == 2
    assert world.ingest.counts.rejected == len(cases)
    assert sorted(world.stored_reports(), key=str) == sorted(
        [delivery_id_for(world.provider_a, "ok-1"), delivery_id_for(world.provider_b, "ok-2")],
        key=str)

    rejects = world.read_rejects(len(cases))
    assert len(rejects) == len(cases)
    by_place = {(r["partition"], r["offset"]): r for r in rejects}
    for (message, field_name, words, provider), where in zip(cases, sent, strict=False):
        found = by_place.pop((where.partition, where.offset))
        assert found["topic"] == world.inbound
        assert words in found["reason"], (words, found)
        if field_name is not ANY_FIELD:
            assert found["field"] == field_name, (words, found)
        assert found["provider_id"] == (str(provider) if provider else None)
        value = message[1]
        if value is None:
            assert found["original"] is None
        elif len(value) > MAX_MESSAGE_BYTES:
            assert found["original_truncated"] is True
            assert len(found["original"]) < len(value)
        else:
            assert found["original"] == value.decode()
    assert not by_place


def test_a_replayed_batch_is_accepted_once(world: World) -> None:
    batch = [world.as_a(report(f"r-{i}", world.agreement_a)) for i in range(30)]
    batch.append(world.as_a(report("r-bad", world.agreement_a, quantity=0)))
    world.send(batch)
    world.consume(until=len(batch))
    assert (world.ingest.counts.accepted, world.ingest.counts.rejected) == (30, 1)

    # The provider sends the same batch again (it never saw an acknowledgement), and a report
    # that reuses a key for something else.
    world.send([*batch, world.as_a(report("r-0", world.agreement_a, quantity=99))])
    world.consume(until=2 * len(batch) + 1)
    assert world.ingest.counts.duplicates == 30
    assert world.ingest.counts.accepted == 30
    assert world.ingest.counts.rejected == 3

    # And the consumer re-reads everything from the start, as after losing its offsets.
    with world.store_db.transaction() as tx:
        tx.execute("DELETE FROM kafka_inbound_offsets")
    again = world.new_ingest()
    try:
        world.consume(again, until=2 * len(batch) + 1)
    finally:
        again.close()
    assert (again.counts.accepted, again.counts.duplicates) == (0, 60)

    stored = world.stored_reports()
    assert len(stored) == len(set(stored)) == 30
    first = delivery_id_for(world.provider_a, "r-0")
    assert world.app.delivery(first).quantity == 3
    rejects = world.read_rejects(3 + 3)
    assert any("was already used for a different report" in r["reason"] for r in rejects)


def test_a_message_nested_too_deep_is_rejected_and_the_reports_behind_it_stored(
    sqlite_settings: Settings,
) -> None:
    """A 3,000-deep JSON array once raised RecursionError while its reject was built: the batch
    was read again forever and the valid reports behind it were never stored."""
    world = World(sqlite_settings, batch_size=500)
    try:
        deep = b"[" * 3000 + b"]" * 3000
        batch = [world.as_a(report(f"before-{i}", world.agreement_a)) for i in range(50)]
        batch.append(world.as_a(deep))
        batch.extend(world.as_b(report(f"after-{i}", world.agreement_b)) for i in range(50))
        world.send(batch)
        world.consume(until=len(batch), timeout=30)
        assert (world.ingest.counts.accepted, world.ingest.counts.rejected) == (100, 1)
        assert len(set(world.stored_reports())) == 100
        (rejected,) = world.read_rejects(1)
        assert "JSON" in rejected["reason"]
        assert rejected["original"] is None or len(rejected["original"]) <= 64 * 1024
        assert world.ingest.health().state == "running"
    finally:
        world.close()


# --------------------------------------------------------------------------- failures


def _consume_forever(settings_json: str, agreements: dict[UUID, AgreementInfo],
                     batch_size: int, pause: float) -> None:
    """The consumer process of test_a_killed_consumer_resumes_from_the_tracked_offset."""
    settings = Settings(**json.loads(settings_json))
    app = open_application(Outcomes, settings)
    app.agreements = StaticAgreements(agreements)
    tokens = TokenStore(open_database(settings, "identity"))
    ingest = KafkaDeliveryIngest.for_settings(
        app, tokens, store_database(settings, Outcomes.service), settings, batch_size=batch_size)
    assert ingest is not None
    while True:
        ingest.run_once()
        time.sleep(pause)


def test_a_killed_consumer_resumes_from_the_tracked_offset(sqlite_settings: Settings) -> None:
    """A consumer process is killed (SIGKILL, no chance to clean up) in the middle of a stream:
    some batches stored with their offsets, maybe one stored without. A new consumer reads on
    from the stored offsets: every valid report ends up stored exactly once, every invalid one
    rejected. (Small batches and a pause between them make the kill land mid-stream.)"""
    world = World(sqlite_settings)
    try:
        messages = [world.as_a(report(f"k-{i}", world.agreement_a)) for i in range(600)]
        messages += [world.as_b(report(f"kb-{i}", world.agreement_b)) for i in range(200)]
        messages += [world.as_a(report(f"bad-{i}", world.drafted_a)) for i in range(20)]
        sent = world.send(messages)
        child = multiprocessing.get_context("spawn").Process(
            target=_consume_forever,
            args=(sqlite_settings.model_dump_json(), world.agreements, 20, 0.02),
        )
        child.start()
        try:
            wait_for(lambda: world.consumed() >= 200, 60, "the consumer process to get going")
        finally:
            child.kill()
            child.join(timeout=10)
        tracked = world.ingest.position()
        at_kill = sum(tracked.values())
        assert 0 < at_kill < len(messages), "the kill did not land mid-stream"
        stored_at_kill = len(world.stored_reports())
        acknowledged = sum(1 for s, (_, value, _) in zip(sent, messages, strict=True)
                           if s.offset < tracked.get(s.partition, 0) and b"bad-" not in value)

        resumed = world.new_ingest()
        try:
            world.consume(resumed, until=len(messages))
        finally:
            resumed.close()
        # It read exactly what was left after the tracked offsets: nothing skipped, and
        # nothing before them read again.
        assert resumed.counts.messages == len(messages) - at_kill
        # Reports stored after the last stored offset (if the kill fell between the two) were
        # read again and recognised as replays; everything else was new.
        assert resumed.counts.duplicates == stored_at_kill - acknowledged
        stored = world.stored_reports()
        assert len(stored) == len(set(stored)) == 800
        assert set(stored) == (
            {delivery_id_for(world.provider_a, f"k-{i}") for i in range(600)}
            | {delivery_id_for(world.provider_b, f"kb-{i}") for i in range(200)})
        rejected = {(r["partition"], r["offset"]) for r in world.read_rejects(20)}
        assert len(rejected) == 20  # each at least once (a re-read batch may repeat some)
    finally:
        world.close()


def test_a_crash_between_storing_and_the_offsets_replays_harmlessly(world: World) -> None:
    """The worst moment to die: the reports are stored and the rejects sent, but the offsets
    are not. The worker (its real run loop) fails, reconnects, reads the batch again from the
    stored offsets and recognises every report it already stored."""
    messages = [world.as_a(report(f"c-{i}", world.agreement_a)) for i in range(50)]
    messages.append(world.as_a(report("c-bad", world.agreement_a, activity_type="nope")))
    sent = world.send(messages)
    real = world.ingest._store_position
    failures = []

    def fail_once(moved: dict[int, int]) -> None:
        if not failures:
            failures.append(moved)
            raise RuntimeError("the process died before storing its offsets")
        real(moved)

    world.ingest._store_position = fail_once  # type: ignore[method-assign]
    stop = threading.Event()
    worker = threading.Thread(target=world.ingest.run, args=(stop, 0.05))
    worker.start()
    try:
        wait_for(lambda: world.consumed() >= len(messages), 60, "the batch to be read again")
    finally:
        stop.set()
        worker.join(timeout=30)
    assert failures, "the injected crash did not happen"
    assert world.ingest.counts.accepted == 50
    assert world.ingest.counts.duplicates == 50
    stored = world.stored_reports()
    assert len(stored) == len(set(stored)) == 50
    # The rejects were sent before the crash and again with the re-read batch: at least once.
    rejects = world.read_rejects(2)
    assert len(rejects) == 2
    assert {(r["partition"], r["offset"]) for r in rejects} == {
        (sent[-1].partition, sent[-1].offset)}


def _admin_create(bootstrap: str, topics: Sequence[str], partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        existing = set(admin.list_topics())
        admin.create_topics([NewTopic(t, partitions, 1) for t in topics if t not in existing])
    finally:
        admin.close()


def test_the_consumer_survives_a_broker_restart(tmp_path: Path, unique_prefix: str) -> None:
    """The broker goes away while the worker runs, and comes back.

    What is simulated, exactly: a private broker (Tansu, memory storage) on a free port. The
    worker's real run loop consumes batch A and stores its offsets. The broker process is
    killed; the worker keeps trying meanwhile. A new broker is started on the same port. A
    memory broker comes back empty, where a real broker would come back with its log, so the
    test harness (playing the providers) re-sends A, in the same order with the same keys, which
    puts every message of A at the offset it had before (asserted), and then sends batch B
    (valid and invalid reports). The worker must resume from its tracked offsets (or, if it
    looks while the log is still shorter than them, read the partition again from its start,
    recognising A as replays), store B, reject B's invalid reports, and end with every report
    of A and B stored exactly once. The relay then publishes them to the restarted broker."""
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    broker = start_broker(port, tmp_path / "broker.log")
    settings = Settings(var_dir=tmp_path / "var", log_url=f"kafka://{bootstrap}",
                        topic_prefix=unique_prefix)
    world = World(settings)
    stop = threading.Event()
    worker = threading.Thread(target=world.ingest.run, args=(stop, 0.05))
    try:
        batch_a = [world.as_a(report(f"a-{i}", world.agreement_a)) for i in range(150)]
        batch_a += [world.as_b(report(f"b-{i}", world.agreement_b)) for i in range(50)]
        sent_a = world.send(batch_a)
        worker.start()
        wait_for(lambda: world.consumed() >= len(batch_a), 60, "batch A to be consumed")
        offsets_before = world.ingest.position()

        broker.kill()
        broker.wait(timeout=10)
        time.sleep(2.0)  # the worker polls a broker that is not there
        assert worker.is_alive()
        broker = start_broker(port, tmp_path / "broker.log")

        _admin_create(bootstrap, [world.inbound, world.rejects], settings.kafka_partitions)
        resent_a = world.send(batch_a)
        assert [(s.partition, s.offset) for s in resent_a] == [
            (s.partition, s.offset) for s in sent_a]
        batch_b = [world.as_a(report(f"a2-{i}", world.agreement_a)) for i in range(80)]
        batch_b += [world.as_a(report(f"late-{i}", world.ended_a)) for i in range(5)]
        sent_b = world.send(batch_b)
        end = Counter(s.partition for s in resent_a + sent_b)

        wait_for(lambda: world.ingest.position() == dict(end), 90,
                 f"the worker to read up to {dict(end)} after the restart")
        assert all(world.ingest.position()[p] >= o for p, o in offsets_before.items())
        stored = world.stored_reports()
        assert len(stored) == len(set(stored)) == 280
        assert world.ingest.counts.accepted == 280
        rejects = read_topic(bootstrap, world.rejects, 5)
        assert {json.loads(r.value)["offset"] for r in rejects} == {
            s.offset for s in sent_b[-5:]}

        stop.set()
        worker.join(timeout=30)
        event_log = open_event_log(settings)
        try:
            assert OutboxRelay(world.app, event_log, world.store_db).drain() == 280
        finally:
            event_log.close()
    finally:
        stop.set()
        worker.join(timeout=30)
        world.close()
        broker.kill()
        broker.wait(timeout=10)


# --------------------------------------------------------------------------- deployment


def test_only_the_partitions_an_instance_owns(sqlite_settings: Settings) -> None:
    settings = sqlite_settings.model_copy(update={"deliveries_ingest_partitions": "0"})
    world = World(settings)
    try:
        producer = KafkaProducer(bootstrap_servers=world.bootstrap, acks="all")
        for partition in (0, 1):
            producer.send(world.inbound, value=report(f"p{partition}", world.agreement_a),
                          headers=bearer(world.token_a), partition=partition)
        producer.flush(timeout=30)
        producer.close()
        world.consume(until=1)
        time.sleep(0.5)
        world.ingest.run_once()
        assert world.ingest.position() == {0: 1}
        assert world.stored_reports() == [delivery_id_for(world.provider_a, "p0")]
    finally:
        world.close()


def test_ingest_instances_sharing_out_the_partitions_take_every_report_once(
    world: World,
) -> None:
    """Ingestion scales by running an ingest per share of the inbound partitions (as `council
    bench` does): together, working at the same time on one store, they store every report
    once, and each stores only its own partitions' offsets."""
    shares = partition_shares(world.settings.kafka_partitions, 2)
    assert shares == ["0,2", "1"]
    ingests = [KafkaDeliveryIngest.for_settings(
        world.app, world.tokens, world.store_db,
        world.settings.model_copy(update={"deliveries_ingest_partitions": share}),
        batch_size=50) for share in shares]
    # Keyed one by one so that every partition gets some (the token says who reports).
    sent = world.send([(f"a{i}".encode(), report(f"s-{i}", world.agreement_a),
                        bearer(world.token_a)) for i in range(60)]
                      + [(f"b{i}".encode(), report(f"s-{i}", world.agreement_b),
                          bearer(world.token_b)) for i in range(60)])
    assert {s.partition for s in sent} == {0, 1, 2}
    failures: list[BaseException] = []

    def run(ingest: KafkaDeliveryIngest | None) -> None:
        assert ingest is not None
        try:
            own = {int(p) for p in (ingest.only_partitions or ())}
            deadline = time.monotonic() + 60
            while sum(v for p, v in ingest.position().items() if p in own) < sum(
                    1 for s in sent if s.partition in own):
                ingest.run_once()
                assert time.monotonic() < deadline, "an ingest did not read its share in time"
        except BaseException as exc:  # reported by the test's thread
            failures.append(exc)
        finally:
            ingest.close()

    threads = [threading.Thread(target=run, args=(ingest,)) for ingest in ingests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    expected = Counter({delivery_id_for(world.provider_a, f"s-{i}"): 1 for i in range(60)}
                       | {delivery_id_for(world.provider_b, f"s-{i}"): 1 for i in range(60)})
    assert Counter(world.stored_reports()) == expected
    assert world.ingest.position() == {
        p: 1 + max(s.offset for s in sent if s.partition == p) for p in {s.partition
                                                                          for s in sent}}


def test_the_outcomes_service_runs_the_ingest_only_with_kafka(
    sqlite_settings: Settings, tmp_path: Path,
) -> None:
    from council.platform.runtime import Runtime
    from council.services.outcomes.service import SPEC

    embedded = Runtime(SPEC, Settings(var_dir=tmp_path / "embedded"))
    try:
        assert "ingest" not in SPEC.groups(embedded.settings)
        assert not any(isinstance(w, KafkaDeliveryIngest) for w in embedded.workers("ingest"))
    finally:
        embedded.close()

    world = World(sqlite_settings)
    runtime = Runtime(SPEC, sqlite_settings)
    try:
        assert "ingest" in SPEC.groups(runtime.settings)
        assert any(isinstance(w, KafkaDeliveryIngest) for w in runtime.workers("ingest"))
        assert isinstance(runtime.app, Outcomes)
        runtime.app.agreements = StaticAgreements(world.agreements)
        runtime.start()
        world.send([world.as_a(report("svc-1", world.agreement_a))])
        delivery_id = delivery_id_for(world.provider_a, "svc-1")
        wait_for(lambda: bool(runtime.app.recorder.select_events(delivery_id)), 60,
                 "the service to store the report")
        wait_for(lambda: runtime.relay.pending() == 0, 60, "the relay to publish it")
    finally:
        runtime.close()
        world.close()
