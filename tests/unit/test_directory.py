"""The provider directory: the projection built from registry events, search, the HSDS export in
Open Referral UK's fields (validated against the official profile schemas in tests/schemas/oruk)
and the CSV export.

A realistic directory is registered once for the module through the registry's own API; tests
then read it through the directory endpoints, polling until the projection has caught up."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from council.kernel.contracts import all_specs
from council.kernel.envelope import EventEnvelope
from council.kernel.taxonomy import taxonomy
from council.platform.eventlog import open_event_log
from council.platform.identity import Role, TokenStore
from council.platform.projection import ProjectionRunner
from council.platform.runtime import create_service_app
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.provider_registry.oruk import hsds_export
from council.services.provider_registry.projections import (
    CONTENT_EVENTS,
    IGNORED_EVENTS,
    STATUS_EVENTS,
    DirectoryProjection,
    SearchFilters,
    directory_providers,
    search_providers,
)
from council.services.provider_registry.projections.directory import (
    CSV_COLUMNS,
    Capability,
    DirectoryProvider,
    providers_csv,
    safe_cell,
)
from council.services.provider_registry.service import SPEC as REGISTRY
from tests import oruk_profile
from tests.problems import loc_of
from tests.waiting import eventually

COLLECTIONS = ("organization", "service", "location", "service_at_location", "taxonomy",
               "taxonomy_term", "attribute")

Auth = dict[str, str]




# --------------------------------------------------------------------------- the directory

PROVIDERS: dict[str, dict[str, Any]] = {
    "kitchen": {
        "name": "Hillside Community Kitchen", "organisation_type": "community_group",
        "description": "Cooking clubs and a weekly lunch for families, run by volunteers.",
        "contact": {"name": "Pat Lee", "email": "hello@hillside.example",
                    "phone": "+44 113 496 0000"},
        "address": {"lines": ["Hillside Centre", "2 Chapel Lane"], "town": "Leeds",
                    "county": "West Yorkshire", "postcode": "ls6 3aa"},
        "areas_served": ["Headingley", "Hyde Park"],
    },
    "care": {
        "name": "Aire Valley Care Ltd", "organisation_type": "sme",
        "description": "Domiciliary support at home.",
        "website": "https://airevalleycare.example",
        "identifiers": {"companies_house": "01234567"},
        "sme_size": {"headcount": 40, "turnover_gbp": 3_000_000},
        "address": {"lines": ["Unit 4, Canal Wharf"], "town": "Leeds",
                    "county": "West Yorkshire", "postcode": "LS11 5PS"},
        "areas_served": ["Leeds"],
    },
    "carers": {
        "name": "St Mary's Carers Trust", "organisation_type": "vcse",
        "description": "Breaks, advice and a helpline for unpaid carers, since 1998.",
        "identifiers": {"charity_number": "1123456"},
        "address": {"lines": ["St Mary's Hall"], "town": "Bradford",
                    "county": "West Yorkshire", "postcode": "BD1 1AA"},
    },
    "befrienders": {
        "name": "Glasgow Befrienders", "organisation_type": "vcse",
        "description": "Befriending for older people.",
        "identifiers": {"charity_number": "SC012345"},
    },
    "college": {
        "name": "northern skills college", "organisation_type": "public_body",
        "description": "Further education.",
        "identifiers": {"ukprn": "10012345"},
        "address": {"lines": [], "postcode": "LS2 8AA"},
    },
    "digital": {
        "name": "Digital Neighbours CIC", "organisation_type": "community_group",
        "description": "Help getting online.",
        "areas_served": ["Armley"],
    },
    "builders": {
        "name": "Broad Acre Facilities plc", "organisation_type": "large_private",
        "identifiers": {"companies_house": "SC765432"},
        "address": {"lines": ["1 Park Row"], "town": "Leeds", "postcode": "LS1 5AB"},
    },
    "formula": {
        "name": "=HYPERLINK(\"http://evil.example\",\"click\")", "organisation_type": "sme",
        "description": "-2+3, said the \"spreadsheet\";\nthen @SUM(A1)",
        "sme_size": {"headcount": 2, "turnover_gbp": 50_000},
    },
}

CAPABILITIES: dict[str, list[dict[str, Any]]] = {
    "kitchen": [{"category": "weight-management", "areas": ["Headingley"],
                 "description": "Family cooking and healthy eating courses."}],
    "care": [{"category": "home-care", "areas": ["Leeds", "Bradford"],
              "capacity": {"amount": 900, "unit": "hours of care per week"}},
             {"category": "reablement"}],
    "carers": [{"category": "carers-support", "areas": ["bradford"]}],
    "befrienders": [{"category": "day-opportunities"}],
    "college": [{"category": "adult-learning", "areas": ["Leeds"]}],
    "digital": [{"category": "digital-inclusion"}],
    "builders": [{"category": "grounds-maintenance", "areas": ["Leeds"]}],
}

# Lifecycle steps taken after registration, and the status each provider ends in.
JOURNEYS: dict[str, list[str]] = {
    "kitchen": ["review", "approve"],
    "care": ["review", "approve"],
    "carers": ["review", "approve"],
    "befrienders": ["review", "approve", "suspend"],
    "college": ["review", "approve"],
    "digital": ["review", "incubation"],
    "builders": ["review", "reject"],
    "formula": [],
}
FINAL_STATUS = {
    "kitchen": "approved", "care": "approved", "carers": "approved", "befrienders": "suspended",
    "college": "approved", "digital": "incubating", "builders": "rejected", "formula": "applied",
    "partnership": "under_review",
}
APPROVED = {key for key, status in FINAL_STATUS.items() if status == "approved"}


@dataclass
class Directory:
    client: TestClient
    admin: Auth
    staff: Auth
    tokens: TokenStore
    ids: dict[str, UUID]

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.staff)

    def search(self, **params: Any) -> dict[str, Any]:
        response = self.get("/providers", **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def names(self, **params: Any) -> set[str]:
        return {p["name"] for p in self.search(limit=500, **params)["providers"]}

    def name(self, key: str) -> str:
        if key == "partnership":
            return "Riverside Youth Partnership"
        return str(PROVIDERS[key]["name"])

    def hsds(self, **params: Any) -> dict[str, Any]:
        response = self.get("/directory/hsds", **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _post(client: TestClient, path: str, body: dict[str, Any], headers: Auth) -> Any:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), f"{path}: {response.text}"
    return response.json()


def _build(client: TestClient, admin: Auth) -> dict[str, UUID]:
    ids: dict[str, UUID] = {}
    for key, body in PROVIDERS.items():
        ids[key] = UUID(_post(client, "/providers", body, admin)["provider_id"])
    partnership = {
        "name": "Riverside Youth Partnership", "organisation_type": "partnership",
        "members": [str(ids["kitchen"]), str(ids["carers"])], "areas_served": ["Kirkstall"],
    }
    ids["partnership"] = UUID(_post(client, "/providers", partnership, admin)["provider_id"])
    for key, capabilities in CAPABILITIES.items():
        for capability in capabilities:
            _post(client, f"/providers/{ids[key]}/capabilities", capability, admin)
    _post(client, f"/providers/{ids['partnership']}/capabilities",
          {"category": "youth-services", "areas": ["Kirkstall"]}, admin)
    care = ids["care"]
    _post(client, f"/providers/{care}/accreditations",
          {"kind": "certification", "name": "ISO 9001", "issuer": "BSI",
           "expires_on": "2030-03-31"}, admin)
    _post(client, f"/providers/{care}/accreditations",
          {"kind": "insurance", "name": "Public liability", "cover_gbp": 5_000_000,
           "expires_on": "2029-01-31"}, admin)
    _post(client, f"/providers/{care}/quality-ratings",
          {"scheme": "CQC", "rating": "Requires improvement", "rated_on": "2024-02-01"}, admin)
    _post(client, f"/providers/{care}/quality-ratings",
          {"scheme": "CQC", "rating": "Good", "rated_on": "2025-06-01"}, admin)
    reason = {"reason": "checked by the commissioning panel"}
    for key, steps in [*JOURNEYS.items(), ("partnership", ["review"])]:
        for step in steps:
            if step == "incubation":
                _post(client, f"/providers/{ids[key]}/incubation", {
                    "support_plan": "Mentoring and a small start-up grant",
                    "milestones": [{"title": "Safeguarding policy adopted"}],
                    "reason": "promising, needs support",
                }, admin)
            else:
                _post(client, f"/providers/{ids[key]}/{step}", reason, admin)
    return ids


def _expected_summaries(ids: dict[str, UUID]) -> dict[str, tuple[str, list[str]]]:
    expected = {}
    for key in ids:
        categories = sorted(c["category"] for c in CAPABILITIES.get(key, []))
        if key == "partnership":
            categories = ["youth-services"]
        expected[str(ids[key])] = (FINAL_STATUS[key], categories)
    return expected


@contextmanager
def registered_directory(var_dir: Path) -> Iterator[Directory]:
    """A registry holding the providers above, once its directory has caught up."""
    settings = Settings(var_dir=var_dir, relay_interval=0.01)
    tokens = TokenStore(open_database(settings, "identity"))
    admin = {"Authorization": f"Bearer {tokens.create(Role.INTEGRATOR_ADMIN, 'sam').token}"}
    staff = {"Authorization": f"Bearer {tokens.create(Role.COUNCIL_STAFF, 'kim').token}"}
    try:
        with TestClient(create_service_app(REGISTRY, settings)) as client:
            ids = _build(client, admin)
            built = Directory(client, admin, staff, tokens, ids)
            expected = _expected_summaries(ids)
            eventually(
                lambda: {p["provider_id"]: (p["status"], p["categories"])
                         for p in built.search(limit=500)["providers"]},
                lambda seen: seen == expected,
            )
            yield built
    finally:
        tokens.db.close()


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    with registered_directory(tmp_path_factory.mktemp("directory")) as built:
        yield built


# --------------------------------------------------------------------------- search


def test_search_lists_every_provider_in_name_order_with_categories(directory: Directory) -> None:
    body = directory.search()

    assert body["total"] == len(directory.ids)
    names = [p["name"] for p in body["providers"]]
    assert names == sorted(names, key=str.casefold)
    care = next(p for p in body["providers"] if p["name"] == "Aire Valley Care Ltd")
    assert care["categories"] == ["home-care", "reablement"]
    assert care["organisation_type"] == "sme"
    assert care["sme_band"] == "small"
    assert care["postcode"] == "LS11 5PS"
    assert care["town"] == "Leeds"
    assert care["areas_served"] == ["Leeds"]
    assert care["status"] == "approved"


def test_category_matches_the_category_and_everything_below_it(directory: Directory) -> None:
    adult_social_care = {"care", "carers", "befrienders"}  # home care, carers' support, day ops

    assert directory.names(category="adult-social-care") == {
        directory.name(k) for k in adult_social_care
    }
    assert directory.names(category="home-care") == {directory.name("care")}
    assert directory.names(category="fostering") == set()


def test_area_matches_areas_served_or_capability_areas_whatever_the_case(
    directory: Directory,
) -> None:
    # Leeds: served by care; capability areas of care, college and builders.
    assert directory.names(area="leeds") == {
        directory.name(k) for k in ("care", "college", "builders")
    }
    # Bradford: a capability area of care; "bradford" (lower case) one of carers'.
    assert directory.names(area="BRADFORD") == {directory.name(k) for k in ("care", "carers")}
    assert directory.names(area="  hyde   park ") == {directory.name("kitchen")}
    assert directory.names(area="Lee") == set()  # whole names only


def test_organisation_type_and_repeated_status_filters(directory: Directory) -> None:
    assert directory.names(organisation_type="vcse") == {
        directory.name(k) for k in ("carers", "befrienders")
    }
    assert directory.names(status="approved") == {directory.name(k) for k in APPROVED}
    assert directory.names(status=["suspended", "incubating"]) == {
        directory.name(k) for k in ("befrienders", "digital")
    }
    assert directory.names(organisation_type="vcse", status="approved") == {
        directory.name("carers")
    }


@pytest.mark.parametrize(("q", "keys"), [
    ("KITCHEN", {"kitchen"}),
    ("ls6", {"kitchen"}),
    ("LS63AA", {"kitchen"}),  # the postcode without its space
    ("bradford", {"care", "carers"}),
    ("unpaid carers", {"carers"}),
    ("home care", {"care"}),  # a category name
    ("1123456", {"carers"}),  # an identifier
    ("kirkstall", {"partnership"}),
    ("%", set()),  # LIKE wildcards are taken literally
    ("_", set()),
    ("\\", set()),
], ids=lambda v: repr(v) if isinstance(v, str) else "")
def test_free_text_is_a_case_insensitive_substring(
    directory: Directory, q: str, keys: set[str]
) -> None:
    assert directory.names(q=q) == {directory.name(k) for k in keys}


def test_filters_combine_and_blank_ones_are_ignored(directory: Directory) -> None:
    assert directory.names(category="adult-social-care", area="bradford", q="trust") == {
        directory.name("carers")
    }
    assert len(directory.names(q="", area=" ", category="")) == len(directory.ids)


def test_pages_follow_the_order_without_gaps_or_overlaps(directory: Directory) -> None:
    everything = [p["provider_id"] for p in directory.search(limit=500)["providers"]]
    pages = []
    for offset in range(0, len(everything) + 2, 3):
        body = directory.search(limit=3, offset=offset)
        assert body["total"] == len(everything)
        pages += [p["provider_id"] for p in body["providers"]]

    assert pages == everything
    assert directory.search(offset=len(everything))["providers"] == []


@pytest.mark.parametrize(("params", "parameter"), [
    ({"category": "underwater-basket-weaving"}, "category"),
    ({"organisation_type": "charity"}, "organisation_type"),
    ({"status": "pending"}, "status"),
    ({"status": ["approved", "dormant"]}, "status"),
    ({"limit": 0}, "limit"),
    ({"limit": 501}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"offset": -1}, "offset"),
    ({"q": "x" * 201}, "q"),
])
def test_bad_search_parameters_are_refused_naming_them(
    directory: Directory, params: dict[str, Any], parameter: str
) -> None:
    response = directory.get("/providers", **params)

    assert response.status_code == 422
    locations = [loc_of(e) for e in response.json()["errors"]]
    assert ["query", parameter] in [loc[:2] for loc in locations]


def test_unknown_category_message_points_to_the_taxonomy(directory: Directory) -> None:
    detail = directory.get("/providers", category="nope").json()["errors"][0]

    assert "unknown category 'nope'" in detail["message"]
    assert "GET /taxonomy" in detail["message"]


@pytest.mark.parametrize("path", ["/providers", "/directory/hsds", "/directory/providers.csv"])
def test_directory_is_for_council_readers_only(directory: Directory, path: str) -> None:
    client, tokens = directory.client, directory.tokens
    assert client.get(path).status_code == 401
    provider = tokens.create(Role.PROVIDER, "kitchen", directory.ids["kitchen"])
    forbidden = client.get(path, headers={"Authorization": f"Bearer {provider.token}"})
    assert forbidden.status_code == 403
    for role in (Role.COUNCIL_STAFF, Role.COMMISSIONER, Role.INTEGRATOR_ADMIN):
        issued = tokens.create(role, "reader")
        assert client.get(path, headers={"Authorization": f"Bearer {issued.token}"}).is_success
    regulator = tokens.create(Role.REGULATOR, "ofsted")  # reads through the audit API alone
    assert client.get(path, headers={"Authorization": f"Bearer {regulator.token}"}
                      ).status_code == 403


# --------------------------------------------------------------------------- HSDS export


# The flat export's collections, each item one of the profile's entities.
ENTITY_SCHEMAS = {"organization": "organization", "service": "service", "location": "location",
                  "service_at_location": "service_at_location", "taxonomy": "taxonomy",
                  "taxonomy_term": "taxonomy_term", "attribute": "attribute"}


def _schema_errors(export: dict[str, Any]) -> list[str]:
    problems = []
    for collection in COLLECTIONS:
        schema = oruk_profile.schema_named(ENTITY_SCHEMAS[collection])
        for i, item in enumerate(export[collection]):
            outside = oruk_profile.undeclared(item, schema)
            found = (oruk_profile.schema_errors(item, schema)
                     + [f"not in the UK profile: {p}" for p in outside]
                     + [f"blank: {p}" for p in oruk_profile.blanks(item)])
            problems += [f"{collection}[{i}]{p}" for p in found]
    return problems


def test_every_exported_record_is_valid_uk_profile_hsds(directory: Directory) -> None:
    every_status = sorted(set(FINAL_STATUS.values()))
    for export in (directory.hsds(), directory.hsds(status=every_status)):
        assert set(export) == set(COLLECTIONS)
        assert all(export[c] for c in COLLECTIONS), {c: len(export[c]) for c in COLLECTIONS}
        assert _schema_errors(export) == []


def test_every_reference_in_the_export_resolves(directory: Directory) -> None:
    export = directory.hsds(status=list(set(FINAL_STATUS.values())))
    ids = {c: [item["id"] for item in export[c]] for c in COLLECTIONS}
    for collection, found in ids.items():
        assert len(found) == len(set(found)), f"duplicate ids in {collection}"
    orgs, services, locations = set(ids["organization"]), set(ids["service"]), set(
        ids["location"])
    terms, taxonomies = set(ids["taxonomy_term"]), set(ids["taxonomy"])

    for org in export["organization"]:
        for child in org.get("organization_identifiers", []):
            assert child["organization_id"] == org["id"]
    for service in export["service"]:
        assert service["organization_id"] in orgs
        for area in service.get("service_areas", []):
            assert area["service_id"] == service["id"]
    for location in export["location"]:
        for address in location["addresses"]:
            assert address["location_id"] == location["id"]
    for link in export["service_at_location"]:
        assert link["service_id"] in services
        assert link["location_id"] in locations
    for term in export["taxonomy_term"]:
        assert term["taxonomy_id"] in taxonomies
        assert term.get("parent_id", term["id"]) in terms
    for attribute in export["attribute"]:
        assert attribute["link_type"] == "category"
        assert attribute["link_id"] in services
        assert attribute["taxonomy_term_id"] in terms
    every_id = [i for found in ids.values() for i in found]
    assert len(every_id) == len(set(every_id)), "an id is used by two records"


def test_hsds_maps_providers_capabilities_addresses_and_categories(directory: Directory) -> None:
    export = directory.hsds()
    by_name = {o["name"]: o for o in export["organization"]}

    assert set(by_name) == {directory.name(k) for k in APPROVED}  # approved only, by default
    care = by_name["Aire Valley Care Ltd"]
    assert care["id"] == str(directory.ids["care"])
    assert care["website"] == "https://airevalleycare.example"
    assert care["description"] == "Domiciliary support at home."
    assert [(i["identifier_scheme"], i["identifier_type"], i["identifier"])
            for i in care["organization_identifiers"]] == [("GB-COH", "company", "01234567")]
    schemes = {
        i["identifier_scheme"]: i["identifier"]
        for o in export["organization"] for i in o.get("organization_identifiers", [])
    }
    assert schemes == {"GB-COH": "01234567", "GB-CHC": "1123456", "GB-UKPRN": "10012345"}
    kitchen = by_name["Hillside Community Kitchen"]
    assert kitchen["email"] == "hello@hillside.example"
    assert "phones" not in kitchen  # the UK profile has no organisation phones

    services = {s["name"]: s for s in export["service"]}
    home_care = services["Home care (domiciliary care) — Aire Valley Care Ltd"]
    assert home_care["organization_id"] == care["id"]
    assert home_care["status"] == "active"
    assert [a["name"] for a in home_care["service_areas"]] == ["Leeds", "Bradford"]
    assert home_care["accreditations"] == "ISO 9001 (BSI), valid until 2030-03-31"
    assert "Reablement and hospital discharge — Aire Valley Care Ltd" in services
    assert len(export["service"]) == sum(len(CAPABILITIES[k]) for k in APPROVED)

    location = next(loc for loc in export["location"] if loc["name"] == kitchen["name"])
    assert location["location_type"] == "physical"
    address = location["addresses"][0]
    assert (address["address_1"], address["city"], address["state_province"],
            address["postal_code"], address["country"]) == (
        "Hillside Centre, 2 Chapel Lane", "Leeds", "West Yorkshire", "LS6 3AA", "GB")
    # Each service is at its provider's location; a provider without a complete address (the
    # college: no lines, no town, no county) has none.
    located = {link["service_id"]: link["location_id"] for link in export["service_at_location"]}
    location_of = {str(directory.ids[k]): loc["id"] for k in APPROVED
                   for loc in export["location"] if loc["name"] == directory.name(k)}
    assert str(directory.ids["college"]) not in location_of
    for service in export["service"]:
        assert located.get(service["id"]) == location_of.get(service["organization_id"])

    terms = {t["term"]: t for t in export["taxonomy_term"]}
    assert set(terms) == set(taxonomy().terms)
    assert terms["home-care"]["parent_id"] == terms["adult-social-care"]["id"]
    assert "parent_id" not in terms["adult-social-care"]
    classified = {a["link_id"]: a["taxonomy_term_id"] for a in export["attribute"]}
    assert classified[home_care["id"]] == terms["home-care"]["id"]
    assert export["taxonomy"][0]["name"] == taxonomy().name


def test_status_selects_which_providers_are_exported(directory: Directory) -> None:
    export = directory.hsds(status=["suspended", "incubating"])
    names = {o["name"] for o in export["organization"]}
    statuses = {s["name"].split(" — ")[1]: s["status"] for s in export["service"]}

    assert names == {directory.name("befrienders"), directory.name("digital")}
    assert statuses == {"Glasgow Befrienders": "temporarily closed",
                        "Digital Neighbours CIC": "active"}
    befrienders = next(o for o in export["organization"] if o["name"] == "Glasgow Befrienders")
    gb_sc = befrienders["organization_identifiers"][0]
    assert (gb_sc["identifier_scheme"], gb_sc["identifier"]) == ("GB-SC", "SC012345")
    assert directory.get("/directory/hsds", status="gone").status_code == 422


def test_two_exports_of_the_same_state_are_identical(directory: Directory) -> None:
    first = directory.get("/directory/hsds", status=list(FINAL_STATUS.values()))
    second = directory.get("/directory/hsds", status=list(FINAL_STATUS.values()))

    assert first.content == second.content
    # ... and the ids depend only on our ids, not on when or where the export ran.
    views = directory.client.app.state.runtime.views  # type: ignore[attr-defined]
    providers = directory_providers(views)
    assert hsds_export(providers, taxonomy()) == hsds_export(list(providers), taxonomy())
    assert hsds_export(providers, taxonomy()) == first.json()


# --------------------------------------------------------------------------- CSV export


def _csv(directory: Directory, **params: Any) -> list[dict[str, str]]:
    response = directory.get("/directory/providers.csv", **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "providers.csv" in response.headers["content-disposition"]
    reader = csv.DictReader(io.StringIO(response.text, newline=""))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def test_csv_has_one_row_per_provider_with_its_details(directory: Directory) -> None:
    rows = _csv(directory)
    by_id = {row["provider_id"]: row for row in rows}

    assert set(by_id) == {str(i) for i in directory.ids.values()}  # every status by default
    care = by_id[str(directory.ids["care"])]
    assert care["status"] == "approved"
    assert care["organisation_type"] == "sme"
    assert care["companies_house"] == "01234567"
    assert care["postcode"] == "LS11 5PS"
    assert care["sme_band"] == "small"
    assert care["categories"] == "home-care; reablement"
    assert care["category_names"] == (
        "Home care (domiciliary care); Reablement and hospital discharge"
    )
    assert care["capability_areas"] == "Leeds; Bradford"
    assert care["earliest_expiry"] == "2029-01-31"
    assert "insurance: Public liability (expires 2029-01-31)" in care["accreditations"]
    assert care["quality_ratings"] == "CQC: Good (2025-06-01)"
    assert by_id[str(directory.ids["carers"])]["charity_number"] == "1123456"
    assert by_id[str(directory.ids["college"])]["ukprn"] == "10012345"
    members = by_id[str(directory.ids["partnership"])]["members"].split("; ")
    assert set(members) == {str(directory.ids["kitchen"]), str(directory.ids["carers"])}


def test_csv_status_filter(directory: Directory) -> None:
    rows = _csv(directory, status=["approved"])
    assert {row["name"] for row in rows} == {directory.name(k) for k in APPROVED}


def test_csv_quotes_and_defuses_formulas(directory: Directory) -> None:
    response = directory.get("/directory/providers.csv")
    rows = {row["provider_id"]: row for row in _csv(directory)}
    evil = rows[str(directory.ids["formula"])]
    kitchen = rows[str(directory.ids["kitchen"])]

    assert evil["name"] == "'" + PROVIDERS["formula"]["name"]
    assert evil["description"] == "'" + PROVIDERS["formula"]["description"]
    assert kitchen["contact_phone"] == "'+44 113 496 0000"
    assert (kitchen["address_line_1"], kitchen["address_line_2"]) == (
        "Hillside Centre", "2 Chapel Lane")
    care = rows[str(directory.ids["care"])]
    assert care["address_line_1"] == "Unit 4, Canal Wharf"  # a comma, quoted
    assert '"Unit 4, Canal Wharf"' in response.text
    assert response.text.endswith("\r\n")
    # Nothing anywhere starts a formula.
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"), ("+44 1", "'+44 1"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("a=b", "a=b"), ("", ""), (None, ""), (12, "12"),
])
def test_safe_cell(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_csv_of_no_providers_is_just_the_header() -> None:
    assert providers_csv([], taxonomy()) == ",".join(CSV_COLUMNS) + "\r\n"


# --------------------------------------------------------------------------- the projection


def test_every_registry_event_type_is_handled_or_deliberately_ignored() -> None:
    registry_types = {s.type for s in all_specs() if s.source == "provider_registry"}
    handled = set(CONTENT_EVENTS) | set(STATUS_EVENTS)

    assert registry_types == handled | set(IGNORED_EVENTS)
    assert not handled & set(IGNORED_EVENTS)


class Feed:
    """Registry events for one provider, applied straight to a directory projection."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.projection = DirectoryProjection()
        self.provider_id = uuid4()
        self.position = 0
        log = open_event_log(settings)  # the runner makes the tables (and its position ones)
        ProjectionRunner(self.projection, db, log)
        log.close()

    def __call__(self, type_: str, **data: Any) -> None:
        self.position += 1
        envelope = EventEnvelope(
            event_id=uuid4(), type=type_, schema_version=1, source="provider_registry",
            stream_id=str(self.provider_id), stream_position=self.position,
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC).replace(second=self.position),
            recorded_at=datetime.now(UTC),
            data={"provider_id": str(self.provider_id), **data},
        )
        with self.db.transaction() as tx:
            self.projection.apply(tx, envelope)

    def provider(self) -> DirectoryProvider:
        return next(p for p in directory_providers(self.db) if p.provider_id == self.provider_id)

    def found(self, **filters: Any) -> bool:
        _, page = search_providers(self.db, SearchFilters(**filters))
        return any(p.provider_id == self.provider_id for p in page)


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[Feed]:
    db = Database.sqlite(tmp_path / "views.sqlite")
    yield Feed(db, Settings(var_dir=tmp_path))
    db.close()


