"""`council bench`, delivery over Kafka: delivery reports per second accepted from the inbound
topic, end to end into the outcomes store and onto the shared log.

`run(settings)` issues provider tokens for a handful of providers, each with one active agreement,
produces MESSAGES valid reports to the inbound topic (timed on its own), then starts the clock and
runs the ingest as the service does, with the outbox relay publishing alongside it in its own
thread. It prints the time until every report was stored and the time until every stored event
was on the shared log. Only a deployment whose log is Kafka has the inbound topic.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import date, timedelta
from uuid import UUID, uuid4

from kafka import KafkaProducer

from services.outcomes.application import AgreementInfo, Outcomes
from services.outcomes.kafka_ingest import KafkaDeliveryIngest, kafka_bootstrap
from shared.bench import _row
from shared.eventlog import open_event_log
from shared.eventstore import open_application, store_database
from shared.identity import Role, TokenStore
from shared.relay import OutboxRelay
from shared.settings import Settings
from shared.sql import open_database

MESSAGES = 20_000
PROVIDERS = 10
TIMEOUT_S = 600.0


def reports(agreements: dict[UUID, UUID], count: int, run_id: str) -> list[tuple[UUID, bytes]]:
    """`count` valid delivery reports spread over the agreements: (provider id, JSON value)."""
    kinds = ("sessions_delivered", "people_reached", "meals", "care_hours", "journeys")
    pairs = sorted(agreements.items(), key=lambda item: str(item[0]))
    start = date.today() - timedelta(days=60)
    out: list[tuple[UUID, bytes]] = []
    for i in range(count):
        agreement_id, provider_id = pairs[i % len(pairs)]
        day = start + timedelta(days=i % 28)
        body = {"idempotency_key": f"bench-{run_id}-{i}", "agreement_id": str(agreement_id),
                "activity_type": kinds[i % len(kinds)], "quantity": 1 + i % 40,
                "period_start": day.isoformat(), "period_end": day.isoformat()}
        out.append((provider_id, json.dumps(body).encode()))
    return out


def run(settings: Settings, messages: int = MESSAGES) -> None:
    bootstrap = kafka_bootstrap(settings)
    if bootstrap is None:
        print("  delivery over Kafka: not measured, this deployment has no Kafka "
              "(providers report over HTTP)")
        return
    app = open_application(Outcomes, settings)
    providers = [uuid4() for _ in range(PROVIDERS)]
    agreements = {uuid4(): provider for provider in providers}
    known = {a: AgreementInfo(a, "active", frozenset({p})) for a, p in agreements.items()}
    app.agreements = lambda ids: {i: known[i] for i in ids if i in known}
    identity = open_database(settings, "identity")
    tokens = TokenStore(identity)
    issued = {p: tokens.create(Role.PROVIDER, f"bench provider {n}", p).token
              for n, p in enumerate(providers)}
    store_db = store_database(settings, Outcomes.service)
    ingest = KafkaDeliveryIngest.for_settings(app, tokens, store_db, settings)
    assert ingest is not None
    ingest.ensure_topics()
    values = reports(agreements, messages, uuid4().hex[:8])

    def produce() -> int:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                 enable_idempotence=True, linger_ms=5, batch_size=256 * 1024)
        for provider_id, value in values:
            producer.send(ingest.inbound, key=str(provider_id).encode(), value=value,
                          headers=[("authorization", f"Bearer {issued[provider_id]}".encode())])
        producer.flush(timeout=60)
        producer.close(timeout=10)
        return len(values)

    started = time.perf_counter()
    count = produce()
    _row("delivery over Kafka: providers -> inbound", count, time.perf_counter() - started)

    event_log = open_event_log(settings)
    relay = OutboxRelay(app, event_log, store_db, batch_size=1000)
    stop = threading.Event()
    relaying = threading.Thread(target=relay.run, args=(stop, 0.01), name="bench-relay",
                                daemon=True)
    started = time.perf_counter()
    relaying.start()
    try:
        while ingest.counts.messages < messages:
            ingest.run_once()
            if time.perf_counter() - started > TIMEOUT_S:
                raise RuntimeError(f"only {ingest.counts.messages} of {messages} messages read")
        stored = time.perf_counter() - started
        while relay.pending():
            time.sleep(0.005)
            if time.perf_counter() - started > TIMEOUT_S:
                raise RuntimeError("the relay did not publish every stored report in time")
        published = time.perf_counter() - started
    finally:
        stop.set()
        relaying.join(timeout=30)
    if ingest.counts.accepted != messages or ingest.counts.rejected:
        raise RuntimeError(f"Kafka ingest did not accept every report: {ingest.counts}")
    _row("delivery over Kafka: inbound -> store", ingest.counts.accepted, stored)
    _row("delivery over Kafka: inbound -> store -> log", ingest.counts.accepted, published)
    ingest.close()
    event_log.close()
    app.close()
    for db in (store_db, identity):
        db.close()
