"""A broker that came back empty, with its topics made again with 4 partitions instead of 3:
the read models' saved positions are past the partitions' ends. Reading from them would find
nothing (Tansu answers a fetch past the end with no records and no error) and a read model
would say it has nothing left to read while every new event waits. It is noticed instead:
recorded for /ready with what was found, and the partitions read again from their start."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.kernel.errors import InfrastructureUnavailable
from council.platform.eventlog import kafka as kafka_module
from council.platform.eventlog.findings import findings
from council.platform.eventlog.kafka import KafkaEventLog
from council.platform.projection import ProjectionRunner
from council.platform.readiness import findings_check
from council.platform.sql import Database
from council.tools.tansu import free_port, start_broker
from tests.unit.test_projection_runner import Tally, counted, tally

pytestmark = pytest.mark.integration


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def brokers(port: int, tmp_path: Path) -> Iterator[list[object]]:
    started: list[object] = []
    yield started
    for process in started:
        with contextlib.suppress(Exception):
            process.kill()  # type: ignore[attr-defined]
            process.wait(timeout=10)  # type: ignore[attr-defined]


def test_a_broker_that_came_back_empty_is_noticed_and_read_again(
        port: int, brokers: list[object], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_module, "PARTITIONS_REFRESH_S", 0.5)
    bootstrap = f"127.0.0.1:{port}"
    broker = start_broker(port, tmp_path / "broker.log")
    brokers.append(broker)
    writer = KafkaEventLog(bootstrap, topic_prefix="back", partitions=3, sources=("integrator",))
    writer.append([counted("integrator", f"s{i}", n) for i in range(6) for n in (1, 2, 3)])
    writer.close()
    db = Database.sqlite(tmp_path / "views.sqlite")
    runner = ProjectionRunner(Tally(), db, KafkaEventLog(bootstrap, topic_prefix="back",
                                                          partitions=3, sources=()))
    runner.watch.every = 0
    assert runner.catch_up() == 18
    before = runner.position()
    assert sum(before.values()) == 18

    broker.kill()
    broker.wait(timeout=10)
    brokers.append(start_broker(port, tmp_path / "broker.log"))
    again = KafkaEventLog(bootstrap, topic_prefix="back", partitions=4, sources=("integrator",))
    again.append([counted("integrator", "new", 1)])
    again.close()

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(InfrastructureUnavailable):  # while it reconnects
            runner.run_once()
        found = {f["about"]: f["finding"] for f in findings(db)}
        if ("integrator", "new") in tally(db) and "back.integrator" in found \
                and len(found) >= 3:
            break
        time.sleep(0.2)
    found = {f["about"]: f["finding"] for f in findings(db)}
    assert "has 4 partitions, not the 3" in found["back.integrator"]
    for key, at in before.items():
        if at > 1:  # each partition it had read past what the new log holds
            assert f"saved position {at} of {key} is past the log's end" in found[key]
    assert "the log went back or changed" in findings_check(findings(db))
    # Read again from the start: the new event is applied, nothing it had is lost or doubled.
    assert tally(db)[("integrator", "new")] == 1
    assert sum(tally(db).values()) == 19
    runner.event_log.close()
