"""The regulator API in process, on SQLite and the embedded log: the audit trail streamed as
NDJSON (the log's own bytes, each event once) and every filter on it, checked against events
listed by hand; bad parameters refused naming the parameter; scoped tokens held to their scope
(403 naming it); the network state as of a date, whole and scoped; and every audit read
recorded as events, on the shared log, and listed in the reads log (a regulator sees only its
own)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from council.kernel.contracts import outcomes as co
from council.kernel.envelope import EventEnvelope
from council.platform.eventlog import EventLog, open_event_log
from council.platform.identity import Principal, Role, Scope, TokenStore
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.services.integrator.application import Integrator
from council.services.integrator.service import SPEC as INTEGRATOR
from tests.problems import loc_of
from tests.unit.test_network_state import (
    AG1,
    AG2,
    AG3,
    AG4,
    L1,
    L2,
    N1,
    N2,
    N3,
    P1,
    P2,
    P3,
    P4,
    P5,
    POLICE,
    History,
    history,
)
from tests.waiting import eventually

Auth = dict[str, str]
D = Decimal
T1, T4 = UUID("00000000-0000-4000-c000-000000000001"), UUID("00000000-0000-4000-c000-000000000004")
DELIVERY = UUID("00000000-0000-4000-d000-000000000001")
LOADED = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)  # when the history was loaded (recorded time)


def trail_history() -> History:
    """The network history of test_network_state (recorded on one later day, as a historic load
    is) and, recorded as they happened, the outcomes service's events naming agreements and a
    provider: a rate card for AG1, an attribution for AG4 and P2's delivery report under AG2."""
    h = history()
    h.events = [e.model_copy(update={"recorded_at": LOADED}) for e in h.events]
    h.add("2024-04-02", co.RateCardAgreed(terms_id=T1, agreement_id=AG1,
                                          periodicity=co.Periodicity.QUARTERLY))
    h.add("2024-10-02", co.OutcomeAttributed(terms_id=T4, agreement_id=AG4, measure_id=N3,
                                             weight=D("0.5")))
    h.add("2024-08-05", co.DeliveryReported(
        delivery_id=DELIVERY, agreement_id=AG2, provider_id=P2, activity_type="visits",
        quantity=D(40), unit="visits", period_start=date(2024, 7, 1),
        period_end=date(2024, 7, 31), idempotency_key="jul", channel=co.Channel.HTTP),
        actor="provider:Beacon Trust")
    h.events[-1] = h.events[-1].model_copy(update={"organisation": str(P2)})
    return h


@dataclass
class Trail:
    client: TestClient
    tokens: TokenStore
    log: EventLog
    events: list[EventEnvelope]  # the history, each once, in log order
    admin: Auth

    def token(self, role: Role, label: str, *scope: str) -> tuple[Principal, Auth]:
        issued = self.tokens.create(role, label, scope=Scope.parse(scope))
        return issued.principal, {"Authorization": f"Bearer {issued.token}"}

    def regulator(self, *scope: str, label: str = "CQC inspector") -> Auth:
        return self.token(Role.REGULATOR, label, *scope)[1]

    def get(self, path: str, headers: Auth | None = None, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=headers or self.admin)

    def stream(self, headers: Auth | None = None, **params: Any) -> list[EventEnvelope]:
        response = self.get("/audit/events", headers, **params)
        assert response.status_code == 200, response.text
        return [EventEnvelope.from_json(line) for line in response.content.splitlines()]

    def history_in(self, events: list[EventEnvelope]) -> list[tuple[str, str]]:
        """(type, stream) of each event, audit reads left out (they depend on the test)."""
        return [(e.type, e.stream_id) for e in events if not e.type.startswith("AuditRead")]

    @property
    def app(self) -> Integrator:
        runtime = self.client.app.state.runtime  # type: ignore[attr-defined]
        assert isinstance(runtime, Runtime)
        assert isinstance(runtime.app, Integrator)
        return runtime.app

    def stored(self) -> list[EventEnvelope]:
        return [self.app.to_envelope(n)
                for n in self.app.recorder.select_notifications(start=1, limit=10_000)]


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[Trail]:
    settings = Settings(var_dir=tmp_path, relay_interval=0.01)
    tokens = TokenStore(open_database(settings, "identity"))
    log = open_event_log(settings)
    events = trail_history().in_time_order()
    for event in events:  # one by one: a batch would be stored grouped by source
        log.append([event])
    log.append(events[5:9])  # a batch republished by an at-least-once relay
    admin = tokens.create(Role.INTEGRATOR_ADMIN, "internal audit").token
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        yield Trail(client, tokens, log, events, {"Authorization": f"Bearer {admin}"})
    log.close()
    tokens.db.close()


