"""The council's web pages in process: signing in and out, CSRF, what each role sees and may
do, inline messages on forms, and a provider onboarded (through the provider registry's real
HTTP API, served on a free port) and commissioned through the forms, seen in the network,
market and audit pages, and the older state "as of" a date. The browser tests (tests/e2e) run
the same in Chromium."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from council.platform.accounts import UserStore
from council.platform.identity import Role
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.services.integrator.service import SPEC as INTEGRATOR
from council.services.integrator.web import charts, forms
from council.services.integrator.web.session import SESSION_COOKIE
from council.services.integrator.web.sync import wait_caught_up
from council.services.provider_registry.service import SPEC as REGISTRY
from council.tools.tansu import free_port
from tests.waiting import eventually

PASSWORD = "a long enough password"
USERS = {"admin": Role.INTEGRATOR_ADMIN, "jo": Role.COMMISSIONER, "priya": Role.COUNCIL_STAFF,
         "alex": Role.REGULATOR}
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, relay_interval=0.01, provider_registry_port=free_port())


@pytest.fixture
def registry(settings: Settings) -> Iterator[str]:
    """The provider registry, served over real HTTP (the pages call its API)."""
    server = uvicorn.Server(uvicorn.Config(create_service_app(REGISTRY, settings),
                                           host="127.0.0.1",
                                           port=settings.provider_registry_port,
                                           log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = settings.url_of("provider_registry")
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the registry did not start"
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=20)


@pytest.fixture
def users(settings: Settings) -> None:
    db = open_database(settings, "identity")
    try:
        store = UserStore(db)
        for username, role in USERS.items():
            store.create(username, role, f"{username.capitalize()} ({role.value})", PASSWORD)
    finally:
        db.close()


@pytest.fixture
def app(settings: Settings, users: None) -> Iterator[TestClient]:
    with TestClient(create_service_app(INTEGRATOR, settings),
                    follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, username: str, password: str = PASSWORD,
            next_page: str = "/ui/network") -> httpx.Response:
    form = client.get("/ui/sign-in").text
    nonce = re.search(r'name="nonce" value="([^"]+)"', form)
    assert nonce is not None
    return client.post("/ui/sign-in", data={"nonce": nonce.group(1), "username": username,
                                            "password": password, "next": next_page})


def csrf(client: TestClient, page: str = "/ui/network") -> str:
    found = CSRF.search(client.get(page).text)
    assert found is not None
    return found.group(1)


def post(client: TestClient, path: str, data: dict[str, Any], page: str = "/ui/network",
         expect: int = 303) -> httpx.Response:
    response = client.post(path, data={**data, "csrf_token": csrf(client, page)})
    assert response.status_code == expect, response.text[:3000]
    return response


def follow(client: TestClient, response: httpx.Response) -> str:
    assert response.status_code == 303, response.text[:3000]
    page = client.get(response.headers["location"])
    assert page.status_code == 200, page.text[:3000]
    return page.text


def text_of(html: str) -> str:
    """The page's text, tags gone and spaces squashed, for reading like a person would."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def runtime_of(client: TestClient) -> Runtime:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, Runtime)
    return runtime


# --------------------------------------------------------------------------- sessions


def test_pages_need_a_session_which_sign_in_gives_and_sign_out_ends(app: TestClient) -> None:
    away = app.get("/ui/market?as_of=2025-03-31")
    assert away.status_code == 303
    assert away.headers["location"] == "/ui/sign-in?next=/ui/market%3Fas_of%3D2025-03-31"

    wrong = sign_in(app, "admin", "not the password")
    assert wrong.status_code == 401
    assert "The username or password is not right" in wrong.text
    assert "not the password" not in wrong.text  # never echoed back
    blank = sign_in(app, "", "")
    assert blank.status_code == 422
    assert "Enter your username" in blank.text
    assert "Enter your password" in blank.text

    signed = sign_in(app, "admin", next_page="/ui/market?as_of=2025-03-31")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/ui/market?as_of=2025-03-31"
    cookie = signed.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=lax", "Path=/ui", "Max-Age=28800"):
        assert attribute in cookie
    page = app.get("/ui/network")
    assert page.status_code == 200
    assert "Admin (integrator_admin)" in page.text
    assert "Integrator admin" in page.text
    assert page.headers["server-timing"].startswith("app;dur=")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"

    token = app.cookies.get(SESSION_COOKIE)
    assert token is not None
    principal = runtime_of(app).tokens.authenticate(token)
    assert principal is not None
    assert principal.role is Role.INTEGRATOR_ADMIN

    out = post(app, "/ui/sign-out", {})
    assert out.headers["location"] == "/ui/sign-in"
    assert runtime_of(app).tokens.authenticate(token) is None  # revoked, not just forgotten
    app.cookies.set(SESSION_COOKIE, token, path="/ui")
    assert app.get("/ui/network").status_code == 303