ALL_NULL_CHANGES = {k: None for k in (
    "name", "description", "website", "identifiers", "contact", "address", "areas_served",
    "sme_size", "members")}


def test_details_updates_as_the_registry_publishes_them_today(feed: Feed) -> None:
    feed("ProviderRegistered", name="Old Name", organisation_type="vcse",
         website="https://old.example", address={"lines": ["1 A St"], "postcode": "LS1 1AA"},
         areas_served=["Leeds"])
    # Every field is sent, unset ones as null: a null must not wipe what was there.
    feed("ProviderDetailsUpdated", changes={**ALL_NULL_CHANGES, "name": "New Name",
                                            "areas_served": ["Wakefield"]})
    provider = feed.provider()

    assert (provider.name, provider.website, provider.postcode) == (
        "New Name", "https://old.example", "LS1 1AA")
    assert provider.areas_served == ("Wakefield",)
    assert feed.found(area="wakefield")
    assert not feed.found(area="leeds")
    assert feed.found(text="new name")
    assert not feed.found(text="old name")


def test_details_updates_with_only_the_changed_fields_can_clear_one(feed: Feed) -> None:
    feed("ProviderRegistered", name="A", organisation_type="vcse",
         website="https://a.example", description="Lunch club")
    feed("ProviderDetailsUpdated", changes={"website": None})

    assert (feed.provider().website, feed.provider().description) == (None, "Lunch club")


