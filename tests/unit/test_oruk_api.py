"""The public Open Referral UK API (`/oruk`): every answer validated against the official ORUK
3.0 API definition and schemas (tests/schemas/oruk, unchanged), open without a token and to any
web page, read-only, and read by a small third-party client that knows only the published API.

A directory is registered once for the module through the registry's own API; the tests read
it through /oruk, after waiting until the directory projection has caught up."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from council.kernel.taxonomy import taxonomy
from council.platform.identity import Role, TokenStore
from council.platform.runtime import create_service_app
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.services.provider_registry.oruk import taxonomy_id, taxonomy_term_id
from council.services.provider_registry.service import SPEC as REGISTRY
from tests import oruk_profile
from tests.waiting import eventually

Auth = dict[str, str]

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
    "care": {  # no county: no location
        "name": "Aire Valley Care Ltd", "organisation_type": "sme",
        "description": "Home care across Leeds.",
        "website": "https://airevalleycare.example",
        "identifiers": {"companies_house": "01234567"},
        "sme_size": {"headcount": 40, "turnover_gbp": 3_000_000},
        "address": {"lines": ["Unit 4, Canal Wharf"], "town": "Leeds", "postcode": "LS11 5PS"},
        "areas_served": ["Leeds"],
    },
    "carers": {
        "name": "St Mary's Carers Trust", "organisation_type": "vcse",
        "description": "Breaks, advice and a helpline for unpaid carers, since 1998.",
        "identifiers": {"charity_number": "1123456"},
        "address": {"lines": ["St Mary's Hall"], "town": "Bradford",
                    "county": "West Yorkshire", "postcode": "BD1 1AA"},
    },
    "digital": {
        "name": "Digital Neighbours CIC", "organisation_type": "community_group",
        "description": "Help getting online.", "areas_served": ["Armley"],
    },
    "befrienders": {
        "name": "Glasgow Befrienders", "organisation_type": "vcse",
        "description": "Befriending for older people.",
    },
    "silent": {  # approved, but it has not described itself
        "name": "Quiet Gardens Ltd", "organisation_type": "sme",
        "sme_size": {"headcount": 3, "turnover_gbp": 90_000},
        "address": {"lines": ["1 Park Row"], "town": "Leeds", "county": "West Yorkshire",
                    "postcode": "LS1 5AB"},
    },
    "applicant": {
        "name": "Not Yet Approved Ltd", "organisation_type": "sme",
        "description": "Applied last week.",
        "sme_size": {"headcount": 2, "turnover_gbp": 50_000},
    },
}
CAPABILITIES: dict[str, list[dict[str, Any]]] = {
    "kitchen": [{"category": "weight-management", "areas": ["Headingley"],
                 "description": "Family cooking and healthy eating courses."},
                {"category": "youth-services"}],
    "care": [{"category": "home-care", "areas": ["Leeds", "Bradford"]},
             {"category": "reablement"}],
    "carers": [{"category": "carers-support", "areas": ["Bradford"]}],
    "digital": [{"category": "digital-inclusion"}],
    "befrienders": [{"category": "day-opportunities"}],
    "silent": [{"category": "grounds-maintenance"}],
    "applicant": [{"category": "home-care"}],
}
JOURNEYS = {"kitchen": ["review", "approve"], "care": ["review", "approve"],
            "carers": ["review", "approve"], "digital": ["review", "incubation"],
            "befrienders": ["review", "approve", "suspend"],
            "silent": ["review", "approve"], "applicant": []}
FINAL_STATUS = {"kitchen": "approved", "care": "approved", "carers": "approved",
                "digital": "incubating", "befrienders": "suspended", "silent": "approved",
                "applicant": "applied"}
LISTED = ("kitchen", "care", "carers", "digital")  # approved or incubating, and described
SERVICES = sum(len(CAPABILITIES[k]) for k in LISTED)


@dataclass
class Directory:
    client: TestClient
    ids: dict[str, UUID]

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get("/oruk" + path, params=params)  # no token: the API is open

    def ok(self, path: str, template: str, **params: Any) -> dict[str, Any]:
        """The answer to GET `path`, after checking it against the profile's schema for
        `template` (a path of the profile's openapi.json)."""
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == "*"
        body: dict[str, Any] = response.json()
        assert oruk_profile.problems_with(body, template) == []
        return body

    def services(self, **params: Any) -> list[dict[str, Any]]:
        body = self.ok("/services", "/services", per_page=200, **params)
        contents: list[dict[str, Any]] = body["contents"]
        return contents


def _post(client: TestClient, path: str, body: dict[str, Any], headers: Auth) -> Any:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), f"{path}: {response.text}"
    return response.json()


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    settings = Settings(var_dir=tmp_path_factory.mktemp("oruk"), relay_interval=0.01)
    tokens = TokenStore(open_database(settings, "identity"))
    admin = {"Authorization": f"Bearer {tokens.create(Role.INTEGRATOR_ADMIN, 'sam').token}"}
    try:
        with TestClient(create_service_app(REGISTRY, settings)) as client:
            ids = {key: UUID(_post(client, "/providers", body, admin)["provider_id"])
                   for key, body in PROVIDERS.items()}
            for key, capabilities in CAPABILITIES.items():
                for capability in capabilities:
                    _post(client, f"/providers/{ids[key]}/capabilities", capability, admin)
            _post(client, f"/providers/{ids['care']}/accreditations",
                  {"kind": "certification", "name": "ISO 9001", "issuer": "BSI",
                   "expires_on": "2030-03-31"}, admin)
            for key, steps in JOURNEYS.items():
                for step in steps:
                    body = ({"support_plan": "Mentoring", "reason": "promising",
                             "milestones": [{"title": "Safeguarding policy adopted"}]}
                            if step == "incubation" else {"reason": "checked by the panel"})
                    _post(client, f"/providers/{ids[key]}/{step}", body, admin)
            built = Directory(client, ids)
            final = {str(ids[k]): status for k, status in FINAL_STATUS.items()}
            eventually(  # the directory projection has caught up with every step
                lambda: {p["provider_id"]: p["status"] for p in client.get(
                    "/providers", params={"limit": 500}, headers=admin).json()["providers"]},
                lambda seen: seen == final)
            yield built
    finally:
        tokens.db.close()


