"""`verify` checks every service's own event store against its sealed chain on the log, on
SQLite and the embedded log (tests/integration/test_audit_deployments.py runs the same on
PostgreSQL and Kafka): an untouched stack verifies; an event edited in a store, or deleted
from it, fails naming the service, stream, position, event id and the log's sequence; an event
forged onto the log at its chain's tip is named at once (no store holds it) and, once the real
event is published after it, the genuine one is named by the checkpoint the relay signed over
its batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from council.platform.audit.verify import Kind, Report
from council.platform.settings import SERVICE_NAMES, Settings
from council.tools.cli import main
from tests.unit.audit_support import REGISTRY, Stack, forged_tip, only_break

# A text in each service's second stored event (a review, a finished read, a measurement).
EDITS = {REGISTRY: (b"documents in order", b"documents forged!"),
         "integrator": (b'"returned":3', b'"returned":9'),
         "outcomes": (b"housing register", b"council estimate")}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    built = Stack(Settings(var_dir=tmp_path, log_url="embedded"))
    built.write()
    built.publish()
    yield built
    built.close()


def only_store_breaks(report: Report) -> None:
    """The log's chains themselves hold: what is wrong is in a store."""
    assert {b.kind for b in report.breaks} <= {Kind.STORE_EDITED, Kind.STORE_MISSING,
                                               Kind.STORE_EXTRA}


def test_an_untouched_stack_verifies_store_by_store(stack: Stack) -> None:
    report = stack.verify()
    assert report.intact, [b.describe() for b in report.breaks]
    assert {c.source: (c.events, c.stored) for c in report.chains if c.source != "audit"} == {
        REGISTRY: (4, 4), "integrator": (4, 4), "outcomes": (2, 2)}


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_an_event_edited_in_a_store_fails_naming_it(stack: Stack, service: str) -> None:
    notification_id, envelope = stack.stored(service, 2)
    assert stack.verify(stores=False).intact  # the log alone cannot see it
    stack.edit(service, notification_id, *EDITS[service])

    report = stack.verify()
    only_store_breaks(report)
    broken = only_break(report)
    assert (broken.kind, broken.source, broken.sequence, broken.event_id) == (
        Kind.STORE_EDITED, service, 2, envelope["event_id"])
    assert f"stream {envelope['stream_id']} position {envelope['stream_position']}" in \
        broken.detail
    assert "changed in the store after it was published" in broken.detail
    assert broken.place is not None  # where the log holds what was sealed


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_an_event_deleted_from_a_store_fails_naming_it(stack: Stack, service: str) -> None:
    notification_id, envelope = stack.stored(service, 2)
    stack.delete(service, notification_id)

    report = stack.verify()
    only_store_breaks(report)
    broken = only_break(report)
    assert (broken.kind, broken.source, broken.sequence, broken.event_id) == (
        Kind.STORE_MISSING, service, 2, envelope["event_id"])
    assert f"stream {envelope['stream_id']} position {envelope['stream_position']}" in \
        broken.detail


def test_events_stored_but_not_yet_published_are_not_breaks(stack: Stack) -> None:
    stack.write(1)
    report = stack.verify()
    assert report.intact
    assert {c.source: c.unpublished for c in report.chains if c.source != "audit"} == {
        REGISTRY: 4, "integrator": 4, "outcomes": 2}


def test_a_forged_tip_is_named_at_once_and_the_genuine_event_after_it(stack: Stack) -> None:
    """Found by an outside tester: an event forged at the chain's tip passed verify; after the
    next real event it showed only as a "conflicting duplicate", neither named genuine."""
    forged = forged_tip(stack)
    report = stack.verify()
    broken = only_break(report)
    assert (broken.kind, broken.sequence, broken.event_id) == (
        Kind.STORE_MISSING, forged["sequence"], forged["event_id"])

    stack.write(1)  # the real event under that sequence, and more, in one-event batches
    for name, app in stack.apps.items():
        from council.platform.audit.checkpoints import CheckpointWriter
        from council.platform.relay import OutboxRelay

        writer = CheckpointWriter.for_service(stack.settings, name, stack.dbs[name],
                                              stack.log())
        relay = OutboxRelay(app, stack.log(), stack.dbs[name], batch_size=1,
                            checkpoints=writer)
        relay.relay_once()  # only the first: nothing after it links to either yet
    _, genuine = stack.stored(REGISTRY, 5)
    for stores in (False, True):  # the signed checkpoint says, with or without the stores
        report = stack.verify(stores=stores)
        inserted = [b for b in report.breaks if b.kind is Kind.INSERTED]
        assert [(b.sequence, b.event_id) for b in inserted] == [
            (forged["sequence"], forged["event_id"])]
        assert f"event {genuine['event_id']}" in inserted[0].detail
        assert "a signed checkpoint covers it" in inserted[0].detail
        assert Kind.CONFLICTING not in {b.kind for b in report.breaks}


def test_council_audit_verify_checks_the_stores(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COUNCIL_VAR_DIR", str(stack.settings.var_dir))
    monkeypatch.setenv("COUNCIL_LOG_URL", "embedded")
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "intact" in out
    assert "4 stored events match" in out
    notification_id, envelope = stack.stored("outcomes", 2)
    stack.edit("outcomes", notification_id, *EDITS["outcomes"])
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"first broken link: outcomes sequence 2 (event {envelope['event_id']}" in out
    assert "stored event differs from the log" in out
    assert main(["audit", "verify", "--log-only"]) == 0  # the log alone is intact
    capsys.readouterr()
    stack.delete("integrator", stack.stored("integrator", 1)[0])
    assert main(["audit", "verify", "--source", "integrator"]) == 1
    assert "missing from the store" in capsys.readouterr().out


def test_a_store_whose_relay_never_ran_has_published_nothing(tmp_path: Path) -> None:
    fresh = Stack(Settings(var_dir=tmp_path, log_url="embedded"))
    try:
        fresh.write()
        report = fresh.verify()
        assert report.intact, [b.describe() for b in report.breaks]
        assert {c.source: (c.stored, c.unpublished) for c in report.chains} == {
            REGISTRY: (0, 4), "integrator": (0, 4), "outcomes": (0, 2)}
    finally:
        fresh.close()
