"""One contract, two adapters: the embedded file log and Kafka must behave the same to callers.

Every test here runs unchanged against both (`event_log` / `log_factory` are parametrised).
Kafka can answer a read with nothing while data is still in flight, so tests read with a
deadline (`read_until`) and never assume one read returns everything.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from council.kernel.envelope import EventEnvelope
from council.kernel.errors import InfrastructureUnavailable
from council.platform.eventlog import EventLog, LogPosition, LogRecord, advance, partition_key
from council.platform.eventlog.embedded import EmbeddedEventLog

pytestmark = pytest.mark.integration

SOURCES = ("integrator", "provider_registry", "outcomes")
LogFactory = Callable[[], EventLog]


# --------------------------------------------------------------------------- helpers


def envelope(
    stream_id: str,
    position: int,
    *,
    source: str = "provider_registry",
    type_: str = "ProviderRegistered",
    data: dict[str, Any] | None = None,
) -> EventEnvelope:
    now = datetime.now(UTC)
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type=type_,
        schema_version=1,
        source=source,
        stream_id=stream_id,
        stream_position=position,
        occurred_at=now,
        recorded_at=now,
        correlation_id=str(uuid.uuid4()),
        data=data if data is not None else {"name": f"{stream_id}#{position}"},
    )


def stream_events(stream_id: str, count: int, **kwargs: Any) -> list[EventEnvelope]:
    return [envelope(stream_id, n, **kwargs) for n in range(1, count + 1)]


def read_until(
    log: EventLog,
    topics: Sequence[str],
    n: int,
    timeout: float = 15,
    position: LogPosition | None = None,
    limit: int = 1000,
) -> tuple[list[LogRecord], LogPosition]:
    """Read from `position` until at least `n` records arrived or `timeout` passed; then check
    briefly that nothing beyond them turns up. Returns everything read and the new position."""
    position = dict(position or {})
    records: list[LogRecord] = []
    deadline = time.monotonic() + timeout
    while len(records) < n and time.monotonic() < deadline:
        batch = log.read(topics, position, limit)
        assert len(batch) <= limit
        if batch:
            records.extend(batch)
            position = advance(position, batch)
        else:
            time.sleep(0.02)
    for _ in range(3):  # anything extra (a duplicate, a stray record) shows up here
        batch = log.read(topics, position, limit)
        records.extend(batch)
        position = advance(position, batch)
    return records, position


def ids(records: Sequence[LogRecord]) -> list[uuid.UUID]:
    return [r.envelope.event_id for r in records]


def assert_exactly(records: Sequence[LogRecord], expected: Sequence[EventEnvelope]) -> None:
    """`records` hold each expected event exactly once, byte-identical, and nothing else."""
    counts = Counter(ids(records))
    duplicates = [i for i, c in counts.items() if c > 1]
    assert not duplicates, f"{len(duplicates)} events delivered more than once"
    wanted = {e.event_id: e for e in expected}
    missing = wanted.keys() - counts.keys()
    extra = counts.keys() - wanted.keys()
    assert not missing, f"{len(missing)} of {len(wanted)} events lost"
    assert not extra, f"{len(extra)} unexpected events"
    for record in records:
        assert record.value == wanted[record.envelope.event_id].to_json()


def assert_streams_in_order(records: Sequence[LogRecord]) -> None:
    seen: dict[str, list[int]] = defaultdict(list)
    for record in records:
        env = record.envelope
        seen[env.stream_id].append(env.stream_position)
    for stream_id, positions in seen.items():
        assert positions == sorted(positions), f"stream {stream_id} out of order: {positions}"


def assert_partition_offsets_unique(records: Sequence[LogRecord]) -> None:
    keys = Counter((r.topic, r.partition, r.offset) for r in records)
    assert all(c == 1 for c in keys.values()), "two records share one topic/partition/offset"
    last: dict[str, int] = {}
    for record in records:  # within a partition, offsets only grow
        assert record.offset > last.get(record.partition_key, -1)
        last[record.partition_key] = record.offset


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(params=["embedded", "kafka"])
def log_factory(
    request: pytest.FixtureRequest, tmp_path: Path, unique_prefix: str
) -> Iterator[LogFactory]:
    """Makes independent instances of one log (same file / same broker and topic prefix), as
    separate processes would have."""
    opened: list[EventLog] = []
    if request.param == "embedded":
        path = tmp_path / "shared-log.sqlite"

        def make() -> EventLog:
            log = EmbeddedEventLog(path, topic_prefix=unique_prefix)
            opened.append(log)
            return log

    else:
        bootstrap: str = request.getfixturevalue("kafka_bootstrap")
        from council.platform.eventlog.kafka import KafkaEventLog

        def make() -> EventLog:
            log = KafkaEventLog(
                bootstrap, topic_prefix=unique_prefix, partitions=3, sources=SOURCES
            )
            opened.append(log)
            return log

    yield make
    for log in opened:
        log.close()


@pytest.fixture
def event_log(log_factory: LogFactory) -> EventLog:
    return log_factory()


def is_embedded(log: EventLog) -> bool:
    return isinstance(log, EmbeddedEventLog)


# --------------------------------------------------------------------------- the contract


def test_append_then_read_is_byte_identical(event_log: EventLog) -> None:
    events = stream_events("provider-1", 5)
    event_log.append(events)
    topic = event_log.topic_for("provider_registry")

    records, _ = read_until(event_log, [topic], len(events))

    assert_exactly(records, events)
    assert [r.envelope for r in records] == events
    assert {r.topic for r in records} == {topic}
    for record in records:
        assert record.partition_key == partition_key(record.topic, record.partition)


def test_order_per_stream_is_kept_with_interleaved_appends(event_log: EventLog) -> None:
    rng = random.Random(7)
    pending = {f"stream-{i}": stream_events(f"stream-{i}", 12) for i in range(20)}
    everything = [e for events in pending.values() for e in events]
    while pending:  # random batches, each taking the next events of random streams
        batch: list[EventEnvelope] = []
        for _ in range(rng.randint(1, 15)):
            if not pending:
                break
            stream_id = rng.choice(sorted(pending))
            batch.append(pending[stream_id].pop(0))
            if not pending[stream_id]:
                del pending[stream_id]
        event_log.append(batch)

    records, _ = read_until(event_log, [event_log.topic_for("provider_registry")], 240, limit=50)

    assert_exactly(records, everything)
    assert_streams_in_order(records)
    assert_partition_offsets_unique(records)


def test_reading_from_an_advanced_position_returns_only_newer_records(
    event_log: EventLog,
) -> None:
    topics = [event_log.topic_for("provider_registry")]
    first = [envelope(f"s{i}", 1) for i in range(10)]
    event_log.append(first)
    records, position = read_until(event_log, topics, 10)
    assert_exactly(records, first)
    assert position == advance({}, records)

    second = [envelope(f"s{i}", 2) for i in range(10)]
    event_log.append(second)
    newer, later = read_until(event_log, topics, 10, position=position)

    assert_exactly(newer, second)
    for key, offset in position.items():  # positions never move backwards
        assert later[key] >= offset
    # reading again from the latest position gives nothing new
    assert read_until(event_log, topics, 0, timeout=0.5, position=later)[0] == []


def test_advance_moves_each_partition_past_its_last_record() -> None:
    records = [
        LogRecord("a", 0, 4, b"{}"),
        LogRecord("a", 1, 9, b"{}"),
        LogRecord("a", 0, 5, b"{}"),
        LogRecord("b", 0, 0, b"{}"),
    ]
    start: LogPosition = {"a:0": 4, "c:0": 3}

    moved = advance(start, records)

    assert moved == {"a:0": 6, "a:1": 10, "b:0": 1, "c:0": 3}
    assert start == {"a:0": 4, "c:0": 3}, "advance must not modify its argument"
    assert advance(start, []) == start


def test_limit_is_respected_and_small_batches_return_everything_once(
    event_log: EventLog,
) -> None:
    events = [envelope(f"s{i % 9}", i // 9 + 1) for i in range(60)]
    event_log.append(events)
    topics = [event_log.topic_for("provider_registry")]

    records: list[LogRecord] = []
    position: LogPosition = {}
    deadline = time.monotonic() + 15
    while len(records) < len(events) and time.monotonic() < deadline:
        batch = event_log.read(topics, position, 7)
        assert len(batch) <= 7
        records.extend(batch)
        position = advance(position, batch)
    records.extend(read_until(event_log, topics, 0, timeout=0.5, position=position)[0])

    assert_exactly(records, events)
    assert_streams_in_order(records)


def test_read_all_returns_everything_from_the_beginning_or_a_position(
    event_log: EventLog, log_factory: LogFactory
) -> None:
    topics = [event_log.topic_for("provider_registry")]
    events = [envelope(f"s{i % 5}", i // 5 + 1) for i in range(45)]
    event_log.append(events)
    _, end = read_until(event_log, topics, len(events))  # wait until all of it is readable

    def read_all(position: LogPosition | None, log: EventLog = event_log) -> list[LogRecord]:
        batches = list(log.read_all(topics, position, limit=10))
        assert all(0 < len(batch) <= 10 for batch in batches)
        return [record for batch in batches for record in batch]

    # Once data is readable, ONE read_all must return all of it, even right after this same
    # instance read to the end (a projection rebuild): an empty read means "nothing more".
    everything = read_all(None)
    assert_exactly(everything, events)
    assert advance({}, everything) == end
    assert_streams_in_order(everything)

    # from a midpoint: only what comes after it
    midpoint = advance({}, everything[:20])
    rest = read_all(midpoint)
    assert_exactly(rest, [r.envelope for r in everything[20:]])
    assert advance(midpoint, rest) == end
    # and from the start again, on this instance and on a fresh one
    assert_exactly(read_all({}), events)
    assert_exactly(read_all(None, log_factory()), events)
    assert list(event_log.read_all(topics, end)) == []


def test_follow_yields_events_appended_by_another_thread_until_stopped(
    event_log: EventLog,
) -> None:
    topics = [event_log.topic_for("outcomes")]
    events = [envelope(f"agreement-{i % 4}", i // 4 + 1, source="outcomes") for i in range(30)]
    stop = threading.Event()
    received: list[LogRecord] = []
    failures: list[BaseException] = []

    def follower() -> None:
        try:
            for batch in event_log.follow(topics, {}, stop, idle_wait=0.01, limit=8):
                assert 0 < len(batch) <= 8
                received.extend(batch)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=follower, daemon=True)
    thread.start()
    for start in range(0, 30, 10):
        event_log.append(events[start : start + 10])
        time.sleep(0.05)

    deadline = time.monotonic() + 15
    while len(received) < len(events) and time.monotonic() < deadline and not failures:
        time.sleep(0.02)
    time.sleep(0.2)  # room for anything extra to arrive
    stop.set()
    thread.join(timeout=10)

    assert not failures, failures
    assert not thread.is_alive(), "follow did not stop when its stop event was set"
    assert_exactly(received, events)
    assert_streams_in_order(received)


def test_several_topics_read_together(event_log: EventLog) -> None:
    by_source = {
        source: [envelope(f"{source}-{i % 3}", i // 3 + 1, source=source) for i in range(12)]
        for source in SOURCES
    }
    mixed = [e for group in zip(*by_source.values(), strict=True) for e in group]
    event_log.append(mixed)  # one batch spanning all three topics

    two = [event_log.topic_for("integrator"), event_log.topic_for("outcomes")]
    records, _ = read_until(event_log, two, 24)
    assert_exactly(records, by_source["integrator"] + by_source["outcomes"])
    assert {r.topic for r in records} == set(two)

    every = [event_log.topic_for(s) for s in SOURCES]
    records, _ = read_until(event_log, every, 36)
    assert_exactly(records, mixed)
    assert_streams_in_order(records)
    for record in records:
        assert record.topic == event_log.topic_for(record.envelope.source)


def test_unknown_event_types_are_carried_through_intact(event_log: EventLog) -> None:
    odd = envelope(
        "provider-x",
        1,
        type_="SomethingNoCatalogueKnows.v9",
        data={
            "nested": {"list": [1, "two", None, True, {"deep": []}], "empty": {}},
            "unicode": "Ünïcødé ✓ — 日本語",
            "big": 2**53 + 1,
            "amount": "1234.5600",
            "quote": 'a "quoted" \\ back\nslash',
        },
    )
    known = envelope("provider-x", 2)
    event_log.append([odd, known])

    records, _ = read_until(event_log, [event_log.topic_for("provider_registry")], 2)

    assert_exactly(records, [odd, known])
    assert records[0].envelope == odd
    assert records[0].envelope.type == "SomethingNoCatalogueKnows.v9"
    assert records[0].envelope.data == odd.data


def test_empty_append_is_a_no_op(event_log: EventLog) -> None:
    topics = [event_log.topic_for(s) for s in SOURCES]
    event_log.append([])
    assert read_until(event_log, topics, 0, timeout=0.5)[0] == []

    events = stream_events("provider-1", 3)
    event_log.append(events)
    event_log.append([])
    records, position = read_until(event_log, topics, 3)
    event_log.append([])

    assert_exactly(records, events)
    assert read_until(event_log, topics, 0, timeout=0.5, position=position)[0] == []
    if is_embedded(event_log):
        assert [r.offset for r in records] == [0, 1, 2]


def test_two_instances_appending_concurrently_lose_nothing(log_factory: LogFactory) -> None:
    writers = [log_factory(), log_factory()]
    reader = log_factory()
    per_writer = 200
    batches: list[list[list[EventEnvelope]]] = []
    for w in range(len(writers)):
        events = [
            envelope(f"w{w}-s{i % 10}", i // 10 + 1, source=SOURCES[i % 2])
            for i in range(per_writer)
        ]
        batches.append([events[i : i + 10] for i in range(0, per_writer, 10)])
    failures: list[BaseException] = []
    go = threading.Barrier(len(writers))

    def write(log: EventLog, my_batches: list[list[EventEnvelope]]) -> None:
        try:
            go.wait(timeout=10)
            for batch in my_batches:
                log.append(batch)
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=write, args=(log, b))
        for log, b in zip(writers, batches, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures

    expected = [e for per in batches for batch in per for e in batch]
    topics = [reader.topic_for(s) for s in SOURCES[:2]]
    records, _ = read_until(reader, topics, len(expected), timeout=20)

    assert_exactly(records, expected)
    assert_streams_in_order(records)
    assert_partition_offsets_unique(records)
    if is_embedded(reader):  # one partition per topic: offsets are gapless from zero
        offsets: dict[str, list[int]] = defaultdict(list)
        for record in records:
            offsets[record.topic].append(record.offset)
        for topic, got in offsets.items():
            assert got == list(range(len(got))), f"{topic}: offsets not gapless"


def test_ping_and_url(event_log: EventLog) -> None:
    event_log.ping()
    scheme = "embedded://" if is_embedded(event_log) else "kafka://"
    assert event_log.url.startswith(scheme)
    assert event_log.topic_for("outcomes") == f"{event_log.topic_prefix}.outcomes"


def test_reading_topics_with_nothing_in_them_returns_empty(event_log: EventLog) -> None:
    topics = [event_log.topic_for("integrator")]
    assert event_log.read(topics, {}, 10) == []
    assert event_log.read([], {}, 10) == []


# --------------------------------------------------------------------------- adapter-specific


def _append_from_process(path: str, topic_prefix: str, worker: int, count: int) -> None:
    log = EmbeddedEventLog(Path(path), topic_prefix=topic_prefix)
    try:
        for i in range(count):
            log.append([envelope(f"p{worker}-s{i % 5}", i // 5 + 1, data={"w": worker, "i": i})])
    finally:
        log.close()


def test_embedded_two_os_processes_appending_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared-log.sqlite"
    EmbeddedEventLog(path, topic_prefix="mp").close()  # create the schema up front
    ctx = multiprocessing.get_context("spawn")
    count = 500
    procs = [
        ctx.Process(target=_append_from_process, args=(str(path), "mp", w, count)) for w in (0, 1)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=180)
    assert [p.exitcode for p in procs] == [0, 0]

    log = EmbeddedEventLog(path, topic_prefix="mp")
    try:
        records = [r for batch in log.read_all([log.topic_for("provider_registry")]) for r in batch]
    finally:
        log.close()

    assert len(records) == 2 * count
    assert len(set(ids(records))) == 2 * count
    assert [r.offset for r in records] == list(range(2 * count))
    per_worker = Counter(r.envelope.data["w"] for r in records)
    assert per_worker == {0: count, 1: count}
    for worker in (0, 1):
        assert [r.envelope.data["i"] for r in records if r.envelope.data["w"] == worker] == list(
            range(count)
        )
    assert_streams_in_order(records)


def test_kafka_unreachable_broker_raises_infrastructure_unavailable_naming_the_url() -> None:
    from council.platform.eventlog.kafka import KafkaEventLog

    started = time.monotonic()
    with pytest.raises(InfrastructureUnavailable, match=r"kafka://127\.0\.0\.1:1\b"):
        KafkaEventLog("127.0.0.1:1")
    assert time.monotonic() - started < 15  # generous: the point is it does not hang