def stream(kind: str, *ids: UUID) -> list[tuple[str, str]]:
    return [(kind, str(i)) for i in ids]




# --------------------------------------------------------------------------- the stream


def test_the_trail_is_every_event_once_in_log_order_as_the_logs_own_bytes(trail: Trail) -> None:
    response = trail.get("/audit/events", trail.regulator())

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    read_id = str(UUID(response.headers["x-audit-read-id"]))
    everything = response.content.splitlines()
    # The read's own start may already be on the log as the stream reaches the end: it is the
    # reader's own, so it may see it; it is the only other line there may be.
    lines = [line for line in everything if read_id.encode() not in line]
    assert len(everything) - len(lines) <= 1
    assert lines == [e.to_json() for e in trail.events]  # the copies republished passed over
    assert response.content.endswith(b"\n")
    on_log = {r.value for batch in trail.log.read_all([trail.log.topic_for(s) for s in
                                                       ("integrator", "provider_registry",
                                                        "outcomes")]) for r in batch}
    assert set(lines) <= on_log  # byte for byte as the log holds them
    assert [EventEnvelope.from_json(line) for line in lines] == trail.events


def test_business_dates_bound_the_trail_inclusively(trail: Trail) -> None:
    march = trail.stream(**{"from": "2024-03-01", "to": "2024-03-10"})
    assert trail.history_in(march) == [
        ("CommissioningDecided", str(N1)),
        *stream("AgreementDrafted", AG1, AG2, AG3),
    ]
    # A date-time bound is exact (10:00 is when each of these happened).
    assert trail.history_in(trail.stream(**{"from": "2024-03-10T10:00:00Z",
                                            "to": "2024-03-10T10:00:00+00:00"})) == \
        stream("AgreementDrafted", AG1, AG2, AG3)
    assert trail.history_in(trail.stream(**{"from": "2024-03-10T10:00:01Z",
                                            "to": "2024-03-14"})) == []
    later = trail.stream(**{"from": "2025-11-01"})
    assert trail.history_in(later) == [("ProviderSuspended", str(P3)),
                                       ("NeedClosed", str(N3))]


def test_recorded_time_is_its_own_filter(trail: Trail) -> None:
    # The history was loaded on 1 February 2026; the outcomes events were recorded as they
    # happened, in 2024.
    recorded_early = trail.stream(recorded_to="2026-01-31")
    assert trail.history_in(recorded_early) == [
        ("RateCardAgreed", str(T1)), ("DeliveryReported", str(DELIVERY)),
        ("OutcomeAttributed", str(T4))]
    loaded = trail.stream(recorded_from="2026-02-01", recorded_to="2026-02-01")
    assert len(trail.history_in(loaded)) == len(trail.events) - 3
    both = trail.stream(recorded_to="2026-01-31", **{"from": "2024-08-01"})
    assert trail.history_in(both) == [("DeliveryReported", str(DELIVERY)),
                                      ("OutcomeAttributed", str(T4))]


def test_an_agreement_is_its_own_events_and_the_events_naming_it(trail: Trail) -> None:
    assert trail.history_in(trail.stream(agreement=str(AG2))) == [
        ("AgreementDrafted", str(AG2)), ("AgreementActivated", str(AG2)),
        ("SpendRecorded", str(AG2)), ("DeliveryReported", str(DELIVERY)),
        ("AgreementExtended", str(AG2)),
    ]
    assert trail.history_in(trail.stream(agreement=str(AG3))) == [
        *stream("AgreementDrafted", AG3), *stream("AgreementActivated", AG3),
        *stream("SpendRecorded", AG3), *stream("AgreementEnded", AG3),
        *stream("LessonRecorded", L2),
    ]