# --------------------------------------------------------------------------- the profile


def test_the_vendored_schemas_refuse_what_the_profile_refuses() -> None:
    service = {"id": str(uuid4()), "name": "S", "status": "active"}
    schema = oruk_profile.response_schema("/services/{id}")
    assert oruk_profile.schema_errors(service, schema) == []
    assert oruk_profile.schema_errors({**service, "status": "open"}, schema)
    assert oruk_profile.schema_errors({**service, "id": "not-a-uuid"}, schema)
    address = {"id": str(uuid4()), "address_1": "1 High St", "city": "Leeds",
               "postal_code": "LS1 1AA", "country": "GB", "address_type": "physical"}
    missing_county = {**service, "service_at_locations": [{
        "id": str(uuid4()), "location": {"id": str(uuid4()), "location_type": "physical",
                                         "addresses": [address]}}]}
    assert "'state_province' is a required property" in str(
        oruk_profile.schema_errors(missing_county, schema))
    assert oruk_profile.undeclared({**service, "phones": []}, schema) == ["/phones"]
    assert oruk_profile.undeclared(
        {"contents": [{**service, "organization": {"legal_status": "x"}}]},
        oruk_profile.response_schema("/services")) == ["/contents/0/organization/legal_status"]


def test_the_api_root_says_what_it_is(directory: Directory) -> None:
    root = directory.ok("/", "/")

    assert root["version"] == "HSDS-UK-3.0"
    assert root["openapi_url"] == "https://openreferraluk.org/specifications/3.0/openapi.json"


def test_every_answer_is_valid_uk_profile(directory: Directory) -> None:
    listed = directory.ok("/services", "/services", per_page=200)
    assert listed["total_items"] == SERVICES
    for service in listed["contents"]:
        directory.ok(f"/services/{service['id']}", "/services/{id}")
    located = directory.ok("/service_at_locations", "/service_at_locations", per_page=200)
    assert located["contents"]
    for item in located["contents"]:
        directory.ok(f"/service_at_locations/{item['id']}", "/service_at_locations/{id}")
    taxonomies = directory.ok("/taxonomies", "/taxonomies")
    for found in taxonomies["contents"]:
        directory.ok(f"/taxonomies/{found['id']}", "/taxonomies/{id}")
    terms = directory.ok("/taxonomy_terms", "/taxonomy_terms", per_page=200)
    assert terms["total_items"] == len(taxonomy().terms)
    for term in terms["contents"]:
        directory.ok(f"/taxonomy_terms/{term['id']}", "/taxonomy_terms/{id}")


