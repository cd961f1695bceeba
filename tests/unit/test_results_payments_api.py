"""One record of money, through the integrator service in process: a PaymentCalculated the
outcomes service put on the shared log becomes a results payment due on the agreement (the
integrator's results payments process follows the outcomes topic); paying it moves the
agreement's spend, its need's, the partners' split and the market's by the same pounds; each
recalculation's difference is a further amount due (or a credit to recover) that moves them
again; an amount the budget cannot take waits for a variation; a calculation for an agreement
the integrator does not hold is parked, not stalled on.

Worked by hand. The need pools the council's £90,000.00 envelope and the ICB's £30,000.00
(75% and 25%). One agreement, budget £90,000.00: Hillside £60,000.00, Valley £30,000.00 (two
thirds, one third). £10,000.00 paid to Hillside by hand first.

- PaymentCalculated £1,125.00 for the last quarter: due, Hillside £750.00, Valley £375.00.
  Paid: spend £11,125.00 everywhere; the partners' split £8,343.75 / £2,781.25.
- PaymentRecalculated to £1,425.00 (late measurement): £300.00 further due (200.00 / 100.00).
  Paid: £11,425.00.
- PaymentRecalculated to £1,225.00 (delivery correction): £200.00 to recover: 133.333... and
  66.666...: 133.33 + 66.66 = 199.99, the penny to the larger remainder (Valley's .00666 over
  Hillside's .00333): -133.33, -66.67. Recovered: £11,225.00; Hillside 10,000 + 750 + 200 -
  133.33 = £10,816.67, Valley 375 + 100 - 66.67 = £408.33; the split 75% = £8,418.75, 25% =
  £2,806.25.
- PaymentCalculated £80,000.00 for the quarter before: £11,225.00 + £80,000.00 = £91,225.00,
  £1,225.00 over the budget: due, flagged as needing a variation; paying it is refused.

Business time is the real date here (the service runs in its own thread): the agreement's
term and the periods paid are worked out from today.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from council.kernel.contracts import all_specs
from council.kernel.contracts import outcomes as co
from council.kernel.contracts.provider_registry import ProviderStatus
from council.kernel.envelope import EventEnvelope, event_id_for
from council.platform.accounts import UserStore
from council.platform.identity import Role, TokenStore
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.services.integrator.projections.overview import spend_by_type_over_time
from council.services.integrator.service import SPEC as INTEGRATOR
from council.services.outcomes.service import SPEC as OUTCOMES
from tests.unit.test_web_pages import PASSWORD, figure, follow, post, sign_in, text_of
from tests.waiting import eventually

D = Decimal
Auth = dict[str, str]
LEAD, ICB = "Northshire County Council", "Northshire ICB"
HILLSIDE, VALLEY = (UUID(f"00000000-0000-4000-8000-00000000000{i}") for i in (1, 2))
TODAY = datetime.now(UTC).date()
SPECS = {spec.data: spec for spec in all_specs()}
SCHEME = {"limits": [{"role": role, "kind": kind, "up_to": up_to}
                     for kind in ("award", "variation", "extension", "business_case", "spend",
                                  "envelope_raise", "performance_override")
                     for role, up_to in (("commissioner", "50000.00"),
                                         ("integrator_admin", None))],
          "reason": "Financial regulations, part 4"}


def quarter(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


# The last quarter that has ended, and the one before it; the term starts with the latter.
LAST = quarter(quarter_start(TODAY) - timedelta(days=1))
BEFORE = quarter(quarter_start(quarter_start(TODAY) - timedelta(days=1)) - timedelta(days=1))
STARTS = quarter_start(quarter_start(quarter_start(TODAY) - timedelta(days=1)) -
                       timedelta(days=1))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, relay_interval=0.01)


@pytest.fixture
def auth(settings: Settings) -> Iterator[Callable[[Role, str], Auth]]:
    store = TokenStore(open_database(settings, "identity"))

    def make(role: Role, label: str) -> Auth:
        return {"Authorization": f"Bearer {store.create(role, label).token}"}

    try:
        yield make
    finally:
        store.db.close()


@pytest.fixture
def integrator(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        runtime = runtime_of(client)
        runtime.app.provider_status = {  # type: ignore[attr-defined]
            HILLSIDE: ProviderStatus.APPROVED, VALLEY: ProviderStatus.APPROVED}.get
        yield client


def runtime_of(client: TestClient) -> Runtime:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, Runtime)
    return runtime


def call(client: TestClient, path: str, body: Any, headers: Auth, expect: int = 201) -> Any:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


class Outcomes:
    """The outcomes service's events, as it would put them on the log: numbered in its terms
    stream for the agreement."""

    def __init__(self, client: TestClient, agreement_id: UUID) -> None:
        self.client = client
        self.agreement_id = agreement_id
        self.terms_id = uuid5(agreement_id, "terms")
        self.position = 0

    def publish(self, data: BaseModel) -> None:
        spec = SPECS[type(data)]
        self.position += 1
        now = datetime.now(UTC)
        runtime_of(self.client).event_log.append([EventEnvelope(
            event_id=event_id_for("outcomes", str(self.terms_id), self.position),
            type=spec.type, schema_version=spec.version, source=spec.source,
            stream_id=str(self.terms_id), stream_position=self.position, occurred_at=now,
            recorded_at=now, actor="system:payments-process", data=data.model_dump(mode="json"),
        )])

    def calculated(self, calculation_id: str, period: str, total: str) -> None:
        self.publish(co.PaymentCalculated(
            terms_id=self.terms_id, agreement_id=self.agreement_id, period=period,
            calculation_id=calculation_id, total=D(total), lines=[co.PaymentLine(
                description="Outcome: obesity", basis="0.9 points x £1,250.00",
                amount=D(total))]))

    def recalculated(self, calculation_id: str, period: str, total: str, previous: str,
                     reason: str) -> None:
        self.publish(co.PaymentRecalculated(
            terms_id=self.terms_id, agreement_id=self.agreement_id, period=period,
            calculation_id=calculation_id, total=D(total), previous_total=D(previous),
            difference=D(total) - D(previous), reason=reason, lines=[co.PaymentLine(
                description="Outcome: obesity", basis="by hand", amount=D(total))]))


def commission(client: TestClient, admin: Auth) -> tuple[str, str]:
    """The need (the council's envelope and the ICB's contribution), the award, and the
    agreement signed and in force, with £10,000.00 paid to Hillside by hand."""
    response = client.put(f"/councils/{LEAD}/scheme-of-delegation", json=SCHEME, headers=admin)
    assert response.status_code == 200, response.text
    need_id = call(client, "/needs", {
        "title": "Healthy weight", "service_area": "weight-management",
        "population": {"description": "Young people"},
        "outcomes": [{"description": "Fewer teenagers living with obesity"}],
        "budget_envelope": "90000.00", "starts_on": STARTS.isoformat(),
        "ends_on": (TODAY + timedelta(days=1000)).isoformat(), "lead_organisation": LEAD},
        admin)["need_id"]
    call(client, f"/needs/{need_id}/contributions", {"partner": ICB, "amount": "30000.00"},
         admin)
    call(client, f"/needs/{need_id}/options", {
        "options": [{"option": "mixed", "description": "a contract"}], "recommended": "mixed",
        "rationale": "reaches families"}, admin, 200)
    award_id = call(client, f"/needs/{need_id}/decisions", {
        "awards": [{"title": "Programme", "arrangement_type": "formal_contract",
                    "provider_ids": [str(HILLSIDE), str(VALLEY)], "allocation": "90000.00"}],
        "rationale": "best value", "decision_maker": "Cabinet"}, admin)["award_ids"][0]
    agreement_id = call(client, "/agreements", {
        "need_id": need_id, "award_id": award_id, "starts_on": STARTS.isoformat(),
        "ends_on": (TODAY + timedelta(days=900)).isoformat(), "exit_plan": "hand over",
        "parties": [{"provider_id": str(HILLSIDE), "allocation": "60000.00"},
                    {"provider_id": str(VALLEY), "allocation": "30000.00"}]},
        admin)["agreement_id"]
    call(client, f"/agreements/{agreement_id}/sign",
         {"signed_on": TODAY.isoformat(), "signatories": ["the council", "Hillside"]}, admin,
         200)
    call(client, f"/agreements/{agreement_id}/activate", {"activated_on": TODAY.isoformat()},
         admin, 200)
    call(client, f"/agreements/{agreement_id}/spend", {
        "provider_id": str(HILLSIDE), "amount": "10000.00",
        "period": f"{STARTS:%Y-%m}", "reference": "INV-1"}, admin)
    return need_id, agreement_id


def figures(client: TestClient, headers: Auth, need_id: str,
            agreement_id: str) -> dict[str, Any]:
    """Spend as each view counts it: the agreement, its parties, the need, the partners'
    split, the network state and the market's spend by quarter."""
    agreement = client.get(f"/agreements/{agreement_id}", headers=headers).json()
    need = client.get(f"/needs/{need_id}", headers=headers).json()
    split = client.get(f"/needs/{need_id}/spend-by-partner", headers=headers).json()
    state = client.get("/network/state", headers=headers).json()
    market = spend_by_type_over_time(runtime_of(client).views)
    return {
        "agreement": D(agreement["spent"]),
        "parties": {p["provider_id"]: D(p["spent"]) for p in agreement["parties"]},
        "need": D(need["spent"]),
        "split": {p["partner"]: D(p["spent"]) for p in split["partners"]},
        "network": D(state["totals"]["spent_to_date"]),
        "market": sum((q.total for q in market), D(0)),
        "due": (D(agreement["due"]), D(need["due"]), D(split["due"])),
        "items": {d["due_id"]: d for d in agreement["results_due"]},
    }


