"""The outcome framework through the outcomes service's HTTP API, in process: outcome measures
with baseline and target trajectory; measurements and their revisions with provenance;
attribution of measures to agreements with weights; rate cards; the payment schedule the
payments process works out; roles (401 / 403 / a provider's own agreements only) and bad input
(422 naming the field)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal as D
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from council.kernel.contracts.outcomes import Channel
from council.platform.identity import Role, TokenStore
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.acceptance import AgreementInfo
from council.services.outcomes.domain.commands import DeliveryIn
from council.services.outcomes.service import SPEC
from tests.problems import loc_of
from tests.waiting import eventually

Auth = dict[str, str]
PROVIDER = UUID("0b6a7c1e-2f4d-4e8a-9c3b-5d7e9f1a2b3c")
OTHER_PROVIDER = UUID("9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a")
AGREEMENT = UUID("6c5b4a3f-2e1d-4c0b-9a8f-7e6d5c4b3a29")
OTHERS_AGREEMENT = UUID("1d2c3b4a-5f6e-4d7c-8b9a-0f1e2d3c4b5a")
TERM = (date(2025, 1, 1), date(2026, 12, 31))
MONTHLY_AGREEMENT = UUID("4b3a2f1e-0d9c-4b8a-8f7e-6d5c4b3a2f1e")
AGREEMENTS = {
    # drafted before reward terms named a payment frequency: the card decides
    AGREEMENT: AgreementInfo(AGREEMENT, "active", frozenset({PROVIDER}), *TERM),
    OTHERS_AGREEMENT: AgreementInfo(OTHERS_AGREEMENT, "active", frozenset({OTHER_PROVIDER}),
                                    *TERM),
    MONTHLY_AGREEMENT: AgreementInfo(MONTHLY_AGREEMENT, "active", frozenset({PROVIDER}), *TERM,
                                     payment_frequency="monthly"),
}
OBESITY = {
    "name": "Teenage obesity rate",
    "unit": "% of 13-17 year olds",
    "direction": "lower_is_better",
    "description": "Share of 13 to 17 year olds living with obesity",
    "baseline": "21.0",
    "baseline_period": "2024-Q4",
    "trajectory": [{"period": "2025-Q1", "target": "20.0"},
                   {"period": "2025-Q2", "target": "19.5"}],
    "data_source": "National Child Measurement Programme",
    "geography": "Northshire (upper-tier LA)",
}
CARD = {
    "periodicity": "quarterly",
    "delivery_rates": [{"activity_type": "sessions_delivered", "rate": "25.00",
                        "threshold": "40", "cap": "1500.00"}],
    "outcome_rates": [],
    "bands": [{"min_pct": "110", "adjustment": "2000.00", "label": "target exceeded"},
              {"min_pct": "0", "max_pct": "80", "adjustment": "-3000.00",
               "label": "below 80% of target"}],
    "provider_risk_pct": "40",
    "period_cap": "10000.00",
}


@pytest.fixture
def auth(tokens: TokenStore) -> Callable[..., Auth]:
    def make(role: Role, label: str | None = None, provider_id: UUID | None = None) -> Auth:
        if role is Role.PROVIDER and provider_id is None:
            provider_id = uuid4()
        issued = tokens.create(role, label or f"{role.value}-user", provider_id)
        return {"Authorization": f"Bearer {issued.token}"}

    return make


@pytest.fixture
def admin(auth: Callable[..., Auth]) -> Auth:
    return auth(Role.INTEGRATOR_ADMIN, "sam")


@pytest.fixture
def commissioner(auth: Callable[..., Auth]) -> Auth:
    return auth(Role.COMMISSIONER, "jo")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_service_app(SPEC, settings)) as test_client:
        app = outcomes_app(test_client)
        app.agreements = lambda ids: {i: AGREEMENTS[i] for i in ids if i in AGREEMENTS}
        yield test_client


def runtime_of(client: TestClient) -> Runtime:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, Runtime)
    return runtime


def outcomes_app(client: TestClient) -> Outcomes:
    app = runtime_of(client).app
    assert isinstance(app, Outcomes)
    return app


def stored_types(client: TestClient) -> list[str]:
    app = outcomes_app(client)
    return [app.to_envelope(n).type
            for n in app.recorder.select_notifications(start=1, limit=1000)
            if app.is_published(n)]




def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def define(client: TestClient, headers: Auth, **changes: Any) -> dict[str, Any]:
    created: dict[str, Any] = ok(client.post("/measures", json={**OBESITY, **changes},
                                             headers=headers), 201)
    return created


def measure_url(measure: dict[str, Any]) -> str:
    return f"/measures/{measure['measure_id']}"


def attribute(client: TestClient, headers: Auth, measure_id: str, weight: str = "0.6",
              agreement: UUID = AGREEMENT) -> Any:
    return client.post(f"/agreements/{agreement}/attributions",
                       json={"measure_id": measure_id, "weight": weight}, headers=headers)


def errors(response: Any) -> list[tuple[list[Any], str]]:
    assert response.status_code == 422, response.text
    return [(loc_of(e), e["message"]) for e in response.json()["errors"]]


# --------------------------------------------------------------------------- measures


def test_a_measure_is_defined_with_its_trajectory_and_read_back(
    client: TestClient, commissioner: Auth
) -> None:
    response = client.post("/measures", json=OBESITY, headers=commissioner)

    created = ok(response, 201)
    assert response.headers["Location"] == f"/measures/{created['measure_id']}"
    assert created == {"measure_id": created["measure_id"], **OBESITY}
    detail = ok(client.get(measure_url(created), headers=commissioner))
    assert {k: detail[k] for k in created} == created
    assert detail["defined_by"] == "commissioner:jo"
    assert detail["periods"] == [
        {"period": "2025-Q1", "target": "20.0", "value": None, "measurement_id": None,
         "measurements": 0},
        {"period": "2025-Q2", "target": "19.5", "value": None, "measurement_id": None,
         "measurements": 0},
    ]
    assert detail["measurements"] == []
    assert stored_types(client) == ["OutcomeMeasureDefined"]


def test_the_measure_list_follows_the_log(client: TestClient, admin: Auth,
                                          auth: Callable[..., Auth]) -> None:
    minimal = ok(client.post("/measures", json={"name": "Adults in work", "unit": "people",
                                                "direction": "higher_is_better"},
                             headers=admin), 201)
    full = define(client, admin)

    listed = eventually(lambda: ok(client.get("/measures", headers=auth(Role.COUNCIL_STAFF))),
                        lambda found: len(found) == 2)
    assert listed == [minimal, full]  # by name; each as it was defined
    assert minimal["trajectory"] == []
    assert minimal["baseline"] is None


def test_measurements_and_revisions_keep_their_provenance(
    client: TestClient, commissioner: Auth, admin: Auth, auth: Callable[..., Auth]
) -> None:
    measure = define(client, admin)
    url = measure_url(measure)

    first = ok(client.post(f"{url}/measurements", json={
        "period": "2025-Q1", "value": "20.3", "source": "NCMP provisional"},
        headers={**commissioner, "X-Correlation-ID": "ncmp-q1"}), 201)
    revision = ok(client.post(f"{url}/measurements", json={
        "period": "2025-Q1", "value": "19.9", "source": "NCMP final",
        "note": "final figures published"}, headers=admin), 201)
    other = ok(client.post(f"{url}/measurements", json={
        "period": "2025-Q2", "value": "19.7", "source": "NCMP provisional"},
        headers=commissioner), 201)

    assert (first["revises"], first["recorded_by"], first["correlation_id"]) == (
        None, "commissioner:jo", "ncmp-q1")
    assert revision["revises"] == first["measurement_id"]
    assert (revision["recorded_by"], revision["note"]) == (
        "integrator_admin:sam", "final figures published")
    detail = ok(client.get(url, headers=auth(Role.COUNCIL_STAFF)))
    by_id = {m["measurement_id"]: m for m in detail["measurements"]}
    assert [m["measurement_id"] for m in detail["measurements"]] == [
        first["measurement_id"], revision["measurement_id"], other["measurement_id"]]
    kept = by_id[first["measurement_id"]]
    assert (kept["value"], kept["source"], kept["current"], kept["revised_by"]) == (
        "20.3", "NCMP provisional", False, revision["measurement_id"])
    assert by_id[revision["measurement_id"]]["current"] is True
    assert kept["recorded_at"] <= by_id[revision["measurement_id"]]["recorded_at"]
    assert detail["periods"] == [
        {"period": "2025-Q1", "target": "20.0", "value": "19.9",
         "measurement_id": revision["measurement_id"], "measurements": 2},
        {"period": "2025-Q2", "target": "19.5", "value": "19.7",
         "measurement_id": other["measurement_id"], "measurements": 1},
    ]
    assert stored_types(client).count("MeasurementRecorded") == 3


def test_the_same_value_from_the_same_source_again_is_refused(
    client: TestClient, admin: Auth
) -> None:
    url = measure_url(define(client, admin)) + "/measurements"
    body = {"period": "2025-Q1", "value": "20.3", "source": "NCMP"}
    ok(client.post(url, json=body, headers=admin), 201)

    again = client.post(url, json=body, headers=admin)

    assert again.status_code == 409
    assert "already has the value 20.3 from NCMP" in again.json()["detail"]
    assert stored_types(client).count("MeasurementRecorded") == 1


def test_a_retried_measure_is_defined_once_and_a_reused_key_is_refused(
    client: TestClient, admin: Auth
) -> None:
    headers = {**admin, "Idempotency-Key": "obesity-1"}
    first = client.post("/measures", json=OBESITY, headers=headers)
    again = client.post("/measures", json=OBESITY, headers=headers)
    other = client.post("/measures", json={**OBESITY, "name": "Something else"},
                        headers=headers)

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json() == first.json()
    assert stored_types(client) == ["OutcomeMeasureDefined"]


def test_an_unknown_measure_is_not_found(client: TestClient, admin: Auth) -> None:
    url = f"/measures/{uuid4()}"
    assert client.get(url, headers=admin).status_code == 404
    body = {"period": "2025-Q1", "value": "1", "source": "x"}
    assert client.post(f"{url}/measurements", json=body, headers=admin).status_code == 404
    assert client.get("/measures/not-a-uuid", headers=admin).status_code == 422


def test_the_rate_card_settles_in_the_agreements_payment_periods(
    client: TestClient, commissioner: Auth
) -> None:
    """The agreement's reward terms say results are paid monthly: one fact, not two."""
    url = f"/agreements/{MONTHLY_AGREEMENT}/rate-card"
    refused = client.put(url, json=CARD, headers=commissioner)  # CARD says quarterly
    assert refused.status_code == 409, refused.text
    for words in ("periodicity (quarterly)", "payment_frequency (monthly)"):
        assert words in refused.text
    assert "RateCardAgreed" not in stored_types(client)

    unsaid = {k: v for k, v in CARD.items() if k != "periodicity"}
    agreed = ok(client.put(url, json=unsaid, headers=commissioner))
    assert (agreed["payment_frequency"], agreed["rate_card"]["periodicity"]) == (
        "monthly", "monthly")  # the agreement's
    again = ok(client.put(url, json={**CARD, "periodicity": "monthly"}, headers=commissioner))
    assert again["rate_card"]["periodicity"] == "monthly"
    # An agreement naming no frequency: a card naming none settles quarterly.
    older = ok(client.put(f"/agreements/{AGREEMENT}/rate-card", json=unsaid,
                          headers=commissioner))
    assert older["rate_card"]["periodicity"] == "quarterly"