# --------------------------------------------------------------------------- what is said


def _by_provider(services: list[dict[str, Any]], directory: Directory, key: str
                 ) -> list[dict[str, Any]]:
    return [s for s in services if s["organization_id"] == str(directory.ids[key])]


def test_a_service_in_full_says_only_what_the_provider_gave(directory: Directory) -> None:
    kitchen = _by_provider(directory.services(), directory, "kitchen")
    cooking = next(s for s in kitchen if s["name"].startswith("Weight"))
    found = directory.ok(f"/services/{cooking['id']}", "/services/{id}")

    assert found["description"] == "Family cooking and healthy eating courses."
    assert found["organization"]["description"] == PROVIDERS["kitchen"]["description"]
    assert found["email"] == "hello@hillside.example"
    assert [a["name"] for a in found["service_areas"]] == ["Headingley"]
    address = found["service_at_locations"][0]["location"]["addresses"][0]
    assert (address["address_1"], address["city"], address["state_province"],
            address["postal_code"], address["country"]) == (
        "Hillside Centre, 2 Chapel Lane", "Leeds", "West Yorkshire", "LS6 3AA", "GB")
    attribute = found["attributes"][0]
    assert attribute["taxonomy_term"]["term"] == "weight-management"
    assert attribute["taxonomy_term_id"] == taxonomy_term_id(taxonomy(), "weight-management")
    youth = next(s for s in kitchen if s["name"].startswith("Youth"))
    assert "description" not in youth  # the capability has none: none is written for it


def test_an_address_without_a_county_gives_no_location(directory: Directory) -> None:
    care = _by_provider(directory.services(), directory, "care")
    assert len(care) == 2
    for listed in care:
        found = directory.ok(f"/services/{listed['id']}", "/services/{id}")
        assert found["organization"]["description"] == "Home care across Leeds."
        assert "service_at_locations" not in found  # its address has no county
        assert found["organization_id"] == str(directory.ids["care"])
    home_care = next(s for s in care if s["name"].startswith("Home care"))
    assert home_care["accreditations"] == "ISO 9001 (BSI), valid until 2030-03-31"
    located = directory.ok("/service_at_locations", "/service_at_locations", per_page=200)
    assert {i["service"]["organization_id"] for i in located["contents"]} == {
        str(directory.ids["kitchen"]), str(directory.ids["carers"])}


def test_only_described_approved_and_incubating_providers_are_listed(
    directory: Directory,
) -> None:
    organisations = {s["organization_id"] for s in directory.services()}

    assert organisations == {str(directory.ids[k]) for k in LISTED}
    for service in directory.services():
        assert service["status"] == "active"


# --------------------------------------------------------------------------- filters


def test_search_and_filters(directory: Directory) -> None:
    def names(**params: Any) -> set[str]:
        return {s["name"].split(" — ")[1] for s in directory.services(**params)}

    tax = taxonomy()
    assert names(search="UNPAID carers") == {"St Mary's Carers Trust"}
    assert names(search="headingley") == {"Hillside Community Kitchen"}
    assert names(search="nothing like this") == set()
    adult_social_care = taxonomy_term_id(tax, "adult-social-care")
    assert names(taxonomy_term_id=adult_social_care) == {
        "Aire Valley Care Ltd", "St Mary's Carers Trust"}  # the terms below it too
    assert names(taxonomy_term_id=str(uuid4())) == set()
    assert len(directory.services(taxonomy_id=taxonomy_id(tax))) == SERVICES
    assert directory.services(taxonomy_id=str(uuid4())) == []
    assert names(organization_id=str(directory.ids["carers"])) == {"St Mary's Carers Trust"}
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert names(modified_after=future) == set()
    assert len(directory.services(modified_after="2000-01-01T00:00:00Z")) == SERVICES

    def located(postcode: str) -> set[str]:
        body = directory.ok("/service_at_locations", "/service_at_locations",
                            postcode=postcode, per_page=200)
        return {i["service"]["organization_id"] for i in body["contents"]}

    assert located("ls63aa") == located("LS6") == {str(directory.ids["kitchen"])}
    assert located("BD1 1AA") == {str(directory.ids["carers"])}
    assert located("LS11") == set()  # care's address is incomplete


