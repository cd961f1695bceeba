"""`council bench`: throughput of the platform's machinery, printed as figures.

For each deployment it measures events per second (a) appended to a service's event store, one
per save and 100 per save, (b) relayed from the store to the shared log (and sealed into the
audit hash chain), (b2) checked by `council audit verify` on the log, (c) applied by the
integrator's network projection from the log; and rows per second of (d) a CSV import of 2,000
provider applications, parsed and registered through ProviderRegistry.register_many (each
provider with its identifier claims, a hundred rows a transaction); then delivery reports end
to end, with the outcomes service running as in production (council/tools/bench/deliveries.py: HTTP
single and NDJSON batch; council/tools/bench/kafka.py: Kafka), and a summary against the
targets; (e) replay and "as of" over a log of a million events (council.tools.bench.replay: full
replay into the network state, building the snapshot store, views as of past dates); and (f) the
server time of each web page on the demo data (council.tools.bench.pages; `--deployment
pages` alone). The scale deployment uses PostgreSQL (COUNCIL_BENCH_DATABASE_URL, default the
local `test` database) and a Kafka-protocol broker (COUNCIL_BENCH_KAFKA, default: a local Tansu
broker started for the run).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from council.kernel.contracts.provider_registry import OrganisationType
from council.platform.eventlog import EventLog, open_event_log
from council.platform.eventstore import open_application, store_database
from council.platform.logs import configure_logging
from council.platform.projection import ProjectionRunner
from council.platform.relay import OutboxRelay
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.tools.bench.measure import (
    row,
    timed,
)

SINGLE_SAVES = 1000
BATCH = 100
IMPORT_ROWS = 2000


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
    from council.platform.audit.trail import verify_log

    report, _ = verify_log(event_log, sources=("provider_registry",))
    if not report.intact:
        raise RuntimeError(f"the bench's own log does not verify: {report.breaks[0].describe()}")
    return report.events


def run_deployment(settings: Settings, events: int) -> dict[str, float]:
    from council.services.integrator.projections import NetworkProjection
    from council.services.provider_registry.adapters.csv_import import parse_providers_csv
    from council.services.provider_registry.application import ProviderRegistry
    from council.services.provider_registry.domain.providers import Provider

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

    figures = {"store_single_per_s": row("event store append, 1 event per save",
                                          *timed(save_singly)),
               "store_batched_per_s": row(f"event store append, {BATCH} events per save",
                                           *timed(save_batched))}

    store_db = store_database(settings, ProviderRegistry.service)
    event_log = open_event_log(settings)
    relay = OutboxRelay(registry, event_log, store_db, batch_size=1000)
    figures["relay_per_s"] = row("outbox relay, store -> shared log", *timed(relay.drain))
    verifier = open_event_log(settings)
    row("audit verify, shared log hash chain", *timed(lambda: verify_chain(verifier)))
    verifier.close()

    views = open_database(settings, "integrator_views")
    reader = open_event_log(settings)
    runner = ProjectionRunner(NetworkProjection(), views, reader)
    figures["projection_per_s"] = row("network projection, shared log -> read model",
                                       *timed(runner.catch_up))
    # Last, so the figures above count the same events as before.
    row(f"CSV import, parse + register ({len(file) // 1024} KiB)", *timed(import_file),
         unit="rows")
    for closeable in (reader, event_log, registry):
        closeable.close()
    for db in (store_db, views):
        db.close()
    return figures


@contextmanager
def _broker() -> Iterator[str]:
    given = os.environ.get("COUNCIL_BENCH_KAFKA")
    if given:
        yield given
        return
    from council.tools.tansu import free_port, start_broker

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


def _summary(figures: dict[str, dict[str, float]]) -> None:
    """The delivery figures side by side, with the targets they are held to."""
    print("\ndelivery, end to end into the store and onto the shared log (reports/s):")
    print(f"  {'':<40} {'embedded':>12} {'PostgreSQL + Kafka':>20}")
    rows = [("HTTP single", "http_single_per_s", "{:,.0f}/s"),
            ("HTTP NDJSON batch", "http_batch_per_s", "{:,.0f}/s"),
            ("Kafka, whole service", "kafka_per_s", "{:,.0f}/s"),
            ("Kafka, ingest + relay processes only", "kafka_alone_per_s", "{:,.0f}/s"),
            ("Kafka, 2 ingest processes + relay", "kafka_split_per_s", "{:,.0f}/s"),
            ("10,000-line batch accepted (target < 1 s)", "http_batch_accepted_s", "{:.2f} s")]
    for label, key, fmt in rows:
        cells = [fmt.format(figures[d][key]) if key in figures.get(d, {}) else "n/a"
                 for d in ("embedded", "scale")]
        print(f"  {label:<40} {cells[0]:>12} {cells[1]:>20}")
    print("  (Kafka target >= 10,000/s; embedded has no Kafka. Load average now: "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())})")


def _limits(url: str | None, bootstrap: str | None = None,
            quick: bool = False) -> dict[str, float]:
    """The raw limits (council.tools.bench.limits) this machine gives now."""
    from council.tools.bench import limits as raw

    rows = 20_000 if quick else raw.ROWS
    found = {"json_decode": raw.json_decode_rate(rows)}
    if url is not None:
        try:
            found["pg_copy"] = raw.pg_copy_rate(url, rows)
            found["pg_insert"] = raw.pg_insert_rate(url, rows)
        except Exception as exc:  # no PostgreSQL here: the ratios to it say n/a
            print(f"  PostgreSQL limits: not measured ({type(exc).__name__}: {exc})")
    if bootstrap is not None:
        found["kafka_produce"] = raw.kafka_produce_rate(bootstrap, rows)
    print("  raw limits: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in found.items()), flush=True)
    return found


def main(events: int = 20000, deployment: str = "all", replay_events: int = 1_000_000,
         quick: bool = False, read_seconds: float = 5.0) -> int:
    """Every measurement for `deployment`, then one table of figures against limits.
    `quick`: a short fixed workload (for CI, printed, never gating): 2,000 events, no replay,
    no pages, 20,000 Kafka reports, reads for 1 s each, embedded reads only."""
    from council.tools.bench import deliveries as outcomes_bench
    from council.tools.bench import kafka as kafka_bench
    from council.tools.bench import ratios as bench_ratios
    from council.tools.bench import reads as bench_reads
    from council.tools.bench import replay as replay_bench

    configure_logging("bench", "warning")
    if quick:
        events, replay_events, read_seconds = 2000, 0, 1.0
    kafka_messages = 20_000 if quick else kafka_bench.MESSAGES
    events = max(BATCH, events)
    print(f"council bench{' --quick' if quick else ''}: {events:,} ProviderRegistered events "
          f"per deployment, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    url = os.environ.get("COUNCIL_BENCH_DATABASE_URL",
                         "postgresql://postgres@127.0.0.1:5432/test")
    figures: dict[str, dict[str, float]] = {}
    limits: dict[str, dict[str, float]] = {}
    reads: dict[str, dict[str, Any]] = {}
    if deployment in ("embedded", "all", "reads"):
        limits["embedded"] = _limits(url, quick=quick)
    if deployment in ("embedded", "all"):
        with tempfile.TemporaryDirectory(prefix="council-bench-") as tmp:
            print("\nembedded (SQLite event store, embedded file log, SQLite read model)")
            settings = Settings(var_dir=Path(tmp), log_url="embedded", database_url=None)
            figures["embedded"] = run_deployment(settings, events)
            figures["embedded"].update(outcomes_bench.run(settings, Path(tmp)))
            kafka_bench.run(settings, kafka_messages)
        if replay_events:
            figures["embedded"]["replay_per_s"] = replay_bench.run_embedded(
                _bench_cache(), replay_events)
    if deployment in ("embedded", "all", "reads"):
        print("\nembedded, reads on the demo data")
        reads["embedded"] = bench_reads.run_embedded(read_seconds)
        if "health" in reads["embedded"]:
            limits["embedded"]["health"] = reads["embedded"]["health"][4].per_s
    if deployment in ("pages", "all") and not quick:
        from council.tools.bench import pages as pages_bench

        with tempfile.TemporaryDirectory(prefix="council-bench-pages-") as tmp:
            pages_bench.run(Settings(var_dir=Path(tmp), log_url="embedded", database_url=None))
    if deployment in ("scale", "all"):
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        with _broker() as bootstrap, tempfile.TemporaryDirectory(prefix="council-bench-") as tmp:
            print(f"\nscale-out (PostgreSQL event store and read model, Kafka protocol at "
                  f"{bootstrap})")
            limits["scale"] = _limits(url, bootstrap, quick)
            settings = Settings(database_url=url, schema_prefix=prefix, var_dir=Path(tmp),
                                log_url=f"kafka://{bootstrap}", topic_prefix=prefix)
            try:
                figures["scale"] = run_deployment(settings, events)
                figures["scale"].update(outcomes_bench.run(settings, Path(tmp)))
                figures["scale"].update(kafka_bench.run(settings, kafka_messages,
                                                        log_dir=Path(tmp)))
                if replay_events:
                    figures["scale"]["replay_per_s"] = replay_bench.run_kafka(
                        _bench_cache(), replay_events, settings)
                if not quick:
                    print("\nscale-out, reads on the demo data")
                    reads["scale"] = bench_reads.run(
                        settings.model_copy(update={"schema_prefix": f"{prefix}_r",
                                                    "topic_prefix": f"{prefix}_r"}),
                        Path(tmp), read_seconds)
                    if "health" in reads["scale"]:
                        limits["scale"]["health"] = reads["scale"]["health"][4].per_s
            finally:
                _drop_schemas(url, prefix)
    if deployment == "reads-scale":
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        with _broker() as bootstrap, tempfile.TemporaryDirectory(prefix="council-bench-") as tmp:
            print(f"\nscale-out, reads on the demo data (PostgreSQL, Kafka at {bootstrap})")
            limits["scale"] = {}
            settings = Settings(database_url=url, schema_prefix=prefix, var_dir=Path(tmp),
                                log_url=f"kafka://{bootstrap}", topic_prefix=prefix)
            try:
                reads["scale"] = bench_reads.run(settings, Path(tmp), read_seconds)
                if "health" in reads["scale"]:
                    limits["scale"]["health"] = reads["scale"]["health"][4].per_s
            finally:
                _drop_schemas(url, prefix)
    if "scale" in limits and "health" not in limits["scale"] and "health" in limits.get(
            "embedded", {}):  # the reads ran embedded only: the same machine's floor
        limits["scale"]["health"] = limits["embedded"]["health"]
    if figures:
        _summary(figures)
    bench_ratios.show(figures, limits, reads)
    return 0