def spent_everywhere(found: dict[str, Any]) -> set[Decimal]:
    return {found["agreement"], found["need"], sum(found["split"].values(), D(0)),
            found["network"], found["market"]}


# --------------------------------------------------------------------------- the flow


def test_a_calculation_on_the_log_becomes_due_and_paying_moves_every_view_alike(
        integrator: TestClient, auth: Callable[[Role, str], Auth]) -> None:
    admin, jo = auth(Role.INTEGRATOR_ADMIN, "sam"), auth(Role.COMMISSIONER, "jo")
    need_id, agreement_id = commission(integrator, admin)
    outcomes = Outcomes(integrator, UUID(agreement_id))

    def read() -> dict[str, Any]:
        return figures(integrator, jo, need_id, agreement_id)

    # On the log: due, split by allocation, nothing paid yet.
    outcomes.calculated("calc-1", LAST, "1125.00")
    found = eventually(read, lambda f: "calc-1" in f["items"] and f["due"][2] == D("1125.00"))
    item = found["items"]["calc-1"]
    assert (item["amount"], item["status"], item["period"]) == ("1125.00", "due", LAST)
    assert [(s["provider_id"], s["amount"]) for s in item["shares"]] == [
        (str(HILLSIDE), "750.00"), (str(VALLEY), "375.00")]
    assert item["how"].startswith(f"£1,125.00 due for {LAST}: results payment calculated "
                                  f"{TODAY.isoformat()} (calculation calc-1, 1 line)")
    assert item["lines"][0]["basis"] == "0.9 points x £1,250.00"
    assert spent_everywhere(found) == {D("10000.00")}
    assert found["due"] == (D("1125.00"), D("1125.00"), D("1125.00"))

    # Paid: every view moves by £1,125.00, each party by its share.
    paid = call(integrator, f"/agreements/{agreement_id}/results-due/calc-1/pay",
                {"reference": "REM-0412"}, jo, 200)
    assert (paid["id"], paid["agreement"]["spent"], paid["agreement"]["due"]) == (
        "calc-1", "11125.00", "0.00")
    found = eventually(read, lambda f: spent_everywhere(f) == {D("11125.00")})
    assert spent_everywhere(found) == {D("11125.00")}
    assert found["split"] == {LEAD: D("8343.75"), ICB: D("2781.25")}
    assert found["parties"] == {str(HILLSIDE): D("10750.00"), str(VALLEY): D("375.00")}
    item = found["items"]["calc-1"]
    assert (item["status"], item["paid_by"]) == ("paid", "commissioner:jo")
    assert f"paid {TODAY.isoformat()} by commissioner:jo as spend for" in item["how"]
    again = integrator.post(f"/agreements/{agreement_id}/results-due/calc-1/pay", json={},
                            headers=jo)
    assert again.status_code == 409
    assert "already paid" in again.text

    # A late measurement: £300.00 further due, then paid.
    outcomes.recalculated("calc-2", LAST, "1425.00", "1125.00", f"late measurement for {LAST}")
    found = eventually(read, lambda f: "calc-2" in f["items"])
    assert found["items"]["calc-2"]["how"].startswith(
        f"£300.00 further due for {LAST}: recalculated {TODAY.isoformat()} from £1,125.00 "
        f"to £1,425.00 (late measurement for {LAST}")
    call(integrator, f"/agreements/{agreement_id}/results-due/calc-2/pay", {}, jo, 200)
    found = eventually(read, lambda f: spent_everywhere(f) == {D("11425.00")})
    assert spent_everywhere(found) == {D("11425.00")}

    # A correction: £200.00 to recover, then recovered.
    outcomes.recalculated("calc-3", LAST, "1225.00", "1425.00", "delivery correction")
    found = eventually(read, lambda f: "calc-3" in f["items"] and f["due"][2] == D("-200.00"))
    credit = found["items"]["calc-3"]
    assert (credit["amount"], credit["status"]) == ("-200.00", "to recover")
    assert [s["amount"] for s in credit["shares"]] == ["-133.33", "-66.67"]
    assert credit["how"].startswith(f"£200.00 to recover for {LAST}: recalculated")
    assert found["due"] == (D("-200.00"), D("-200.00"), D("-200.00"))
    call(integrator, f"/agreements/{agreement_id}/results-due/calc-3/pay", {}, jo, 200)
    found = eventually(read, lambda f: spent_everywhere(f) == {D("11225.00")}
                       and f["items"]["calc-3"]["status"] == "recovered")
    assert spent_everywhere(found) == {D("11225.00")}
    assert found["split"] == {LEAD: D("8418.75"), ICB: D("2806.25")}
    assert found["parties"] == {str(HILLSIDE): D("10816.67"), str(VALLEY): D("408.33")}
    assert found["items"]["calc-3"]["status"] == "recovered"

    # More than the budget can take: due, flagged, refused until varied.
    outcomes.calculated("calc-4", BEFORE, "80000.00")
    found = eventually(read, lambda f: "calc-4" in f["items"])
    flagged = found["items"]["calc-4"]
    assert (flagged["status"], flagged["over_budget_by"], flagged["short_by"]) == (
        "needs a variation", "1225.00", "1225.00")
    assert "needs a variation: paying it would take spend £1,225.00 over the £90,000.00 " \
           "budget" in flagged["how"]
    refused = integrator.post(f"/agreements/{agreement_id}/results-due/calc-4/pay", json={},
                              headers=admin)
    assert refused.status_code == 409
    assert "vary the agreement first" in refused.text
    # Over the commissioner's £50,000.00 for spend, whatever the budget.
    over = integrator.post(f"/agreements/{agreement_id}/results-due/calc-4/pay", json={},
                           headers=jo)
    assert over.status_code == 403
    assert "50,000.00" in over.text
    assert spent_everywhere(read()) == {D("11225.00")}

    # Each event of the flow names who caused it: the process for the due items.
    events = [runtime_of(integrator).app.to_envelope(n) for n in runtime_of(
        integrator).app.recorder.select_notifications(start=1, limit=1000)]
    dues = [e for e in events if e.type == "ResultsPaymentDue"]
    assert [e.data["due_id"] for e in dues] == ["calc-1", "calc-2", "calc-3", "calc-4"]
    assert {e.actor for e in dues} == {"system:results-payments-process"}
    assert all(e.causation_id for e in dues)


