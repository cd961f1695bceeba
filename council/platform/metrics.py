"""Prometheus metrics of a service: `GET /metrics` in the text exposition format.

What an operator watches to know the platform keeps its promises (nothing accepted is lost,
read models follow the log): requests answered and how long they took, by route template (never
by id, so the series stay few), and, read when scraped, the same figures /ready gives: events in
the store, events the relay has still to publish, log records each read model has still to
apply, and whether each group of background work is up. Counters live in the HTTP process;
the background work runs in child processes, so what it has done is read from the store and the
log, which is where it is kept anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: from the quickest answers to a whole 10,000-line delivery batch.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Figures:
    """What the service's store, relay, read models and workers say now (None: unknown)."""

    stored_events: int | None = None
    relay_pending: int | None = None
    projections_behind: dict[str, int] | None = None
    workers: dict[str, str] = field(default_factory=dict)
    parked: dict[str, int] | None = None  # events (or work) parked, by projection
    parked_watched: list[str] = field(default_factory=list)  # projections shown even at 0
    log_findings: int | None = None  # what readers found wrong with the log, unacknowledged


class _Figures(Collector):
    def __init__(self, service: str, read: Callable[[], Figures]) -> None:
        self.service = service
        self.read = read

    def describe(self) -> Iterator[Metric]:
        return self._families(Figures())

    def collect(self) -> Iterator[Metric]:
        return self._families(self.read())

    def _families(self, now: Figures) -> Iterator[Metric]:
        stored = GaugeMetricFamily("council_event_store_events",
                                   "Events in the service's event store", labels=["service"])
        pending = GaugeMetricFamily(
            "council_relay_pending_events",
            "Stored events the outbox relay has not yet published to the shared log",
            labels=["service"])
        for family, value in ((stored, now.stored_events), (pending, now.relay_pending)):
            if value is not None:
                family.add_metric([self.service], value)
            yield family
        behind = GaugeMetricFamily(
            "council_projection_behind_records",
            "Records on the shared log a read model has not yet applied",
            labels=["service", "projection"])
        for name, records in sorted((now.projections_behind or {}).items()):
            behind.add_metric([self.service, name], records)
        yield behind
        parked = GaugeMetricFamily(
            "council_projection_parked_events",
            "Events (or other work) a read model or worker could not apply and set aside",
            labels=["service", "projection"])
        if now.parked is not None:
            for name in sorted({*now.parked_watched, *now.parked}):
                parked.add_metric([self.service, name], now.parked.get(name, 0))
        yield parked
        findings = GaugeMetricFamily(
            "council_log_findings",
            "Unacknowledged findings of a log that went back or changed under its readers",
            labels=["service"])
        if now.log_findings is not None:
            findings.add_metric([self.service], now.log_findings)
        yield findings
        up = GaugeMetricFamily(
            "council_worker_up", "1 while a group of background work is running, else 0",
            labels=["service", "group"])
        for group, status in sorted(now.workers.items()):
            up.add_metric([self.service, group], 1 if status in ("running", "thread") else 0)
        yield up


class ServiceMetrics:
    """The metrics of one service's HTTP process."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "council_http_requests", "HTTP requests answered",
            ["service", "method", "route", "status"], registry=self.registry)
        self._seconds = Histogram(
            "council_http_request_duration_seconds", "Time to answer an HTTP request",
            ["service", "method", "route"], buckets=_BUCKETS, registry=self.registry)
        self._figures: _Figures | None = None

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(self.service, method, route, str(status)).inc()
        self._seconds.labels(self.service, method, route).observe(seconds)

    def watch(self, read: Callable[[], Figures]) -> None:
        """Report these figures, read afresh at every scrape."""
        if self._figures is not None:
            self.registry.unregister(self._figures)
        self._figures = _Figures(self.service, read)
        self.registry.register(self._figures)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
