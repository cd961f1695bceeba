"""Crypto-shredding on both deployments (embedded: SQLite and the file log; scale-out:
PostgreSQL and the real broker, with delivery also reported over Kafka).

Providers report deliveries naming service users with their personal data, over HTTP (one
report and an NDJSON batch) and, at scale, over the Kafka inbound topic, with two rejected
messages carrying personal data too. The council reads it. Then one person is erased through
the API (by NHS number) and another with `council privacy erase` (by subject id), and:

- their plaintext appears nowhere: not in any byte of the deployment's files, any row of any
  PostgreSQL table of the deployment, any record of any Kafka topic of the deployment (the
  inbound topic aside where the broker cannot delete records: there it is what the provider
  sent, until its retention expires), the rejects topic, an export bundle, or the logs written
  meanwhile; and their keys are gone from the vault, byte for byte;
- `council audit verify` still passes, and an export still verifies;
- the read models rebuild from the log to the same answer;
- everyone else's personal data is still readable by the council.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from psycopg import sql

from council.platform.audit.keys import load_signing_key
from council.platform.audit.trail import verify_log
from council.platform.eventlog import open_event_log
from council.platform.identity import Role
from council.platform.settings import Settings
from council.services.outcomes.adapters.kafka_ingest import inbound_topic, rejects_topic
from council.services.outcomes.adapters.vault import VAULT_DATABASE, vault_database
from council.services.outcomes.domain.aggregates import delivery_id_for
from tests.unit.test_deliveries_api import (
    World,
    build_world,
    ndjson,
    post,
    post_batch,
    report,
    runtime_of,
)
from tests.waiting import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

DEADLINE_SECONDS = 120.0
ALICE = {"reference_type": "nhs_number", "reference": "943 476 5919",
         "name": "Alice Quennell", "date_of_birth": "1961-07-14", "postcode": "NS1 4AB",
         "notes": "likes the blue room on Tuesdays"}
CAROL = {"reference_type": "nhs_number", "reference": "4010232137", "name": "Carol Penhale",
         "notes": "walks with a frame since March"}
BOB = {"reference": "HS-0017", "name": "Bob Ashdown", "postcode": "WX3 9PL"}
ERIN = {"reference": "HS-0042", "name": "Erin Vasquez-Lowe"}
ERASED = {
    "Alice": [b"Alice Quennell", b"9434765919", b"943 476 5919", b"1961-07-14", b"NS1 4AB",
              b"likes the blue room on Tuesdays"],
    "Carol": [b"Carol Penhale", b"4010232137", b"walks with a frame since March"],
}


@pytest.fixture(params=["embedded", "scale"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    var = tmp_path / "var"
    if request.param == "embedded":
        yield Settings(var_dir=var, log_url="embedded", relay_interval=0.01)
        return
    url = request.getfixturevalue("postgres_url")
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    prefix = request.getfixturevalue("pg_schema_prefix")
    yield Settings(var_dir=var, database_url=url, schema_prefix=prefix,
                   log_url=f"kafka://{bootstrap}", topic_prefix=prefix, relay_interval=0.01)


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    with ExitStack() as stack:
        yield build_world(stack, settings, DEADLINE_SECONDS)


@pytest.fixture
def council_cli(settings: Settings) -> Any:
    """`council ...` as its own process against the deployment: (exit code, output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env.update({"COUNCIL_VAR_DIR": str(settings.var_dir), "COUNCIL_LOG_URL": settings.log_url,
                "COUNCIL_TOPIC_PREFIX": settings.topic_prefix,
                "COUNCIL_SCHEMA_PREFIX": settings.schema_prefix})
    if settings.database_url:
        env["COUNCIL_DATABASE_URL"] = settings.database_url

    def run(*args: str, stdin: str = "") -> tuple[int, str]:
        """The exit code and what was printed (standard output, then standard error)."""
        done = subprocess.run([sys.executable, "-m", "council.tools.cli", *args], input=stdin,
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
                              check=False)
        return done.returncode, done.stdout + done.stderr

    return run


# --------------------------------------------------------------------------- where to look


def leaks(blobs: dict[str, bytes]) -> dict[str, list[str]]:
    """For each erased person, the places (of `blobs`) holding any of their plaintext."""
    return {who: sorted(place for place, blob in blobs.items()
                        if any(needle in blob for needle in needles))
            for who, needles in ERASED.items()}


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def postgres_tables(settings: Settings) -> dict[str, bytes]:
    """Every row of every table of the deployment's schemas, as bytes (bytea as it is)."""
    assert settings.database_url is not None
    found: dict[str, bytes] = {}
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE starts_with(table_schema, %s) AND table_type = 'BASE TABLE'",
            (settings.schema_prefix,)).fetchall()
        for schema, table in tables:
            rows = conn.execute(sql.SQL("SELECT * FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table))).fetchall()
            found[f"{schema}.{table}"] = b"\x00".join(
                bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                for row in rows for v in row)
    return found


def kafka_topics(settings: Settings) -> dict[str, bytes]:
    """Every record (key, value, headers) of every topic of the deployment, by topic."""
    bootstrap = settings.log_url.removeprefix("kafka://")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        topics = sorted(t for t in admin.list_topics() if t.startswith(settings.topic_prefix))
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=100)
    found: dict[str, bytes] = {}
    try:
        for topic in topics:
            partitions = [TopicPartition(topic, p)
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            ends = consumer.end_offsets(partitions)
            consumer.seek_to_beginning(*partitions)
            chunks: list[bytes] = []
            deadline = time.monotonic() + 60
            while any(consumer.position(tp) < ends[tp] for tp in partitions):
                assert time.monotonic() < deadline, f"could not read {topic} to its end"
                for batch in consumer.poll(timeout_ms=200).values():
                    for r in batch:
                        chunks.extend([r.key or b"", r.value or b"",
                                       *(v or b"" for _, v in r.headers)])
            found[topic] = b"\x00".join(chunks)
    finally:
        consumer.close()
    return found


def wrapped_keys(settings: Settings, subjects: list[str]) -> list[bytes]:
    db = vault_database(settings)
    try:
        with db.transaction() as tx:
            rows = tx.execute("SELECT wrapped_key FROM data_subject_keys WHERE subject_id IN"
                              f" ({','.join('?' * len(subjects))})", subjects)
    finally:
        db.close()
    return [r[0].encode() for r in rows]


# --------------------------------------------------------------------------- reporting


def send_over_kafka(world: World) -> tuple[str, list[dict[str, Any]]]:
    """A report naming Alice and Erin, and two rejected messages carrying Alice's data, on the
    inbound topic as hillside. Returns the report's delivery id and the rejects."""
    settings = world.settings
    bootstrap = settings.log_url.removeprefix("kafka://")
    inbound, rejects = inbound_topic(settings), rejects_topic(settings)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        for topic in (inbound, rejects):
            with suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic, settings.kafka_partitions, 1)])
    finally:
        admin.close()
    token = world.auth["hillside"]["Authorization"].removeprefix("Bearer ")
    headers = [("authorization", f"Bearer {token}".encode())]
    key = f"kafka-{uuid4().hex[:8]}"
    good = report(world.agreements["active"], key, service_users=[ALICE, ERIN])
    bad = report(world.agreements["active"], service_users=[{**ALICE, "postcode": "Nowhere"}])
    broken = b'{"idempotency_key": "x", "service_users": [{"name": "Alice Quennell"'
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        for value in (json.dumps(good).encode(), json.dumps(bad).encode(), broken):
            producer.send(inbound, key=str(world.providers["hillside"]).encode(), value=value,
                          headers=headers).get(timeout=30)
    finally:
        producer.close(timeout=5)
    delivery_id = str(delivery_id_for(world.providers["hillside"], key))
    eventually(lambda: world.outcomes.get(f"/deliveries/{delivery_id}",
                                          headers=world.admin).status_code,
               lambda code: code == 200, world.deadline)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        partitions = [TopicPartition(rejects, p)
                      for p in sorted(consumer.partitions_for_topic(rejects) or ())]
        consumer.assign(partitions)
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + world.deadline
        while len(found) < 2 and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                found.extend(json.loads(r.value) for r in batch)
    finally:
        consumer.close()
    return delivery_id, found