def stored_events(client: TestClient, *types: str) -> list[Any]:
    """The integrator's stored events of these types, in order."""
    app = runtime_of(client).app
    events = [app.to_envelope(n)
              for n in app.recorder.select_notifications(start=1, limit=10_000)]
    return [e for e in events if e.type in types]


def test_sign_in_is_throttled_per_account_even_for_the_right_password(app: TestClient) -> None:
    """Found by an outside tester: 30 wrong passwords in 1.9 s, then the right one worked."""
    answers = [sign_in(app, "jo", f"guess number {n}") for n in range(30)]
    assert [a.status_code for a in answers[:4]] == [401] * 4
    assert {a.status_code for a in answers[4:]} == {429}  # the fifth failure begins it
    assert "Too many failed sign-ins to this account" in answers[-1].text
    assert re.search(r"paused until \d\d:\d\d UTC \(in about 15 minutes\)", answers[-1].text)
    assert 0 < int(answers[-1].headers["retry-after"]) <= 900

    right = sign_in(app, "jo")
    assert right.status_code == 429  # refused too, while throttled
    assert SESSION_COOKIE not in app.cookies
    assert app.get("/ui/network").status_code == 303

    # Another account, from the same address, is not held up by jo's throttle.
    assert sign_in(app, "priya").status_code == 303

    # On the trail, as the integrator's events: each failure, and the throttle once, with no
    # password in them; refused attempts while throttled check nothing and add nothing.
    failed = stored_events(app, "SignInFailed")
    throttled = stored_events(app, "SignInThrottled")
    assert [e.data["account_failures"] for e in failed] == [1, 2, 3, 4, 5]
    assert {(e.data["account"], e.data["reason"], e.data["address"]) for e in failed} == {
        ("jo", "wrong_password", "testclient")}
    assert [(e.data["by"], e.data["failures"], e.data["window_seconds"]) for e in throttled] == [
        ("account", 5, 900)]
    assert throttled[0].stream_id == failed[-1].stream_id
    assert all("guess" not in e.model_dump_json() and PASSWORD not in e.model_dump_json()
               for e in failed + throttled)

    # A regulator reads them in the audit trail, from the shared log.
    regulator = runtime_of(app).tokens.create(Role.REGULATOR, "CQC inspector").token
    read = eventually(lambda: app.get(
        "/audit/events", params={"type": ["SignInFailed", "SignInThrottled"]},
        headers={"Authorization": f"Bearer {regulator}"}).text.splitlines(),
        lambda lines: len(lines) == 6)
    assert [json.loads(line)["type"] for line in read][-2:] == ["SignInFailed",
                                                                "SignInThrottled"]


def test_a_throttle_holds_for_another_process_of_the_service(app: TestClient,
                                                              settings: Settings) -> None:
    for n in range(5):
        sign_in(app, "admin", f"guess number {n}")
    with TestClient(create_service_app(INTEGRATOR, settings),
                    follow_redirects=False) as restarted:
        assert sign_in(restarted, "admin").status_code == 429


def test_sign_in_is_throttled_per_client_address(app: TestClient) -> None:
    names = [f"nobody{n}" for n in range(20)]
    answers = [sign_in(app, name, "a guess of a password") for name in names]
    assert answers[-1].status_code == 429
    assert "Too many failed sign-ins to this network address" in answers[-1].text
    assert sign_in(app, "priya").status_code == 429  # a right password, from that address
    elsewhere = TestClient(app.app, follow_redirects=False, client=("198.51.100.4", 50000))
    assert sign_in(elsewhere, "priya").status_code == 303
    failed = stored_events(app, "SignInFailed")
    assert {(e.data["account"], e.data["reason"]) for e in failed} == {
        (None, "unknown_account")}  # a name that is no account is not written down
    assert [e.data["by"] for e in stored_events(app, "SignInThrottled")] == ["address"]


@pytest.mark.parametrize("change", ["disable", "set_password"])
def test_a_disabled_users_or_changed_passwords_sessions_end_at_once(
    app: TestClient, settings: Settings, change: str,
) -> None:
    """Found by an outside tester: a disabled user's open session kept working (8 hours)."""
    sign_in(app, "priya")
    assert app.get("/ui/network").status_code == 200
    token = app.cookies.get(SESSION_COOKIE)
    assert token is not None
    db = open_database(settings, "identity")  # as `council users ...` does, from elsewhere
    try:
        users = UserStore(db)
        if change == "disable":
            assert users.disable("priya")
        else:
            assert users.set_password("priya", "a brand new password")
    finally:
        db.close()
    away = app.get("/ui/network")
    assert away.status_code == 303
    assert away.headers["location"].startswith("/ui/sign-in")
    assert runtime_of(app).tokens.authenticate(token) is None  # revoked