def test_a_provider_is_its_record_the_events_naming_it_and_its_agreements(
    trail: Trail,
) -> None:
    assert trail.history_in(trail.stream(provider=str(P4))) == [
        *stream("ProviderRegistered", P4), *stream("ProviderCapabilityAdded", P4),
        *stream("ProviderApproved", P4),
        ("CommissioningDecided", str(N2)),  # awards it
        *stream("AgreementDrafted", AG4), *stream("AgreementActivated", AG4),
        ("OutcomeAttributed", str(T4)),  # names its agreement
        *stream("SpendRecorded", AG4, AG4),  # both parties' spend under its agreement
        *stream("BusinessCaseProposed", AG4), *stream("BusinessCaseApproved", AG4),
        *stream("AgreementVaried", AG4), *stream("BusinessCaseProposed", AG4),
        *stream("BusinessCaseRejected", AG4),
    ]
    # Never approved, never awarded: its record, and the market engagement that named it.
    assert trail.history_in(trail.stream(provider=str(P5))) == [
        *stream("ProviderRegistered", P5), *stream("ProviderCapabilityAdded", P5),
        ("MarketEngaged", str(N1)),
    ]


def test_an_organisation_is_what_it_did_and_the_commissions_it_pooled_into(
    trail: Trail,
) -> None:
    police = trail.history_in(trail.stream(organisation=POLICE.upper()))
    streams = {s for _, s in police}
    # The home-care need it pooled into, its three agreements and what names them.
    assert streams == {str(N1), str(AG1), str(AG2), str(AG3), str(L1), str(L2), str(T1),
                       str(DELIVERY)}
    assert ("NeedContributionPledged", str(N1)) in police
    assert all(t != "CommissioningDecided" or s == str(N1) for t, s in police)
    # A provider reporting for itself records events on its own behalf.
    assert trail.history_in(trail.stream(organisation=str(P2), type="DeliveryReported")) == [
        ("DeliveryReported", str(DELIVERY))]
    assert trail.history_in(trail.stream(organisation="Nobody Council")) == []


def test_sources_and_types_narrow_and_repeat(trail: Trail) -> None:
    assert {e.source for e in trail.stream(source="outcomes")} == {"outcomes"}
    assert len(trail.stream(source="outcomes")) == 3
    two = trail.stream(source=["outcomes", "provider_registry"])
    assert {e.source for e in two} == {"outcomes", "provider_registry"}
    ended = trail.stream(type=["AgreementEnded", "NeedClosed"])
    assert trail.history_in(ended) == [("AgreementEnded", str(AG3)), ("NeedClosed", str(N3))]
    assert trail.stream(type="NoSuchEvent") == []
    spend = trail.stream(provider=str(P2), type="SpendRecorded")
    assert [e.data["spend_id"] for e in spend] == ["s2", "s4", "s5"]


@pytest.mark.parametrize(("params", "name"), [
    ({"from": "soon"}, "from"),
    ({"to": "2024-13-01"}, "to"),
    ({"recorded_from": "yesterday"}, "recorded_from"),
    ({"recorded_to": "31/03/2025"}, "recorded_to"),
    ({"from": "2025-01-01", "to": "2024-12-31"}, "to"),
    ({"recorded_from": "2025-01-02", "recorded_to": "2025-01-01"}, "recorded_to"),
    ({"provider": "acorn"}, "provider"),
    ({"agreement": "42"}, "agreement"),
    ({"organisation": ""}, "organisation"),
    ({"organisation": "   "}, "organisation"),
    ({"organisation": "x" * 201}, "organisation"),
    ({"source": "payroll"}, "source"),
    ({"type": "not a type!"}, "type"),
    ({"from": "2" * 41}, "from"),
], ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}" for k in v))
def test_a_bad_parameter_is_refused_naming_it(
    trail: Trail, params: dict[str, str], name: str
) -> None:
    response = trail.get("/audit/events", trail.regulator(), **params)

    assert response.status_code == 422, response.text
    assert name in [loc_of(e)[1] for e in response.json()["errors"]]
    assert not [e for e in trail.stored() if e.type.startswith("AuditRead")]  # nothing read