def names(world: World, delivery_id: str, headers: dict[str, str]) -> list[tuple[str, Any]]:
    body = world.outcomes.get(f"/deliveries/{delivery_id}", headers=headers).json()
    return [(u["state"], u["name"]) for u in body["service_users"]]


def listing(world: World, headers: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = world.outcomes.get("/deliveries", params={"limit": 1000},
                                                     headers=headers).json()
    return found


# --------------------------------------------------------------------------- the test


def test_erased_personal_data_is_unreadable_everywhere_and_the_trail_still_verifies(
    world: World, council_cli: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str],
) -> None:
    settings = world.settings
    scale = settings.uses_postgres
    commissioner = world.council(Role.COMMISSIONER)
    active = world.agreements["active"]

    # Reported over HTTP, one report and a batch, and at scale over Kafka.
    single = post(world, report(active, service_users=[ALICE, BOB]))
    assert single.status_code == 201, single.text
    single_id = single.json()["delivery_id"]
    batch_keys = [f"batch-{uuid4().hex[:8]}" for _ in range(3)]
    batch = post_batch(world, ndjson(report(active, batch_keys[0], service_users=[ALICE]),
                                     report(active, batch_keys[1], service_users=[CAROL, BOB]),
                                     report(active, batch_keys[2]))).json()
    assert (batch["accepted"], batch["rejected"]) == (3, [])
    batch_ids = [str(delivery_id_for(world.providers["hillside"], k)) for k in batch_keys]
    kafka_id = None
    if scale:
        kafka_id, rejects = send_over_kafka(world)
        assert sorted(r["field"] or "" for r in rejects) == ["", "service_users.0.postcode"]
        assert all(r["original_redacted"] for r in rejects)

    # The council reads it.
    assert names(world, single_id, commissioner) == [("readable", "Alice Quennell"),
                                                     ("readable", "Bob Ashdown")]
    assert names(world, batch_ids[1], commissioner) == [("readable", "Carol Penhale"),
                                                        ("readable", "Bob Ashdown")]
    if kafka_id:
        assert names(world, kafka_id, commissioner) == [("readable", "Alice Quennell"),
                                                        ("readable", "Erin Vasquez-Lowe")]
    alice = single.json()["service_users"][0]["subject_id"]
    carol = world.outcomes.get(f"/deliveries/{batch_ids[1]}",
                               headers=commissioner).json()["service_users"][0]["subject_id"]
    keys = wrapped_keys(settings, [alice, carol])
    assert len(keys) == 2

    # Erased: Alice through the API by NHS number, Carol with the CLI by subject id.
    erased = world.outcomes.post("/data-subjects/erasure", headers=world.admin, json={
        "service_user": {"reference_type": "nhs_number", "reference": "9434765919"},
        "legal_basis": "consent_withdrawn", "reason": "DSR-2026-0042"})
    assert erased.status_code == 201, erased.text
    assert erased.json()["subject_id"] == alice
    purge = erased.json()["inbound_purge"]
    code, said = council_cli("privacy", "erase", "--subject-id", carol, "--legal-basis",
                             "objection", "--reason", "DSR-2026-0043", "--by", "Sam Patel")
    assert code == 0, said
    assert f"erased: data subject {carol}" in said
    code, said = council_cli("privacy", "erase", "--subject-id", carol, "--legal-basis",
                             "objection", "--reason", "again", "--by", "Sam Patel")
    assert (code, said.split(":")[0]) == (0, "already erased")
    assert council_cli("privacy", "erase", "--reference-stdin", "--legal-basis", "objection",
                       "--reason", "DSR-1", "--by", "Sam", stdin="4010232137\n")[0] == 1

    # Everything published and applied, the erasures included.
    runtime = runtime_of(world.outcomes)
    eventually(runtime.relay.pending, lambda pending: pending == 0, world.deadline)
    eventually(lambda: {e["subject_id"] for e in world.outcomes.get(
        "/data-subjects/erasures", headers=world.admin).json()},
        lambda found: found == {alice, carol}, world.deadline)
    expected_ids = {single_id, *batch_ids, *([kafka_id] if kafka_id else [])}
    eventually(lambda: {d["delivery_id"] for d in listing(world, commissioner)
                        if d["service_users"]} | {batch_ids[2]},
               lambda found: expected_ids <= found, world.deadline)

    # Unreadable for the council now; everyone else still readable.
    assert names(world, single_id, commissioner) == [("erased", None),
                                                     ("readable", "Bob Ashdown")]
    assert names(world, batch_ids[1], world.auth["hillside"]) == [("erased", None),
                                                                  ("readable", "Bob Ashdown")]
    if kafka_id:
        assert names(world, kafka_id, world.admin) == [("erased", None),
                                                       ("readable", "Erin Vasquez-Lowe")]

    # The trail still verifies, and exports.
    code, said = council_cli("audit", "verify")
    assert code == 0, said
    event_log = open_event_log(settings)
    try:
        trail, _ = verify_log(event_log, key=load_signing_key(settings).public_key())
    finally:
        event_log.close()
    assert trail.intact, [b.describe() for b in trail.breaks]
    assert trail.checkpoints > 0
    bundle = tmp_path / "bundle"
    code, said = council_cli("audit", "export", "--out", str(bundle))
    assert code == 0, said
    assert council_cli("audit", "verify", "--bundle", str(bundle))[0] == 0

    # The plaintext is nowhere; the keys are gone byte for byte.
    places = {**{f"file {k}": v for k, v in files_under(settings.var_dir).items()},
              **{f"bundle {k}": v for k, v in files_under(bundle).items()}}
    if scale:
        places.update({f"table {k}": v for k, v in postgres_tables(settings).items()})
        topics = kafka_topics(settings)
        inbound = inbound_topic(settings)
        assert rejects_topic(settings) in topics
        assert purge is not None
        if purge.startswith("purged"):
            places.update({f"topic {k}": v for k, v in topics.items()})
        else:
            # The broker cannot delete records (the local Tansu broker): the inbound topic
            # keeps what the provider sent until its retention expires. Every other topic
            # (the shared log, the audit topic, the rejects) is checked.
            assert purge.startswith("not purged")
            assert any(n in topics[inbound] for n in ERASED["Alice"])
            places.update({f"topic {k}": v for k, v in topics.items() if k != inbound})
    else:
        assert settings.sqlite_path(VAULT_DATABASE).exists()
        assert (settings.var_dir / "shared-log.sqlite").exists()
    assert any(b"ciphertext" in blob for blob in places.values())
    assert leaks(places) == {"Alice": [], "Carol": []}
    for wrapped in keys:
        assert not [place for place, blob in places.items() if wrapped in blob]
    assert wrapped_keys(settings, [alice, carol]) == []

    # The read models rebuild to the same answer.
    before = listing(world, commissioner)
    for name in ("outcomes.deliveries", "outcomes.data_subjects"):
        assert runtime.runner(name).rebuild() > 0
    assert listing(world, commissioner) == before

    # Nothing written to the logs meanwhile held it either.
    written = capfd.readouterr()
    assert leaks({"output": (written.out + written.err).encode()}) == {"Alice": [], "Carol": []}
