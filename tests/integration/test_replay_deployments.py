"""Acceptance: a replay of the demo data as of past dates equals what the live projection
reported on those dates, on both deployments (embedded: SQLite and the file log; scale-out:
PostgreSQL and the Kafka-protocol broker).

`council demo` loads the history through the services' commands and publishes it source by
source, so the shared log is far from business-time order. What the live projection reported on
a date is found the way it happened: the same events are fed, in business-time order, to a second
log that the integrator's live projection runners follow, and their read model is read as each
date ends. Then, on the demo's own log: `council audit replay --as-of` (from snapshots, and
--full), and the running service's GET /network/state?as_of= and GET /market?as_of= must give
exactly those answers; so must a full replay folded in two processes, as a long log is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from council.kernel.envelope import EventEnvelope
from council.platform.eventlog import EventLog, open_event_log
from council.platform.identity import Role, TokenStore
from council.platform.projection import ProjectionRunner
from council.platform.runtime import create_service_app
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.integrator.projections.asof import (
    as_of_moment,
    default_projections,
    register_snapshots,
    unregister_snapshots,
)
from council.services.integrator.projections.market import market_view, network_state
from council.services.integrator.projections.replay import full_replay, open_snapshots
from council.services.integrator.service import SPEC
from council.tools.cli import main
from council.tools.demo import load_demo

DATES = ("2023-06-30", "2023-12-31", "2024-06-30", "2025-03-31", "2025-12-31", "2026-06-30")
SOURCES = ("provider_registry", "integrator", "outcomes")


@pytest.fixture(params=["embedded", "scale"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "embedded":
        yield Settings(var_dir=tmp_path / "demo", log_url="embedded")
        return
    url = request.getfixturevalue("postgres_url")
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    prefix = request.getfixturevalue("pg_schema_prefix")
    yield Settings(var_dir=tmp_path / "demo", database_url=url, schema_prefix=prefix,
                   log_url=f"kafka://{bootstrap}", topic_prefix=prefix)


def _env(settings: Settings) -> dict[str, str]:
    found = {"COUNCIL_VAR_DIR": str(settings.var_dir), "COUNCIL_LOG_URL": settings.log_url,
             "COUNCIL_TOPIC_PREFIX": settings.topic_prefix,
             "COUNCIL_SCHEMA_PREFIX": settings.schema_prefix}
    if settings.database_url:
        found["COUNCIL_DATABASE_URL"] = settings.database_url
    return found


def answer(db: Database, day: str) -> dict[str, Any]:
    """The state and the market as at the end of `day` (its current quarter ends there)."""
    return {"state": network_state(db).model_dump(mode="json"),
            "market": market_view(db, as_of_moment(day)).model_dump(mode="json")}


def demo_events(settings: Settings) -> list[EventEnvelope]:
    log = open_event_log(settings)
    try:
        return [r.envelope for batch in log.read_all([log.topic_for(s) for s in SOURCES])
                for r in batch]
    finally:
        log.close()


class LiveProjection:
    """The integrator's live projection runners following a log fed in business-time order."""

    def __init__(self, settings: Settings) -> None:
        self.writer = open_event_log(settings)
        self.views = open_database(settings, "integrator_views")
        self.logs: list[EventLog] = [self.writer]
        self.runners = []
        for projection in default_projections():
            self.logs.append(open_event_log(settings))
            self.runners.append(ProjectionRunner(projection, self.views, self.logs[-1]))
        self.fed = {r.projection.name: 0 for r in self.runners}

    def feed(self, events: list[EventEnvelope]) -> None:
        self.writer.append(events)
        for runner in self.runners:
            self.fed[runner.projection.name] += sum(
                e.source in runner.projection.sources for e in events)
        for runner in self.runners:  # until each has read all it was fed
            deadline = time.monotonic() + 60
            while sum(runner.position().values()) < self.fed[runner.projection.name]:
                assert time.monotonic() < deadline, f"{runner.projection.name} fell behind"
                runner.catch_up()

    def close(self) -> None:
        for log in self.logs:
            log.close()
        self.views.close()


def live_answers(settings: Settings, events: list[EventEnvelope]) -> dict[str, dict[str, Any]]:
    """What the live projection reported at the end of each date."""
    in_time = sorted(events, key=lambda e: e.occurred_at)  # stable: keeps each stream's order
    live = LiveProjection(settings)
    seen: dict[str, dict[str, Any]] = {}
    fed = 0
    try:
        for day in DATES:
            upto = as_of_moment(day)
            due = [e for e in in_time[fed:] if e.occurred_at <= upto]
            live.feed(due)
            fed += len(due)
            seen[day] = answer(live.views, day)
    finally:
        live.close()
    return seen


def test_replay_of_the_demo_as_of_past_dates_equals_the_live_projection(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    load_demo(settings)
    events = demo_events(settings)
    assert len(events) > 3000
    in_order = [e.occurred_at for e in events]
    assert in_order != sorted(in_order), "the demo log is not in business-time order"
    live_settings = settings.model_copy(update={
        "var_dir": tmp_path / "live", "topic_prefix": f"{settings.topic_prefix}live",
        "schema_prefix": f"{settings.schema_prefix}live"})
    expected = live_answers(live_settings, events)
    assert len({json.dumps(a, sort_keys=True) for a in expected.values()}) == len(DATES)
    assert expected["2024-06-30"]["state"]["totals"]["active_agreements"] > 0

    # council audit replay --as-of: from snapshots (taken every 400 events), and --full.
    for key, value in _env(settings).items():
        monkeypatch.setenv(key, value)
    capsys.readouterr()  # what the live runners logged
    for day in DATES:
        for extra in (["--snapshot-interval", "400"], ["--full"]):
            assert main(["audit", "replay", "--as-of", day, "--format", "json", *extra]) == 0
            replayed = json.loads(capsys.readouterr().out)
            assert {"state": replayed["network_state"], "market": replayed["market"]} \
                == expected[day], (day, extra)
            if extra[0] == "--snapshot-interval" and day != DATES[0]:
                assert replayed["replay"]["how"].startswith("from the snapshot of")

    # A long log is folded in two processes (council.platform.replay.parallel): the demo's, made to.
    reader = open_event_log(settings)
    try:
        for day in (DATES[2], DATES[-1]):
            with full_replay(settings, reader, as_of_moment(day), in_two_from=0) as (db, _):
                assert answer(db, day) == expected[day], day
    finally:
        reader.close()

    # The running service's as-of views.
    tokens = TokenStore(open_database(settings, "identity"))
    auditor = {"Authorization": f"Bearer {tokens.create(Role.COUNCIL_STAFF, 'auditor').token}"}
    tokens.db.close()
    with TestClient(create_service_app(SPEC, settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        own_log = open_event_log(settings)
        store = open_snapshots(settings, own_log, interval=400)
        register_snapshots(runtime.event_log, store)
        try:
            for day in DATES:
                state = client.get("/network/state", params={"as_of": day}, headers=auditor)
                market = client.get("/market", params={"as_of": day}, headers=auditor)
                assert state.status_code == market.status_code == 200
                assert {"state": state.json(), "market": market.json()} == expected[day], day
            assert store.status().snapshots
        finally:
            unregister_snapshots(store)
            store.close()
            own_log.close()