@pytest.mark.parametrize(
    ("change", "loc", "says"),
    [
        ({"trajectory": [{"period": "2025-13", "target": "20"}]},
         ["body", "trajectory", 0, "period"], "a month (2026-04) or a quarter"),
        ({"trajectory": [{"period": "2025-Q1"}]}, ["body", "trajectory", 0, "target"],
         "Field required"),
        ({"trajectory": [{"period": "2025-Q1", "target": "20"},
                         {"period": "2025-Q1", "target": "19"}]},
         ["body"], "trajectory: each period may appear once"),
        ({"baseline_period": None}, ["body"], "baseline and baseline_period go together"),
        ({"baseline": "lots"}, ["body", "baseline"], "Input should be a valid decimal"),
        ({"baseline": "Infinity"}, ["body", "baseline"], "finite number"),
        ({"direction": "sideways"}, ["body", "direction"], "higher_is_better"),
        ({"geography": ""}, ["body", "geography"], "at least 1 character"),
        ({"unit": "x" * 51}, ["body", "unit"], "at most 50 characters"),
    ],
    ids=["bad-period", "no-target", "period-twice", "baseline-alone", "baseline-not-a-number",
         "baseline-infinite", "direction", "empty-geography", "long-unit"],
)
def test_a_bad_measure_names_the_field(
    client: TestClient, admin: Auth, change: dict[str, Any], loc: list[Any], says: str
) -> None:
    found = errors(client.post("/measures", json={**OBESITY, **change}, headers=admin))
    assert len(found) == 1
    assert found[0][0] == loc
    assert says in found[0][1]
    assert stored_types(client) == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"period": "2025-Q5", "value": "1", "source": "NCMP"}, ["body", "period"]),
        ({"period": "Q1 2025", "value": "1", "source": "NCMP"}, ["body", "period"]),
        ({"period": "2025-Q1", "value": "high", "source": "NCMP"}, ["body", "value"]),
        ({"period": "2025-Q1", "value": "1"}, ["body", "source"]),
        ({"period": "2025-Q1", "value": "1", "source": "  "}, ["body", "source"]),
        ({"period": "2025-Q1", "value": "1", "source": "NCMP", "by": "me"}, ["body", "by"]),
    ],
    ids=["quarter-5", "words", "value-not-a-number", "no-source", "blank-source", "extra"],
)
def test_a_bad_measurement_names_the_field(
    client: TestClient, admin: Auth, body: dict[str, Any], loc: list[Any]
) -> None:
    url = measure_url(define(client, admin)) + "/measurements"
    found = errors(client.post(url, json=body, headers=admin))
    assert [f[0] for f in found] == [loc]
    assert "MeasurementRecorded" not in stored_types(client)