@pytest.mark.parametrize("path", ["/audit/events", "/audit/state", "/audit/reads"])
def test_only_regulators_and_internal_audit_read_the_trail(trail: Trail, path: str) -> None:
    assert trail.client.get(path).status_code == 401
    for role in (Role.COMMISSIONER, Role.COUNCIL_STAFF):
        assert trail.get(path, trail.token(role, "jo")[1]).status_code == 403
    provider = trail.tokens.create(Role.PROVIDER, "acorn", P1).token
    assert trail.get(path, {"Authorization": f"Bearer {provider}"}).status_code == 403
    assert trail.get(path, trail.regulator()).status_code == 200
    assert trail.get(path).status_code == 200


# --------------------------------------------------------------------------- scopes


SCOPE = (f"provider={P4}", "from=2024-09-01", "to=2025-03-31")


def test_a_scoped_token_sees_only_its_scope(trail: Trail) -> None:
    inspector = trail.regulator(*SCOPE)

    assert trail.history_in(trail.stream(inspector)) == [
        ("CommissioningDecided", str(N2)), *stream("AgreementDrafted", AG4),
        *stream("AgreementActivated", AG4), ("OutcomeAttributed", str(T4)),
        *stream("SpendRecorded", AG4, AG4),
    ]
    # Filters inside the scope narrow it further.
    assert trail.history_in(trail.stream(inspector, provider=str(P4), type="SpendRecorded",
                                         **{"from": "2025-01-01"})) == \
        stream("SpendRecorded", AG4, AG4)
    assert trail.history_in(trail.stream(inspector, agreement=str(AG1))) == []


@pytest.mark.parametrize(("params", "asked"), [
    ({"provider": str(P1)}, f"provider={P1}"),
    ({"from": "2024-08-31"}, "from=2024-08-31"),
    ({"to": "2025-04-01"}, "to=2025-04-01"),
    ({"from": "2025-04-01"}, "from=2025-04-01"),
    ({"to": "2024-08-31T23:59:59Z"}, "to=2024-08-31T23:59:59+00:00"),
], ids=["other-provider", "from-before", "to-after", "from-after-the-end", "to-before-start"])
def test_asking_outside_the_scope_is_refused_naming_the_scope(
    trail: Trail, params: dict[str, str], asked: str
) -> None:
    response = trail.get("/audit/events", trail.regulator(*SCOPE), **params)

    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"this token is scoped to provider={P4} from=2024-09-01 to=2025-03-31; {asked} is "
        "outside it")


def test_an_organisation_scope_ignores_case_and_refuses_another(trail: Trail) -> None:
    police = trail.regulator(f"organisation={POLICE}", label="HMICFRS")
    same = trail.stream(police, organisation="northshire police")
    assert same == trail.stream(organisation=POLICE)
    other = trail.get("/audit/events", police, organisation="Northshire ICB")
    assert other.status_code == 403
    assert f"scoped to organisation={POLICE}" in other.json()["detail"]


def test_a_scoped_token_is_refused_everywhere_but_the_audit_api(trail: Trail) -> None:
    inspector = trail.regulator(*SCOPE)
    for path in ("/network/state", "/network/providers", "/market", "/agreements"):
        response = trail.get(path, inspector)
        assert response.status_code == 403, path
    # Published open data is for anyone, whatever token comes with the request.
    assert trail.get("/ocds/releases", inspector).status_code == 200
    # An unscoped regulator is refused there too, for its role: it reads the audit API only.
    assert "role regulator may not" in trail.get("/market", trail.regulator()).json()["detail"]


# --------------------------------------------------------------------------- the state


