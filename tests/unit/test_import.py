"""Provider applications imported from a CSV file: `POST /providers/import` in process, and the
parser on its own. Every data row is reported once; a bad row or a bad file writes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from council.platform.identity import Role, TokenStore
from council.platform.runtime import create_service_app
from council.platform.settings import Settings
from council.services.provider_registry.adapters.csv_import import (
    MAX_ROWS,
    ImportFileError,
    parse_providers_csv,
)
from council.services.provider_registry.application import ProviderRegistry
from council.services.provider_registry.service import SPEC as REGISTRY
from tests.problems import loc_of

Auth = dict[str, str]
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
def auth(tokens: TokenStore) -> Callable[..., Auth]:
    def make(role: Role, label: str | None = None) -> Auth:
        provider_id = uuid4() if role is Role.PROVIDER else None
        issued = tokens.create(role, label or f"{role.value}-user", provider_id)
        return {"Authorization": f"Bearer {issued.token}"}

    return make


@pytest.fixture
def admin(auth: Callable[..., Auth]) -> Auth:
    return auth(Role.INTEGRATOR_ADMIN, "sam")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_service_app(REGISTRY, settings)) as test_client:
        yield test_client


def registry_in(client: TestClient) -> ProviderRegistry:
    app = client.app.state.runtime.app  # type: ignore[attr-defined]
    assert isinstance(app, ProviderRegistry)
    return app


def event_count(client: TestClient) -> int:
    recorder = registry_in(client).recorder
    return len(recorder.select_notifications(start=1, limit=1_000_000))


def post_csv(client: TestClient, headers: Auth, body: str | bytes, **extra: str) -> Any:
    data = body.encode() if isinstance(body, str) else body
    return client.post("/providers/import", content=data, headers={**CSV, **headers, **extra})


def register(client: TestClient, headers: Auth, body: dict[str, Any]) -> str:
    response = client.post("/providers", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["provider_id"])


def csv_of(header: list[str], rows: list[list[str]]) -> str:
    def cell(value: str) -> str:
        return f'"{value}"' if any(c in value for c in ',"\n') else value

    return "\r\n".join(",".join(cell(v) for v in line) for line in [header, *rows]) + "\r\n"


# --------------------------------------------------------------------------- a mixed file

HEADER = [
    "name", "organisation_type", "description", "website", "companies_house", "charity_number",
    "ukprn", "contact_name", "contact_email", "contact_phone", "address_line_1",
    "address_line_2", "town", "postcode", "areas_served", "headcount", "turnover_gbp", "members",
]


def line(**cells: str) -> list[str]:
    return [cells.get(column, "") for column in HEADER]


def test_a_mixed_file_registers_the_good_rows_and_reports_each_bad_one(
    client: TestClient, admin: Auth
) -> None:
    held_by = register(client, admin, {"name": "Holder Trust", "organisation_type": "vcse",
                                       "identifiers": {"charity_number": "1111111"}})
    member = register(client, admin, {"name": "Member Ltd", "organisation_type": "sme",
                                      "sme_size": {"headcount": 5, "turnover_gbp": 100_000}})
    before = event_count(client)
    rows = [
        line(name="Leeds City Council Shared Services", organisation_type="public_body",  # 2
             website="https://leeds.gov.uk", ukprn="10001234", contact_name="Ann Other",
             contact_email="shared@leeds.gov.uk", contact_phone="+44 113 222 4444",
             address_line_1="Civic Hall", address_line_2="Calverley Street", town="Leeds",
             postcode="ls1 1ur"),
        line(name="Bradford Lunch Club", organisation_type="vcse",  # 3
             description="Hot meals, company, and a lift there", charity_number="2222222",
             areas_served="Bradford; Keighley ;"),
        line(name="Small Care Ltd", organisation_type="sme", companies_house="sc123456",  # 4
             headcount="12", turnover_gbp="1500000"),
        line(name="Big Care plc", organisation_type="large_private",  # 5
             companies_house="01234567"),
        line(name="Allotment Friends", organisation_type="community_group"),  # 6
        line(name="Care Consortium", organisation_type="partnership",  # 7
             members=f"{held_by}; {member}"),
        line(organisation_type="vcse", postcode="LS1 1UR"),  # 8
        line(name="Odd One", organisation_type="charity"),  # 9
        line(name="Far Away", organisation_type="vcse", postcode="NOWHERE"),  # 10
        line(name="No Mail", organisation_type="vcse", contact_email="not-an-email"),  # 11
        line(name="Bad Number Ltd", organisation_type="large_private",  # 12
             companies_house="12345"),
        line(name="Too Big Ltd", organisation_type="sme", headcount="300",  # 13
             turnover_gbp="60000000"),
        line(name="Sizeless Ltd", organisation_type="sme"),  # 14
        line(name="Big Care Twin plc", organisation_type="large_private",  # 15
             companies_house="0123 4567"),
        line(name="Holder Again", organisation_type="vcse", charity_number="1111111"),  # 16
    ]
    response = post_csv(client, admin, csv_of(HEADER, rows), **{"X-Correlation-Id": "import-1"})
    assert response.status_code == 200, response.text
    report = response.json()

    assert report["rows"] == 15
    assert [a["row"] for a in report["accepted"]] == [2, 3, 4, 5, 6, 7]
    assert report["rejected"] == [
        {"row": 8, "field": "name", "reason": "required"},
        {"row": 9, "field": "organisation_type",
         "reason": "'charity' is not an organisation type; one of: public_body, vcse, sme, "
                   "large_private, community_group, partnership"},
        {"row": 10, "field": "postcode", "reason": "not a valid UK postcode"},
        {"row": 11, "field": "contact_email", "reason": "not a valid email address"},
        {"row": 12, "field": "companies_house",
         "reason": "not a valid Companies House number (8 characters)"},
        {"row": 13, "field": "headcount",
         "reason": "headcount and turnover are over the SME ceilings (fewer than 250 staff, "
                   "turnover up to £50m): register as large_private"},
        {"row": 14, "field": "headcount", "reason": "an SME must give its headcount and turnover"},
        {"row": 15, "field": "companies_house",
         "reason": "Companies House number 01234567 is also on row 5 of this file"},
        {"row": 16, "field": "charity_number",
         "reason": f"charity number 1111111 is already registered to provider {held_by}"},
    ]

    # Six providers and their four identifier claims; the rejected rows wrote nothing.
    assert event_count(client) - before == 6 + 4
    ids = {a["row"]: a["provider_id"] for a in report["accepted"]}
    assert len(set(ids.values())) == 6

    def get(row: int) -> Any:
        got = client.get(f"/providers/{ids[row]}", headers=admin)
        assert got.status_code == 200, got.text
        return got.json()

    council = get(2)
    assert (council["name"], council["organisation_type"], council["status"]) == (
        "Leeds City Council Shared Services", "public_body", "applied")
    assert council["details"] == {
        "website": "https://leeds.gov.uk",
        "identifiers": {"ukprn": "10001234"},
        "contact": {"name": "Ann Other", "email": "shared@leeds.gov.uk",
                    "phone": "+44 113 222 4444"},
        "address": {"lines": ["Civic Hall", "Calverley Street"], "town": "Leeds",
                    "postcode": "LS1 1UR"},
    }
    club = get(3)["details"]
    assert club == {"description": "Hot meals, company, and a lift there",
                    "identifiers": {"charity_number": "2222222"},
                    "areas_served": ["Bradford", "Keighley"]}
    sme = get(4)
    assert sme["organisation_type"] == "sme"
    assert sme["details"] == {
        "identifiers": {"companies_house": "SC123456"},
        "sme_size": {"headcount": 12, "turnover_gbp": 1_500_000, "band": "small"},
    }
    assert get(5)["details"] == {"identifiers": {"companies_house": "01234567"}}
    assert get(6)["details"] == {}
    assert get(7)["details"] == {"members": [held_by, member]}

    # Each row was stored whole: its identifiers are now taken.
    taken = client.post("/providers", headers=admin, json={
        "name": "Copycat", "organisation_type": "large_private",
        "identifiers": {"companies_house": "01234567"}})
    assert taken.status_code == 409
    assert ids[5] in taken.json()["detail"]

    # The events record who imported them, in the request's correlation.
    history = client.get(f"/providers/{ids[4]}/history", headers=admin).json()
    assert [(e["type"], e["actor"], e["correlation_id"]) for e in history] == [
        ("ProviderRegistered", "integrator_admin:sam", "import-1")]


def test_headings_are_forgiving_and_rows_are_numbered_as_a_spreadsheet_shows_them(
    client: TestClient, admin: Auth
) -> None:
    body = (
        "\ufeff Name ,Organisation-Type,Description,Contact Email\r\n"
        "First,vcse,\"two\nlines\",\r\n"
        ",,,\r\n"
        "\r\n"
        "Fifth,Community_Group,,\r\n"
        "Sixth,vcse,,x@\r\n"
    )
    report = post_csv(client, admin, body).json()
    assert report["rows"] == 3
    assert [a["row"] for a in report["accepted"]] == [2]
    assert report["rejected"] == [
        {"row": 5, "field": "organisation_type",
         "reason": "'Community_Group' is not an organisation type; one of: public_body, vcse, "
                   "sme, large_private, community_group, partnership"},
        {"row": 6, "field": "contact_email", "reason": "not a valid email address"},
    ]
    provider_id = report["accepted"][0]["provider_id"]
    got = client.get(f"/providers/{provider_id}", headers=admin).json()
    assert got["details"] == {"description": "two\nlines"}


def test_rules_tying_details_to_the_type_name_their_column(
    client: TestClient, admin: Auth
) -> None:
    one = register(client, admin, {"name": "One", "organisation_type": "vcse"})
    missing = str(uuid4())
    body = csv_of(["name", "organisation_type", "members", "headcount", "turnover_gbp"], [
        ["Pair", "partnership", f"{one};{missing}", "", ""],
        ["Solo", "partnership", one, "", ""],
        ["Garbled", "partnership", f"{one};not-an-id", "", ""],
        ["Members of a VCSE", "vcse", one, "", ""],
        ["Sized VCSE", "vcse", "", "5", "1000"],
        ["Twice", "partnership", f"{one};{one}", "", ""],
    ])
    before = event_count(client)
    report = post_csv(client, admin, body).json()
    assert report["accepted"] == []
    assert report["rejected"] == [
        {"row": 2, "field": "members", "reason": f"{missing} is not a registered provider"},
        {"row": 3, "field": "members",
         "reason": "a partnership needs at least two distinct members"},
        {"row": 4, "field": "members", "reason": "'not-an-id' is not a provider id"},
        {"row": 5, "field": "members", "reason": "only a partnership has member providers"},
        {"row": 6, "field": "headcount", "reason": "applies only to organisation_type sme"},
        {"row": 7, "field": "members", "reason": "a member is listed more than once"},
    ]
    assert event_count(client) == before


# --------------------------------------------------------------------------- the whole file


def too_many_rows() -> bytes:
    return ("name,organisation_type\n" + "".join(
        f"P{i},vcse\n" for i in range(MAX_ROWS + 1))).encode()


@pytest.mark.parametrize(("body", "message"), [
    (b"name,organisation_type,colour\nA,vcse,red\n", "unknown column 'colour'"),
    (b"name,colour,flavour,organisation_type\n", "unknown columns 'colour', 'flavour'"),
    (b"name;organisation_type\nA;vcse\n", "columns must be separated by commas"),
    (b"name,description\nA,b\n", "required column missing: organisation_type"),
    (b"description\nA\n", "required columns missing: name, organisation_type"),
    (b"name,organisation_type,name\nA,vcse,B\n", "column named more than once: name"),
    (b"", "the file is empty"),
    (b"\xef\xbb\xbf\r\n", "the file is empty"),
    (b"name,organisation_type\n", "no applications"),
    ("name,organisation_type\nCaf\u00e9 Caf\u00e9,vcse\n".encode("cp1252"),
     "not UTF-8 text (byte 0xe9 on line 2)"),
    (b'name,organisation_type\nA,vcse\n"B,vcse\n', "row 3 cannot be read as CSV: a quoted"),
    (b"name,organisation_type\nA\x00,vcse\n", "not text (a NUL byte on line 2)"),
    (b"PK\x03\x04\x14\x00\x06\x00", "workbook (.xlsx), not CSV"),
    (too_many_rows(), "more than 10,000 rows"),
])
def test_a_bad_file_is_refused_whole_and_writes_nothing(
    client: TestClient, admin: Auth, body: bytes, message: str
) -> None:
    before = event_count(client)
    response = post_csv(client, admin, body)
    assert response.status_code == 422, response.text
    [problem] = response.json()["errors"]
    assert loc_of(problem) == ["body"]
    assert message in problem["message"]
    assert event_count(client) == before


@pytest.mark.parametrize("content_type", [
    "application/json", "text/plain", "multipart/form-data; boundary=x",
    "text/csv; charset=windows-1252",
])
def test_a_body_that_is_not_utf8_csv_is_unsupported(
    client: TestClient, admin: Auth, content_type: str
) -> None:
    response = client.post("/providers/import", content=b"name,organisation_type\nA,vcse\n",
                           headers={**admin, "Content-Type": content_type})
    assert response.status_code == 415
    assert "text/csv" in response.json()["detail"]
    assert event_count(client) == 0


def test_csv_with_a_utf8_charset_is_accepted(client: TestClient, admin: Auth) -> None:
    response = client.post("/providers/import", content=b"name,organisation_type\nA,vcse\n",
                           headers={**admin, "Content-Type": "text/csv; charset=UTF-8"})
    assert response.status_code == 200, response.text


def test_an_oversized_file_is_refused(client: TestClient, admin: Auth) -> None:
    row = f"Provider,vcse,{'x' * 3000}\n"
    body = "name,organisation_type,description\n" + row * (8 * 1024 * 1024 // len(row) + 1)
    response = post_csv(client, admin, body)
    assert response.status_code == 413
    assert "over the limit of 8388608 bytes" in response.json()["detail"]
    assert event_count(client) == 0


def test_only_council_writers_may_import(client: TestClient, auth: Callable[..., Auth]) -> None:
    body = "name,organisation_type\nA,vcse\n"
    assert post_csv(client, {}, body).status_code == 401
    for role in (Role.COUNCIL_STAFF, Role.REGULATOR, Role.PROVIDER):
        assert post_csv(client, auth(role), body).status_code == 403, role
    assert event_count(client) == 0
    for role in (Role.COMMISSIONER, Role.INTEGRATOR_ADMIN):
        response = post_csv(client, auth(role), body)
        assert response.status_code == 200, response.text
        assert len(response.json()["accepted"]) == 1


def test_two_thousand_rows_are_all_registered(client: TestClient, admin: Auth) -> None:
    rows = [[f"Provider {i}", "sme", f"{i:08d}", "Leeds; Wakefield", "3", "90000",
             "A long description of what this provider does. " * 12]
            for i in range(2000)]
    body = csv_of(["name", "organisation_type", "companies_house", "areas_served", "headcount",
                   "turnover_gbp", "description"], rows)
    assert len(body) > 1024 * 1024  # over the default limit; imports have their own
    response = post_csv(client, admin, body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows"] == 2000
    assert report["rejected"] == []
    assert [a["row"] for a in report["accepted"]] == list(range(2, 2002))
    registry = registry_in(client)
    names = {registry.provider(UUID(a["provider_id"])).name for a in report["accepted"]}
    assert names == {f"Provider {i}" for i in range(2000)}
    assert event_count(client) == 2000 * 2  # each provider and its Companies House claim


# --------------------------------------------------------------------------- the parser alone


def test_parser_reports_every_problem_of_a_row_once() -> None:
    parsed = parse_providers_csv(
        b"name,organisation_type,postcode,headcount,members\n"
        b"A,widget,zz,1x,\n"
        b"B,sme,,4,\n"
    )
    assert parsed.rows == []
    assert parsed.rejected == [
        (2, "organisation_type",
         "'widget' is not an organisation type; one of: public_body, vcse, sme, large_private, "
         "community_group, partnership; also postcode: not a valid UK postcode; "
         "headcount: '1x' is not a whole number; "
         "turnover_gbp: required along with headcount (an SME gives both)"),
        (3, "turnover_gbp", "required along with headcount (an SME gives both)"),
    ]


def test_parser_refuses_values_without_a_heading_and_overlong_cells() -> None:
    parsed = parse_providers_csv(
        b"name,organisation_type,,description\n"
        b"A,vcse,stray,\n"
        b"B,vcse,,,extra\n"
        b"C,vcse,,," + b"x" * 20_001 + b"\n"
        b"D,vcse\n"
    )
    assert [row for row, _ in parsed.rows] == [5]
    assert parsed.rejected == [
        (2, "", "a value in column C, which has no heading"),
        (3, "", "a value in column E, which has no heading"),
        (4, "", "a value in column E, which has no heading"),
    ]
    parsed = parse_providers_csv(b"name,organisation_type,description\nA,vcse," +
                                 b"y" * 20_001 + b"\n")
    assert parsed.rejected == [(2, "description", "over 20,000 characters")]


def test_parser_gives_a_row_to_the_address_when_any_of_it_is_given() -> None:
    parsed = parse_providers_csv(
        b"name,organisation_type,address_line_2,town,postcode\n"
        b"A,vcse,The Yard,Leeds,\n"
        b"B,vcse,,, sw1a1aa \n"
    )
    assert parsed.rejected == [
        (2, "postcode", "required when any part of the address is given")]
    [(row, new)] = parsed.rows
    assert row == 3
    assert new.address is not None
    assert new.address.postcode == "SW1A 1AA"


def test_parser_errors_are_import_file_errors() -> None:
    with pytest.raises(ImportFileError, match="not UTF-8"):
        parse_providers_csv(b"name,organisation_type\n\xff,vcse\n")


def test_parser_refuses_control_characters_in_a_cell() -> None:
    parsed = parse_providers_csv(
        b"name,organisation_type,description,town\n"
        b"Hill\x07side,vcse,,\n"
        b"Valley,vcse,\"Meals.\nTwice a week.\",\n"
        b"River,vcse,,Leeds\x1b[31m\n"
    )
    assert [(row, new.description) for row, new in parsed.rows] == [
        (3, "Meals.\nTwice a week.")]
    assert [(row, column) for row, column, _ in parsed.rejected] == [(2, "name"), (4, "town")]
    assert all("control character" in reason for _, _, reason in parsed.rejected)