def test_reading_the_log_again_records_nothing_more(
        integrator: TestClient, auth: Callable[[Role, str], Auth]) -> None:
    admin = auth(Role.INTEGRATOR_ADMIN, "sam")
    _, agreement_id = commission(integrator, admin)
    Outcomes(integrator, UUID(agreement_id)).calculated("calc-1", LAST, "1125.00")
    runtime = runtime_of(integrator)

    def dues() -> int:
        return len(runtime.app.agreement(UUID(agreement_id)).results_due)  # type: ignore[attr-defined]

    eventually(dues, lambda n: n == 1)
    before = runtime.app.recorder.max_notification_id()
    (follower,) = runtime.followers
    follower.rebuild()  # the process's position forgotten: it reads every calculation again
    eventually(lambda: follower.position(), lambda p: bool(p))
    eventually(lambda: integrator.get("/ready").json()["projections_behind"][
        "integrator.results_payments"], lambda n: n == 0)
    assert dues() == 1
    assert runtime.app.recorder.max_notification_id() == before


def test_a_calculation_for_an_agreement_the_integrator_does_not_hold_is_parked(
        integrator: TestClient, auth: Callable[[Role, str], Auth]) -> None:
    admin = auth(Role.INTEGRATOR_ADMIN, "sam")
    _, agreement_id = commission(integrator, admin)
    stranger = Outcomes(integrator, uuid4())
    stranger.calculated("calc-x", LAST, "10.00")
    Outcomes(integrator, UUID(agreement_id)).calculated("calc-1", LAST, "1125.00")

    ready = eventually(lambda: integrator.get("/ready").json(),
                       lambda body: bool(body.get("parked")))
    (parked,) = ready["parked"]["integrator.results_payments"]["items"]
    assert parked["item"] == "due calc-x"
    assert "no agreement" in parked["reason"]
    # The next calculation was recorded all the same.
    detail = eventually(lambda: integrator.get(f"/agreements/{agreement_id}",
                                               headers=admin).json(),
                        lambda body: bool(body["results_due"]))
    assert [d["due_id"] for d in detail["results_due"]] == ["calc-1"]


