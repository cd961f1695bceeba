"""Log lines: readable on a terminal, JSON elsewhere, and no line per event unless asked."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

import council.platform.projection
from council.kernel.envelope import EventEnvelope
from council.platform.eventlog.embedded import EmbeddedEventLog
from council.platform.logs import chosen_format, configure_logging
from council.platform.projection import Projection, ProjectionRunner
from council.platform.settings import Settings
from council.platform.sql import Database, Tx


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Counted(Projection):
    name = "test.counted"
    sources = ("integrator",)

    def create(self, tx: Tx) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS counted (n INTEGER)")

    def drop(self, tx: Tx) -> None:
        tx.execute("DROP TABLE IF EXISTS counted")

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        tx.execute("INSERT INTO counted VALUES (1)")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test configures structlog its own way; the rest of the session keeps its own."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
    structlog.contextvars.clear_contextvars()


def _stderr(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO) -> io.StringIO:
    monkeypatch.setattr("sys.stderr", stream)
    return stream


def _apply_three_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read model applying three events, logging through a logger made under the current
    configuration (module loggers keep the one they were first used with)."""
    monkeypatch.setattr(council.platform.projection, "log", structlog.get_logger("projection"))
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    now = datetime.now(UTC)
    log.append([EventEnvelope(event_id=uuid.uuid4(), type="Counted", schema_version=1,
                              source="integrator", stream_id="s", stream_position=n,
                              occurred_at=now, recorded_at=now, data={},
                              correlation_id=f"corr-{n}")
                for n in (1, 2, 3)])
    assert ProjectionRunner(Counted(), Database.sqlite(tmp_path / "v.sqlite"), log).catch_up()


def test_at_the_default_level_a_read_model_logs_no_line_per_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = _stderr(monkeypatch, io.StringIO())
    configure_logging("integrator", Settings().log_level)
    _apply_three_events(tmp_path, monkeypatch)
    structlog.get_logger("check").info("still_logging")
    lines = [json.loads(line) for line in err.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["still_logging"]


def test_at_debug_level_each_event_applied_has_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = _stderr(monkeypatch, io.StringIO())
    configure_logging("integrator", "debug")
    _apply_three_events(tmp_path, monkeypatch)
    applied = [json.loads(line) for line in err.getvalue().splitlines()]
    assert [(a["event"], a["correlation_id"]) for a in applied] == [
        ("event_applied", f"corr-{n}") for n in (1, 2, 3)]


def test_lines_are_json_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = _stderr(monkeypatch, io.StringIO())
    assert chosen_format() == "json"
    configure_logging("outcomes")
    structlog.get_logger("check").warning("relay_failed", error="broker gone")
    line = json.loads(err.getvalue())
    assert line["event"] == "relay_failed"
    assert (line["level"], line["service"], line["error"]) == (
        "warning", "outcomes", "broker gone")


def test_lines_are_readable_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = _stderr(monkeypatch, Terminal())
    assert chosen_format() == "console"
    configure_logging("outcomes")
    structlog.get_logger("check").warning("relay_failed", error="broker gone")
    written = err.getvalue()
    assert "relay_failed" in written
    assert "broker gone" in written
    with pytest.raises(ValueError, match="Expecting value"):
        json.loads(written)


@pytest.mark.parametrize(("stream", "asked", "chosen"), [
    (Terminal(), "json", "json"),
    (io.StringIO(), "console", "console"),
])
def test_the_format_asked_for_wins(
    monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, asked: str, chosen: str
) -> None:
    _stderr(monkeypatch, stream)
    assert chosen_format(asked) == chosen


def test_the_format_and_level_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNCIL_LOG_FORMAT", "json")
    monkeypatch.setenv("COUNCIL_LOG_LEVEL", "debug")
    assert (Settings().log_format, Settings().log_level) == ("json", "debug")
    monkeypatch.setenv("COUNCIL_LOG_FORMAT", "yaml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()


# --------------------------------------------------------------------------- council up's banner


def _report(pending: int | None = 0, behind: dict[str, int] | None = None,
            workers: dict[str, str] | None = None) -> dict[str, object]:
    return {"relay_pending": pending,
            "projections_behind": {"integrator.network": 0} if behind is None else behind,
            "workers": {"relay": "running", "projections": "running"} if workers is None
            else workers}


@pytest.mark.parametrize(("report", "ready_for_the_banner"), [
    (_report(), True),
    (_report(workers={"relay": "thread"}), True),
    (_report(pending=12), False),  # stored events not yet on the log
    (_report(pending=None), False),  # the relay cannot say
    (_report(behind={"integrator.network": 0, "integrator.timeline": 3}), False),
    (_report(behind={}), True),  # a service with no read model
    ({**_report(), "projections_behind": None}, False),  # the log cannot say where it ends
    (_report(workers={"relay": "running", "projections": "restarting"}), False),
    (None, False),  # /ready did not answer
])
def test_the_urls_wait_for_every_relay_and_read_model_to_catch_up(
    report: dict[str, object] | None, ready_for_the_banner: bool
) -> None:
    from council.tools.cli import settled

    assert settled(report) is ready_for_the_banner
