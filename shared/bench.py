"""`council bench`: throughput of the platform's machinery, printed as figures.

For each deployment it measures events per second (a) appended to a service's event store, one
per save and 100 per save, (b) relayed from the store to the shared log (and sealed into the
audit hash chain), (b2) checked by `council audit verify` on the log, (c) applied by the
integrator's network projection from the log; and rows per second of (d) a CSV import of 2,000
provider applications, parsed and registered through ProviderRegistry.register_many (each
provider with its identifier claims, a hundred rows a transaction); (e) replay and "as of"
over a log of a million events (services.integrator.bench: full replay into the network state,
building the snapshot store, views as of past dates); and (f) the server time of each web page
on the demo data (services.integrator.web.bench; `--deployment pages` alone). The scale
deployment uses PostgreSQL (COUNCIL_BENCH_DATABASE_URL, default the local `test` database) and
a Kafka-protocol broker (COUNCIL_BENCH_KAFKA, default: a local Tansu broker started for the run).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.contracts.provider_registry import OrganisationType
from shared.eventlog import EventLog, open_event_log
from shared.eventstore import open_application, store_database
from shared.logs import configure_logging
from shared.projection import ProjectionRunner
from shared.relay import OutboxRelay
from shared.settings import Settings
from shared.sql import Database, open_database

SINGLE_SAVES = 1000
BATCH = 100
IMPORT_ROWS = 2000


def _timed(work: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = work()
    return count, time.perf_counter() - started


def _row(label: str, count: int, seconds: float, unit: str = "events") -> None:
    rate = count / seconds if seconds else float("inf")
    print(f"  {label:<44} {count:>9,} {unit:<6}  {seconds:>8.2f} s  {rate:>11,.0f} {unit}/s")


def import_csv(rows: int) -> bytes:
    """A CSV file of `rows` provider applications of every organisation type but partnership
    (whose members would have to be registered first), each with its own identifiers."""
    header = ("name,organisation_type,description,website,companies_house,charity_number,"
              "contact_email,address_line_1,town,postcode,areas_served,headcount,turnover_gbp")
    lines = [header]
    for i in range(rows):
        kind = ("public_body", "vcse", "sme", "large_private", "community_group")[i % 5]
        company = f"{i:08d}" if kind in ("sme", "large_private") else ""
        charity = f"{1_000_000 + i}" if kind == "vcse" else ""
        size = "12,1500000" if kind == "sme" else ","
        lines.append(
            f"Provider {i},{kind},\"Meals, visits and lifts for older people\","
            f"https://provider{i}.example.org,{company},{charity},hello{i}@example.org,"
            f"{i} High Street,Leeds,LS1 {i % 10}AB,Leeds; Bradford; Wakefield,{size}"
        )
    return ("\r\n".join(lines) + "\r\n").encode()


def verify_chain(event_log: EventLog) -> int:
    """What `council audit verify` does to the registry's chain; how many events it checked."""
    from shared.audit.trail import verify_log

    report, _ = verify_log(event_log, sources=("provider_registry",))
    if not report.intact:
        raise RuntimeError(f"the bench's own log does not verify: {report.breaks[0].describe()}")
    return report.events


