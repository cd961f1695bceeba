"""Commissioning end to end, over HTTP against the services as real processes, in both
deployments: a provider registered and approved on the registry is seen approved by the
integrator through the shared log, commissioned (need, options, decision, agreement, activation,
variation), and the agreement's events reach the shared log under their published contracts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from council.kernel.contracts import spec_for
from council.kernel.envelope import EventEnvelope
from council.platform.eventlog import open_event_log
from tests.e2e.stack import Stack, wait_for

pytestmark = pytest.mark.e2e



def ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def integrator_events(stack: Stack, stream_id: str) -> list[EventEnvelope]:
    """What the shared log holds for one of the integrator's streams, oldest first (the log is
    at least once: a copy of an event already read counts once, as consumers count it)."""
    log = open_event_log(stack.settings)
    try:
        found: dict[str, EventEnvelope] = {}
        for batch in log.read_all([log.topic_for("integrator")]):
            for record in batch:
                if record.envelope.stream_id == stream_id:
                    found.setdefault(str(record.envelope.event_id), record.envelope)
        return sorted(found.values(), key=lambda e: e.stream_position)
    finally:
        log.close()


def test_an_approved_provider_is_commissioned_and_the_agreement_reaches_the_log(
    stack: Stack,
) -> None:
    # The registry: register and approve a provider.
    provider_id = ok(stack.post("provider_registry", "/providers",
                                {"name": "Hillside Community Kitchen",
                                 "organisation_type": "vcse"}))["provider_id"]
    for action, reason in (("review", "application complete"),
                           ("approve", "meets the council's standards")):
        ok(stack.post("provider_registry", f"/providers/{provider_id}/{action}",
                      {"reason": reason}), 200)

    # The integrator sees it approved once the registry's events have crossed the log.
    def approved() -> bool:
        response = httpx.get(f"{stack.url('integrator')}/network/providers/{provider_id}",
                             headers=stack.headers(), timeout=5)
        return response.status_code == 200 and response.json()["status"] == "approved"

    wait_for(approved, 20, "the approval in the integrator's network")

    # Commission it: need, options, decision, agreement, activation, variation.
    need = ok(stack.post("integrator", "/needs", {
        "title": "Healthy weight for teenagers", "service_area": "weight-management",
        "population": {"description": "Young people aged 13 to 17", "size": 42000},
        "outcomes": [{"description": "Fewer teenagers living with obesity", "target": "17%"}],
        "budget_envelope": "500000.00", "starts_on": "2026-04-01", "ends_on": "2029-03-31",
    }, **{"X-Correlation-ID": "e2e-commission-1"}))
    need_id = need["need_id"]
    ok(stack.post("integrator", f"/needs/{need_id}/options", {
        "options": [{"option": "in_house", "description": "Council team"},
                    {"option": "vcse_grant", "description": "A grant to a local charity",
                     "estimated_cost": "300000.00", "score": 85}],
        "recommended": "vcse_grant", "rationale": "a local charity reaches the families",
    }), 200)
    decided = ok(stack.post("integrator", f"/needs/{need_id}/decisions", {
        "awards": [{"title": "Family cooking sessions", "arrangement_type": "grant",
                    "provider_ids": [provider_id], "allocation": "300000.00"}],
        "rationale": "best value for the outcomes sought", "decision_maker": "Cabinet",
    }))
    (award_id,) = decided["award_ids"]
    agreement = ok(stack.post("integrator", "/agreements", {
        "need_id": need_id, "award_id": award_id, "starts_on": "2026-07-01",
        "ends_on": "2029-03-31", "exit_plan": "hand the sessions to the community trust",
        "risk_share": {"council_pct": "80", "provider_pct": "20"},
    }, **{"X-Correlation-ID": "e2e-commission-2"}))
    agreement_id = agreement["agreement_id"]
    assert agreement["parties"] == [{"provider_id": provider_id, "allocation": "300000.00"}]
    # Signed and in force today: not before the decision (taken today), not in the future.
    today = datetime.now(UTC).date().isoformat()
    ok(stack.post("integrator", f"/agreements/{agreement_id}/sign",
                  {"signed_on": today, "signatories": ["Jo Bloggs for the council",
                                                       "Amir Khan for the provider"]}), 200)
    ok(stack.post("integrator", f"/agreements/{agreement_id}/activate",
                  {"activated_on": today}), 200)
    varied = ok(stack.post("integrator", f"/agreements/{agreement_id}/variations", {
        "kind": "growth", "budget_change": "25000.00", "scope": "two more schools",
        "reason": "demand is higher than forecast",
    }, **{"X-Correlation-ID": "e2e-commission-3"}))

    # The record, as the agreement's own stream has it.
    assert varied["agreement"]["budget"] == "325000.00"
    record = stack.get("integrator", f"/agreements/{agreement_id}/record", stack.staff_token)
    assert (record["status"], record["budget"], record["signed_on"], record["activated_on"]) == (
        "active", "325000.00", today, today)
    assert [(v["kind"], v["budget_change"], v["new_budget"]) for v in record["variations"]] == [
        ("growth", "25000.00", "325000.00")]
    assert record["parties"] == [{"provider_id": provider_id, "allocation": "325000.00"}]
    assert record["version"] == 4

    # The shared log: the agreement's four events, in order, each as its contract says.
    def published() -> list[EventEnvelope] | None:
        events = integrator_events(stack, agreement_id)
        return events if len(events) >= 4 else None

    events = wait_for(published, 20, "the agreement's events on the shared log")
    assert [e.type for e in events] == [
        "AgreementDrafted", "AgreementSigned", "AgreementActivated", "AgreementVaried"]
    assert [e.stream_position for e in events] == [1, 2, 3, 4]
    for envelope in events:
        spec = spec_for(envelope.type)
        assert spec is not None
        assert envelope.source == "integrator"
        spec.data.model_validate(envelope.data)
        assert envelope.actor == "integrator_admin:e2e admin"
    assert events[0].data["need_id"] == need_id
    assert events[0].data["parties"] == [{"provider_id": provider_id,
                                          "allocation": "300000.00"}]
    assert events[3].data["new_budget"] == "325000.00"
    assert (events[0].correlation_id, events[3].correlation_id) == (
        "e2e-commission-2", "e2e-commission-3")
    def need_published() -> list[str] | None:
        types = [e.type for e in integrator_events(stack, need_id)]
        return types if len(types) >= 4 else None

    # The variation is committed against the need's envelope too.
    need_events = wait_for(need_published, 20, "the need's events on the shared log")
    assert need_events == ["NeedDefined", "OptionsAppraised", "CommissioningDecided",
                           "CommitmentVaried"]

    # Where the integrator serves agreements from its own read model of the log, it shows the
    # variation too (only when this build has that endpoint).
    paths = httpx.get(f"{stack.url('integrator')}/openapi.json", timeout=10).json()["paths"]
    if "get" in paths.get("/agreements/{agreement_id}", {}):
        def projected() -> dict[str, Any] | None:
            response = httpx.get(f"{stack.url('integrator')}/agreements/{agreement_id}",
                                 headers=stack.headers(), timeout=5)
            if response.status_code != 200:
                return None
            found: dict[str, Any] = response.json()
            return found if found.get("budget") == "325000.00" else None

        shown = wait_for(projected, 20, "the agreement in the integrator's read model")
        assert shown["status"] == "active"