def test_the_state_as_of_a_date_is_the_network_state_then(trail: Trail) -> None:
    staff = trail.token(Role.COUNCIL_STAFF, "finance")[1]
    for day in ("2024-12-31", "2025-03-31", "2026-06-30"):
        audit = trail.get("/audit/state", trail.regulator(), as_of=day)
        assert audit.status_code == 200, audit.text
        network = trail.get("/network/state", staff, as_of=day).json()
        assert audit.json()["state"] == network
        assert audit.json()["as_of"] == f"{day}T23:59:59.999999Z"
        assert audit.json()["scope"] == {}
    # 2025-03-31: AG1 600,000 + AG2 300,000 + AG3 200,000 + AG4 150,000.
    then = trail.get("/audit/state", as_of="2025-03-31").json()["state"]
    assert then["totals"]["committed"] == "1250000.00"
    now = eventually(lambda: trail.get("/audit/state").json(),
                     lambda body: body["state"] == trail.get("/network/state", staff).json())
    assert now["as_of"] is None
    assert trail.get("/audit/state", as_of="soon").status_code == 422


def test_a_scoped_state_shows_only_what_the_scope_concerns(trail: Trail) -> None:
    inspector = trail.regulator(*SCOPE)
    body = trail.get("/audit/state", inspector).json()  # as of the end of its range
    assert body["as_of"] == "2025-03-31T23:59:59.999999Z"
    assert body["scope"] == {"provider": str(P4), "from": "2024-09-01", "to": "2025-03-31"}
    state = body["state"]
    # The provider whole, and its agreement's other party with only its share of that one.
    beacon, delta = state["providers"]
    assert (beacon["provider_id"], delta["provider_id"]) == (str(P2), str(P4))
    assert [(a["agreement_id"], a["allocation"]) for a in delta["active_agreements"]] == [
        (str(AG4), "60000.00")]
    assert [(a["agreement_id"], a["allocation"]) for a in beacon["active_agreements"]] == [
        (str(AG4), "90000.00")]
    assert (beacon["committed"], beacon["spent_to_date"]) == ("90000.00", "10000.00")
    assert state["totals"] == {
        "open_needs": 1, "pooled_budget": "200000.00", "active_agreements": 1,
        "committed": "150000.00", "spent_to_date": "15000.00",
        "providers_with_active_agreements": 2}
    assert trail.get("/audit/state", inspector, as_of="2024-06-30").status_code == 403
    assert trail.get("/audit/state", inspector, provider=str(P1)).status_code == 403
    earlier = trail.get("/audit/state", inspector, as_of="2024-09-19").json()["state"]
    assert [(p["provider_id"], p["active_agreements"]) for p in earlier["providers"]] == [
        (str(P4), [])]

    # An agreement: its parties, each with only that agreement's share.
    shared = trail.get("/audit/state", agreement=str(AG4), as_of="2025-03-31").json()
    assert shared["filters"] == {"agreement": str(AG4)}
    parties = {p["provider_id"]: p for p in shared["state"]["providers"]}
    assert set(parties) == {str(P2), str(P4)}
    assert (parties[str(P2)]["committed"], parties[str(P2)]["spent_to_date"]) == (
        "90000.00", "10000.00")  # not its home-care grant
    assert shared["state"]["totals"]["committed"] == "150000.00"


# --------------------------------------------------------------------------- audit reads


def test_every_read_is_recorded_before_it_is_served_and_reaches_the_log(trail: Trail) -> None:
    principal, inspector = trail.token(Role.REGULATOR, "CQC inspector", *SCOPE)
    response = trail.get("/audit/events", inspector, type="SpendRecorded")
    served = response.content.splitlines()
    read_id = response.headers["x-audit-read-id"]

    started, finished = [e for e in trail.stored() if e.stream_id == read_id]
    assert (started.type, finished.type) == ("AuditReadStarted", "AuditReadFinished")
    assert started.data == {
        "read_id": read_id, "token_id": principal.token_id, "role": "regulator",
        "label": "CQC inspector", "endpoint": "events",
        "query": {"provider": str(P4), "from": "2024-09-01", "to": "2025-03-31",
                  "type": "SpendRecorded"},
        "scope": {"provider": str(P4), "from": "2024-09-01", "to": "2025-03-31"},
    }
    assert len(served) == 2
    assert finished.data == {"read_id": read_id, "returned": 2, "completed": True}
    assert (started.actor, started.organisation) == ("regulator:CQC inspector", "regulator")
    assert started.correlation_id == response.headers["x-correlation-id"]

    def on_log() -> list[EventEnvelope]:
        return [r.envelope for batch in trail.log.read_all([trail.log.topic_for("integrator")])
                for r in batch if r.envelope.stream_id == read_id]

    published = eventually(on_log, lambda found: len(found) == 2)
    # The relay seals what it publishes (sequence, prev_hash, hash); the rest is as stored.
    unsealed = {"sequence": None, "prev_hash": None, "hash": None}
    assert [e.model_copy(update=unsealed) for e in published] == [started, finished]
    assert all(e.hash for e in published)