def run_deployment(settings: Settings, events: int) -> None:
    from services.integrator.projections import NetworkProjection
    from services.provider_registry.application import ProviderRegistry
    from services.provider_registry.domain import Provider
    from services.provider_registry.imports import parse_providers_csv

    registry = open_application(ProviderRegistry, settings)
    kinds = list(OrganisationType)

    def providers(n: int) -> list[Provider]:
        return [
            Provider(id=uuid.uuid4(), name=f"Provider {i}",  # type: ignore[call-arg]
                     organisation_type=kinds[i % len(kinds)].value, details={})
            for i in range(n)
        ]

    def save_singly() -> int:
        for provider in providers(SINGLE_SAVES):
            registry.save(provider)
        return SINGLE_SAVES

    def save_batched() -> int:
        for _ in range(events // BATCH):
            registry.save(*providers(BATCH))
        return events // BATCH * BATCH

    file = import_csv(IMPORT_ROWS)

    def import_file() -> int:
        report = registry.register_many(parse_providers_csv(file).rows)
        if report.rejected or len(report.accepted) != IMPORT_ROWS:
            raise RuntimeError(f"CSV import refused rows: {report.rejected[:3]}")
        return len(report.accepted)

    _row("event store append, 1 event per save", *_timed(save_singly))
    _row(f"event store append, {BATCH} events per save", *_timed(save_batched))

    store_db = store_database(settings, ProviderRegistry.service)
    event_log = open_event_log(settings)
    relay = OutboxRelay(registry, event_log, store_db, batch_size=1000)
    _row("outbox relay, store -> shared log", *_timed(relay.drain))
    verifier = open_event_log(settings)
    _row("audit verify, shared log hash chain", *_timed(lambda: verify_chain(verifier)))
    verifier.close()

    views = open_database(settings, "integrator_views")
    reader = open_event_log(settings)
    runner = ProjectionRunner(NetworkProjection(), views, reader)
    _row("network projection, shared log -> read model", *_timed(runner.catch_up))
    # Last, so the figures above count the same events as before.
    _row(f"CSV import, parse + register ({len(file) // 1024} KiB)", *_timed(import_file),
         unit="rows")
    for closeable in (reader, event_log, registry):
        closeable.close()
    for db in (store_db, views):
        db.close()


@contextmanager
def _broker() -> Iterator[str]:
    given = os.environ.get("COUNCIL_BENCH_KAFKA")
    if given:
        yield given
        return
    from shared.tansu import free_port, start_broker

    port = free_port()
    process = start_broker(port)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _drop_schemas(url: str, prefix: str) -> None:
    db = Database(url)
    with db.transaction() as tx:
        for (name,) in tx.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE ?",
            (f"{prefix}_%",),
        ):
            tx.execute(f'DROP SCHEMA "{name}" CASCADE')
    db.close()


def _bench_cache() -> Path:
    """Where generated bench data is kept between runs (var/bench/)."""
    return Settings().var_dir / "bench"


def main(events: int = 20000, deployment: str = "all", replay_events: int = 1_000_000) -> int:
    from services.integrator import bench as replay_bench
    from services.outcomes import bench as outcomes_bench
    from services.outcomes import kafka_bench

    configure_logging("bench", "warning")
    events = max(BATCH, events)
    print(f"council bench: {events:,} ProviderRegistered events per deployment")
    if deployment in ("embedded", "all"):
        with tempfile.TemporaryDirectory(prefix="council-bench-") as tmp:
            print("\nembedded (SQLite event store, embedded file log, SQLite read model)")
            run_deployment(Settings(var_dir=Path(tmp), log_url="embedded", database_url=None),
                           events)
            outcomes_bench.run(Settings(var_dir=Path(tmp), log_url="embedded",
                                        database_url=None))
            kafka_bench.run(Settings(var_dir=Path(tmp), log_url="embedded"), events)
        if replay_events:
            replay_bench.run_embedded(_bench_cache(), replay_events)
    if deployment in ("pages", "all"):
        from services.integrator.web import bench as pages_bench

        with tempfile.TemporaryDirectory(prefix="council-bench-pages-") as tmp:
            pages_bench.run(Settings(var_dir=Path(tmp), log_url="embedded", database_url=None))
    if deployment in ("scale", "all"):
        url = os.environ.get("COUNCIL_BENCH_DATABASE_URL",
                             "postgresql://postgres@127.0.0.1:5432/test")
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        with _broker() as bootstrap:
            print(f"\nscale-out (PostgreSQL event store and read model, Kafka protocol at "
                  f"{bootstrap})")
            settings = Settings(database_url=url, schema_prefix=prefix,
                                log_url=f"kafka://{bootstrap}", topic_prefix=prefix)
            try:
                run_deployment(settings, events)
                outcomes_bench.run(settings)
                kafka_bench.run(settings, events)
                if replay_events:
                    replay_bench.run_kafka(_bench_cache(), replay_events, settings)
            finally:
                _drop_schemas(url, prefix)
    return 0