# --------------------------------------------------------------------------- attribution


def test_attribution_weights_run_from_0_to_1_and_can_change(
    client: TestClient, commissioner: Auth, admin: Auth
) -> None:
    obesity = define(client, admin)["measure_id"]
    work = define(client, admin, name="Adults in work", direction="higher_is_better")["measure_id"]

    ok(attribute(client, commissioner, obesity, "0.6"), 201)
    ok(attribute(client, commissioner, work, "0"), 201)
    ok(attribute(client, commissioner, work, "1"), 201)
    terms = ok(attribute(client, admin, obesity, "0.4"), 201)

    weights = {a["measure_id"]: (a["measure_name"], a["weight"]) for a in terms["attributions"]}
    assert weights == {obesity: ("Teenage obesity rate", "0.4"), work: ("Adults in work", "1")}
    assert [c["type"] for c in terms["changes"]] == ["OutcomeAttributed"] * 4
    assert terms["changes"][0]["recorded_by"] == "commissioner:jo"
    assert terms["changes"][-1]["data"] == {"measure_id": obesity, "weight": "0.4"}
    assert terms["rate_card"] is None
    again = attribute(client, admin, obesity, "0.4")
    assert again.status_code == 409
    assert stored_types(client).count("OutcomeAttributed") == 4


