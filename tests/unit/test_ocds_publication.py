"""Public OCDS publication (`GET /ocds/...`): open without a token and to any web page, in pages
linked by `links.next`, and read by the Open Contracting Partnership's own tools with the
official 1.1.5 schemas (tests/schemas/ocds/official, unchanged): lib-cove-ocds finds no errors,
`ocdskit compile` of the releases gives the records we publish, and OCP's coherence checks
(tests/ocds_coherence.py) pass on every page.

The commission of tests/unit/test_ocds.py is published on the log, with two more needs closed
early, so that the releases fill several pages."""

from __future__ import annotations

import itertools
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft4Validator, FormatChecker
from libcoveocds.api import ocds_json_output
from libcoveocds.config import LibCoveOCDSConfig
from ocdskit.combine import merge
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from council.kernel.contracts.integrator import NeedClosed
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.services.integrator.projections.network import get_provider
from council.services.integrator.service import SPEC as INTEGRATOR
from tests.ocds_coherence import check_record_package, check_release_package
from tests.unit.test_ocds import NAMES, History, at, commission, need_defined, registered
from tests.waiting import DEADLINE_SECONDS

OFFICIAL = Path(__file__).resolve().parents[1] / "schemas" / "ocds" / "official"
OTHER_NEEDS = (UUID("6a1f4c1e-0b7d-4c2a-9d55-3f0e8a2b7c02"),
               UUID("6a1f4c1e-0b7d-4c2a-9d55-3f0e8a2b7c03"))
Json = dict[str, Any]


def _events() -> list[Any]:
    h = History()
    for i, need_id in enumerate(OTHER_NEEDS):
        h.add(need_defined(need_id), at(f"2024-0{i + 3}-04"))
        h.add(NeedClosed(need_id=need_id, reason="met by the regional programme"),
              at(f"2024-0{i + 3}-20"))
    return [*commission(), *h.envelopes]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path_factory.mktemp("ocds"), relay_interval=0.01)
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        assert isinstance(runtime, Runtime)
        runtime.event_log.append([registered(p, name) for p, name in NAMES.items()])
        runtime.event_log.append(_events())
        deadline = time.monotonic() + DEADLINE_SECONDS
        while any(get_provider(runtime.views, p) is None for p in NAMES):
            assert time.monotonic() < deadline, "the network projection did not take them in"
            time.sleep(0.02)
        yield client


def _pages(client: TestClient, path: str, **params: Any) -> list[Json]:
    """Every page of a package, following `links.next` as a harvester does: no token."""
    pages = [client.get(path, params=params, headers={"Origin": "https://reader.example"})]
    while True:
        assert pages[-1].status_code == 200, pages[-1].text
        assert pages[-1].headers["access-control-allow-origin"] == "*"
        following = pages[-1].json().get("links", {}).get("next")
        if following is None:
            return [page.json() for page in pages]
        pages.append(client.get(following))


@pytest.fixture(scope="module")
def release_pages(client: TestClient) -> list[Json]:
    return _pages(client, "/ocds/releases", per_page=4)


@pytest.fixture(scope="module")
def record_pages(client: TestClient) -> list[Json]:
    return _pages(client, "/ocds/records", per_page=1)


@pytest.fixture(scope="module")
def everything(client: TestClient) -> tuple[Json, Json]:
    releases = client.get("/ocds/releases", params={"per_page": 1000}).json()
    records = client.get("/ocds/records", params={"per_page": 1000}).json()
    assert "links" not in releases
    assert "links" not in records
    return releases, records


