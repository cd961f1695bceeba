"""The regulator API end to end, over real HTTP against the services as processes, in both
deployments: a regulator's token made with `council tokens create --scope ...`, the trail
streamed (NDJSON, the log's bytes) for its provider only, a request outside the scope and every
write refused, and its reads in the reads log. On the embedded deployment also: a regulator
hanging up half-way through a long trail is recorded as an incomplete read, with how much it
had been sent."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from council.kernel.envelope import EventEnvelope
from council.platform.eventlog import open_event_log
from tests.e2e.stack import Stack, wait_for

pytestmark = pytest.mark.e2e



def council(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "council.tools.cli", *args], env=stack.env,
                          capture_output=True, text=True, timeout=60, check=False)


def provider(stack: Stack, name: str) -> str:
    created = stack.post("provider_registry", "/providers",
                         {"name": name, "organisation_type": "vcse"})
    assert created.status_code == 201, created.text
    provider_id: str = created.json()["provider_id"]
    for step in ("review", "approve"):
        done = stack.post("provider_registry", f"/providers/{provider_id}/{step}",
                          {"reason": "checks passed"})
        assert done.status_code == 200, done.text
    return provider_id


def trail(stack: Stack, token: str, **params: str) -> httpx.Response:
    return httpx.get(f"{stack.url('integrator')}/audit/events", params=params,
                     headers=stack.headers(token), timeout=30)


def reads(stack: Stack) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = stack.get("integrator", "/audit/reads?limit=1000")
    return found


def test_a_scoped_regulator_reads_its_providers_trail_and_nothing_else(stack: Stack) -> None:
    hillside = provider(stack, "Hillside Kitchen")
    other = provider(stack, "Valley Meals")
    made = council(stack, "tokens", "create", "--role", "regulator", "--label", "CQC inspector",
                   "--scope", f"provider={hillside}", "--scope", "from=2024-04-01")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert f"scoped to provider={hillside} from=2024-04-01" in made.stderr

    def hillside_approved() -> list[EventEnvelope] | None:
        response = trail(stack, token)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/x-ndjson"
        events = [EventEnvelope.from_json(line) for line in response.content.splitlines()]
        return events if any(e.type == "ProviderApproved" for e in events) else None

    events = wait_for(hillside_approved, 30, "the approval on the trail")
    assert [e.type for e in events] == ["ProviderRegistered", "ProviderReviewStarted",
                                        "ProviderApproved"]
    assert {e.stream_id for e in events} == {hillside}
    log = open_event_log(stack.settings)
    try:
        on_log = {r.value for batch in log.read_all([log.topic_for("provider_registry")])
                  for r in batch}
    finally:
        log.close()
    assert set(trail(stack, token).content.splitlines()) <= on_log

    outside = trail(stack, token, provider=other)
    assert outside.status_code == 403
    assert f"scoped to provider={hillside} from=2024-04-01" in outside.json()["detail"]
    assert trail(stack, token, to="2024-13-01").status_code == 422
    write = stack.post("provider_registry", f"/providers/{hillside}/suspend",
                       {"reason": "an inspector may not"}, token)
    assert write.status_code == 403
    assert stack.post("integrator", "/lessons", {}, token).status_code == 403
    assert httpx.get(f"{stack.url('integrator')}/network/state", headers=stack.headers(token),
                     timeout=10).status_code == 403

    listed = wait_for(lambda: [r for r in reads(stack) if r["label"] == "CQC inspector"
                               and r["completed"] is not None and r["returned"] == 3] or None,
                      30, "the inspector's reads in the reads log")
    assert listed[0]["query"] == {"provider": hillside, "from": "2024-04-01"}
    own = httpx.get(f"{stack.url('integrator')}/audit/reads", headers=stack.headers(token),
                    timeout=10).json()
    assert {r["label"] for r in own} == {"CQC inspector"}


@pytest.fixture
def embedded_stack(tmp_path: Path) -> Iterator[Stack]:
    built = Stack(tmp_path, {"COUNCIL_LOG_URL": "embedded"})
    built.start_all()
    yield built
    built.stop_all()


def test_a_regulator_hanging_up_is_recorded_as_an_incomplete_read(
    embedded_stack: Stack,
) -> None:
    stack = embedded_stack
    notes = 20_000  # about 40 MB of trail: far more than the sockets buffer
    log = open_event_log(stack.settings)
    moment = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    try:
        log.append([EventEnvelope(
            event_id=uuid4(), type="ArchivedNoteRecorded", schema_version=1, source="outcomes",
            stream_id=f"archive-{i // 100}", stream_position=i % 100 + 1, occurred_at=moment,
            recorded_at=moment, data={"text": "x" * 2000}) for i in range(notes)])
    finally:
        log.close()
    regulator = council(stack, "tokens", "create", "--role", "regulator", "--label", "NAO")
    token = regulator.stdout.strip()

    url = f"{stack.url('integrator')}/audit/events"
    with httpx.stream("GET", url, headers=stack.headers(token), timeout=30) as response:
        assert response.status_code == 200
        read_id = response.headers["x-audit-read-id"]
        first = next(response.iter_lines())
        assert json.loads(first)["type"] == "ArchivedNoteRecorded"
    # The connection is closed: the server stops sending and records what it sent.

    def finished() -> dict[str, Any] | None:
        return next((r for r in reads(stack) if r["read_id"] == read_id
                     and r["completed"] is not None), None)

    read = wait_for(finished, 60, "the hung-up read to be recorded")
    assert read["completed"] is False
    assert 0 < read["returned"] < notes