@pytest.mark.parametrize(
    ("weight", "says"),
    [("1.01", "less than or equal to 1"), ("-0.1", "greater than or equal to 0"),
     ("NaN", "finite number"), ("half", "valid decimal")],
)
def test_a_weight_outside_0_to_1_is_refused(
    client: TestClient, admin: Auth, weight: str, says: str
) -> None:
    measure_id = define(client, admin)["measure_id"]
    found = errors(attribute(client, admin, measure_id, weight))
    assert [f[0] for f in found] == [["body", "weight"]]
    assert says in found[0][1]
    assert "OutcomeAttributed" not in stored_types(client)


def test_attribution_needs_a_known_measure_and_agreement(client: TestClient, admin: Auth) -> None:
    measure_id = define(client, admin)["measure_id"]
    unknown_measure = attribute(client, admin, str(uuid4()))
    unknown_agreement = attribute(client, admin, measure_id, agreement=uuid4())

    assert unknown_measure.status_code == 404
    assert unknown_agreement.status_code == 404
    assert "in the shared log" in unknown_agreement.json()["detail"]
    bad = client.post(f"/agreements/{AGREEMENT}/attributions", json={"weight": "0.5"},
                      headers=admin)
    assert [f[0] for f in errors(bad)] == [["body", "measure_id"]]