# --------------------------------------------------------------------------- the pages


def test_the_agreement_and_need_pages_say_what_is_due_and_pay_it(
        settings: Settings, auth: Callable[[Role, str], Auth]) -> None:
    """The agreement page shows each due item as a finance officer signs it off (the figure,
    its period, when and how it was calculated, the calculation line by line) with a form to
    pay it; paid, the figures move on the agreement and need pages, each saying its unit and
    how it was worked out."""
    db = open_database(settings, "identity")
    UserStore(db).create("lee", Role.INTEGRATOR_ADMIN, "Lee Morgan (Finance)", PASSWORD)
    db.close()
    with TestClient(create_service_app(INTEGRATOR, settings), follow_redirects=False) as app:
        runtime_of(app).app.provider_status = {  # type: ignore[attr-defined]
            HILLSIDE: ProviderStatus.APPROVED, VALLEY: ProviderStatus.APPROVED}.get
        need_id, agreement_id = commission(app, auth(Role.INTEGRATOR_ADMIN, "sam"))
        Outcomes(app, UUID(agreement_id)).calculated("calc-1", LAST, "1125.00")
        sign_in(app, "lee")
        path = f"/ui/agreements/{agreement_id}"
        page = eventually(lambda: app.get(path).text, lambda html: "calc-1" in html)
        said = text_of(page)
        assert (f"Due £1,125.00 due for {LAST}: results payment calculated "
                f"{TODAY.isoformat()} (calculation calc-1, 1 line); split between the parties "
                "by their allocations, to the penny") in said
        assert "See the calculation" in said
        assert "Outcome: obesity 0.9 points x £1,250.00 £1,125.00" in said
        assert figure(page, "fig-due") == "£1,125.00"
        assert figure(page, "fig-spent") == "£10,000.00"
        assert ("£: 1 payment recorded: 1 by hand (£10,000.00) and 0 party shares of results "
                "payments (£0.00, net of credits recovered)") in said

        paid = follow(app, post(app, f"{path}/results-due/calc-1/pay",
                                {"reference": "REM-0412"}, page=path))
        assert "Results payment recorded" in paid
        assert figure(paid, "fig-spent") == "£11,125.00"
        assert figure(paid, "fig-due") == "£0.00"
        said = text_of(paid)
        assert f"paid {TODAY.isoformat()} by integrator_admin:Lee Morgan (Finance)" in said
        assert "REM-0412 (results payment)" in said
        need = text_of(app.get(f"/ui/needs/{need_id}").text)
        assert ("£: payments under its agreements: £10,000.00 recorded by hand and £1,125.00 "
                "of results payments") in need
        assert "Northshire ICB £30,000 25.0% £22,500.00 £2,781.25 £0.00" in need


