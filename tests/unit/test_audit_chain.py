"""The audit hash chain on the embedded log: the relay seals every event it publishes, a crash
republishes identical bytes, and `verify` finds an edited, deleted, moved or inserted event in
the stored log file, naming it."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from council.kernel.envelope import EventEnvelope, canonical_json
from council.platform.audit.chain import GENESIS, ChainTip, seal, split_hash
from council.platform.audit.verify import ChainChecker, Kind, Place
from council.platform.settings import Settings
from council.platform.sql import Database
from tests.unit.audit_support import EmbeddedLogFile, Trail, only_break, parsed, resealed

AT = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)


def envelope(position: int, stream: str = "s-1") -> EventEnvelope:
    return EventEnvelope(event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{stream}/{position}"),
                         type="Counted", schema_version=1, source="integrator", stream_id=stream,
                         stream_position=position, occurred_at=AT, recorded_at=AT,
                         data={"n": position, "note": "caf\u00e9", "nested": {"hash": "x"}})


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[Trail]:
    built = Trail(Settings(var_dir=tmp_path, log_url="embedded"))
    yield built
    built.close()


def published(trail: Trail, providers: int = 12) -> list[bytes]:
    trail.register(providers)
    trail.relay(batch_size=7).drain()
    return EmbeddedLogFile(trail.settings).values()


# --- sealing -----------------------------------------------------------------------------------


def test_seal_chains_events_and_each_hash_covers_its_canonical_json() -> None:
    sealed, tip = seal([envelope(1), envelope(2), envelope(3)], ChainTip())
    envelopes = [e.envelope() for e in sealed]
    assert [e.sequence for e in sealed] == [e.sequence for e in envelopes] == [1, 2, 3]
    assert envelopes[0].prev_hash == GENESIS
    assert [e.prev_hash for e in envelopes[1:]] == [e.hash for e in sealed[:-1]]
    for event in sealed:
        body = json.loads(event.to_json())
        carried = body.pop("hash")
        assert hashlib.sha256(canonical_json(body)).hexdigest() == carried == event.hash
        assert split_hash(event.to_json()) == (carried, canonical_json(body))
    assert tip == ChainTip(3, sealed[-1].hash)


def test_a_sealed_event_names_what_the_log_needs_as_its_envelope_does() -> None:
    sealed, _ = seal([envelope(1)], ChainTip())
    given = envelope(1)
    assert (sealed[0].source, sealed[0].stream_id, sealed[0].event_id) == (
        given.source, given.stream_id, str(given.event_id))


def test_sealed_bytes_are_the_canonical_encoding_of_the_sealed_envelope() -> None:
    """The relay hands the log the bytes it hashed; they are exactly what encoding the sealed
    envelope afresh gives, even with `occurred_at` and `hash` keys inside `data`."""
    tricky = envelope(1).model_copy(update={"data": {"occurred_at": "x", "hash": "y"}})
    sealed, _ = seal([tricky, envelope(2)], ChainTip())
    for event in sealed:
        fresh = EventEnvelope.model_validate(event.envelope().model_dump())
        assert event.to_json() == fresh.to_json()
        assert event.envelope() == fresh


def test_sealing_after_a_tip_continues_the_same_chain() -> None:
    whole, _ = seal([envelope(1), envelope(2), envelope(3)], ChainTip())
    first, tip = seal([envelope(1)], ChainTip())
    rest, _ = seal([envelope(2), envelope(3)], tip)
    assert [e.to_json() for e in first + rest] == [e.to_json() for e in whole]


def test_an_unsealed_envelope_keeps_the_bytes_it_always_had() -> None:
    raw = envelope(1).to_json()
    assert b"sequence" not in raw
    assert b"prev_hash" not in raw
    assert b'"hash"' not in raw.replace(b'{"hash":"x"}', b"")  # only the one inside data
    assert EventEnvelope.from_json(raw).sequence is None
    sealed = seal([envelope(1)], ChainTip())[0][0]
    assert sealed.envelope().to_json() == sealed.to_json()


# --- the relay ---------------------------------------------------------------------------------


def test_the_relay_chains_what_it_publishes_and_the_log_verifies(trail: Trail) -> None:
    values = published(trail)
    events = [parsed(v) for v in values]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert len(events) == 12 + 4  # registrations and reviews; identifier claims stay in
    report = trail.verify()
    assert report.intact, report.breaks
    assert report.chains[0].events == len(events)
    assert report.chains[0].tip == events[-1]["hash"]


def test_a_restarted_relay_continues_the_chain(trail: Trail) -> None:
    trail.register(5)
    trail.relay().drain()
    trail.register(5)
    trail.relay().drain()  # a new relay (a restart) resumes from the saved tip
    events = [parsed(v) for v in EmbeddedLogFile(trail.settings).values()]
    assert [e["sequence"] for e in events] == list(range(1, 15))
    assert trail.verify().intact


def test_a_crash_between_append_and_save_republishes_identical_bytes(trail: Trail) -> None:
    trail.register(12)
    crashing = trail.relay(batch_size=7)

    def crash(*_: object) -> None:
        raise RuntimeError("killed between append and saving the position")

    crashing._save = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        crashing.relay_once()
    trail.relay(batch_size=7).drain()
    values = EmbeddedLogFile(trail.settings).values()
    assert len(values) > 16  # the first batch is on the log twice
    by_id: dict[str, set[bytes]] = {}
    for value in values:
        by_id.setdefault(parsed(value)["event_id"], set()).add(value)
    assert len(by_id) == 16
    assert all(len(copies) == 1 for copies in by_id.values())  # same id, same bytes
    report = trail.verify()
    assert report.intact, report.breaks
    assert report.chains[0].duplicates == len(values) - 16


def test_a_store_from_before_the_chain_starts_it_at_sequence_one(trail: Trail) -> None:
    """An outbox_position table without the tip columns (an existing deployment) gets them; the
    events already published stay unchained, and verify says so."""
    trail.register(4)
    relay = trail.relay()
    relay.drain()
    position = relay.position()
    with trail.db.transaction() as tx:  # make it look like the old layout with old events
        tx.execute("DROP TABLE outbox_position")
        tx.execute("CREATE TABLE outbox_position (relay TEXT PRIMARY KEY,"
                   " notification_id BIGINT NOT NULL)")
        tx.execute("INSERT INTO outbox_position VALUES (?, ?)", (relay.name, position))
    log_file = EmbeddedLogFile(trail.settings)
    for offset, value in enumerate(log_file.values()):
        old = {k: v for k, v in parsed(value).items() if k not in ("sequence", "prev_hash", "hash")}
        log_file.replace(offset, canonical_json(old))
    trail.register(3)
    trail.relay().drain()
    events = [parsed(v) for v in log_file.values()]
    assert [e.get("sequence") for e in events] == [None] * 6 + [1, 2, 3, 4]

    broken = only_break(trail.verify())
    assert broken.kind is Kind.UNCHAINED
    assert "6 events before sequence 1" in broken.detail
    assert "not tamper-evident" in broken.detail
    accepted = trail.verify(allow_unchained=True)
    assert accepted.intact
    assert [b.kind for b in accepted.accepted] == [Kind.UNCHAINED]


def test_two_databases_share_the_tip_layout(tmp_path: Path) -> None:
    """The relay's migration leaves a table from before the chain as a new one would be."""
    old = Database.sqlite(tmp_path / "old.sqlite")
    with old.transaction() as tx:
        tx.execute("CREATE TABLE outbox_position (relay TEXT PRIMARY KEY,"
                   " notification_id BIGINT NOT NULL)")
        tx.execute("INSERT INTO outbox_position VALUES ('r', 7)")
    from council.platform.audit.chain import add_tip_columns, read_tip

    with old.transaction() as tx:
        add_tip_columns(tx, old.dialect)
        add_tip_columns(tx, old.dialect)  # twice is harmless
        assert read_tip(tx, "r") == (7, ChainTip())
    old.close()