def test_the_reads_log_shows_the_council_every_read_and_a_regulator_its_own(
    trail: Trail,
) -> None:
    cqc_principal, cqc = trail.token(Role.REGULATOR, "CQC inspector", *SCOPE)
    _, ofsted = trail.token(Role.REGULATOR, "Ofsted")
    first = trail.get("/audit/events", cqc, type="AgreementDrafted")
    trail.get("/audit/state", ofsted, as_of="2025-03-31")
    trail.get("/audit/events", trail.admin, source="outcomes")

    # Each read is listed once started; wait until the three have finished too.
    everything = eventually(lambda: trail.get("/audit/reads").json(),
                            lambda reads: len(reads) >= 3
                            and all(r["returned"] is not None for r in reads[-3:]))
    # Newest first; this listing's own earlier attempts (if it had to wait) come before them.
    assert [(r["label"], r["endpoint"]) for r in everything[-3:]] == [
        ("internal audit", "events"), ("Ofsted", "state"), ("CQC inspector", "events")]
    assert {r["endpoint"] for r in everything[:-3]} <= {"reads"}
    by_label = {r["label"]: r for r in everything}
    assert by_label["Ofsted"]["query"] == {"as_of": "2025-03-31"}
    assert by_label["Ofsted"]["returned"] == 4  # four providers in the state then
    assert by_label["internal audit"]["query"] == {"source": "outcomes"}
    assert by_label["internal audit"]["returned"] == 3
    cqc_read = by_label["CQC inspector"]
    assert cqc_read["read_id"] == first.headers["x-audit-read-id"]
    assert (cqc_read["returned"], cqc_read["completed"]) == (1, True)
    assert cqc_read["scope"] == {"provider": str(P4), "from": "2024-09-01", "to": "2025-03-31"}
    started = [r["started_at"] for r in everything]
    assert started == sorted(started, reverse=True)

    own = eventually(lambda: trail.get("/audit/reads", cqc).json(),
                     lambda reads: len(reads) >= 2)  # its events read, then this listing
    assert {r["token_id"] for r in own} == {cqc_principal.token_id}
    assert [r["endpoint"] for r in own][-1] == "events"
    assert {r["endpoint"] for r in own[:-1]} == {"reads"}
    refused = trail.get("/audit/reads", cqc, token_id="someoneelse")
    assert refused.status_code == 403
    assert trail.get("/audit/reads", token_id=cqc_principal.token_id).json()[-1]["read_id"] == \
        cqc_read["read_id"]
    assert trail.get("/audit/reads", limit=0).status_code == 422


def test_a_regulator_sees_its_own_reads_in_the_trail_but_not_others(trail: Trail) -> None:
    _, cqc = trail.token(Role.REGULATOR, "CQC inspector")
    _, ofsted = trail.token(Role.REGULATOR, "Ofsted")
    mine = trail.get("/audit/events", cqc, source="outcomes").headers["x-audit-read-id"]
    theirs = trail.get("/audit/events", ofsted, source="outcomes").headers["x-audit-read-id"]

    def reads_seen(headers: Auth) -> set[str]:
        return {e.stream_id for e in trail.stream(headers, type=["AuditReadStarted",
                                                                 "AuditReadFinished"])}

    seen_by_cqc = eventually(lambda: reads_seen(cqc), lambda seen: mine in seen)
    assert theirs not in seen_by_cqc
    assert {mine, theirs} <= eventually(lambda: reads_seen(trail.admin),
                                        lambda seen: {mine, theirs} <= seen)
    # Reads concern their reader, not what they asked about.
    assert not [e for e in trail.stream(trail.admin, organisation="regulator")
                if e.type.startswith("AuditRead")]