def test_sign_in_goes_back_only_to_our_own_pages(app: TestClient) -> None:
    for elsewhere in ("//evil.example/ui", "https://evil.example/", "/docs"):
        response = sign_in(app, "jo", next_page=elsewhere)
        assert response.headers["location"] == "/ui/", elsewhere  # then home
        app.cookies.clear()


def test_the_sign_in_form_needs_its_own_nonce(app: TestClient) -> None:
    app.get("/ui/sign-in")
    response = app.post("/ui/sign-in", data={"nonce": "forged", "username": "admin",
                                             "password": PASSWORD})
    assert response.status_code == 400
    assert "expired" in response.text
    assert SESSION_COOKIE not in app.cookies


def test_every_form_needs_the_sessions_csrf_token(app: TestClient) -> None:
    sign_in(app, "jo")
    need = {"title": "Anything"}
    assert app.post("/ui/needs", data=need).status_code == 403
    assert app.post("/ui/needs", data={**need, "csrf_token": "0" * 64}).status_code == 403
    other = TestClient(app.app, follow_redirects=False)
    sign_in(other, "admin")
    assert app.post("/ui/needs", data={**need, "csrf_token": csrf(other)}).status_code == 403


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize("username", ["priya", "alex"])
def test_read_only_roles_see_no_forms_and_may_not_post(app: TestClient, username: str) -> None:
    sign_in(app, username)
    for page in ("/ui/network", "/ui/commissioning", "/ui/outcomes", "/ui/market",
                 "/ui/audit", "/ui/audit?as_of=2025-03-31"):
        response = app.get(page)
        assert response.status_code == 200, page
        assert "<form method=\"post\" action=\"/ui/needs\"" not in response.text
        assert "Register a provider" not in response.text
        assert 'action="/ui/sign-out"' in response.text
    refused = post(app, "/ui/needs", {"title": "x"}, expect=403)
    assert "may not change commissioning records" in refused.text
    assert app.get("/ui/providers/new").status_code == 403


def test_odd_search_boxes_and_page_numbers_answer_a_page(app: TestClient) -> None:
    """A page number past any 64-bit integer, and control characters typed in the filters,
    once answered 500 (and a NUL would have been recorded in the audit read)."""
    sign_in(app, "priya")
    for page in ("/ui/audit?page=9223372036854775808", "/ui/audit?q=a%00b&actor=%1B",
                 "/ui/commissioning?service_area=%00"):
        assert app.get(page).status_code == 200, page
    recorded = [data["query"] for kind, data in page_reads(app) if kind == "AuditReadStarted"]
    assert {"path": "/ui/audit", "q": "ab"} in recorded


def page_reads(client: TestClient) -> list[tuple[str, dict[str, Any]]]:
    """The audit reads the pages recorded in the integrator's store, in order."""
    app = runtime_of(client).app
    events = [app.to_envelope(n)
              for n in app.recorder.select_notifications(start=1, limit=10_000)]
    return [(e.type, e.data) for e in events
            if e.type in ("AuditReadStarted", "AuditReadFinished")]


def test_a_regulators_every_page_and_anyones_audit_timeline_is_a_recorded_read(
    app: TestClient,
) -> None:
    sign_in(app, "priya")
    app.get("/ui/network")
    assert page_reads(app) == []  # council staff reading council pages: not an audit read
    app.get("/ui/audit?source=integrator")
    (started, s_data), (finished, f_data) = page_reads(app)
    assert (started, finished) == ("AuditReadStarted", "AuditReadFinished")
    assert (s_data["role"], s_data["endpoint"]) == ("council_staff", "page")
    assert s_data["query"] == {"path": "/ui/audit", "source": "integrator"}
    assert f_data == {"read_id": s_data["read_id"], "returned": 1, "completed": True}

    regulator = TestClient(app.app, follow_redirects=False)
    sign_in(regulator, "alex")
    regulator.get("/ui/market?as_of=2025-03-31")
    regulator.get("/ui/static/site.css")  # not a read of records
    reads = page_reads(app)[2:]
    assert [(kind, data.get("query")) for kind, data in reads] == [
        ("AuditReadStarted", {"path": "/ui/market", "as_of": "2025-03-31"}),
        ("AuditReadFinished", None)]
    assert reads[0][1]["role"] == "regulator"