# --- tampering with the stored log file --------------------------------------------------------


def test_an_untouched_log_verifies(trail: Trail) -> None:
    published(trail)
    trail.checkpoint()
    report = trail.verify()
    assert report.intact
    assert report.checkpoints == 1
    assert report.chains[0].checkpoints == 1


def test_an_edited_event_fails_at_that_event(trail: Trail) -> None:
    values = published(trail)
    log_file = EmbeddedLogFile(trail.settings)
    victim = parsed(values[5])
    log_file.replace(5, values[5].replace(b"Provider", b"Pr0vider", 1))
    broken = only_break(trail.verify())
    assert (broken.kind, broken.sequence, broken.event_id) == (
        Kind.HASH_MISMATCH, 6, victim["event_id"])
    assert broken.place == Place(log_file.topic, 0, 5)
    assert "altered" in broken.detail


def test_an_edited_and_rehashed_event_breaks_the_next_link(trail: Trail) -> None:
    values = published(trail)
    forged = parsed(values[5])
    forged["actor"] = "someone:else"
    EmbeddedLogFile(trail.settings).replace(5, resealed(forged))
    broken = only_break(trail.verify())
    assert (broken.kind, broken.sequence) == (Kind.PREV_HASH_MISMATCH, 7)
    assert "of sequence 6" in broken.detail
    assert "offset 5" in broken.detail


