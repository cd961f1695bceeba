"""The Local Government Transparency Code 2015 registers (GET /transparency/...): spend over £500
in a quarter and the contracts register over £5,000, in the Code's columns, open to anyone, each
CSV validated by frictionless against the data package it links to.

The commission of tests/unit/test_ocds.py is on the log, with a few payments and agreements at
the thresholds' edges added."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from council.kernel.contracts.integrator import (
    AgreementSigned,
    ArrangementType,
    SourcingOption,
)
from council.kernel.contracts.provider_registry import (
    Identifiers,
    OrganisationType,
    ProviderRegistered,
)
from council.kernel.envelope import EventEnvelope, event_id_for
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.services.integrator.domain.transparency import (
    NEITHER,
    QUOTED,
    TENDERED,
    contract_is_published,
    procurement_route,
    registration_number,
    spend_is_published,
    supplier_kind,
)
from council.services.integrator.service import SPEC as INTEGRATOR
from tests.tables import assert_package, schema_errors, typed_rows
from tests.unit.test_ocds import (
    AG_CALLOFF,
    AG_CONTRACT,
    AG_GRANT,
    FITTEENS,
    KITCHEN,
    LEISURE,
    NAMES,
    SPORT,
    History,
    at,
    commission,
    drafted,
    spend,
)
from tests.waiting import DEADLINE_SECONDS

D = Decimal
AG_SMALL = UUID("a9e3c7d0-5f1b-4e2a-b6c4-000000000004")  # exactly £5,000.00: not published
AG_JUST = UUID("a9e3c7d0-5f1b-4e2a-b6c4-000000000005")  # £5,000.01: published
AG_UNSIGNED = UUID("a9e3c7d0-5f1b-4e2a-b6c4-000000000006")  # drafted only: not a contract yet
KINDS = {KITCHEN: OrganisationType.COMMUNITY_GROUP, SPORT: OrganisationType.VCSE,
         FITTEENS: OrganisationType.SME, LEISURE: OrganisationType.LARGE_PRIVATE}
IDENTIFIERS = {SPORT: Identifiers(charity_number="1123456"),
               FITTEENS: Identifiers(companies_house="01234567"),
               LEISURE: Identifiers(companies_house="SC765432")}


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(("amount", "published"), [
    # "each individual item of expenditure that exceeds £500": strictly more than £500.00
    ("500.00", False), ("500.01", True), ("499.99", False), ("12500.00", True),
    # a credit note over £500 is an item too (LGA practitioners' guide); £500.00 back is not
    ("-500.00", False), ("-750.00", True),
    # to the penny first: £500.004 is £500.00 (half up), £500.005 is £500.01
    ("500.004", False), ("500.005", True),
])
def test_spend_over_500_by_hand(amount: str, published: bool) -> None:
    assert spend_is_published(D(amount)) is published


@pytest.mark.parametrize(("value", "published"), [
    ("5000.00", False), ("5000.01", True), ("4999.99", False), ("140000.00", True),
])
def test_contracts_over_5000_by_hand(value: str, published: bool) -> None:
    assert contract_is_published(D(value)) is published


def test_the_codes_questions_about_route_and_supplier() -> None:
    assert procurement_route(SourcingOption.FORMAL_CONTRACT, market_engaged=False) == TENDERED
    assert procurement_route(SourcingOption.MIXED, market_engaged=True) == QUOTED
    assert procurement_route(SourcingOption.VCSE_GRANT, market_engaged=False) == NEITHER
    assert procurement_route(None, market_engaged=False) == NEITHER
    assert supplier_kind(OrganisationType.SME) == "SME"
    assert supplier_kind(OrganisationType.COMMUNITY_GROUP) == "VCSE"
    assert supplier_kind(OrganisationType.PUBLIC_BODY) == ""
    assert registration_number({"companies_house": "01234567", "charity_number": "1"}) == (
        "01234567")
    assert registration_number({"ukprn": "10012345"}) == ""


# --------------------------------------------------------------------------- the registers


def _registered(provider_id: UUID) -> EventEnvelope:
    data = ProviderRegistered(provider_id=provider_id, name=NAMES[provider_id],
                              organisation_type=KINDS[provider_id],
                              identifiers=IDENTIFIERS.get(provider_id))
    return EventEnvelope(
        event_id=event_id_for("provider_registry", str(provider_id), 1),
        type="ProviderRegistered", schema_version=1, source="provider_registry",
        stream_id=str(provider_id), stream_position=1, occurred_at=at("2023-11-01"),
        recorded_at=at("2023-11-01"), data=data.model_dump(mode="json"))


def _edges() -> list[EventEnvelope]:
    h = History()
    h.positions.update({str(AG_GRANT): 100, str(AG_CONTRACT): 100})  # after the commission's
    for spend_id, amount, day in (("sp-e-500", "500.00", "2024-05-02"),
                                  ("sp-e-50001", "500.01", "2024-05-03"),
                                  ("sp-e-credit", "-750.00", "2024-06-03"),
                                  ("sp-e-small", "499.99", "2024-06-04")):
        h.add(spend(AG_GRANT, spend_id, KITCHEN, amount, "2024-05"), at(day))
    h.add(spend(AG_GRANT, "sp-e-july", KITCHEN, "900.00", "2024-06"), at("2024-07-01"))
    for agreement, budget in ((AG_SMALL, "5000.00"), (AG_JUST, "5000.01"),
                              (AG_UNSIGNED, "80000.00")):
        h.add(drafted(agreement, "aw-grant", "Holiday cooking", ArrangementType.GRANT,
                      [(KITCHEN, budget)]), at("2024-04-10"))
        if agreement != AG_UNSIGNED:
            h.add(AgreementSigned(agreement_id=agreement, signed_on=date(2024, 4, 12),
                                  signatories=["Leeds City Council"]), at("2024-04-12"))
    return [e.model_copy(update={"correlation_id": f"edge-{i}"})
            for i, e in enumerate(h.envelopes)]


def _csv(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path_factory.mktemp("registers"), relay_interval=0.01)
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        assert isinstance(runtime, Runtime)
        runtime.event_log.append([_registered(p) for p in NAMES])
        runtime.event_log.append([*commission(), *_edges()])
        deadline = time.monotonic() + DEADLINE_SECONDS
        # caught up once the last payment and the provider names are in
        while not any(r["transaction_id"] == "sp-e-july" for r in _csv(
                client.get("/transparency/spend.csv", params={"quarter": "2024-Q3"}))) or \
                any(r["supplier_names"].startswith("Provider ")
                    for r in _csv(client.get("/transparency/contracts.csv"))):
            assert time.monotonic() < deadline, "the read models did not take the log in"
            time.sleep(0.02)
        yield client


def test_spend_over_500_in_a_quarter(client: TestClient) -> None:
    response = client.get("/transparency/spend.csv", params={"quarter": "2024-Q2"},
                          headers={"Origin": "https://reader.example"})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"  # open to anyone
    rows = _csv(response)
    # April to June 2024, by hand: the commission's payments (grant £10,000.00 in April and
    # May and £12,000.00 in June; call-off £12,500.00 in April and May; the contract's
    # £3,750.00 three times), and of the edges £500.01 and the £750.00 credit; not £500.00,
    # not £499.99, not the payment of 1 July.
    assert [(r["transaction_id"], r["amount"]) for r in rows] == [
        ("sp-g-2024-04", "10000.00"), ("sp-c-2024-04", "12500.00"),
        ("sp-f-2024-04", "3750.00"), ("sp-l-2024-04", "3750.00"),
        ("sp-e-50001", "500.01"),
        ("sp-g-2024-05", "10000.00"), ("sp-c-2024-05", "12500.00"),
        ("sp-f-2024-05", "3750.00"),
        ("sp-e-credit", "-750.00"),
        ("sp-g-2024-06", "12000.00"),
    ]
    # Paid: April £10,000.00 + £12,500.00 + £3,750.00 + £3,750.00 = £30,000.00; May
    # £500.01 + £10,000.00 + £12,500.00 + £3,750.00 = £26,750.01; June £12,000.00: in all
    # £68,750.01. Back: £750.00. Net: £68,000.01.
    assert sum(D(r["amount"]) for r in rows) == D("68000.01")
    fitteens = next(r for r in rows if r["transaction_id"] == "sp-f-2024-04")
    assert fitteens == {
        "transaction_id": "sp-f-2024-04", "date_incurred": "2024-04-29",
        "department": "public health", "beneficiary": "FitTeens CIC",
        "beneficiary_registration_number": "01234567",
        "purpose": "Weight management programme: payment under the agreement, for 2024-04",
        "amount": "3750.00", "irrecoverable_vat": "", "merchant_category":
        "Contract for services", "agreement_id": str(AG_CONTRACT),
        "period_paid_for": "2024-04", "beneficiary_id": str(FITTEENS),
    }
    credit = next(r for r in rows if r["transaction_id"] == "sp-e-credit")
    assert credit["purpose"] == (
        "Family cooking clubs: credit recovered under the agreement, for 2024-05")


def test_contracts_register_over_5000(client: TestClient) -> None:
    rows = {r["reference"]: r for r in _csv(client.get("/transparency/contracts.csv"))}
    assert list(rows) == [str(AG_GRANT), str(AG_CALLOFF), str(AG_CONTRACT), str(AG_JUST)]
    grant, call_off, contract = (rows[str(a)] for a in (AG_GRANT, AG_CALLOFF, AG_CONTRACT))
    # Current values: the grant grew by £20,000.00, the call-off by a £30,000.00 business case.
    assert (grant["value"], call_off["value"], contract["value"]) == (
        "140000.00", "180000.00", "90000.00")
    assert rows[str(AG_JUST)]["value"] == "5000.01"
    assert grant["end_date"] == "2026-09-30"  # after its extension
    assert contract["supplier_names"] == "FitTeens CIC; Northern Leisure Ltd"
    assert contract["supplier_sme_or_vcse"] == "SME; "
    assert contract["supplier_registration_numbers"] == "01234567; SC765432"
    assert call_off["supplier_sme_or_vcse"] == "VCSE"
    assert call_off["supplier_registration_numbers"] == "1123456"
    # The council recommended a mix after engaging the market: invitations to quote.
    assert {r["procurement_route"] for r in rows.values()} == {QUOTED}
    assert (contract["status"], contract["ended_on"]) == ("ended", "2024-09-30")
    assert contract["department"] == "public health"


@pytest.mark.parametrize(("path", "params"), [
    ("/transparency/spend.csv", {"quarter": "2024-Q2"}),
    ("/transparency/contracts.csv", {}),
])
def test_each_register_conforms_to_its_data_package(
    client: TestClient, tmp_path: Path, path: str, params: dict[str, str]
) -> None:
    response = client.get(path, params=params)
    link = response.headers["link"]
    package = client.get(link[link.index("<") + 1: link.index(">")]).json()
    assert_package(package)

    assert schema_errors(package, response.text, tmp_path) == []
    typed = typed_rows(package, response.text)
    assert typed
    for row in typed:
        for name in ("amount", "value"):
            if name in row:
                assert isinstance(row[name], Decimal)  # money as decimals, never floats
        for name in ("beneficiary_registration_number", "supplier_registration_numbers"):
            if row.get(name):
                assert isinstance(row[name], str)


def test_the_quarter_is_checked_and_by_default_the_latest_ended(client: TestClient) -> None:
    for params in ({"quarter": "2024-05"}, {"quarter": "2024-Q5"}):
        response = client.get("/transparency/spend.csv", params=params)
        assert response.status_code == 422, params
        assert "quarter" in response.text
    latest = client.get("/transparency/spend.csv")
    assert latest.status_code == 200
    assert "spend-over-500-" in latest.headers["content-disposition"]
    assert latest.text.startswith("transaction_id,")
    assert client.post("/transparency/contracts.csv").status_code == 405
