"""Read models make progress on a slow broker: a broker two seconds away (a second each way,
through a real TCP link that holds every chunk; tests/slow_link.py), read by several read
models at once. Each read once gave up after 2 s, before the topic's metadata could even
arrive, and started over: none applied anything."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from council.platform.eventlog.kafka import KafkaEventLog
from council.platform.projection import ProjectionRunner
from council.platform.sql import Database
from council.tools.tansu import free_port, start_broker
from tests.slow_link import SlowLink
from tests.unit.test_projection_runner import Tally, counted

pytestmark = pytest.mark.integration

READERS = 6
EVENTS = 300
DELAY_S = 1.0  # each way


def test_read_models_catch_up_through_a_slow_broker(tmp_path: Path) -> None:
    broker_port, link_port = free_port(), free_port()
    broker = start_broker(broker_port, tmp_path / "broker.log", advertised_port=link_port)
    try:
        with SlowLink(broker_port, DELAY_S, link_port):
            bootstrap = f"127.0.0.1:{link_port}"
            writer = KafkaEventLog(bootstrap, topic_prefix="slow", sources=("integrator",))
            writer.append([counted("integrator", f"s{i % 30}", i // 30 + 1)
                           for i in range(EVENTS)])
            writer.close()
            runners = [ProjectionRunner(
                type(f"Tally{i}", (Tally,), {"name": f"test.slow{i}"})(),
                Database.sqlite(tmp_path / f"views{i}.sqlite"),
                KafkaEventLog(bootstrap, topic_prefix="slow", checked=True))
                for i in range(READERS)]
            stop = threading.Event()
            threads = [threading.Thread(target=r.run, args=(stop, 0.05), daemon=True)
                       for r in runners]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                applied = [sum(r.position().values()) for r in runners]
                if applied == [EVENTS] * READERS:
                    break
                time.sleep(1)
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            for runner in runners:
                runner.event_log.close()
            assert applied == [EVENTS] * READERS
    finally:
        broker.terminate()
        broker.wait(timeout=10)