def test_a_commissioner_commissions_but_takes_no_lifecycle_decisions(app: TestClient) -> None:
    sign_in(app, "jo")
    assert "Define a need" in app.get("/ui/commissioning").text
    assert "Register a provider" in app.get("/ui/network").text
    refused = post(app, f"/ui/providers/{UUID(int=1)}/decision",
                   {"action": "approve", "reason": "looks fine"}, expect=403)
    assert "may not take lifecycle decisions" in refused.text


def test_a_decision_beyond_the_commissioners_authority_is_refused_on_the_page(
    app: TestClient,
) -> None:
    """No scheme of delegation is set: only an integrator admin may decide, and the page says
    so next to the form, answering 403 as the API does."""
    sign_in(app, "jo")
    need_page = follow(app, post(app, "/ui/needs", {
        "title": "Meals at home", "service_area": "weight-management",
        "population.description": "Older people in Brookfield",
        "outcomes.0.description": "Fewer admissions for malnutrition",
        "budget_envelope": "1000.00", "starts_on": "2027-04-01", "ends_on": "2029-03-31"},
        page="/ui/commissioning"))
    need_id = re.search(r"/ui/needs/([0-9a-f-]{36})/options", need_page)
    assert need_id is not None
    need_path = f"/ui/needs/{need_id.group(1)}"
    follow(app, post(app, f"{need_path}/options", {
        "options.0.option": "in_house", "options.0.description": "The council's own team",
        "recommended": "in_house", "rationale": "no market yet"}, page=need_path))
    refused = post(app, f"{need_path}/decisions", {
        "awards.0.title": "Meals", "awards.0.arrangement_type": "grant",
        "awards.0.allocation": "100.00", "awards.0.provider_ids": [str(UUID(int=1))],
        "rationale": "the only option", "decision_maker": "Cabinet Member"},
        page=need_path, expect=403)
    assert "no scheme of delegation is set for Northshire County Council" in text_of(
        refused.text)


# --------------------------------------------------------------------------- forms


def test_a_bad_form_says_what_is_wrong_next_to_each_field(app: TestClient) -> None:
    sign_in(app, "jo")
    response = post(app, "/ui/needs", {
        "title": "", "population.description": "", "population.size": "",
        "outcomes.0.description": "Fewer teenagers living with obesity",
        "budget_envelope": "lots", "starts_on": "2026-04-01", "ends_on": "2025-04-01",
        "service_area": "no-such-area"}, page="/ui/commissioning", expect=422)
    html = response.text
    assert 'role="alert"' in html
    assert "There is a problem" in html
    for field, message in (("title", "Required"),
                           ("budget_envelope", "Enter an amount in pounds, like 12500.00"),
                           ("ends_on", "must be after starts_on"),
                           ("service_area", "not a category of the service taxonomy"),
                           ("population-description", "Required")):
        assert re.search(rf'id="need-{field}-error"><span class="visually-hidden">Error: '
                         rf'</span>{re.escape(message)}', html), field
        assert re.search(rf'id="need-{field}"[^>]*aria-describedby="[^"]*need-{field}-error"'
                         rf'[^>]*aria-invalid="true"', html, re.S), field
        assert f'href="#need-{field}"' in html
    # What was typed is kept, and the form is open where the problem is.
    assert 'value="Fewer teenagers living with obesity"' in html
    assert '<details class="action" id="define-need" open>' in html


def test_form_fields_nest_like_the_commands_they_become() -> None:
    values = {"title": [" Healthy weight "], "population.description": ["Teenagers"],
              "population.size": [""], "outcomes.0.description": ["Fewer"],
              "outcomes.1.description": ["More"], "outputs": ["one\n\n two \n"],
              "awards.0.provider_ids": ["a", "", "b"]}
    assert forms.nest(values, lines=frozenset({"outputs"}),
                      lists=frozenset({"awards.0.provider_ids"})) == {
        "title": "Healthy weight", "population": {"description": "Teenagers"},
        "outcomes": [{"description": "Fewer"}, {"description": "More"}],
        "outputs": ["one", "two"], "awards": [{"provider_ids": ["a", "b"]}]}


def test_charts_are_images_with_their_figures_in_words() -> None:
    svg = str(charts.line_chart("c1", "Obesity <teenagers>", ["2025-Q1", "2025-Q2"], [
        charts.Series("Target", [None, 20], dashed=True), charts.Series("Actual", [21, 19.5])],
        "%"))
    assert svg.startswith('<svg class="chart"')
    assert 'role="img"' in svg
    assert 'aria-labelledby="c1-t c1-d"' in svg
    assert "<title id=\"c1-t\">Obesity &lt;teenagers&gt;</title>" in svg
    assert "Target: 2025-Q2 20; Actual: 2025-Q1 21, 2025-Q2 19.5 (%)" in svg
    assert "stroke-dasharray" in svg
    assert "No figures yet" in str(charts.line_chart("c2", "Empty", [], []))