def test_publication_needs_no_token(client: TestClient) -> None:
    for path in ("/ocds/releases", "/ocds/records", f"/ocds/records/{OTHER_NEEDS[0]}"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["access-control-allow-origin"] == "*"
    assert client.post("/ocds/releases").status_code == 405


def test_pages_link_to_each_other_and_hold_everything_once(
    client: TestClient, release_pages: list[Json], record_pages: list[Json],
    everything: tuple[Json, Json],
) -> None:
    releases, records = everything
    assert len(release_pages) == -(-len(releases["releases"]) // 4) > 1
    assert [r for page in release_pages for r in page["releases"]] == releases["releases"]
    assert len(record_pages) == len(records["records"]) == 1 + len(OTHER_NEEDS)
    assert [r for page in record_pages for r in page["records"]] == records["records"]
    for pages in (release_pages, record_pages):
        assert "prev" not in pages[0]["links"]
        for before, after in itertools.pairwise(pages):
            assert before["links"]["next"] == after["uri"]
            back = client.get(after["links"]["prev"]).json()
            assert {k: v for k, v in back.items() if k != "uri"} == {
                k: v for k, v in before.items() if k != "uri"}
        assert "next" not in pages[-1]["links"]
    for page in release_pages:  # a page made on demand dates from its latest release
        assert page["publishedDate"] == max(r["date"] for r in page["releases"])


def test_each_record_names_the_release_package_of_its_process(
    record_pages: list[Json], client: TestClient,
) -> None:
    for page in record_pages:
        (record,) = page["records"]
        (source,) = page["packages"]
        package = client.get(source).json()
        assert [r["id"] for r in package["releases"]] == [r["id"] for r in record["releases"]]


def test_release_dates_are_distinct_within_each_process(everything: tuple[Json, Json]) -> None:
    releases, _ = everything
    by_ocid: dict[str, list[str]] = {}
    for release in releases["releases"]:
        by_ocid.setdefault(release["ocid"], []).append(release["date"])
    for dates in by_ocid.values():
        assert len(dates) == len(set(dates))
        assert dates == sorted(dates)


def _standard_zip(tmp: Path) -> str:
    """The official schema directory as lib-cove-ocds reads the standard: a zip of the
    repository at the tag, here holding only schema/."""
    path = tmp / "standard-1__1__5.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("standard-1__1__5/", "")
        for file in sorted(OFFICIAL.rglob("*")):
            if file.is_file() and file.name != "README.md":
                archive.write(file, f"standard-1__1__5/schema/{file.relative_to(OFFICIAL)}")
    return path.as_uri()


def _cove(package: Json, tmp: Path, record: bool) -> Json:
    source = tmp / ("records.json" if record else "releases.json")
    source.write_text(json.dumps(package))
    config = LibCoveOCDSConfig({"standard_zip": _standard_zip(tmp), "context": "api"})
    output = tmp / "cove"
    output.mkdir(exist_ok=True)
    found: Json = ocds_json_output(str(output), str(source), schema_version=None, convert=False,
                                   lib_cove_ocds_config=config, record_pkg=record)
    return found


def test_lib_cove_ocds_finds_no_errors_in_the_release_pages(
    release_pages: list[Json], tmp_path: Path,
) -> None:
    # (lib-cove-ocds fetches the versioned release schema a record package refers to from the
    # web whatever it is given, so records are checked with the schemas directly, below.)
    for page in release_pages:
        found = _cove(page, tmp_path, False)
        assert found["version_used"] == "1.1"
        assert found["validation_errors"] == []
        assert found["additional_closed_codelist_values"] == {}
        assert found["deprecated_fields"] == []
        assert not found["additional_checks"], found["additional_checks"]
        # `links` is the only field outside the schema: the API guidance's paging links
        assert {f["path"] + "/" + f["field"] for f in found["additional_fields"]} <= {"/links"}


def _official_validator(name: str) -> Draft4Validator:
    base = "https://standard.open-contracting.org/schema/1__1__5/"
    registry: Registry[Any] = Registry().with_resources(
        (base + file.name, Resource.from_contents(json.loads(file.read_text()),
                                                  default_specification=DRAFT4))
        for file in OFFICIAL.glob("*.json"))
    schema = json.loads((OFFICIAL / name).read_text())
    return Draft4Validator(schema, registry=registry, format_checker=FormatChecker())


def test_the_record_pages_are_valid_against_the_official_schema(
    record_pages: list[Json],
) -> None:
    validator = _official_validator("record-package-schema.json")
    for page in record_pages:
        assert [e.message for e in validator.iter_errors(page)] == []
    assert list(validator.iter_errors({**record_pages[0], "records": [{"ocid": 1}]}))


def test_lib_cove_ocds_can_fail(tmp_path: Path, everything: tuple[Json, Json]) -> None:
    releases, _ = everything
    broken = {**releases, "releases": [{**releases["releases"][0], "tag": ["nonsense"],
                                        "date": 5, "surprise": True}]}
    found = _cove(broken, tmp_path, False)
    assert [e["path"] for e in found["validation_errors"]] == ["releases/0/date"]
    assert list(found["additional_closed_codelist_values"]) == ["releases/tag"]
    assert {f["field"] for f in found["additional_fields"]} == {"surprise"}


def test_ocdskit_compile_of_the_releases_gives_the_published_records(
    everything: tuple[Json, Json],
) -> None:
    releases, records = everything
    schema = json.loads((OFFICIAL / "release-schema.json").read_text())
    compiled = list(merge([releases], schema=schema, return_package=True))
    (package,) = compiled
    ours = {r["ocid"]: r["compiledRelease"] for r in records["records"]}
    theirs = {r["ocid"]: r["compiledRelease"] for r in package["records"]}
    assert theirs == ours


def test_what_the_pages_hold_passes_ocps_coherence_checks(
    release_pages: list[Json], record_pages: list[Json],
) -> None:
    # A page of releases may start part-way through a process: the processes are checked whole.
    harvested = {**release_pages[0], "releases": [r for p in release_pages for r in p["releases"]]}
    harvested["publishedDate"] = max(p["publishedDate"] for p in release_pages)
    assert check_release_package(harvested) == []
    for page in record_pages:  # each record holds its process whole
        assert check_record_package(page) == []