# --------------------------------------------------------------------------- rate cards


def test_a_rate_card_is_agreed_and_replaced(
    client: TestClient, commissioner: Auth, admin: Auth
) -> None:
    measure_id = define(client, admin)["measure_id"]
    ok(attribute(client, commissioner, measure_id), 201)
    card = {**CARD, "outcome_rates": [{"measure_id": measure_id, "rate": "10000.00",
                                       "threshold": "0.2"}]}

    terms = ok(client.put(f"/agreements/{AGREEMENT}/rate-card", json=card,
                          headers=commissioner))

    agreed = terms["rate_card"]
    assert agreed["periodicity"] == "quarterly"
    assert agreed["delivery_rates"] == [{"activity_type": "sessions_delivered",
                                         "rate": "25.00", "threshold": "40", "cap": "1500.00"}]
    assert agreed["outcome_rates"] == [{"measure_id": measure_id, "rate": "10000.00",
                                        "threshold": "0.2", "cap": None}]
    assert [b["label"] for b in agreed["bands"]] == ["target exceeded", "below 80% of target"]
    assert (agreed["provider_risk_pct"], agreed["period_cap"]) == ("40", "10000.00")

    replaced = ok(client.put(f"/agreements/{AGREEMENT}/rate-card",
                             json={**CARD, "periodicity": "monthly", "period_cap": None},
                             headers=admin))
    assert replaced["rate_card"]["periodicity"] == "monthly"
    assert replaced["rate_card"]["outcome_rates"] == []
    assert [c["type"] for c in replaced["changes"]] == [
        "OutcomeAttributed", "RateCardAgreed", "RateCardAgreed"]
    assert ok(client.get(f"/agreements/{AGREEMENT}/terms", headers=admin)) == replaced


