"""Benchmark of delivery reporting over HTTP (part of `council bench`).

Starts the outcomes service for real (uvicorn on a free port, with its relay and projections
running in the background) on the deployment it is given, seeds one active agreement on the
shared log as the integrator would publish it, issues the provider's credentials, and measures:

- HTTP single: one report per POST /deliveries, one after another on a kept-alive connection
  (reports per second, and latency percentiles);
- HTTP NDJSON batch: 10,000 reports in one POST /deliveries/batch, timed until the response
  (every report stored in the event store: that is when it is accepted);
- the same batch end to end: until every report is on the shared log (the relay publishes in
  the background), and until the deliveries read model has applied them;
- the same batch sent again: every line recognised as a replay, nothing stored;
- a batch of the same size naming a service user on every line, each a new person: accepted
  (stored) with the personal data sealed per data subject.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import uvicorn

from services.outcomes.api.deliveries import MAX_BATCH_LINES
from services.outcomes.domain import delivery_id_for
from services.outcomes.projections.agreements import lookup_agreements
from services.outcomes.projections.deliveries import get_delivery_row
from services.outcomes.service import SPEC
from shared.bench import _row
from shared.contracts.integrator import SOURCE as INTEGRATOR
from shared.contracts.integrator import AgreementActivated, AgreementDrafted
from shared.envelope import EventEnvelope, event_id_for
from shared.eventlog import open_event_log
from shared.identity import Role, TokenStore
from shared.settings import Settings
from shared.sql import open_database
from shared.tansu import free_port
from shared.web import Runtime, create_service_app

SINGLE_REQUESTS = 500
BATCH_LINES = MAX_BATCH_LINES
DEADLINE_SECONDS = 300.0


def _wait(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: {what} did not happen within {DEADLINE_SECONDS:.0f} s")
        time.sleep(0.005)


def _seed_agreement(settings: Settings, agreement_id: uuid.UUID, provider_id: uuid.UUID) -> None:
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


class _Server:
    """The outcomes service on uvicorn in a thread of this process."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_service_app(SPEC, settings)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
        ))
        self.thread = threading.Thread(target=self.server.run, name="bench-uvicorn",
                                       daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        _wait("the outcomes service starting", lambda: self.server.started)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Runtime:
        runtime = self.app.state.runtime
        assert isinstance(runtime, Runtime)
        return runtime


def run(settings: Settings) -> None:
    """Measure delivery reporting over HTTP on the deployment `settings` describe, printing one
    row per figure."""
    provider_id, agreement_id = uuid.uuid4(), uuid.uuid4()
    tokens = TokenStore(open_database(settings, "identity"))
    token = tokens.create(Role.PROVIDER, "Bench Provider", provider_id).token
    tokens.db.close()
    headers = {"Authorization": f"Bearer {token}"}
    run_id = uuid.uuid4().hex[:8]
    with _Server(settings) as server, httpx.Client(base_url=server.url, headers=headers,
                                                   timeout=120) as client:
        runtime = server.runtime
        _seed_agreement(settings, agreement_id, provider_id)
        _wait("the agreement reaching the outcomes service", lambda: lookup_agreements(
            runtime.views, [agreement_id]).get(agreement_id) is not None)

        # HTTP single, one after another.
        latencies: list[float] = []
        started = time.perf_counter()
        for i in range(SINGLE_REQUESTS):
            sent = time.perf_counter()
            response = client.post("/deliveries", json=_report(agreement_id,
                                                               f"{run_id}-s{i}", i))
            latencies.append(time.perf_counter() - sent)
            if response.status_code != 201:
                raise RuntimeError(f"bench: a single report was refused: {response.text}")
        _row("deliveries: HTTP single (POST /deliveries)", SINGLE_REQUESTS,
             time.perf_counter() - started)
        cuts = statistics.quantiles(latencies, n=100)
        print(f"  {'  latency per report':<44} p50 {cuts[49] * 1000:.1f} ms, "
              f"p95 {cuts[94] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms")
        _wait("the single reports reaching the shared log", lambda: runtime.relay.pending() == 0)

        # HTTP NDJSON batch: accepted (stored), then on the shared log, then in the read model.
        body = "\n".join(json.dumps(_report(agreement_id, f"{run_id}-b{i}", i))
                         for i in range(BATCH_LINES)).encode()
        started = time.perf_counter()
        response = client.post("/deliveries/batch", content=body,
                               headers={"Content-Type": "application/x-ndjson"})
        accepted_after = time.perf_counter() - started
        result = response.json()
        if response.status_code != 200 or result.get("accepted") != BATCH_LINES:
            raise RuntimeError(f"bench: the batch was not accepted whole: "
                               f"{response.status_code} {str(result)[:300]}")
        _row(f"deliveries: HTTP NDJSON batch ({len(body) // 1024:,} KiB), stored", BATCH_LINES,
             accepted_after)
        _wait("the batch reaching the shared log", lambda: runtime.relay.pending() == 0)
        _row("deliveries: batch end to end, on shared log", BATCH_LINES,
             time.perf_counter() - started)
        last = delivery_id_for(provider_id, f"{run_id}-b{BATCH_LINES - 1}")
        _wait("the batch reaching the deliveries read model",
              lambda: get_delivery_row(runtime.views, last) is not None)
        _row("deliveries: batch end to end, in read model", BATCH_LINES,
             time.perf_counter() - started)

        # A replay of the whole batch: recognised, nothing stored.
        started = time.perf_counter()
        replay = client.post("/deliveries/batch", content=body,
                             headers={"Content-Type": "application/x-ndjson"}).json()
        if replay.get("duplicates") != BATCH_LINES:
            raise RuntimeError(f"bench: the replayed batch was not recognised: "
                               f"{str(replay)[:300]}")
        _row("deliveries: the same batch replayed", BATCH_LINES, time.perf_counter() - started)
        _personal_data_batch(client, agreement_id, run_id)


def _personal_data_batch(client: httpx.Client, agreement_id: uuid.UUID, run_id: str) -> None:
    """A batch of the same size naming one service user a line, each a new data subject (the
    most work personal data makes: a key per person, stored before the reports, and a sealed
    record per line)."""
    lines = []
    for i in range(BATCH_LINES):
        line = _report(agreement_id, f"{run_id}-p{i}", i)
        line["service_users"] = [{"reference": f"{run_id}-person-{i}", "name": f"Person {i}",
                                  "date_of_birth": "1984-03-09", "postcode": "NS1 4AB"}]
        lines.append(json.dumps(line))
    body = "\n".join(lines).encode()
    started = time.perf_counter()
    response = client.post("/deliveries/batch", content=body,
                           headers={"Content-Type": "application/x-ndjson"})
    if response.status_code != 200 or response.json().get("accepted") != BATCH_LINES:
        raise RuntimeError(f"bench: the batch naming service users was not accepted whole: "
                           f"{response.status_code} {response.text[:300]}")
    _row(f"deliveries: batch naming a new person a line ({len(body) // 1024:,} KiB), stored",
         BATCH_LINES, time.perf_counter() - started)
