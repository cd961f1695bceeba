"""The regulator API on the scale-out deployment: PostgreSQL (event store, read models, tokens)
and Kafka with several partitions. A token table from before scopes is migrated in place; a
scoped regulator streams the trail (the log's bytes, its scope only, each stream in order), sees
the state as of a date cut to its scope, and its reads are stored in PostgreSQL, published to
Kafka and listed in the reads log."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from council.kernel.envelope import EventEnvelope
from council.platform.eventlog import open_event_log
from council.platform.identity import Principal, Role, Scope, TokenStore
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import SERVICE_NAMES, Settings
from council.platform.sql import open_database
from council.services.integrator.application import Integrator
from council.services.integrator.service import SPEC as INTEGRATOR
from tests.unit.test_audit_api import SCOPE, T4, trail_history
from tests.unit.test_network_state import AG4, N2, P4
from tests.waiting import eventually

pytestmark = pytest.mark.integration




def test_a_scoped_regulator_reads_the_trail_on_postgres_and_kafka(
    tmp_path: Path, postgres_url: str, kafka_bootstrap: str, pg_schema_prefix: str
) -> None:
    settings = Settings(var_dir=tmp_path, database_url=postgres_url,
                        schema_prefix=pg_schema_prefix, log_url=f"kafka://{kafka_bootstrap}",
                        topic_prefix=pg_schema_prefix, kafka_partitions=3, relay_interval=0.02)
    identity = open_database(settings, "identity")
    with identity.transaction() as tx:  # tokens as they were stored before scopes
        tx.execute(
            "CREATE TABLE api_tokens (token_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL,"
            " role TEXT NOT NULL, label TEXT NOT NULL, provider_id TEXT,"
            " created_at TEXT NOT NULL, revoked_at TEXT)")
        tx.execute("INSERT INTO api_tokens VALUES ('a1b2c3d4e5f6', ?, 'integrator_admin',"
                   " 'internal audit', NULL, '2024-01-01T00:00:00+00:00', NULL)",
                   (hashlib.sha256(b"secret").hexdigest(),))
    tokens = TokenStore(identity)
    admin = {"Authorization": "Bearer cit_a1b2c3d4e5f6_secret"}
    issued = tokens.create(Role.REGULATOR, "CQC inspector", scope=Scope.parse(SCOPE))
    assert tokens.authenticate(issued.token) == issued.principal
    assert tokens.authenticate("cit_a1b2c3d4e5f6_secret") == Principal(
        "a1b2c3d4e5f6", Role.INTEGRATOR_ADMIN, "internal audit")
    inspector = {"Authorization": f"Bearer {issued.token}"}

    log = open_event_log(settings)
    events = trail_history().in_time_order()
    log.append(events)
    log.append(events[:10])  # republished by an at-least-once relay
    try:
        with TestClient(create_service_app(INTEGRATOR, settings)) as client:
            response = client.get("/audit/events", headers=inspector)
            assert response.status_code == 200, response.text
            lines = response.content.splitlines()
            on_log = {r.value for batch in log.read_all([log.topic_for(s)
                                                         for s in SERVICE_NAMES]) for r in batch}
            assert set(lines) <= on_log
            served = [EventEnvelope.from_json(line) for line in lines]
            # Partitions interleave as the broker gives them; each stream stays in order.
            assert sorted((e.type, e.stream_id) for e in served) == sorted([
                ("CommissioningDecided", str(N2)), ("AgreementDrafted", str(AG4)),
                ("AgreementActivated", str(AG4)), ("OutcomeAttributed", str(T4)),
                ("SpendRecorded", str(AG4)), ("SpendRecorded", str(AG4))])
            agreement_positions = [e.stream_position for e in served if e.stream_id == str(AG4)]
            assert agreement_positions == sorted(agreement_positions)
            assert len({e.event_id for e in served}) == len(served)

            outside = client.get("/audit/events", headers=inspector, params={"from": "2024-01-01"})
            assert outside.status_code == 403

            state = client.get("/audit/state", headers=inspector).json()
            assert [(p["provider_id"], [a["agreement_id"] for a in p["active_agreements"]])
                    for p in state["state"]["providers"]][-1] == (str(P4), [str(AG4)])

            read_id = response.headers["x-audit-read-id"]
            runtime = client.app.state.runtime  # type: ignore[attr-defined]
            assert isinstance(runtime, Runtime)
            assert isinstance(runtime.app, Integrator)
            stored = [runtime.app.to_envelope(n) for n in
                      runtime.app.recorder.select_notifications(start=1, limit=1000)]
            assert [(e.type, e.data.get("returned")) for e in stored
                    if e.stream_id == read_id] == [("AuditReadStarted", None),
                                                   ("AuditReadFinished", 6)]

            def published() -> list[EventEnvelope]:
                return [r.envelope for batch in log.read_all([log.topic_for("integrator")])
                        for r in batch if r.envelope.stream_id == read_id]

            assert [e.type for e in eventually(published, lambda found: len(found) == 2)] == [
                "AuditReadStarted", "AuditReadFinished"]
            reads = eventually(
                lambda: client.get("/audit/reads", headers=admin).json(),
                lambda found: any(r["read_id"] == read_id and r["completed"] for r in found))
            mine = next(r for r in reads if r["read_id"] == read_id)
            assert (mine["label"], mine["returned"], mine["scope"]) == (
                "CQC inspector", 6,
                {"provider": str(P4), "from": "2024-09-01", "to": "2025-03-31"})
    finally:
        log.close()
        identity.close()