@pytest.mark.parametrize(
    ("change", "loc", "says"),
    [
        ({"delivery_rates": [{"activity_type": "juggling", "rate": "1"}]},
         ["body", "delivery_rates", 0, "activity_type"], "not a known activity type"),
        ({"delivery_rates": [{"activity_type": "meals", "rate": "4.505"}]},
         ["body", "delivery_rates", 0, "rate"], "2 decimal places"),
        ({"delivery_rates": [{"activity_type": "meals", "rate": "-1"}]},
         ["body", "delivery_rates", 0, "rate"], "greater than or equal to 0"),
        ({"delivery_rates": [{"activity_type": "meals", "rate": "1", "threshold": "-5"}]},
         ["body", "delivery_rates", 0, "threshold"], "greater than or equal to 0"),
        ({"provider_risk_pct": "101"}, ["body", "provider_risk_pct"], "less than or equal"),
        ({"periodicity": "weekly"}, ["body", "periodicity"], "'monthly' or 'quarterly'"),
        ({"bands": [{"min_pct": "0", "max_pct": "90", "adjustment": "-1.00", "label": "low"},
                    {"min_pct": "80", "adjustment": "1.00", "label": "high"}]},
         ["body"], "bands: performance bands must not overlap"),
        ({"bands": [{"min_pct": "90", "max_pct": "80", "adjustment": "1.00", "label": "x"}]},
         ["body"], "bands: max_pct must be above min_pct"),
        ({"bands": [{"min_pct": "90", "adjustment": "1.00"}]},
         ["body", "bands", 0, "label"], "Field required"),
        ({"delivery_rates": []}, ["body", "delivery_rates"],
         "a rate card pays for delivery or outcomes"),
        ({"outcome_rates": [{"measure_id": "7e1d2c3b-4a5f-4687-9a8b-0c1d2e3f4a5b",
                             "rate": "1.00"}]}, None, None),
        ({"surprise": 1}, ["body", "surprise"], "Extra inputs are not permitted"),
    ],
    ids=["unknown-activity", "fractions-of-a-penny", "negative-rate", "negative-threshold",
         "risk-over-100", "weekly", "overlapping-bands", "inverted-band", "band-without-label",
         "pays-for-nothing", "unknown-measure", "extra-field"],
)
def test_a_bad_rate_card_names_the_field(
    client: TestClient, admin: Auth, change: dict[str, Any], loc: list[Any] | None,
    says: str | None,
) -> None:
    response = client.put(f"/agreements/{AGREEMENT}/rate-card", json={**CARD, **change},
                          headers=admin)
    if loc is None:
        assert response.status_code == 404  # the measure does not exist
    else:
        found = errors(response)
        assert len(found) == 1
        assert found[0][0] == loc
        assert says is not None
        assert says in found[0][1]
    assert "RateCardAgreed" not in stored_types(client)


def test_outcome_rates_need_an_attributed_measure_with_a_baseline(
    client: TestClient, admin: Auth
) -> None:
    measure_id = define(client, admin)["measure_id"]
    no_baseline = define(client, admin, name="Repeat homelessness", baseline=None,
                         baseline_period=None)["measure_id"]

    def card(measure: str) -> dict[str, Any]:
        return {**CARD, "outcome_rates": [{"measure_id": measure, "rate": "100.00"}]}

    unattributed = client.put(f"/agreements/{AGREEMENT}/rate-card", json=card(measure_id),
                              headers=admin)
    assert errors(unattributed) == [(["body", "outcome_rates"], (
        f"measure {measure_id} is not attributed to the agreement: attribute it first"))]
    ok(attribute(client, admin, no_baseline), 201)
    baseless = client.put(f"/agreements/{AGREEMENT}/rate-card", json=card(no_baseline),
                          headers=admin)
    assert errors(baseless) == [(["body", "outcome_rates"], (
        f"measure {no_baseline} has no baseline: paying for improvement needs one"))]
    assert "RateCardAgreed" not in stored_types(client)


def test_terms_of_an_unknown_agreement_or_one_without_terms_are_not_found(
    client: TestClient, admin: Auth
) -> None:
    assert client.put(f"/agreements/{uuid4()}/rate-card", json=CARD,
                      headers=admin).status_code == 404
    for path in ("terms", "payments"):
        assert client.get(f"/agreements/{AGREEMENT}/{path}", headers=admin).status_code == 404


# --------------------------------------------------------------------------- roles


def _write_requests(measure_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("POST", "/measures", OBESITY),
        ("POST", f"/measures/{measure_id}/measurements",
         {"period": "2025-Q1", "value": "20.3", "source": "NCMP"}),
        ("POST", f"/agreements/{AGREEMENT}/attributions",
         {"measure_id": measure_id, "weight": "0.5"}),
        ("PUT", f"/agreements/{AGREEMENT}/rate-card", CARD),
    ]


