"""The one table `council bench` ends with: each figure beside the raw limit it is held to,
both measured in the same run (council.tools.bench.limits), and their ratio; then the reads, each as
a share of `/health` (council.tools.bench.reads). The issue's targets are ratios for this reason: on
a machine others share, figures move with their load, ratios much less."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from council.tools.bench.limits import Load

LIMITS = {
    "pg_copy": "PostgreSQL COPY, rows/s",
    "pg_insert": "PostgreSQL INSERT, 1,000 rows/txn, rows/s",
    "kafka_produce": "Kafka produce (acks=all), msgs/s",
    "json_decode": "JSON decode of an envelope, /s",
    "health": "/health at 4 connections, req/s",
}

# (figure, its key in a deployment's figures, the limit it is held to, the target)
ROWS = (
    ("event store append, 100 events a save", "store_batched_per_s", "pg_insert", ""),
    ("outbox relay, store -> shared log", "relay_per_s", "kafka_produce", ""),
    ("network read model applies the log", "projection_per_s", "pg_insert", ">= 0.25"),
    ("HTTP single delivery reports, on the log", "http_single_per_s", "health", ">= 2,000/s"),
    ("HTTP NDJSON batch, on the log", "http_batch_per_s", "pg_copy", ">= 0.25"),
    ("Kafka ingest + relay processes", "kafka_alone_per_s", "pg_copy", ">= 0.25"),
    ("Kafka, the whole service", "kafka_per_s", "pg_copy", ""),
    ("full replay, log -> network state", "replay_per_s", "json_decode", ">= 100,000/s"),
)


def _number(value: float | None, unit: str = "/s") -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.0f}{unit}"


def _ratio(value: float | None, limit: float | None) -> str:
    if value is None or not limit:
        return "n/a"
    return f"{value / limit:.3f}"


def show(figures: Mapping[str, Mapping[str, float]], limits: Mapping[str, Mapping[str, float]],
         reads: Mapping[str, Mapping[str, Any]]) -> None:
    """Print the table for each deployment measured: figures against limits, then reads."""
    print(f"\nfigures against limits measured in this run ({os.cpu_count()} cores, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}):")
    print(f"  {'deployment':<10} {'figure':<42} {'value':>12}  {'limit':<42} {'limit value':>12}"
          f"  {'ratio':>6}  target")
    for deployment in ("embedded", "scale"):
        mine, bounds = figures.get(deployment, {}), limits.get(deployment, {})
        if not mine and not bounds:
            continue
        for bound, label in LIMITS.items():
            if bound in bounds:
                print(f"  {deployment:<10} {'(limit) ' + label:<42} {'':>12}  {'':<42} "
                      f"{_number(bounds[bound]):>12}")
        for label, key, bound, target in ROWS:
            if key not in mine:
                continue
            print(f"  {deployment:<10} {label:<42} {_number(mine[key]):>12}  {LIMITS[bound]:<42} "
                  f"{_number(bounds.get(bound)):>12}  {_ratio(mine[key], bounds.get(bound)):>6}"
                  f"  {target}")
    for deployment in ("embedded", "scale"):
        measured = reads.get(deployment)
        if not measured:
            continue
        health: dict[int, Load] = measured["health"]
        print(f"\n  reads, {deployment} (wrk; share of /health at the same connections; "
              "target >= 0.50, p99 < 50 ms at 50, no timeouts at 200):")
        print(f"  {'read':<44} {'req/s @4':>9} {'share':>6} {'req/s @50':>10} {'share':>6} "
              f"{'p99 @50':>8} {'req/s @200':>10} {'timeouts @200':>14}")
        rows = [("/health", "integrator", health), *(
            (r.path, r.service, r.loads) for r in measured["reads"])]
        for path, service, loads in rows:
            cells = []
            for n in (4, 50):
                load = loads.get(n)
                cells += [_number(load.per_s if load else None, ""),
                          _ratio(load.per_s if load else None,
                                 health[n].per_s if n in health else None)]
            p99 = loads[50].p99 * 1000 if 50 in loads else None
            at200 = loads.get(200)
            label = path if service == "integrator" else f"{path} ({service})"
            print(f"  {label:<44} {cells[0]:>9} {cells[1]:>6} {cells[2]:>10} {cells[3]:>6} "
                  f"{_number(p99, ' ms'):>8} {_number(at200.per_s if at200 else None, ''):>10} "
                  f"{(str(at200.timeouts) if at200 else 'n/a'):>14}")
        workers: dict[int, dict[str, Load]] = measured.get("workers", {})
        if workers:
            print("  integrator, 50 connections, req/s with 1 and 2 HTTP processes "
                  "(--http-workers): " + "; ".join(
                      f"{path} {workers[1][path].per_s:,.0f} -> {workers[2][path].per_s:,.0f}"
                      f" (x{workers[2][path].per_s / workers[1][path].per_s:.2f})"
                      for path in workers[1]))
