"""Procurement Act 2023 transparency notices (`GET /ocds/notices`) as Find a Tender publishes
them: OCDS releases validated against the official 1.1.5 schema with the UK and metrics
extensions applied (tests/schemas/ocds/extensions, unchanged), lib-cove-ocds finds no errors in
them, OCP's coherence checks pass, and contract performance notices rate each KPI on the Act's
scale from the performance figures that reach the integrator from the outcomes service.

The commission of tests/unit/test_ocds.py is on the log, with an outcome measure and its
measurements for two of its agreements."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import json_merge_patch  # type: ignore[import-untyped]
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft4Validator, FormatChecker

from council.kernel.contracts.integrator import AgreementEnded, ArrangementType, EndingKind
from council.kernel.contracts.outcomes import (
    Direction,
    MeasurementRecorded,
    OutcomeAttributed,
    OutcomeMeasureDefined,
    TrajectoryPoint,
)
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.services.integrator.domain.notices import KpiRating, kpi_rating
from council.services.integrator.service import SPEC as INTEGRATOR
from tests.ocds_coherence import check_release_package
from tests.unit.test_ocds import (
    AG_CALLOFF,
    AG_CONTRACT,
    AG_GRANT,
    KITCHEN,
    MEASURE,
    NAMES,
    History,
    at,
    commission,
    drafted,
    registered,
)
from tests.unit.test_ocds_publication import _cove
from tests.waiting import DEADLINE_SECONDS

D = Decimal
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "ocds"
ACTIVE = UUID("3c0d1e2f-4a5b-4c6d-8e7f-901a2b3c4d5f")
AG_UNSIGNED = UUID("a9e3c7d0-5f1b-4e2a-b6c4-000000000006")
TERMS = UUID("7e7e7e7e-0000-4000-8000-000000000001")
Json = dict[str, Any]


# --------------------------------------------------------------------------- the rating


@pytest.mark.parametrize(("lower", "baseline", "target", "actual", "rating"), [
    # Lower is better, baseline 30.0, target 29.0: 28.9 meets it.
    (True, "30.0", "29.0", "28.9", KpiRating.MET),
    (True, "30.0", "29.0", "29.0", KpiRating.MET),
    # Target 28.0 is 2.0 of improvement; 28.2 achieves 1.8, short by 0.2 = a tenth: amber.
    (True, "30.0", "28.0", "28.2", KpiRating.SLIGHTLY_BELOW),
    # 28.21 is short by 0.21, more than a tenth: red; 1.79 achieved is over half of 2.0.
    (True, "30.0", "28.0", "28.21", KpiRating.BELOW),
    # Target 27.0 is 3.0 of improvement; 28.5 achieves 1.5, exactly half: requires improvement.
    (True, "30.0", "27.0", "28.5", KpiRating.BELOW),
    # 28.51 achieves 1.49, under half: inadequate; and so is worse than the baseline.
    (True, "30.0", "27.0", "28.51", KpiRating.SIGNIFICANTLY_BELOW),
    (True, "30.0", "26.0", "30.5", KpiRating.SIGNIFICANTLY_BELOW),
    # Higher is better, baseline 40, target 45 (5 of improvement): 44.6 is short by 0.4.
    (False, "40", "45", "44.6", KpiRating.SLIGHTLY_BELOW),
    (False, "40", "45", "42.5", KpiRating.BELOW),
    (False, "40", "45", "42.4", KpiRating.SIGNIFICANTLY_BELOW),
    # No baseline to measure a shortfall from: missed is "requires improvement".
    (False, None, "45", "44.9", KpiRating.BELOW),
    (False, None, "45", "45", KpiRating.MET),
])
def test_kpi_ratings_by_hand(lower: bool, baseline: str | None, target: str, actual: str,
                             rating: KpiRating) -> None:
    assert kpi_rating(lower, D(baseline) if baseline else None, D(target), D(actual)) is rating


# --------------------------------------------------------------------------- the notices


def _unsigned() -> list[Any]:
    h = History()
    h.add(drafted(AG_UNSIGNED, "aw-grant", "Holiday cooking", ArrangementType.GRANT,
                  [(KITCHEN, "20000.00")]), at("2024-04-10"))
    h.add(AgreementEnded(agreement_id=AG_UNSIGNED, how=EndingKind.EXITED,
                         ended_on=date(2024, 5, 1), reason="the venue closed",
                         exit_plan_executed=True), at("2024-05-01"))
    return [e.model_copy(update={"correlation_id": f"unsigned-{i}"})
            for i, e in enumerate(h.envelopes)]


def _outcomes() -> list[Any]:
    h = History()
    h.add(OutcomeMeasureDefined(
        measure_id=MEASURE, name="Teenagers above a healthy weight", unit="%",
        direction=Direction.LOWER_IS_BETTER, baseline=D("30.0"), baseline_period="2023-Q4",
        trajectory=[TrajectoryPoint(period=p, target=D(t)) for p, t in (
            ("2024-Q2", "29.0"), ("2024-Q3", "28.0"), ("2024-Q4", "27.0"),
            ("2025-Q1", "26.0"))]), at("2024-03-01"))
    h.add(OutcomeMeasureDefined(
        measure_id=ACTIVE, name="Teenagers active an hour a day", unit="%",
        direction=Direction.HIGHER_IS_BETTER, baseline=D("40"), baseline_period="2023-Q4",
        trajectory=[TrajectoryPoint(period="2024-Q2", target=D("45"))]), at("2024-03-01"))
    for agreement, measure in ((AG_GRANT, MEASURE), (AG_GRANT, ACTIVE), (AG_CALLOFF, ACTIVE),
                               (AG_UNSIGNED, ACTIVE)):
        h.add(OutcomeAttributed(terms_id=TERMS, agreement_id=agreement, measure_id=measure,
                                weight=D("0.5")), at("2024-04-02"))
    for n, (measure, period, value, day) in enumerate((
        (MEASURE, "2024-Q2", "28.9", "2024-07-15"), (ACTIVE, "2024-Q2", "44.6", "2024-07-16"),
        (MEASURE, "2024-Q3", "28.2", "2024-10-14"), (MEASURE, "2024-Q4", "28.5", "2025-01-13"),
        (MEASURE, "2025-Q1", "30.5", "2025-04-14"),
    )):
        h.add(MeasurementRecorded(measure_id=measure, measurement_id=f"m-{n}", period=period,
                                  value=D(value), source="school health checks"), at(day))
    return [e.model_copy(update={"correlation_id": f"outcomes-{i}"})
            for i, e in enumerate(h.envelopes)]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path_factory.mktemp("notices"), relay_interval=0.01)
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        assert isinstance(runtime, Runtime)
        runtime.event_log.append([registered(p, name) for p, name in NAMES.items()])
        runtime.event_log.append([*commission(), *_unsigned(), *_outcomes()])
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(client.get("/ocds/notices", params={"notice_type": "UK9"}).json()[
                "releases"]) < 5 or "Provider " in client.get("/ocds/notices").text:
            assert time.monotonic() < deadline, "the read models did not take the log in"
            time.sleep(0.02)
        yield client


@pytest.fixture(scope="module")
def notices(client: TestClient) -> Json:
    response = client.get("/ocds/notices", headers={"Origin": "https://reader.example"})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"  # published for anyone
    package: Json = response.json()
    return package


def _kind(release: Json) -> str:
    (contract,) = release["contracts"]
    return str(next(d["noticeType"] for d in contract["documents"] if "noticeType" in d))


def test_each_notice_the_platform_records(notices: Json) -> None:
    kinds = [(_kind(r), r["contracts"][0]["id"]) for r in notices["releases"]]
    assert sorted(k for k, _ in kinds) == sorted(
        ["UK7"] * 3 + ["UK10"] * 3 + ["UK11"] + ["UK9"] * 5)
    assert [c for k, c in kinds if k == "UK11"] == [str(AG_CONTRACT)]
    for release in notices["releases"]:  # every notice in Find a Tender's form
        (contract,) = release["contracts"]
        (notice,) = [d for d in contract["documents"] if "noticeType" in d]
        assert notice["datePublished"] == release["date"]
        assert release["id"].endswith(notice["noticeType"]) or notice["noticeType"] == "UK9"
    assert notices["extensions"][-1].endswith("cabinetoffice/ocds_uk_extension/main/"
                                              "extension.json")


def test_contract_details_stand_on_their_own(notices: Json) -> None:
    details = next(r for r in notices["releases"] if _kind(r) == "UK7"
                   and r["contracts"][0]["id"] == str(AG_CONTRACT))
    (contract,) = details["contracts"]
    assert details["tag"] == ["award", "contract"]
    assert D(str(contract["value"]["amount"])) == D("90000.00")
    assert contract["value"]["currency"] == "GBP"
    assert contract["dateSigned"].startswith("2024-03-27")
    (award,) = details["awards"]
    assert award["id"] == contract["awardID"]
    names = {p["name"] for p in details["parties"]}
    assert {"FitTeens CIC", "Northern Leisure Ltd", "Leeds City Council"} <= names
    assert "implementation" not in contract


def test_contract_changes_carry_the_new_value_and_term(notices: Json) -> None:
    changes = {r["contracts"][0]["amendments"][0]["id"]: r["contracts"][0]
               for r in notices["releases"] if _kind(r) == "UK10"}
    assert set(changes) == {"var-growth", "var-bc", "ext-1"}
    assert D(str(changes["var-growth"]["value"]["amount"])) == D("140000.00")
    assert D(str(changes["var-bc"]["value"]["amount"])) == D("180000.00")
    assert changes["ext-1"]["period"]["endDate"].startswith("2026-09-30")


def test_performance_notices_rate_each_kpi(notices: Json) -> None:
    rated = {}
    for release in notices["releases"]:
        if _kind(release) != "UK9":
            continue
        assert release["tag"] == ["implementation"]
        (contract,) = release["contracts"]
        for metric in contract["implementation"]["metrics"]:
            (observation,) = metric["observations"]
            rated[(contract["id"], metric["id"], observation["id"].rsplit("-", 2)[-2] + "-" +
                   observation["id"].rsplit("-", 1)[-1])] = (
                observation["measure"], observation["measureClassification"]["id"],
                observation["measureClassification"]["description"])
    grant, call_off, weight, active = str(AG_GRANT), str(AG_CALLOFF), str(MEASURE), str(ACTIVE)
    assert rated == {
        (grant, weight, "2024-Q2"): ("28.9", "met", "Good"),
        (grant, active, "2024-Q2"): ("44.6", "slightlyBelow", "Approaching target"),
        (grant, weight, "2024-Q3"): ("28.2", "slightlyBelow", "Approaching target"),
        (grant, weight, "2024-Q4"): ("28.5", "below", "Requires improvement"),
        (grant, weight, "2025-Q1"): ("30.5", "significantlyBelow", "Inadequate"),
        (call_off, active, "2024-Q2"): ("44.6", "slightlyBelow", "Approaching target"),
    }
    # Dated when the measurement reached the integrator: the grant's 2024-Q2 notice when the
    # second of its two measurements did.
    q2 = next(r for r in notices["releases"] if _kind(r) == "UK9"
              and r["contracts"][0]["id"] == grant and len(
                  r["contracts"][0]["implementation"]["metrics"]) == 2)
    assert q2["date"] == "2024-07-16T10:00:00Z"


def test_a_filter_by_notice_type(client: TestClient) -> None:
    found = client.get("/ocds/notices", params={"notice_type": "UK11"}).json()["releases"]
    assert [_kind(r) for r in found] == ["UK11"]
    assert client.get("/ocds/notices", params={"notice_type": "UK4"}).status_code == 422


def _extended_release_schema() -> Json:
    schema: Json = json.loads((SCHEMAS / "official" / "release-schema.json").read_text())
    for extension in ("metrics", "uk"):
        patch = json.loads((SCHEMAS / "extensions" / extension / "release-schema.json")
                           .read_text())
        schema = json_merge_patch.merge(schema, patch)
    return schema


def test_every_notice_is_valid_against_the_official_schema_with_the_extensions(
    notices: Json,
) -> None:
    validator = Draft4Validator(_extended_release_schema(), format_checker=FormatChecker())
    for release in notices["releases"]:
        assert [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(release)] == []
    broken = copy.deepcopy(notices["releases"][0])
    broken["contracts"][0]["documents"][-1]["noticeType"] = 7
    assert list(validator.iter_errors(broken))  # the extension's fields are checked too


def test_lib_cove_ocds_and_the_coherence_checks_find_nothing_wrong(
    notices: Json, tmp_path: Path,
) -> None:
    # lib-cove-ocds would download the declared extensions; it checks the core here, and the
    # extensions' fields are the only ones it does not know.
    offline = {k: v for k, v in notices.items() if k != "extensions"}
    found = _cove(offline, tmp_path, False)
    assert found["validation_errors"] == []
    assert found["additional_closed_codelist_values"] == {}
    unknown = {f["field"] for f in found["additional_fields"]}
    assert unknown <= {"noticeType", "metrics", "measureClassification"}, unknown
    assert check_release_package(notices) == []


def test_no_notice_for_a_contract_never_entered_into(client: TestClient) -> None:
    # AG_UNSIGNED was drafted, measured and ended, never signed: nothing to give notice of.
    ids = {r["contracts"][0]["id"] for r in client.get("/ocds/notices").json()["releases"]}
    assert ids == {str(AG_GRANT), str(AG_CALLOFF), str(AG_CONTRACT)}
    releases = client.get("/ocds/releases", params={"per_page": 1000}).json()["releases"]
    assert any(c["id"] == str(AG_UNSIGNED) for r in releases for c in r.get("contracts", []))