def test_a_deleted_event_fails_as_a_missing_sequence(trail: Trail) -> None:
    published(trail)
    log_file = EmbeddedLogFile(trail.settings)
    log_file.delete(5)
    report = trail.verify()
    broken = only_break(report)
    assert (broken.kind, broken.sequence) == (Kind.MISSING, 6)
    assert "sequence 6 not found" in broken.detail
    assert "offset 6" in broken.detail
    assert len(report.breaks) == 1  # the chain picks up after the gap


def test_reordered_events_fail_as_out_of_order(trail: Trail) -> None:
    values = published(trail)
    EmbeddedLogFile(trail.settings).swap(4, 5)
    report = trail.verify()
    broken = only_break(report)
    assert (broken.kind, broken.sequence, broken.event_id) == (
        Kind.OUT_OF_ORDER, 5, parsed(values[4])["event_id"])
    assert broken.place is not None
    assert broken.place.offset == 5
    assert "after sequence 6" in broken.detail
    assert len(report.breaks) == 1


def test_an_event_moved_far_fails_as_out_of_order_not_missing(trail: Trail) -> None:
    values = published(trail)
    log_file = EmbeddedLogFile(trail.settings)
    log_file.delete(2)
    log_file.insert(len(values) - 1, values[2])  # sequence 3 now near the end
    assert [b.kind for b in trail.verify().breaks] == [Kind.OUT_OF_ORDER]


def test_an_inserted_unchained_event_fails_as_inserted(trail: Trail) -> None:
    values = published(trail)
    forged = {k: v for k, v in parsed(values[3]).items()
              if k not in ("sequence", "prev_hash", "hash")}
    forged["event_id"] = str(uuid.uuid4())
    EmbeddedLogFile(trail.settings).insert(4, canonical_json(forged))
    broken = only_break(trail.verify())
    assert (broken.kind, broken.event_id) == (Kind.INSERTED, forged["event_id"])
    assert broken.place is not None
    assert broken.place.offset == 4


def test_an_inserted_event_posing_as_a_chained_one_fails_as_inserted(trail: Trail) -> None:
    """A forger who copies sequence 5's chain fields onto a new event and puts it just before
    the real one: the chain continues from the real one, so the forgery is named."""
    values = published(trail)
    forged = parsed(values[4])
    forged["event_id"] = str(uuid.uuid4())
    forged["actor"] = "someone:else"
    EmbeddedLogFile(trail.settings).insert(4, resealed(forged))
    report = trail.verify()
    broken = only_break(report)
    assert (broken.kind, broken.sequence, broken.event_id) == (
        Kind.INSERTED, 5, forged["event_id"])
    assert broken.place is not None
    assert broken.place.offset == 4
    assert len(report.breaks) == 1