@pytest.mark.parametrize("role", [Role.COUNCIL_STAFF, Role.REGULATOR, Role.PROVIDER],
                         ids=lambda r: r.value)
def test_only_council_writers_write(
    client: TestClient, admin: Auth, auth: Callable[..., Auth], role: Role
) -> None:
    measure_id = define(client, admin)["measure_id"]
    headers = auth(role, provider_id=PROVIDER if role is Role.PROVIDER else None)
    for method, path, body in _write_requests(measure_id):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path)
        assert "may not do this" in response.json()["detail"]
    assert stored_types(client) == ["OutcomeMeasureDefined"]


def test_every_endpoint_needs_a_token(client: TestClient, admin: Auth) -> None:
    measure_id = define(client, admin)["measure_id"]
    reads = ["/measures", f"/measures/{measure_id}", f"/agreements/{AGREEMENT}/terms",
             f"/agreements/{AGREEMENT}/payments"]
    for path in reads:
        assert client.get(path).status_code == 401, path
    for method, path, _ in _write_requests(measure_id):
        # authentication comes before validation: even an empty body gets 401
        assert client.request(method, path, json={}).status_code == 401, path


def test_council_readers_read_and_a_provider_reads_only_its_own_agreements(
    client: TestClient, admin: Auth, auth: Callable[..., Auth]
) -> None:
    measure_id = define(client, admin)["measure_id"]
    for agreement in (AGREEMENT, OTHERS_AGREEMENT):
        ok(attribute(client, admin, measure_id, agreement=agreement), 201)
        ok(client.put(f"/agreements/{agreement}/rate-card", json=CARD, headers=admin))

    for role in (Role.COUNCIL_STAFF, Role.COMMISSIONER):
        headers = auth(role)
        ok(client.get(f"/measures/{measure_id}", headers=headers))
        ok(client.get(f"/agreements/{AGREEMENT}/terms", headers=headers))
        ok(client.get(f"/agreements/{AGREEMENT}/payments", headers=headers))

    provider = auth(Role.PROVIDER, "hillside", provider_id=PROVIDER)
    assert ok(client.get(f"/agreements/{AGREEMENT}/terms", headers=provider))[
        "agreement_id"] == str(AGREEMENT)
    assert ok(client.get(f"/agreements/{AGREEMENT}/payments", headers=provider)) == {
        "agreement_id": str(AGREEMENT), "periodicity": "quarterly",
        "term_starts_on": "2025-01-01", "term_ends_on": "2026-12-31", "periods": [],
        "total": "0.00"}
    for path in ("terms", "payments"):  # another provider's agreement does not exist to it
        response = client.get(f"/agreements/{OTHERS_AGREEMENT}/{path}", headers=provider)
        assert response.status_code == 404
        assert response.json()["detail"] == f"no terms for agreement {OTHERS_AGREEMENT}"
    assert client.get("/measures", headers=provider).status_code == 403


# --------------------------------------------------------------------------- payments


def deliver(client: TestClient, quantity: int, key: str, start: str, end: str,
            corrects: str | None = None) -> str:
    report = DeliveryIn(idempotency_key=key, agreement_id=AGREEMENT,
                        activity_type="sessions_delivered", quantity=D(quantity),
                        period_start=date.fromisoformat(start),
                        period_end=date.fromisoformat(end),
                        corrects=UUID(corrects) if corrects else None)
    batch = outcomes_app(client).report_deliveries(PROVIDER, [(0, report)], Channel.HTTP)
    (outcome,) = batch.outcomes
    assert outcome.error is None, outcome.error
    return str(outcome.delivery_id)


