"""The provider CSV round-trips and says what its columns are: the directory's export imports
into a fresh registry through POST /providers/import and exports again with the same details, and
frictionless validates the export against the data package the export links to (so a typed
reader keeps Companies House number 01234567 as text, not 1234567)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from council.platform.identity import Role, TokenStore
from council.platform.runtime import create_service_app
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.services.provider_registry.adapters.csv_import import parse_providers_csv
from council.services.provider_registry.service import SPEC as REGISTRY
from council.services.provider_registry.spreadsheet import DETAIL_NAMES, NAMES
from tests.tables import assert_package, header, schema_errors, typed_rows
from tests.unit.test_directory import PROVIDERS, Directory, registered_directory
from tests.waiting import eventually


def _export(client: TestClient, auth: dict[str, str]) -> str:
    response = client.get("/directory/providers.csv", headers=auth)
    assert response.status_code == 200, response.text
    return response.text


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _details(text: str) -> dict[str, dict[str, str]]:
    """Each row's details (the columns the import reads), by name."""
    return {row["name"]: {c: row[c] for c in DETAIL_NAMES} for row in _rows(text)}


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    with registered_directory(tmp_path_factory.mktemp("directory")) as built:
        yield built


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(var_dir=tmp_path / "fresh", relay_interval=0.01)
    tokens = TokenStore(open_database(settings, "identity"))
    admin = {"Authorization": f"Bearer {tokens.create(Role.INTEGRATOR_ADMIN, 'sam').token}"}
    try:
        with TestClient(create_service_app(REGISTRY, settings)) as client:
            yield client, admin
    finally:
        tokens.db.close()


def test_the_export_and_the_import_have_the_same_columns(directory: Directory) -> None:
    text = _export(directory.client, directory.staff)
    assert header(text) == list(NAMES)
    parsed = parse_providers_csv(text.encode())  # the file as exported: no column refused
    assert parsed.total == len(directory.ids)


def test_export_import_export_changes_nothing(
    directory: Directory, fresh: tuple[TestClient, dict[str, str]]
) -> None:
    first = _export(directory.client, directory.staff)
    client, admin = fresh

    response = client.post("/providers/import", content=first.encode(),
                           headers={**admin, "Content-Type": "text/csv"})

    assert response.status_code == 200, response.text
    result = response.json()
    # A partnership names its members by their ids in the registry that exported it: in a fresh
    # registry they do not exist, so that one row is refused, naming the column.
    assert [(r["field"], "provider" in r["reason"]) for r in result["rejected"]] == [
        ("members", True)], result["rejected"]
    expected = {name: row for name, row in _details(first).items()
                if row["organisation_type"] != "partnership"}
    assert len(result["accepted"]) == len(expected)
    second = eventually(lambda: _export(client, admin),
                        lambda text: len(_rows(text)) == len(expected))
    assert _details(second) == expected
    # ... and the size band the registry works out from headcount and turnover agrees.
    bands = {r["name"]: r["sme_band"] for r in _rows(first)}
    assert {r["name"]: r["sme_band"] for r in _rows(second)} == {n: bands[n] for n in expected}
    # Every cell of the details, the formula-defused ones included, went through unchanged.
    evil = expected[f"'{PROVIDERS['formula']['name']}"]
    assert evil["description"] == "'" + PROVIDERS["formula"]["description"]
    assert _details(second)[f"'{PROVIDERS['formula']['name']}"]["headcount"] == "2"


def test_the_export_links_its_data_package_and_conforms_to_it(
    directory: Directory, tmp_path: Path
) -> None:
    response = directory.get("/directory/providers.csv")
    link = response.headers["link"]
    assert 'rel="describedby"' in link
    package_url = link[link.index("<") + 1: link.index(">")]
    package = directory.client.get(package_url, headers=directory.staff).json()
    assert_package(package)
    assert package["resources"][0]["path"].endswith("/directory/providers.csv")

    assert schema_errors(package, response.text, tmp_path) == []

    rows = {r["provider_id"]: r for r in typed_rows(package, response.text)}
    care = rows[str(directory.ids["care"])]
    assert care["companies_house"] == "01234567"  # text: the leading zero is kept
    assert care["headcount"] == 40
    assert care["turnover_gbp"] == 3_000_000
    assert rows[str(directory.ids["carers"])]["charity_number"] == "1123456"
    assert care["postcode"] == "LS11 5PS"
    assert str(care["earliest_expiry"]) == "2029-01-31"


def test_the_schema_catches_a_column_gone_wrong(directory: Directory, tmp_path: Path) -> None:
    package: dict[str, Any] = directory.client.get(
        "/directory/providers.datapackage.json", headers=directory.staff).json()
    text = _export(directory.client, directory.staff)
    broken = text.replace("01234567", "1234567", 1)  # as a spreadsheet would have saved it

    errors = schema_errors(package, broken, tmp_path)

    assert any("constraint-error" in e and "companies_house" in e for e in errors), errors


def test_old_import_files_still_import() -> None:
    parsed = parse_providers_csv(
        b"Name,Organisation type,Contact email,Address line 1,Address line 2,Postcode\n"
        b"Leeds Lunch Club,vcse,hi@lunch.example,1 Briggate,Floor 2,ls1 6hb\n"
    )
    assert not parsed.rejected
    (_, new), = parsed.rows
    assert new.address is not None
    assert new.address.lines == ["1 Briggate", "Floor 2"]