# --------------------------------------------------------------------------- the whole flow


def field_value(html: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert found is not None, name
    return found.group(1)


def figure(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert found is not None, element_id
    return found.group(1)


def test_a_provider_onboarded_and_commissioned_through_the_pages(
    app: TestClient, registry: str,
) -> None:
    onboard_and_commission(app)


def onboard_and_commission(app: TestClient) -> None:
    """The whole flow through the pages (the integration tests run it on PostgreSQL and
    Kafka too)."""
    sign_in(app, "admin")
    before = app.get("/ui/network").text
    approved_before = int(figure(before, "fig-approved"))
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()

    # Register: the registry's own validation comes back next to the field.
    form = app.get("/ui/providers/new").text
    key = field_value(form, "idempotency_key")
    bad = post(app, "/ui/providers", {"idempotency_key": key, "name": "",
                                      "organisation_type": "vcse",
                                      "contact.email": "not an email"}, expect=422)
    assert 'id="register-name-error"' in bad.text
    assert 'id="register-contact-email-error"' in bad.text
    application = {
        "idempotency_key": key, "name": "Hillside Community Kitchen",
        "organisation_type": "vcse", "description": "Cooking clubs for families",
        "areas_served": ["Brookfield", "Castleton"], "sme_size.headcount": "12",
        "capability.category": "weight-management",
        "capability.description": "Family cooking and activity clubs"}
    registered = post(app, "/ui/providers", application)
    provider_page = follow(app, registered)
    provider_id = registered.headers["location"].rsplit("/", 1)[1]
    assert "Hillside Community Kitchen registered" in provider_page
    assert "Weight management" in text_of(provider_page)
    assert "Applied" in provider_page
    # Sent twice (a double click, a retry): registered once.
    again = post(app, "/ui/providers", application)
    assert again.headers["location"] == f"/ui/providers/{provider_id}"

    # Review and approve: the credentials are shown once.
    follow(app, post(app, f"/ui/providers/{provider_id}/decision",
                     {"action": "review", "reason": "application complete"}))
    approved = post(app, f"/ui/providers/{provider_id}/decision",
                    {"action": "approve", "reason": "meets the standards"}, expect=200)
    assert "shown <strong>only now</strong>" in approved.text
    assert re.search(r'value="cit_[0-9a-f]{12}_', approved.text)
    assert "Approved" in app.get(f"/ui/providers/{provider_id}").text

    # Commission it: need, options, decision, agreement, activation, variation.
    need_page = follow(app, post(app, "/ui/needs", {
        "title": "Healthy weight for Brookfield families", "service_area": "weight-management",
        "population.description": "Families with children aged 5 to 12 in Brookfield",
        "outcomes.0.description": "Fewer children living with obesity",
        "outcomes.0.target": "from 22% to 18%", "outputs": "300 family sessions a year",
        "budget_envelope": "200000.00", "starts_on": "2027-04-01", "ends_on": "2029-03-31"},
        page="/ui/commissioning"))
    need_id = re.search(r"/ui/needs/([0-9a-f-]{36})/options", need_page)
    assert need_id is not None
    need_path = f"/ui/needs/{need_id.group(1)}"
    follow(app, post(app, f"{need_path}/options", {
        "options.0.option": "vcse_grant", "options.0.description": "A grant to a local VCSE",
        "options.0.score": "80", "options.1.option": "in_house",
        "options.1.description": "The council's leisure team", "recommended": "vcse_grant",
        "rationale": "local reach into families"}, page=need_path))
    refused = post(app, f"{need_path}/decisions", {
        "awards.0.title": "Family clubs", "awards.0.arrangement_type": "grant",
        "awards.0.allocation": "900000.00", "awards.0.provider_ids": [provider_id],
        "rationale": "the best local reach", "decision_maker": "Cabinet Member"},
        page=need_path, expect=409)
    assert "only £200,000.00 of the £200,000.00 budget is uncommitted" in refused.text
    decided = follow(app, post(app, f"{need_path}/decisions", {
        "awards.0.title": "Family clubs", "awards.0.arrangement_type": "grant",
        "awards.0.allocation": "150000.00", "awards.0.provider_ids": [provider_id],
        "rationale": "the best local reach", "decision_maker": "Cabinet Member"},
        page=need_path))
    award_id = field_value(decided, "award_id")
    outcome_id = field_value(decided, "outcomes")
    agreement_page = follow(app, post(app, f"{need_path}/agreements", {
        "award_id": award_id, "starts_on": "2027-04-01", "ends_on": "2029-03-31",
        "outcomes": outcome_id, "exit_plan": "hand the clubs to the schools"}, page=need_path))
    agreement_id = re.search(r"/ui/agreements/([0-9a-f-]{36})/sign", agreement_page)
    assert agreement_id is not None
    agreement_path = f"/ui/agreements/{agreement_id.group(1)}"
    # Signed: not in the future, nor before the decision (today); then in force.
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    future = post(app, f"{agreement_path}/sign", {
        "signed_on": tomorrow, "signatories": "Jo Bloggs for the council"},
        page=agreement_path, expect=422)
    assert 'id="sign-signed_on-error"' in future.text
    assert "cannot be in the future" in future.text
    signed = follow(app, post(app, f"{agreement_path}/sign", {
        "signed_on": datetime.now(UTC).date().isoformat(),
        "signatories": "Jo Bloggs for the council\nAmir Khan for Hillside"}, page=agreement_path))
    assert "Jo Bloggs for the council; Amir Khan for Hillside" in signed
    follow(app, post(app, f"{agreement_path}/activate", {"activated_on": "2027-04-01"},
                     page=agreement_path))
    varied = follow(app, post(app, f"{agreement_path}/variations", {
        "kind": "growth", "budget_change": "25000.00", "scope": "two more schools",
        "reason": "demand is higher than forecast"}, page=agreement_path))
    assert "Variation recorded" in varied
    assert figure(varied, "fig-budget") == "£175,000"
    assert "two more schools" in varied

    # The network, market and audit pages show it; as of yesterday, they do not.
    network = app.get("/ui/network?q=hillside").text
    assert int(figure(network, "fig-approved")) == approved_before + 1
    row = text_of(network.split('id="providers"')[1].split("</table>")[0])
    assert "Hillside Community Kitchen VCSE Approved Weight management Brookfield, Castleton" \
        " 1 £175,000" in row
    market = text_of(app.get("/ui/market").text)
    assert "VCSE £175,000 100.0% 1" in market
    audit = app.get("/ui/audit?actor=admin&type=AgreementVaried").text
    assert "1 event." in text_of(audit)
    assert "demand is higher than forecast" in audit
    then = app.get(f"/ui/audit?as_of={yesterday}").text
    assert int(figure(then, "then-approved")) == approved_before
    assert figure(then, "then-agreements") == "0"
    assert "Hillside" not in then
    assert "0 providers match." in text_of(
        app.get(f"/ui/network?q=hillside&as_of={yesterday}").text)
    history = text_of(app.get(f"/ui/providers/{provider_id}").text)
    for event in ("Provider registered", "Provider approved", "Agreement varied",
                  "Agreement drafted"):
        assert event in history
    for page in ("/ui/outcomes", f"/ui/outcomes?agreement_id={agreement_id.group(1)}",
                 f"/ui/commissioning?as_of={yesterday}", f"/ui/market?as_of={yesterday}"):
        assert app.get(page).status_code == 200, page
    assert app.get(f"{agreement_path}?as_of={yesterday}").status_code == 404  # not yet then
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    as_of_tomorrow = app.get(f"{agreement_path}?as_of={tomorrow}")
    assert as_of_tomorrow.status_code == 200
    assert figure(as_of_tomorrow.text, "fig-budget") == "£175,000"
    assert "Agreement varied" in as_of_tomorrow.text  # its history, read from the live timeline
    assert "Family clubs" in app.get(f"{need_path}?as_of={tomorrow}").text
    # The working day's pages read the same read models, on either deployment.
    home = text_of(app.get("/ui/home").text)
    assert "What needs attention" in home
    preview = app.get(f"{need_path}/award-preview?awards.0.provider_ids={provider_id}"
                      "&awards.0.allocation=1000.00")
    assert preview.status_code == 200
    assert "VCSE share" in preview.text
    assert "Hillside Community Kitchen" in app.get(f"{need_path}?pick_type=vcse").text
    follow(app, post(app, "/ui/lessons", {
        "need_id": need_id.group(1), "stage": "decision", "went": "well",
        "what": "The clubs were chosen with the schools", "why": "they know the families",
        "tags": "schools"}, page="/ui/lessons"))
    assert "The clubs were chosen with the schools" in app.get("/ui/lessons?q=schools").text
    exported = app.get("/ui/network/providers.csv?q=hillside")
    assert exported.status_code == 200
    assert "Hillside Community Kitchen" in exported.text


def test_unknown_records_and_dates_answer_plainly(app: TestClient) -> None:
    sign_in(app, "priya")
    for page in (f"/ui/providers/{UUID(int=7)}", f"/ui/needs/{UUID(int=7)}",
                 f"/ui/agreements/{UUID(int=7)}"):
        response = app.get(page)
        assert response.status_code == 404
        assert "There is no" in response.text
    bad_date = app.get("/ui/network?as_of=31/03/2025")
    assert bad_date.status_code == 200
    assert "Enter a date as YYYY-MM-DD" in bad_date.text
    assert app.get("/ui/static/site.css").headers["content-type"].startswith("text/css")
    assert app.get("/ui/static/../service.py").status_code == 404


def test_the_web_read_models_rebuild_to_the_same_answer(app: TestClient, registry: str) -> None:
    # The registry's events only: each view of the timeline is itself an event (an audit read).
    timeline = "/ui/audit?source=provider_registry"
    sign_in(app, "admin")
    form = app.get("/ui/providers/new").text
    created = post(app, "/ui/providers", {
        "idempotency_key": field_value(form, "idempotency_key"), "name": "Riverside Meals",
        "organisation_type": "sme", "sme_size.headcount": "8",
        "sme_size.turnover_gbp": "400000", "areas_served": ["Fenwick"]})
    provider_id = created.headers["location"].rsplit("/", 1)[1]
    post(app, f"/ui/providers/{provider_id}/accreditations", {
        "kind": "insurance", "name": "Public liability insurance",
        "expires_on": (date.today() - timedelta(days=1)).isoformat()},
        page=f"/ui/providers/{provider_id}")
    page = text_of(app.get(f"/ui/providers/{provider_id}").text)
    assert "Public liability insurance Insurance" in page
    assert "Expired" in page
    runtime = runtime_of(app)
    wait_caught_up(runtime)
    live = [app.get(f"/ui/providers/{provider_id}").text.split('id="history"')[0],
            app.get(timeline).text.split('id="network-then"')[1]]
    for name in ("integrator.standing", "integrator.timeline"):
        assert runtime.runner(name).rebuild() > 0
    rebuilt = [app.get(f"/ui/providers/{provider_id}").text.split('id="history"')[0],
               app.get(timeline).text.split('id="network-then"')[1]]
    assert rebuilt == live


def test_as_of_views_kept_for_reuse_match_a_full_replay_of_the_log(
    app: TestClient, registry: str,
) -> None:
    from council.services.integrator.projections import projections
    from council.services.integrator.projections.asof import state_as_of
    from council.services.integrator.projections.market import market_view
    from council.services.integrator.projections.network import list_providers, network_summary
    from council.services.integrator.web.views import AsOfViews

    def seen(db: Any) -> tuple[Any, ...]:
        return market_view(db), network_summary(db), list_providers(db)

    sign_in(app, "admin")
    runtime = runtime_of(app)

    def register(name: str) -> str:
        form = app.get("/ui/providers/new").text
        created = post(app, "/ui/providers", {
            "idempotency_key": field_value(form, "idempotency_key"), "name": name,
            "organisation_type": "community_group", "areas_served": ["Eastmoor"]})
        return str(created.headers["location"]).rsplit("/", 1)[1]

    first = register("Eastmoor Men's Shed")
    post(app, f"/ui/providers/{first}/decision", {"action": "review", "reason": "complete"})
    tomorrow = datetime.now(UTC) + timedelta(days=1)

    def replayed() -> tuple[Any, ...]:
        # Named projections: a plain replay of the whole log, not the snapshot store.
        with state_as_of(runtime.event_log, None, tomorrow, list(projections())) as db:
            return seen(db)

    views = AsOfViews.of(runtime)
    assert AsOfViews.of(runtime) is views
    with views.reading(runtime, tomorrow) as db:
        remembered = seen(db)
        with views.reading(runtime, tomorrow) as again:
            assert again is db  # nothing new: the same rebuilt database
    assert remembered == replayed()

    register("Eastmoor Repair Cafe")  # new events: a new rebuild, from the new records too
    with views.reading(runtime, tomorrow) as db:
        assert db is not again
        now = seen(db)
    assert now == replayed()
    assert [p.name for p in now[2]] == ["Eastmoor Men's Shed", "Eastmoor Repair Cafe"]
    assert [p.status.value for p in remembered[2]] == ["under_review"]



# --------------------------------------------------------------------------- scoped regulators


@pytest.fixture
def network(settings: Settings, users: None) -> Iterator[TestClient]:
    """The integrator over a log holding test_network_state's two years of history: Acorn Care
    (P1) holds AG1, Beacon Trust (P2) holds AG2 and a share of AG4, all under needs N1 and N2."""
    from council.platform.eventlog import open_event_log
    from tests.unit.test_network_state import history

    event_log = open_event_log(settings)
    try:
        event_log.append(history().in_time_order())
    finally:
        event_log.close()
    with TestClient(create_service_app(INTEGRATOR, settings), follow_redirects=False) as client:
        wait_caught_up(runtime_of(client))
        yield client


def scoped_session(client: TestClient, *scope: str) -> TestClient:
    """A browser whose session cookie carries a scoped regulator's token (the pages take any
    token of a role they serve as a session)."""
    from council.platform.identity import Scope

    issued = runtime_of(client).tokens.create(Role.REGULATOR, "CQC inspector",
                                              scope=Scope.parse(scope))
    browser = TestClient(client.app, follow_redirects=False)
    browser.cookies.set(SESSION_COOKIE, issued.token, path="/ui")
    return browser


def test_a_scoped_regulator_sees_only_its_scope_in_the_pages(network: TestClient) -> None:
    """Found by an outside tester: a token scoped to one provider and one year opened another
    provider's page, the network page and that provider's agreements, where the API said 403."""
    from tests.unit.test_network_state import AG1, AG2, AG4, N1, P1, P2

    regulator = scoped_session(network, f"provider={P1}", "from=2024-04-01",
                               "to=2025-03-31")
    for path in (f"/ui/providers/{P2}", "/ui/network", f"/ui/agreements/{AG2}",
                 f"/ui/agreements/{AG4}", f"/ui/needs/{N1}", "/ui/commissioning",
                 "/ui/outcomes", "/ui/market", "/ui/providers/new",
                 f"/ui/providers/{P1}?as_of=2025-06-30", "/ui/audit?as_of=2024-01-31"):
        refused = regulator.get(path)
        assert refused.status_code == 403, path
        assert "Not allowed" in refused.text, path  # the friendly page, not an error
        assert "Beacon Trust" not in refused.text, path
    assert regulator.get("/ui/").headers["location"] == f"/ui/providers/{P1}"

    own = regulator.get(f"/ui/providers/{P1}")
    assert own.status_code == 200
    assert "Acorn Care" in own.text
    assert "2025-03-31" in own.text  # shown as of the end of its dates, not now
    assert "Provider suspended" not in own.text
    assert f'href="/ui/agreements/{AG1}"' in own.text
    assert 'href="/ui/network"' not in own.text  # no links out of the scope
    assert 'href="/ui/market"' not in own.text
    agreement = regulator.get(f"/ui/agreements/{AG1}")
    assert agreement.status_code == 200
    assert f'href="/ui/needs/{N1}"' not in agreement.text
    assert 'href="/ui/commissioning"' not in agreement.text

    trail = regulator.get("/ui/audit")
    assert trail.status_code == 200
    shown = text_of(trail.text.split('id="events"')[1])
    assert "Agreement a1" in shown
    assert "Agreement varied" in shown  # AG1's growth, 2025-02-15
    for outside in ("Beacon Trust", "Delta Health", "Provider registered",  # 2024-01-10
                    "Provider suspended",  # P3, after its dates
                    "Audit read started"):  # others' reads (and its own) are not events to it
        assert outside not in shown, outside
    assert f'href="/ui/providers/{P2}"' not in trail.text

    # An unscoped regulator and the API are as they were.
    sign_in(network, "alex")
    assert network.get(f"/ui/providers/{P2}").status_code == 200
    assert network.get("/ui/network").status_code == 200


def test_an_organisation_scope_opens_its_needs_and_their_agreements(network: TestClient) -> None:
    from tests.unit.test_network_state import AG1, N1, N3, P1

    police = scoped_session(network, "organisation=Northshire Police")
    assert police.get(f"/ui/needs/{N1}").status_code == 200
    assert police.get(f"/ui/agreements/{AG1}").status_code == 200
    assert police.get(f"/ui/needs/{N3}").status_code == 403
    assert police.get(f"/ui/providers/{P1}").status_code == 403
    assert police.get("/ui/").headers["location"] == "/ui/audit"


def test_the_network_lists_csv_links_a_data_package_it_conforms_to(
        network: TestClient, tmp_path: Path) -> None:
    """Every CSV the council publishes says what each column holds (issue 17): the network
    list's export too, so a typed reader keeps the money as numbers and the ids as text."""
    from tests.tables import assert_package, schema_errors, typed_rows

    assert sign_in(network, "jo").status_code == 303
    exported = network.get("/ui/network/providers.csv?sort=committed&dir=desc")
    assert exported.status_code == 200, exported.text
    link = exported.headers["link"]
    assert 'rel="describedby"' in link
    package = network.get(link[link.index("<") + 1: link.index(">")]).json()
    assert_package(package)
    text = exported.content.decode("utf-8-sig")
    assert schema_errors(package, text, tmp_path) == []
    rows = typed_rows(package, text)
    assert rows
    assert all(isinstance(r["Active agreements"], int) for r in rows)
    assert [r["Committed (£)"] for r in rows] == sorted(
        (r["Committed (£)"] for r in rows), reverse=True)
