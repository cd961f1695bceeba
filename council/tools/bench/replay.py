"""Benchmark of replay and "as of" over a realistic log of a million events (part of
`council bench`).

The log: the demo data set (Northshire's providers, needs, agreements and spend, loaded through
the services' own commands), followed by what three and a half years of delivery under those
agreements would have put on the log, as the outcomes service emits it: mostly delivery reports
(with a few corrections) and outcome measurements (small-area measures, with revisions), plus
attributions, rate cards and monthly payment calculations. Every envelope is validated against
the catalogue (council.kernel.contracts) and written through the EventLog port. It is generated once
and kept under var/bench/ (an embedded log file); the Kafka run copies it into the broker.

Like the services, the generator never makes a stream go back in business time: the demo's own
outcomes history (its measures' measurements, the terms of the agreements paid by results) runs
to 2026, so generated measurements go only to measures the demo has not measured, and generated
terms only to agreements the demo has none for. Continuing those streams with events dated from
2023 would make the snapshot store fold every later view in log order (exact, but a full
replay each time); bench_log refuses to write such a log.

Figures, per deployment, each with its wall time, CPU time (this process and the replay's
second one: wall time moves with what else the machine runs, CPU time much less) and the load
average at the start and end:
- full replay: every record read from the log's beginning and folded into a fresh network-state
  read model (events/s; target 50,000);
- snapshot store, first build: indexing the log, then taking the snapshots;
- as of several dates from the snapshots (the answer: network state and market view; target
  under 5 s), and the same date by a full replay for comparison (their answers are compared too).
"""

from __future__ import annotations

import gc
import os
import random
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from council.kernel.contracts import all_specs
from council.kernel.envelope import EventEnvelope, event_id_for
from council.platform.eventlog import EventLog, open_event_log
from council.platform.eventlog.embedded import EmbeddedEventLog
from council.platform.settings import Settings
from council.platform.sql import Database
from council.services.integrator.projections.asof import as_of_moment, state_as_of
from council.services.integrator.projections.replay import (
    SNAPSHOT_INTERVAL,
    full_replay,
    open_snapshots,
    report,
)
from council.tools.bench.measure import row

GENERATOR = 2  # bump when the generated log changes: the cached one is then made again
SEED = 6
SPECS = {spec.type: spec for spec in all_specs()}
HISTORY_END = date(2026, 10, 16)
AS_OF_DATES = ("2024-03-31", "2025-06-30", "2026-09-30")
WRITE_BATCH = 5000
ACTIVITIES = (("sessions_delivered", "session"), ("people_reached", "person"),
              ("hours_of_support", "hour"), ("visits_made", "visit"))
DISTRICTS = ("Ashby Market", "Brookfield", "Castleton", "Deanbridge", "Eastmoor", "Fenwick")


# ---------------------------------------------------------------------- the log


@dataclass
class _Agreement:
    agreement_id: str
    providers: list[str]
    starts: date | None = None
    ends: date | None = None


@dataclass
class _Plan:
    """Generated events before their stream positions are known."""

    rng: random.Random
    events: list[tuple[datetime, str, str, dict[str, Any], str, str]] = field(
        default_factory=list)  # (occurred, type, stream, data, actor, organisation)

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, when: datetime, type_: str, data: dict[str, Any], actor: str,
            organisation: str = "council") -> None:
        spec = SPECS[type_]
        clean = spec.data.model_validate(data).model_dump(mode="json")  # valid, JSON form
        self.events.append((when, type_, str(clean[spec.stream_field]), clean, actor,
                            organisation))


def _agreements(demo: list[EventEnvelope]) -> list[_Agreement]:
    found: dict[str, _Agreement] = {}
    for e in demo:
        a = str(e.data.get("agreement_id"))
        if e.type == "AgreementDrafted":
            found[a] = _Agreement(a, [p["provider_id"] for p in e.data["parties"]],
                                  ends=date.fromisoformat(e.data["ends_on"]))
        elif a in found and e.type == "AgreementActivated":
            found[a].starts = date.fromisoformat(e.data["activated_on"])
        elif a in found and e.type == "AgreementExtended":
            found[a].ends = date.fromisoformat(e.data["new_end"])
        elif a in found and e.type == "AgreementEnded":
            found[a].ends = date.fromisoformat(e.data["ended_on"])
    return [a for a in found.values() if a.starts is not None]


def _at(day: date, hour: int, rng: random.Random) -> datetime:
    return datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60),
                    rng.randrange(1_000_000), tzinfo=UTC)