@pytest.mark.parametrize(("params", "name"), [
    ({"page": 0}, "page"), ({"per_page": 201}, "per_page"), ({"per_page": "ten"}, "per_page"),
    ({"format": "ndjson"}, "format"), ({"taxonomy_term_id": "home-care"}, "taxonomy_term_id"),
    ({"modified_after": "yesterday"}, "modified_after"),
    ({"modified_after": "2025-01-01T00:00:00"}, "modified_after"),
    ({"search": "x" * 201}, "search"),
])
def test_bad_parameters_are_refused_naming_them(directory: Directory, params: dict[str, Any],
                                                name: str) -> None:
    response = directory.get("/services", **params)

    assert response.status_code == 422
    assert name in response.text
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/services", "/service_at_locations", "/taxonomies",
                                  "/taxonomy_terms"])
def test_an_unknown_id_is_not_found(directory: Directory, path: str) -> None:
    response = directory.get(f"{path}/{uuid4()}")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_taxonomy_terms_filters(directory: Directory) -> None:
    tax = taxonomy()
    top = directory.ok("/taxonomy_terms", "/taxonomy_terms", top_only="true", per_page=200)
    assert {t["term"] for t in top["contents"]} == {
        c for c, t in tax.terms.items() if t.parent is None}
    under = directory.ok("/taxonomy_terms", "/taxonomy_terms",
                         parent_id=taxonomy_term_id(tax, "adult-social-care"), per_page=200)
    assert "home-care" in {t["term"] for t in under["contents"]}
    assert all(tax.terms[t["term"]].parent == "adult-social-care" for t in under["contents"])


# --------------------------------------------------------------------------- open, read-only


def test_open_to_any_web_page_and_read_only(directory: Directory) -> None:
    client = directory.client
    preflight = client.options("/oruk/services", headers={
        "Origin": "https://maps.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "accept"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "GET" in preflight.headers["access-control-allow-methods"]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.request(method, "/oruk/services").status_code == 405
    # The council's own routes keep their tokens and send no CORS header.
    providers = client.get("/providers")
    assert providers.status_code == 401
    assert "access-control-allow-origin" not in providers.headers


# --------------------------------------------------------------------------- a third party


class OrukConsumer:
    """A directory consumer written from the ORUK 3.0 API definition alone: it knows the API's
    base URL and the published paths and fields, nothing of how this service is built."""

    def __init__(self, http: Any, base: str) -> None:
        self.http, self.base = http, base.rstrip("/")

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.http.get(self.base + path, params=params,
                                 headers={"Origin": "https://consumer.example"})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def version(self) -> str:
        return str(self._get("/")["version"])

    def all_services(self, per_page: int) -> tuple[list[dict[str, Any]], int]:
        """Every service, page by page until the last, and how many pages that took."""
        services: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self._get("/services", page=page, per_page=per_page)
            assert body["page_number"] == page
            assert body["size"] == len(body["contents"])
            services += body["contents"]
            if body["last_page"]:
                return services, page
            page += 1

    def service(self, service_id: str) -> dict[str, Any]:
        return self._get(f"/services/{service_id}")


def test_a_third_party_client_reads_the_directory_page_by_page(directory: Directory) -> None:
    consumer = OrukConsumer(directory.client, "http://testserver/oruk/")
    assert consumer.version().startswith("HSDS-UK-3")

    services, pages = consumer.all_services(per_page=2)

    assert pages == -(-SERVICES // 2)
    ids = [s["id"] for s in services]
    assert len(ids) == len(set(ids)) == SERVICES
    assert ids == [s["id"] for s in directory.services()]  # the same order, no gaps
    for summary in services:
        full = consumer.service(summary["id"])
        assert {k: v for k, v in full.items() if k in summary and k != "organization"} == {
            k: v for k, v in summary.items() if k != "organization"}
    beyond = consumer._get("/services", page=pages + 1, per_page=2)
    assert (beyond["empty"], beyond["contents"], beyond["last_page"]) == (True, [], True)