def test_capability_removal_takes_its_category_and_areas_out_of_search(feed: Feed) -> None:
    feed("ProviderRegistered", name="A", organisation_type="vcse")
    feed("ProviderCapabilityAdded", capability_id="c1", category="home-care", areas=["York"])
    assert feed.found(categories=frozenset({"home-care"}), area="york", text="home care")

    feed("ProviderCapabilityRemoved", capability_id="c1", reason="no longer offered")

    assert not feed.found(categories=frozenset({"home-care"}))
    assert not feed.found(area="york")
    assert not feed.found(text="home care")
    assert feed.provider().capabilities == ()


def test_lifecycle_standing_and_ignored_events(feed: Feed) -> None:
    feed("ProviderRegistered", name="A", organisation_type="vcse")
    feed("ProviderReviewStarted", reason="looks fine")
    feed("IncubationStarted", support_plan="grow", reason="promising",
         milestones=[{"milestone_id": "m1", "title": "policy"}])
    assert feed.provider().status == "incubating"
    feed("IncubationMilestoneMet", milestone_id="m1", evidence="adopted")
    feed("ProviderGraduated", reason="met it all", credentials_id="t1")
    feed("AccreditationAdded", accreditation_id="a1", kind="accreditation", name="Quality mark",
         expires_on=date(2030, 1, 1).isoformat())
    feed("AccreditationAdded", accreditation_id="a2", kind="insurance", name="Liability",
         cover_gbp=1_000_000)
    feed("AccreditationRemoved", accreditation_id="a1", reason="recorded in error")
    feed("QualityRatingRecorded", rating_id="r1", scheme="CQC", rating="Good",
         rated_on="2025-01-01")
    feed("ConflictOfInterestDeclared", declaration_id="d1", declared_by="cllr x",
         interest="trustee", declared_on="2025-02-01")
    feed("ProviderCredentialsRotated", credentials_id="t2", revoked_credentials_id="t1")
    feed("ProviderSuspended", reason="complaint", revoked_credentials_id="t2")
    feed("ProviderNamedSomethingNew", novel=True)  # a newer contract: passed over
    provider = feed.provider()

    assert provider.status == "suspended"
    assert [a.name for a in provider.accreditations] == ["Liability"]
    assert provider.accreditations[0].cover_gbp == 1_000_000
    assert [(r.scheme, r.rating) for r in provider.quality_ratings] == [("CQC", "Good")]
    assert provider.updated_at == provider.status_changed_at > provider.registered_at


