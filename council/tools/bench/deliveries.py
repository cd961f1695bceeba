"""Benchmark of delivery reporting over HTTP (part of `council bench`).

Runs the outcomes service as production does (`council serve outcomes`: uvicorn in one process,
its relay, projections and workers in their own), on the deployment it is given, seeds one
active agreement on the shared log as the integrator would publish it, issues the provider's
credentials, warms the service up, and measures:

- HTTP single: one report per POST /deliveries, one after another on a kept-alive connection
  (reports per second until the last response, latency percentiles, and until every report is
  on the shared log);
- HTTP NDJSON batch: 10,000 reports in one POST /deliveries/batch, timed until the response
  (every report stored in the event store: that is when it is accepted);
- the same batch end to end: until every report is on the shared log (the relay has appended
  it and saved its position), and until the deliveries read model has applied them;
- the same batch sent again: every line recognised as a replay, nothing stored;
- a batch of the same size naming a service user on every line, each a new person: accepted
  (stored) with the personal data sealed per data subject, and on the shared log.

"On the shared log" is read from the store's database by this process: every stored event up
to the newest is behind the relay's saved position, which the relay saves only once the log
(the broker, with acks=all) has taken them.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from council.kernel.contracts.integrator import SOURCE as INTEGRATOR
from council.kernel.contracts.integrator import AgreementActivated, AgreementDrafted
from council.kernel.envelope import EventEnvelope, event_id_for
from council.platform.eventlog import open_event_log
from council.platform.eventstore import open_application, store_database
from council.platform.identity import Role, TokenStore
from council.platform.relay import OutboxRelay
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.outcomes.api.deliveries import MAX_BATCH_LINES
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.aggregates import delivery_id_for
from council.services.outcomes.projections.agreements import lookup_agreements
from council.services.outcomes.projections.deliveries import get_delivery_row
from council.tools.bench.measure import CpuMeter, row, served, wait_until

SINGLE_REQUESTS = 500
BATCH_LINES = MAX_BATCH_LINES
WARM_UP_LINES = 500


def seed_agreement(settings: Settings, agreement_id: uuid.UUID, provider_id: uuid.UUID) -> None:
    """An active agreement with the provider as its party, on the shared log as the integrator
    publishes it (the outcomes service learns of agreements only from there)."""
    now = datetime.now(UTC)
    drafted = AgreementDrafted.model_validate({
        "agreement_id": agreement_id, "need_id": uuid.uuid4(),
        "title": "Bench: family sessions", "arrangement_type": "grant",
        "parties": [{"provider_id": provider_id, "allocation": "1000.00"}],
        "starts_on": "2020-01-01", "ends_on": "2030-12-31", "budget": "1000.00",
        "exit_plan": "none",
    })
    activated = AgreementActivated(agreement_id=agreement_id, activated_on=date(2020, 1, 1))
    log = open_event_log(settings)
    try:
        log.append([
            EventEnvelope(
                event_id=event_id_for(INTEGRATOR, str(agreement_id), position), type=type_,
                schema_version=1, source=INTEGRATOR, stream_id=str(agreement_id),
                stream_position=position, occurred_at=now, recorded_at=now,
                actor="bench", organisation="council", data=data.model_dump(mode="json"),
            )
            for position, (type_, data) in enumerate(
                [("AgreementDrafted", drafted), ("AgreementActivated", activated)], start=1)
        ])
    finally:
        log.close()


def _report(agreement_id: uuid.UUID, key: str, i: int) -> dict[str, Any]:
    return {"idempotency_key": key, "agreement_id": str(agreement_id),
            "activity_type": ("sessions_delivered", "people_reached", "meals")[i % 3],
            "quantity": str(i % 17 + 1), "period_start": "2025-04-01",
            "period_end": "2025-04-30", "location": f"Venue {i % 40}"}


class StoreWatch:
    """What this process can see of the outcomes service's store: how many events it holds,
    and whether the relay has put them all on the shared log."""

    def __init__(self, settings: Settings) -> None:
        self.app = open_application(Outcomes, settings)
        self.db = store_database(settings, Outcomes.service)
        self.event_log = open_event_log(settings)
        self.relay = OutboxRelay(self.app, self.event_log, self.db)  # never run here

    def stored(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def all_on_log(self) -> bool:
        return self.relay.pending() == 0

    def close(self) -> None:
        self.event_log.close()
        self.app.close()
        self.db.close()


def _batch(agreement_id: uuid.UUID, prefix: str, lines: int) -> bytes:
    return "\n".join(json.dumps(_report(agreement_id, f"{prefix}{i}", i))
                     for i in range(lines)).encode()


def _post_batch(client: httpx.Client, body: bytes) -> dict[str, Any]:
    response = client.post("/deliveries/batch", content=body,
                           headers={"Content-Type": "application/x-ndjson"})
    result: dict[str, Any] = response.json()
    if response.status_code != 200 or result.get("rejected"):
        raise RuntimeError(f"bench: the batch was not accepted whole: "
                           f"{response.status_code} {str(result)[:300]}")
    return result


def run(settings: Settings, log_dir: Path | None = None) -> dict[str, float]:
    """Measure delivery reporting over HTTP on the deployment `settings` describe, printing one
    row per figure; returns the headline figures."""
    provider_id, agreement_id = uuid.uuid4(), uuid.uuid4()
    identity = open_database(settings, "identity")
    token = TokenStore(identity).create(Role.PROVIDER, "Bench Provider", provider_id).token
    identity.close()
    headers = {"Authorization": f"Bearer {token}"}
    run_id = uuid.uuid4().hex[:8]
    log_file = (log_dir or Path(tempfile.gettempdir())) / f"bench-outcomes-{run_id}.log"
    watch = StoreWatch(settings)
    views: Database = open_database(settings, "outcomes_views")
    figures: dict[str, float] = {}
    try:
        with served("outcomes", settings, log_file) as service, httpx.Client(
            base_url=service.url, headers=headers, timeout=120
        ) as client:
            seed_agreement(settings, agreement_id, provider_id)
            wait_until("the agreement reaching the outcomes service", lambda: lookup_agreements(
                views, [agreement_id]).get(agreement_id) is not None)
            # Warm-up: the first requests of a process pay for imports, pools and caches.
            for i in range(20):
                client.post("/deliveries", json=_report(agreement_id, f"{run_id}-w{i}", i))
            _post_batch(client, _batch(agreement_id, f"{run_id}-wb", WARM_UP_LINES))
            wait_until("the warm-up reaching the shared log", watch.all_on_log)
            figures.update(_single(client, watch, agreement_id, run_id, service.cpu))
            figures.update(_whole_batch(client, watch, views, provider_id, agreement_id,
                                        run_id, service.cpu))
            figures.update(_personal_data_batch(client, watch, agreement_id, run_id,
                                                service.cpu))
    finally:
        watch.close()
        views.close()
    return figures


def _single(client: httpx.Client, watch: StoreWatch, agreement_id: uuid.UUID,
            run_id: str, cpu: CpuMeter) -> dict[str, float]:
    latencies: list[float] = []
    cpu_before = cpu.sample()
    started = time.perf_counter()
    for i in range(SINGLE_REQUESTS):
        sent = time.perf_counter()
        response = client.post("/deliveries", json=_report(agreement_id, f"{run_id}-s{i}", i))
        latencies.append(time.perf_counter() - sent)
        if response.status_code != 201:
            raise RuntimeError(f"bench: a single report was refused: {response.text}")
    stored = time.perf_counter() - started
    row("deliveries: HTTP single (POST /deliveries)", SINGLE_REQUESTS, stored)
    cuts = statistics.quantiles(latencies, n=100)
    print(f"  {'  latency per report':<46} p50 {cuts[49] * 1000:.1f} ms, "
          f"p95 {cuts[94] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms")
    wait_until("the single reports reaching the shared log", watch.all_on_log)
    on_log = time.perf_counter() - started
    row("deliveries: HTTP single, on shared log", SINGLE_REQUESTS, on_log)
    CpuMeter.show(cpu_before, cpu.sample(), SINGLE_REQUESTS)
    return {"http_single_per_s": SINGLE_REQUESTS / on_log}


def _whole_batch(client: httpx.Client, watch: StoreWatch, views: Database,
                 provider_id: uuid.UUID, agreement_id: uuid.UUID,
                 run_id: str, cpu: CpuMeter) -> dict[str, float]:
    body = _batch(agreement_id, f"{run_id}-b", BATCH_LINES)
    cpu_before = cpu.sample()
    before = watch.stored()
    started = time.perf_counter()
    result = _post_batch(client, body)
    accepted_after = time.perf_counter() - started
    if result.get("accepted") != BATCH_LINES or watch.stored() - before != BATCH_LINES:
        raise RuntimeError(f"bench: the batch was not stored whole: {str(result)[:300]}")
    row(f"deliveries: HTTP NDJSON batch ({len(body) // 1024:,} KiB)", BATCH_LINES,
         accepted_after)
    wait_until("the batch reaching the shared log", watch.all_on_log)
    on_log = time.perf_counter() - started
    row("deliveries: batch, on shared log", BATCH_LINES, on_log)
    last = delivery_id_for(provider_id, f"{run_id}-b{BATCH_LINES - 1}")
    wait_until("the batch reaching the deliveries read model",
               lambda: get_delivery_row(views, last) is not None, poll=0.02)
    row("deliveries: batch, in read model", BATCH_LINES,
         time.perf_counter() - started)
    CpuMeter.show(cpu_before, cpu.sample(), BATCH_LINES)

    started = time.perf_counter()
    replay = client.post("/deliveries/batch", content=body,
                         headers={"Content-Type": "application/x-ndjson"}).json()
    # Stored by the first sending: each line is recognised as already stored.
    if replay.get("already_stored", 0) + replay.get("duplicates", 0) != BATCH_LINES:
        raise RuntimeError(f"bench: the replayed batch was not recognised: {str(replay)[:300]}")
    row("deliveries: the same batch replayed", BATCH_LINES, time.perf_counter() - started)
    return {"http_batch_accepted_s": accepted_after, "http_batch_per_s": BATCH_LINES / on_log}


def _personal_data_batch(client: httpx.Client, watch: StoreWatch, agreement_id: uuid.UUID,
                         run_id: str, cpu: CpuMeter) -> dict[str, float]:
    """A batch of the same size naming one service user a line, each a new data subject: the
    most work personal data makes (a key per person, stored before the reports, and a sealed
    record a line)."""
    lines = []
    for i in range(BATCH_LINES):
        line = _report(agreement_id, f"{run_id}-p{i}", i)
        line["service_users"] = [{"reference": f"{run_id}-person-{i}", "name": f"Person {i}",
                                  "date_of_birth": "1984-03-09", "postcode": "NS1 4AB"}]
        lines.append(json.dumps(line))
    body = "\n".join(lines).encode()
    cpu_before = cpu.sample()
    started = time.perf_counter()
    result = _post_batch(client, body)
    accepted_after = time.perf_counter() - started
    if result.get("accepted") != BATCH_LINES:
        raise RuntimeError(f"bench: the batch naming people was not stored whole: "
                           f"{str(result)[:300]}")
    row(f"deliveries: batch naming a new person a line ({len(body) // 1024:,} KiB)",
         BATCH_LINES, accepted_after)
    wait_until("the batch naming people reaching the shared log", watch.all_on_log)
    row("deliveries: batch naming people, on shared log", BATCH_LINES,
         time.perf_counter() - started)
    CpuMeter.show(cpu_before, cpu.sample(), BATCH_LINES)
    return {"http_batch_personal_data_accepted_s": accepted_after}
