"""The raw limits `council bench` holds its figures against, measured in the same run: what
PostgreSQL takes by COPY and by batched INSERT (1,000 rows a transaction), what the broker takes
from a producer, how fast Python decodes an envelope's JSON, and how many `/health` requests a
service answers (the HTTP framework's floor, measured with wrk like the reads).

A figure on its own says little on a machine others share: the same work took 40% more time
from one minute to the next. A ratio to a limit measured minutes apart on the same machine
moves far less, and says how far the platform is from what its parts allow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass

from council.kernel.envelope import canonical_json

ROWS = 100_000
INSERT_BATCH = 1000
MESSAGES = 100_000
DECODES = 200_000


def _payload(i: int) -> bytes:
    """About the bytes of a stored delivery report: an envelope with a small data part."""
    return canonical_json({
        "event_id": str(uuid.UUID(int=i)), "type": "DeliveryReported", "schema_version": 1,
        "source": "outcomes", "stream_id": str(uuid.UUID(int=i + 1)), "stream_position": 1,
        "occurred_at": "2026-01-31T12:00:00.000000+00:00",
        "recorded_at": "2026-01-31T12:00:00.000000+00:00", "correlation_id": "c" * 32,
        "actor": "provider:bench", "organisation": str(uuid.UUID(int=7)),
        "data": {"agreement_id": str(uuid.UUID(int=3)), "activity_type": "session",
                 "quantity": "1", "unit": "session", "delivered_on": "2026-01-30",
                 "idempotency_key": f"k{i}"}})


def _table(conn: object, name: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {name}")  # type: ignore[attr-defined]
    conn.execute(  # type: ignore[attr-defined]
        f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, stream_id TEXT NOT NULL,"
        " position BIGINT NOT NULL, body BYTEA NOT NULL)")


def pg_copy_rate(url: str, rows: int = ROWS) -> float:
    """Rows/s PostgreSQL takes by COPY (binary) into a table with a primary key, one
    transaction."""
    import psycopg

    name = f"bench_copy_{uuid.uuid4().hex[:8]}"
    bodies = [_payload(i) for i in range(rows)]
    with psycopg.connect(url, autocommit=True) as conn:
        _table(conn, name)
        try:
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur, cur.copy(
                    f"COPY {name} (id, stream_id, position, body) FROM STDIN") as copy:
                for i, body in enumerate(bodies):
                    copy.write_row((i, f"s{i}", 1, body))
            seconds = time.perf_counter() - started
        finally:
            conn.execute(f"DROP TABLE {name}")
    return rows / seconds


def pg_insert_rate(url: str, rows: int = ROWS, batch: int = INSERT_BATCH) -> float:
    """Rows/s PostgreSQL takes by INSERT, `batch` rows a transaction (executemany, pipelined)."""
    import psycopg

    name = f"bench_insert_{uuid.uuid4().hex[:8]}"
    bodies = [_payload(i) for i in range(rows)]
    with psycopg.connect(url) as conn:
        _table(conn, name)
        conn.commit()
        try:
            started = time.perf_counter()
            for start in range(0, rows, batch):
                with conn.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO {name} (id, stream_id, position, body)"
                        " VALUES (%s, %s, %s, %s)",
                        [(i, f"s{i}", 1, bodies[i])
                         for i in range(start, min(rows, start + batch))])
                conn.commit()
            seconds = time.perf_counter() - started
        finally:
            conn.execute(f"DROP TABLE {name}")
            conn.commit()
    return rows / seconds


def kafka_produce_rate(bootstrap: str, messages: int = MESSAGES) -> float:
    """Messages/s the broker takes from one producer as the relay's (acks=all, idempotent),
    until all are confirmed."""
    from confluent_kafka import Producer

    topic = f"bench-produce-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5,
                         "queue.buffering.max.messages": messages + 1000})
    bodies = [_payload(i) for i in range(messages)]
    producer.produce(topic, b"warm-up", key=b"k")  # creates the topic (auto-create)
    producer.flush(30)
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        producer.produce(topic, body, key=str(i % 64).encode())
        if i % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(120)
    seconds = time.perf_counter() - started
    if left:
        raise RuntimeError(f"bench: {left} messages not confirmed by the broker")
    return messages / seconds


def json_decode_rate(records: int = DECODES) -> float:
    """Envelopes/s Python's json module decodes (one core): the floor of reading any record."""
    bodies = [_payload(i) for i in range(min(records, 10_000))]
    started = time.perf_counter()
    for i in range(records):
        json.loads(bodies[i % len(bodies)])
    return records / (time.perf_counter() - started)


# ------------------------------------------------------------------------------ load (wrk)


@dataclass(frozen=True)
class Load:
    """What wrk saw: requests/s, the 99th percentile latency (s), timeouts and other socket
    errors, and answers other than 2xx/3xx."""

    per_s: float
    p99: float
    timeouts: int
    errors: int
    bad: int


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, connections: int, seconds: float, token: str | None = None,
        timeout: float = 2.0) -> Load:
    """Drive `url` with wrk (keep-alive, `connections` open, 2 threads) for `seconds`."""
    threads = max(1, min(2, connections))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               f"--timeout={timeout:g}s", "--latency"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True,
                         timeout=seconds + 60).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rate is None:
        raise RuntimeError(f"bench: wrk said nothing usable:\n{out}")
    connect, read, write, timeouts = (int(x) for x in errors.groups()) if errors else (0,) * 4
    return Load(float(rate.group(1)), _seconds(p99.group(1)) if p99 else float("nan"),
                timeouts, connect + read + write, int(bad.group(1)) if bad else 0)


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())