def test_the_pure_export_leaves_out_what_a_provider_did_not_give() -> None:
    bare = DirectoryProvider(
        provider_id=uuid4(), name="Bare", organisation_type="community_group",
        status="approved", registered_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00", status_changed_at="2026-01-01T00:00:00+00:00",
        description="Litter picks.", address={"lines": ["1 A St"], "postcode": "LS1 1AA"},
        capabilities=(Capability("c1", "no-longer-in-the-taxonomy"),),
    )
    export = hsds_export([bare], taxonomy())

    assert export["organization"] == [
        {"id": str(bare.provider_id), "name": "Bare", "description": "Litter picks."}]
    # No town or county: no location, rather than an address with blank required fields.
    assert export["location"] == export["service_at_location"] == export["attribute"] == []
    assert export["service"][0]["name"] == "no-longer-in-the-taxonomy — Bare"
    assert "description" not in export["service"][0]


def test_a_provider_that_has_not_described_itself_is_not_published() -> None:
    silent = DirectoryProvider(
        provider_id=uuid4(), name="Silent", organisation_type="sme", status="approved",
        registered_at="2026-01-01T00:00:00+00:00", updated_at="2026-01-01T00:00:00+00:00",
        status_changed_at="2026-01-01T00:00:00+00:00", description="  ",
        capabilities=(Capability("c1", "home-care"),),
    )
    export = hsds_export([silent], taxonomy())

    assert export["organization"] == export["service"] == []
