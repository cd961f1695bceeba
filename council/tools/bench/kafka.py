"""`council bench`, delivery over Kafka: delivery reports per second accepted from the inbound
topic, end to end into the outcomes store and onto the shared log.

`run(settings)` runs the outcomes service as production does (`council serve outcomes`: its
Kafka ingest, relay and projections each in a process of its own), seeds a handful of active
agreements on the shared log as the integrator publishes them, issues the providers' tokens and
warms the service up with a few hundred reports. Then it produces MESSAGES valid reports to the
inbound topic as providers would (acks=all, idempotent, keyed by provider) and measures, from
the first send: until every report is stored (the ingest has stored its offsets past the last
message, which it does only after storing the reports), and until every stored event is on the
shared log (the relay's saved position has reached the newest event in the store). The reports
are produced while the clock runs, so the figure is what a provider sees, production included.

It measures three times, each over MESSAGES reports (enough for a rate held for several
seconds, not a burst absorbed by the first batches): with the whole service running on this
machine (its read models and payments process compete for the same cores); with only the
ingest and relay processes (`council work outcomes --group ingest` and `--group relay`), as a
scale-out deployment can run them, the read models following the log elsewhere; and with the
ingest in two processes, each owning a share of the inbound partitions
(COUNCIL_DELIVERIES_INGEST_PARTITIONS), which is how Kafka ingestion scales: one ingest process is
one Python interpreter, at most one core, idle while PostgreSQL stores its batch. The providers
are chosen so their keys spread evenly over the partitions. Only a deployment whose log is
Kafka has the inbound topic.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import confluent_kafka
from kafka.partitioner.default import murmur2

from council.platform.identity import Role, TokenStore
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.platform.workers import INGEST, RELAY
from council.services.outcomes.adapters.kafka_ingest import (
    inbound_topic,
    kafka_bootstrap,
    partition_shares,
)
from council.services.outcomes.projections.agreements import lookup_agreements
from council.tools.bench.deliveries import StoreWatch, seed_agreement
from council.tools.bench.measure import CpuMeter, row, served, wait_until, worked

MESSAGES = 100_000
WARM_UP = 500
PROVIDERS = 10
INGEST_PROCESSES = 2  # in the last measurement
TIMEOUT_S = 600.0


def spread_providers(count: int, partitions: int) -> list[UUID]:
    """`count` new provider ids whose keys spread evenly over the inbound partitions (as many
    providers would on average; ten random ones can all land on two of three partitions, and
    leave an ingest process that owns the third with nothing to do)."""
    per_partition = -(-count // partitions)
    taken: Counter[int] = Counter()
    chosen: list[UUID] = []
    while len(chosen) < count:
        candidate = uuid4()
        # The partition the producer picks for this key (murmur2, as Java and librdkafka's
        # murmur2_random partitioners do).
        partition = (murmur2(str(candidate).encode()) & 0x7FFFFFFF) % partitions
        if taken[partition] < per_partition:
            taken[partition] += 1
            chosen.append(candidate)
    return chosen


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


class _Inbound:
    """The inbound topic as this process sees it: what it sent, and how far the service's
    ingest has stored its offsets."""

    def __init__(self, settings: Settings, bootstrap: str, tokens: dict[UUID, str]) -> None:
        self.topic = inbound_topic(settings)
        self.tokens = tokens
        self.store_db = Database(settings.database_url, schema=settings.schema_of("outcomes")) \
            if settings.database_url else Database.sqlite(settings.sqlite_path("outcomes"))
        self.bootstrap = bootstrap
        self._producer: confluent_kafka.Producer | None = None

    @property
    def producer(self) -> confluent_kafka.Producer:
        # As a large provider would send: librdkafka, acks=all, idempotent (kafka-python, as in
        # the README's example, works the same but takes 20 us of this process's CPU a message,
        # on the cores the service is measured on). Made once the service has created the
        # topic: a client that looked it up before would wait minutes to look again.
        if self._producer is None:
            self._producer = confluent_kafka.Producer({
                "bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
                "linger.ms": 5, "partitioner": "murmur2_random"})
        return self._producer

    def send(self, values: list[tuple[UUID, bytes]]) -> None:
        for provider_id, value in values:
            while True:
                try:
                    self.producer.produce(
                        self.topic, key=str(provider_id).encode(), value=value,
                        headers=[("authorization",
                                  f"Bearer {self.tokens[provider_id]}".encode())])
                    break
                except BufferError:
                    self.producer.poll(0.05)
        if self.producer.flush(60):
            raise RuntimeError("bench: the broker did not take every report in time")

    def consumed(self) -> int:
        """Messages the ingest has stored its offsets past (each one stored or rejected)."""
        with self.store_db.transaction() as tx:
            exists = tx.execute(
                "SELECT 1 FROM kafka_inbound_offsets WHERE topic = ? LIMIT 1", (self.topic,)
            ) if self._has_table(tx) else []
            if not exists:
                return 0
            rows = tx.execute("SELECT SUM(next_offset) FROM kafka_inbound_offsets"
                              " WHERE topic = ?", (self.topic,))
        return int(rows[0][0] or 0)

    def _has_table(self, tx: object) -> bool:
        try:
            tx.execute("SELECT 1 FROM kafka_inbound_offsets LIMIT 1")  # type: ignore[attr-defined]
        except Exception:
            return False
        return True

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)
        self.store_db.close()


def run(settings: Settings, messages: int = MESSAGES,
        log_dir: Path | None = None) -> dict[str, float]:
    bootstrap = kafka_bootstrap(settings)
    if bootstrap is None:
        print("  delivery over Kafka: not measured, this deployment has no Kafka "
              "(providers report over HTTP)")
        return {}
    run_id = uuid4().hex[:8]
    providers = spread_providers(PROVIDERS, settings.kafka_partitions)
    agreements = {uuid4(): provider for provider in providers}
    identity = open_database(settings, "identity")
    token_store = TokenStore(identity)
    tokens = {p: token_store.create(Role.PROVIDER, f"bench provider {n}", p).token
              for n, p in enumerate(providers)}
    identity.close()
    views = open_database(settings, "outcomes_views")
    watch = StoreWatch(settings)
    log_file = (log_dir or Path(tempfile.gettempdir())) / f"bench-outcomes-kafka-{run_id}.log"
    inbound = _Inbound(settings, bootstrap, tokens)
    figures: dict[str, float] = {}
    try:
        with served("outcomes", settings, log_file) as service:
            for agreement_id, provider_id in agreements.items():
                seed_agreement(settings, agreement_id, provider_id)
            wait_until("the agreements reaching the outcomes service", lambda: len(
                lookup_agreements(views, list(agreements))) == len(agreements))
            print("  delivery over Kafka, the whole service (HTTP, relay, read models, payments, "
                  "ingest) on this machine:")
            figures["kafka_per_s"] = _measure(inbound, watch, agreements, messages,
                                              f"{run_id}-s", service.cpu)
        # Read models can run elsewhere (they follow the log): ingestion alone, as a
        # scale-out deployment would run it on its own machine.
        alone = {INGEST: (INGEST, settings), RELAY: (RELAY, settings)}
        with worked("outcomes", alone, log_file) as cpu:
            print("  delivery over Kafka, only its ingest and relay processes (read models and "
                  "payments elsewhere):")
            figures["kafka_alone_per_s"] = _measure(inbound, watch, agreements, messages,
                                                    f"{run_id}-a", cpu)
        split = {f"ingest[{share}]": (INGEST, settings.model_copy(
            update={"deliveries_ingest_partitions": share}))
            for share in partition_shares(settings.kafka_partitions, INGEST_PROCESSES)}
        with worked("outcomes", split | {RELAY: (RELAY, settings)}, log_file) as cpu:
            print(f"  delivery over Kafka, the ingest in {len(split)} processes (the inbound "
                  "partitions shared out) and the relay:")
            figures["kafka_split_per_s"] = _measure(inbound, watch, agreements, messages,
                                                    f"{run_id}-p", cpu)
    finally:
        inbound.close()
        watch.close()
        views.close()
    return figures


def _measure(inbound: _Inbound, watch: StoreWatch, agreements: dict[UUID, UUID],
             messages: int, run_id: str, cpu: CpuMeter) -> float:
    warm_up = reports(agreements, WARM_UP, f"{run_id}-w")
    before = inbound.consumed()
    inbound.send(warm_up)
    wait_until("the warm-up being stored", lambda: inbound.consumed() >= before + WARM_UP,
               TIMEOUT_S)
    wait_until("the warm-up reaching the shared log", watch.all_on_log, TIMEOUT_S)
    values = reports(agreements, messages, run_id)
    stored_before, consumed_before = watch.stored(), inbound.consumed()
    sent: dict[str, float] = {}
    cpu_before = cpu.sample()

    def produce() -> None:
        inbound.send(values)
        sent["at"] = time.perf_counter()

    started = time.perf_counter()
    producing = threading.Thread(target=produce, name="bench-providers")
    producing.start()
    wait_until("every report being stored",
               lambda: inbound.consumed() - consumed_before >= messages, TIMEOUT_S)
    stored = time.perf_counter() - started
    wait_until("every stored report reaching the shared log", watch.all_on_log, TIMEOUT_S,
               )
    published = time.perf_counter() - started
    producing.join()
    if watch.stored() - stored_before != messages:
        raise RuntimeError(f"bench: {watch.stored() - stored_before} of {messages} reports "
                           "were stored (the service's log says why)")
    row("delivery over Kafka: providers -> inbound", messages, sent["at"] - started)
    row("delivery over Kafka: inbound -> store", messages, stored)
    row("delivery over Kafka: inbound -> store -> log", messages, published)
    CpuMeter.show(cpu_before, cpu.sample(), messages)
    return messages / published