# --------------------------------------------------------------------------- the API docs

# Each route that carries a rule of issue #13 ("money and time you can sign off"), by service.
RULED = {
    "integrator": [
        ("post", "/needs/{need_id}/contributions"), ("post", "/needs/{need_id}/envelope-raises"),
        ("post", "/needs/{need_id}/decisions"), ("post", "/agreements"),
        ("post", "/agreements/{agreement_id}/sign"),
        ("post", "/agreements/{agreement_id}/activate"),
        ("post", "/agreements/{agreement_id}/variations"),
        ("post", "/agreements/{agreement_id}/extensions"),
        ("post", "/agreements/{agreement_id}/business-cases"),
        ("post", "/agreements/{agreement_id}/business-cases/{case_id}/approve"),
        ("post", "/agreements/{agreement_id}/spend"),
        ("post", "/agreements/{agreement_id}/results-due/{due_id}/pay"),
        ("put", "/councils/{council}/scheme-of-delegation"),
        ("get", "/councils/{council}/scheme-of-delegation"), ("get", "/market"),
        ("get", "/needs/{need_id}/spend-by-partner"), ("get", "/agreements/{agreement_id}"),
        ("get", "/network/performance"),
    ],
    "outcomes": [
        ("put", "/agreements/{agreement_id}/rate-card"),
        ("get", "/agreements/{agreement_id}/payments"),
        ("get", "/performance/measures/{measure_id}"), ("get", "/performance/agreements"),
        ("get", "/performance/agreements/{agreement_id}"),
    ],
}


@pytest.mark.parametrize("service", sorted(RULED))
def test_each_route_says_its_rule_in_one_line_in_the_api_docs(service: str,
                                                              settings: Settings) -> None:
    spec = {"integrator": INTEGRATOR, "outcomes": OUTCOMES}[service]
    paths = create_service_app(spec, settings).openapi()["paths"]
    for method, path in RULED[service]:
        first = paths[path][method]["description"].splitlines()[0]
        assert first.startswith("Rule: "), (path, first)
        assert first.endswith("."), (path, first)