def _months(first: date, last: date) -> Iterator[date]:
    month = date(first.year, first.month, 1)
    while month <= last:
        yield month
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _plan(demo: list[EventEnvelope], target: int) -> _Plan:
    plan = _Plan(random.Random(SEED))  # noqa: S311 - reproducible bench data, not security
    rng = plan.rng
    admin = "integrator_admin:Performance and Intelligence Team"
    names = {e.data["provider_id"]: e.data["name"] for e in demo
             if e.type == "ProviderRegistered"}
    measures = [e.data["measure_id"] for e in demo if e.type == "OutcomeMeasureDefined"]
    outcomes = list(measures)  # the demo's own: what agreements are attributed to
    measured = {e.data["measure_id"] for e in demo if e.type == "MeasurementRecorded"}
    with_terms = {e.data["agreement_id"] for e in demo if "terms_id" in e.data}
    start = min(e.occurred_at for e in demo).date()
    for i in range(max(0, min(2000, target // 500) - len(measures))):  # small-area measures
        measure_id = plan.uid()
        plan.add(_at(start, 9, rng), "OutcomeMeasureDefined", {
            "measure_id": measure_id, "name": f"Small-area outcome {i:04d}", "unit": "%",
            "direction": rng.choice(["higher_is_better", "lower_is_better"]),
            "baseline": str(rng.randint(20, 60)), "geography": rng.choice(DISTRICTS),
            "trajectory": [{"period": f"{y}-Q{q}", "target": str(rng.randint(20, 60))}
                           for y in (2024, 2025, 2026) for q in (1, 2, 3, 4)]}, admin)
        measures.append(measure_id)
    for month in _months(start, HISTORY_END - timedelta(days=40)):
        period = f"{month.year}-{month.month:02d}"
        for measure_id in (m for m in measures if m not in measured):
            recorded = month + timedelta(days=40 + rng.randrange(5))
            first = f"m-{period}"
            plan.add(_at(recorded, 10, rng), "MeasurementRecorded", {
                "measure_id": measure_id, "measurement_id": first, "period": period,
                "value": f"{rng.uniform(10, 70):.1f}", "source": "ONS small-area estimates"},
                admin)
            if rng.random() < 0.25:
                plan.add(_at(recorded + timedelta(days=30), 10, rng), "MeasurementRecorded", {
                    "measure_id": measure_id, "measurement_id": f"{first}-r",
                    "period": period, "value": f"{rng.uniform(10, 70):.1f}",
                    "source": "ONS small-area estimates", "revises": first}, admin)
    agreements = _agreements(demo)
    days = sum((min(a.ends or HISTORY_END, HISTORY_END) - a.starts).days + 1
               for a in agreements if a.starts is not None)
    per_day = max(1.0, (target - len(demo) - len(plan.events) - 4 * len(agreements)
                        - 45 * len(agreements)) / max(1, days))
    for a in agreements:
        assert a.starts is not None
        last = min(a.ends or HISTORY_END, HISTORY_END)
        _deliveries(plan, a, last, per_day, names)
        if a.agreement_id not in with_terms:
            _terms(plan, a, last, outcomes)
    return plan


def _terms(plan: _Plan, a: _Agreement, last: date, outcomes: list[str]) -> None:
    """Attribution, a monthly rate card and a payment a month for an agreement the demo did
    not pay by results."""
    rng = plan.rng
    admin = "integrator_admin:Performance and Intelligence Team"
    assert a.starts is not None
    terms_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"council:terms:{a.agreement_id}"))
    agreed = _at(a.starts, 11, rng)
    for measure_id in rng.sample(outcomes, k=2):
        plan.add(agreed, "OutcomeAttributed", {
            "terms_id": terms_id, "agreement_id": a.agreement_id, "measure_id": measure_id,
            "weight": "0.5"}, admin)
    plan.add(agreed, "RateCardAgreed", {
        "terms_id": terms_id, "agreement_id": a.agreement_id, "periodicity": "monthly",
        "delivery_rates": [{"activity_type": kind, "rate": "12.50"}
                           for kind, _ in ACTIVITIES]}, admin)
    for month in _months(a.starts, last):
        period = f"{month.year}-{month.month:02d}"
        total = f"{rng.randint(2000, 90000)}.{rng.randrange(100):02d}"
        plan.add(_at(month + timedelta(days=45), 15, rng), "PaymentCalculated", {
            "terms_id": terms_id, "agreement_id": a.agreement_id, "period": period,
            "calculation_id": f"c-{period}", "total": total,
            "lines": [{"description": "delivery", "basis": "rate card", "amount": total}]},
            admin)


def _deliveries(plan: _Plan, a: _Agreement, last: date, per_day: float,
                names: dict[str, str]) -> None:
    rng = plan.rng
    assert a.starts is not None
    day = a.starts
    while day <= last:
        for _ in range(int(per_day) + (rng.random() < per_day % 1)):
            provider_id = rng.choice(a.providers)
            kind, unit = rng.choice(ACTIVITIES)
            key = f"{day.isoformat()}-{plan.uid()[:8]}"
            delivery_id = str(uuid.uuid5(uuid.NAMESPACE_URL,
                                         f"council:delivery:{provider_id}:{key}"))
            report = {
                "delivery_id": delivery_id, "agreement_id": a.agreement_id,
                "provider_id": provider_id, "activity_type": kind,
                "quantity": str(rng.randint(1, 30)), "unit": unit,
                "period_start": day.isoformat(), "period_end": day.isoformat(),
                "location": rng.choice(DISTRICTS), "idempotency_key": key,
                "channel": rng.choice(["http", "kafka"])}
            actor = f"provider:{names.get(provider_id, provider_id)}"
            reported = _at(day, 17, rng)
            plan.add(reported, "DeliveryReported", report, actor, provider_id)
            if rng.random() < 0.01:  # a correction, a few days later
                fixed = f"{key}-fix"
                plan.add(reported + timedelta(days=3), "DeliveryReported", {
                    **report, "delivery_id": str(uuid.uuid5(
                        uuid.NAMESPACE_URL, f"council:delivery:{provider_id}:{fixed}")),
                    "idempotency_key": fixed, "quantity": str(rng.randint(1, 30)),
                    "corrects": delivery_id}, actor, provider_id)
        day += timedelta(days=1)


def _envelopes(plan: _Plan, streams: dict[tuple[str, str], tuple[int, datetime]],
               ) -> Iterator[EventEnvelope]:
    """The planned events in business-time order, as the outcomes service records them, each
    at the next position of its stream; `streams` holds each stream's last position and
    business time (the demo's, to begin with). A planned event dated before its stream's last
    one is refused: the services never write that (see the module's docstring)."""
    rng = plan.rng
    plan.events.sort(key=lambda e: e[0])
    for when, type_, stream, data, actor, organisation in plan.events:
        spec = SPECS[type_]
        key = (spec.source, stream)
        position, latest = streams.get(key, (0, when))
        if when < latest:
            raise RuntimeError(f"bench: the generated {type_} of {spec.source}/{stream} is dated"
                               f" {when.isoformat()}, before that stream's {latest.isoformat()}")
        streams[key] = (position + 1, when)
        yield EventEnvelope(
            event_id=event_id_for(spec.source, stream, position + 1), type=type_,
            schema_version=spec.version, source=spec.source, stream_id=stream,
            stream_position=position + 1, occurred_at=when,
            recorded_at=when + timedelta(seconds=rng.randint(1, 90)),
            correlation_id=uuid.UUID(int=rng.getrandbits(128), version=4).hex, actor=actor,
            organisation=organisation, data=data)


def bench_log(folder: Path, events: int) -> Path:
    """The embedded log file of about `events` events, generated once into `folder`."""
    path = folder / f"replay-{events}-g{GENERATOR}" / "shared-log.sqlite"
    if path.exists():
        return path
    began = time.perf_counter()
    print(f"  generating a {events:,}-event log into {path.parent} (once) ...", flush=True)
    from council.tools.demo import load_demo

    with tempfile.TemporaryDirectory(prefix="council-bench-demo-") as tmp:
        settings = Settings(var_dir=Path(tmp), log_url="embedded", database_url=None)
        load_demo(settings)
        demo_log = open_event_log(settings)
        records = [r for batch in demo_log.read_all(
            [demo_log.topic_for(s) for s in ("provider_registry", "integrator", "outcomes")])
            for r in batch]
        demo_log.close()
    demo = [r.envelope for r in records]
    plan = _plan(demo, events)
    streams: dict[tuple[str, str], tuple[int, datetime]] = {}
    for e in demo:  # each stream's events are in order on the log (duplicates passed over)
        if e.stream_position > streams.get((e.source, e.stream_id), (0, e.occurred_at))[0]:
            streams[(e.source, e.stream_id)] = (e.stream_position, e.occurred_at)
    part = path.with_name("building.sqlite")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.unlink(missing_ok=True)
    target = EmbeddedEventLog(part)
    target.append(demo)  # the demo's history first, as `council demo` published it
    batch: list[EventEnvelope] = []
    for envelope in _envelopes(plan, streams):
        batch.append(envelope)
        if len(batch) >= WRITE_BATCH:
            target.append(batch)
            batch = []
    target.append(batch)
    target.close()
    part.replace(path)
    print(f"  generated {len(demo) + len(plan.events):,} events in "
          f"{time.perf_counter() - began:.0f} s", flush=True)
    return path


def copy_log(source: EventLog, target: EventLog, topics: list[str]) -> int:
    """Append every record of `source` to `target` through the port; returns how many."""
    moved = 0
    for records in source.read_all(topics, limit=WRITE_BATCH):
        target.append([r.envelope for r in records])
        moved += len(records)
    return moved


# ---------------------------------------------------------------------- figures


def _answer(db: Database) -> tuple[Any, Any]:
    state, market = report(db)
    return state.model_dump(mode="json"), market.model_dump(mode="json")


class _Clock:
    """Wall time and CPU time (this process and the children it has waited for: the replay's
    second process) since it was made. CPU time moves far less than wall time when others
    share the machine."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = _cpu()

    def row(self, label: str, count: int, unit: str = "events") -> float:
        return row(label, count, time.perf_counter() - self.wall, unit,
                   after=f"  CPU {_cpu() - self.cpu:6.2f} s")


def _cpu() -> float:
    own, children = (resource.getrusage(who)
                     for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run(settings: Settings, event_log: EventLog, label: str) -> float:
    """The replay figures over `event_log` (already holding the bench log); snapshots go under
    settings.var_dir. Returns the full replay's events/s."""
    print(f"  replay bench on {label}: load average {_load()} (1, 5, 15 min)", flush=True)
    clock = _Clock()
    with full_replay(settings, event_log) as (_, count):
        replay_per_s = clock.row(f"replay {label}: full, log -> network state", count.read)
    store = open_snapshots(settings, event_log, SNAPSHOT_INTERVAL)
    try:
        clock = _Clock()
        indexed = store.refresh()
        clock.row("snapshots: index the log (first time)", indexed)
        clock = _Clock()
        taken = store.checkpoint()
        status = store.status()
        clock.row(f"snapshots: take {taken} (every ~{SNAPSHOT_INTERVAL:,} events)",
                  status.events)
        if status.inexact_from is not None:
            raise RuntimeError(f"bench: a stream of the bench log goes back in business time"
                               f" at {status.inexact_from}: no snapshots from then on")
        size = sum(s.file.stat().st_size for s in status.snapshots)
        print(f"  {'':<44} snapshots on disk: {size / 2**20:,.0f} MiB, index "
              f"{store.index.path.stat().st_size / 2**20:,.0f} MiB")
        for day in AS_OF_DATES:
            clock = _Clock()
            with store.as_of(as_of_moment(day)) as found:
                fast = _answer(found.db)
                applied = found.count.applied
            clock.row(f"as of {day}: snapshot + {applied:,} events, answer", 1, unit="views")
        clock = _Clock()
        with state_as_of(event_log, None, day) as db:  # no store registered: full replay
            slow = _answer(db)
        clock.row(f"as of {day}: full replay instead, answer", 1, unit="views")
        if slow != fast:
            raise RuntimeError(f"bench: as of {day}, snapshots and full replay differ")
    finally:
        store.close()
    print(f"  (load average now {_load()})", flush=True)
    return replay_per_s


def run_embedded(cache: Path, events: int) -> float:
    path = bench_log(cache, events)
    with tempfile.TemporaryDirectory(prefix="council-bench-snapshots-") as tmp:
        settings = Settings(var_dir=Path(tmp), log_url=f"embedded://{path.parent}",
                            database_url=None)  # the bench log, read where it was generated
        event_log = open_event_log(settings)
        try:
            return run(settings, event_log, "embedded")
        finally:
            event_log.close()


def run_kafka(cache: Path, events: int, settings: Settings) -> float:
    # Topics of its own: the replay reads the same log as on the embedded deployment, not also
    # what the benchmarks before it wrote to the broker.
    settings = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}.replay"})
    path = bench_log(cache, events)
    source = EmbeddedEventLog(path)
    target = open_event_log(settings)
    try:
        topics = [source.topic_for(s) for s in ("provider_registry", "integrator", "outcomes")]
        started = time.perf_counter()
        moved = copy_log(source, target, topics)
        print(f"  (bench log copied into the broker: {moved:,} events in "
              f"{time.perf_counter() - started:.0f} s)", flush=True)
    finally:  # the producer's threads and buffers go before anything is measured
        source.close()
        target.close()
    gc.collect()  # nor does what the copy left behind wait for a collection mid-measure
    with tempfile.TemporaryDirectory(prefix="council-bench-snapshots-") as tmp:
        reader = open_event_log(settings)
        try:
            return run(settings.model_copy(update={"var_dir": Path(tmp)}), reader, "Kafka")
        finally:
            reader.close()


__all__ = ["bench_log", "copy_log", "run", "run_embedded", "run_kafka"]