def test_the_payment_schedule_shows_each_period_line_by_line_with_its_history(
    client: TestClient, commissioner: Auth, admin: Auth, auth: Callable[..., Auth]
) -> None:
    measure = define(client, admin)
    ok(attribute(client, commissioner, measure["measure_id"], "0.6"), 201)
    card = {**CARD, "outcome_rates": [{"measure_id": measure["measure_id"],
                                       "rate": "10000.00"}]}
    ok(client.put(f"/agreements/{AGREEMENT}/rate-card", json=card, headers=commissioner))
    deliver(client, 30, "jan", "2025-01-06", "2025-01-31")
    march = deliver(client, 22, "mar", "2025-03-03", "2025-03-28")
    url = f"/agreements/{AGREEMENT}/payments"
    provider = auth(Role.PROVIDER, "hillside", provider_id=PROVIDER)

    first = eventually(lambda: ok(client.get(url, headers=provider)),
                       lambda schedule: schedule["periods"] != [])
    (q1,) = first["periods"]
    assert (first["term_starts_on"], first["term_ends_on"]) == ("2025-01-01", "2026-12-31")
    # 52 sessions x £25.00 = £1,300.00; no measurement for Q1 yet: nothing for the outcome
    assert (q1["period"], q1["period_start"], q1["period_end"]) == (
        "2025-Q1", "2025-01-01", "2025-03-31")
    assert [(line["description"], line["amount"]) for line in q1["lines"]] == [
        ("Delivery: sessions_delivered", "1300.00"),
        ("Outcome: Teenage obesity rate", "0.00"),
    ]
    assert q1["lines"][1]["basis"] == "no measurement for the period yet: nothing due"
    assert (q1["total"], first["total"]) == ("1300.00", "1300.00")
    assert [(h["kind"], h["total"], h["difference"], h["recorded_by"])
            for h in q1["history"]] == [
        ("calculated", "1300.00", "1300.00", "system:payments-process")]

    # The Q1 figure arrives late: 21.0 - 20.3 = 0.7 x £10,000.00 x 0.6 = £4,200.00; 70% of
    # the 1.0 targeted: the penalty band, £3,000.00 x 40% = -£1,200.00.
    # £1,300.00 + £4,200.00 - £1,200.00 = £4,300.00: £3,000.00 more.
    ok(client.post(f"{measure_url(measure)}/measurements", json={
        "period": "2025-Q1", "value": "20.3", "source": "NCMP"}, headers=commissioner), 201)
    # Then the provider corrects March to 8 sessions: 38 < 40, the sessions line pays
    # nothing: £4,200.00 - £1,200.00 = £3,000.00, £1,300.00 less.
    late = eventually(lambda: ok(client.get(url, headers=admin)),
                      lambda schedule: len(schedule["periods"][0]["history"]) == 2)
    assert late["periods"][0]["total"] == "4300.00"
    deliver(client, 8, "mar-fixed", "2025-03-03", "2025-03-28", corrects=march)
    final = eventually(lambda: ok(client.get(url, headers=admin)),
                       lambda schedule: len(schedule["periods"][0]["history"]) == 3)

    (q1,) = final["periods"]
    assert [(line["description"], line["amount"]) for line in q1["lines"]] == [
        ("Delivery: sessions_delivered", "0.00"),
        ("Outcome: Teenage obesity rate", "4200.00"),
        ("Penalty: below 80% of target", "-1200.00"),
    ]
    assert q1["achievement_pct"] == "70.0"
    assert [(h["kind"], h["previous_total"], h["total"], h["difference"], h["reason"])
            for h in q1["history"]] == [
        ("calculated", None, "1300.00", "1300.00", None),
        ("recalculated", "1300.00", "4300.00", "3000.00", "late measurement for 2025-Q1"),
        ("recalculated", "4300.00", "3000.00", "-1300.00", "delivery correction"),
    ]
    assert final["total"] == "3000.00"

    # Once a period is paid quarterly, the card cannot switch to monthly periods.
    switched = client.put(f"/agreements/{AGREEMENT}/rate-card",
                          json={**card, "periodicity": "monthly"}, headers=admin)
    assert switched.status_code == 409
    assert "periodicity cannot change" in switched.json()["detail"]