def test_an_event_of_another_source_in_the_chain_fails_as_inserted(trail: Trail) -> None:
    values = published(trail)
    stranger = parsed(values[2])
    stranger["source"] = "outcomes"
    EmbeddedLogFile(trail.settings).insert(3, resealed(stranger))
    broken = only_break(trail.verify())
    assert broken.kind is Kind.INSERTED
    assert "'outcomes'" in broken.detail


def test_a_truncated_log_fails_against_a_checkpoint(trail: Trail) -> None:
    values = published(trail)
    trail.checkpoint()
    log_file = EmbeddedLogFile(trail.settings)
    log_file.delete(len(values) - 1)
    broken = only_break(trail.verify())
    assert (broken.kind, broken.sequence) == (Kind.CHECKPOINT_BEYOND_END, len(values))
    assert f"chain ends at {len(values) - 1}" in broken.detail


def test_a_rewritten_history_fails_against_a_checkpoint(trail: Trail) -> None:
    """Every event from the fourth on altered and re-chained: the links hold, the signed
    checkpoint does not."""
    values = published(trail)
    trail.checkpoint()
    log_file = EmbeddedLogFile(trail.settings)
    prev = parsed(values[2])["hash"]
    for offset in range(3, len(values)):
        event = parsed(values[offset])
        event["actor"] = "rewriter:x"
        event["prev_hash"] = prev
        raw = resealed(event)
        log_file.replace(offset, raw)
        prev = parsed(raw)["hash"]
    report = trail.verify()
    assert [b.kind for b in report.breaks] == [Kind.CHECKPOINT_NOT_IN_CHAIN]
    assert report.breaks[0].sequence == len(values)


# --- the checker on its own -------------------------------------------------------------------


def records(count: int) -> list[bytes]:
    sealed, _ = seal([envelope(i) for i in range(1, count + 1)], ChainTip())
    return [e.to_json() for e in sealed]


def check(raws: list[tuple[bytes, int]], source: str = "integrator") -> ChainChecker:
    checker = ChainChecker(source)
    for offset, (raw, partition) in enumerate(raws):
        checker.process(raw, Place("t", partition, offset))
    checker.finish()
    return checker


def test_partitions_are_merged_by_sequence() -> None:
    raws = records(9)
    # Three partitions read one after another, each in its own order.
    spread = [(raws[i], i % 3) for i in range(9)]
    ordered = sorted(spread, key=lambda pair: pair[1])
    checker = check(ordered)
    assert checker.breaks == []
    assert checker.summary.events == 9


def test_a_different_event_at_the_end_under_a_known_sequence_is_reported() -> None:
    raws = records(4)
    other = parsed(raws[3])
    other["data"] = {"n": 99}
    checker = check([(r, 0) for r in raws] + [(resealed(other), 1)])
    assert [b.kind for b in checker.breaks] == [Kind.CONFLICTING]
    assert checker.breaks[0].sequence == 4


def test_malformed_records_are_named() -> None:
    checker = check([(b"not json", 0), *((r, 0) for r in records(2))])
    assert [b.kind for b in checker.breaks] == [Kind.MALFORMED]
    assert checker.breaks[0].place == Place("t", 0, 0)


def test_a_forgery_read_before_the_event_it_displaces_is_named_whatever_the_order() -> None:
    """On Kafka the event after the forgery may be read (from another partition) before the
    real event the forgery was put in front of: the forgery is still the one named."""
    raws = records(6)
    forged = parsed(raws[2])
    forged["event_id"] = str(uuid.uuid4())
    forged["data"] = {"n": 99}
    order = [(raws[0], 0), (raws[1], 0), (resealed(forged), 0),
             (raws[3], 1), (raws[4], 1), (raws[5], 1), (raws[2], 0)]
    checker = check(order)
    assert [(b.kind, b.sequence, b.event_id) for b in checker.breaks] == [
        (Kind.INSERTED, 3, forged["event_id"])]
    assert checker.summary.tip == parsed(raws[5])["hash"]
