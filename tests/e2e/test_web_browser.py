"""The council's web pages in headless Chromium, against the three services as real processes
holding the demo data: sign in, onboard a provider, commission it, record a variation, see the
network and market views change, pick an "as of" date and see the older state; every page is
screenshotted (var/artefacts/web/, or COUNCIL_ARTEFACTS_DIR) and checked with axe-core (no
serious or critical WCAG 2.2 A/AA violation) and for fitting a laptop screen."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from council.platform.identity import Role
from council.tools.cli import demo_users
from tests.e2e.browser import ARTEFACTS, Browser, chromium, require_browser
from tests.e2e.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

ROLES = {"admin": Role.INTEGRATOR_ADMIN, "commissioner": Role.COMMISSIONER,
         "staff": Role.COUNCIL_STAFF, "regulator": Role.REGULATOR}
PASSWORDS: dict[str, str] = {}
PROVIDER = "Hillside Community Kitchen"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_browser()
    built = Stack(tmp_path_factory.mktemp("web"), {"COUNCIL_LOG_URL": "embedded"})
    loaded = subprocess.run([sys.executable, "-m", "council.tools.cli", "demo"], env=built.env,
                            capture_output=True, text=True, timeout=600, check=False)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    # The demo's users, as `council up --demo` makes them (new passwords each time).
    PASSWORDS.update({username: password for username, _, password in demo_users(built.settings)})
    assert set(PASSWORDS) == set(ROLES)
    built.start_all()
    built.wait_caught_up()  # the pages then show the whole demo from the first look
    yield built
    built.stop_all()


@pytest.fixture
def browser(stack: Stack, request: pytest.FixtureRequest,
            capsys: pytest.CaptureFixture[str]) -> Iterator[Browser]:
    folder = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")
    with chromium(stack.url("integrator"), ARTEFACTS / folder) as tab:
        yield tab
        with capsys.disabled():
            print(f"\n{request.node.name}: {tab.report()}")
        problems = tab.problems()
        assert not problems, "\n".join(problems)


def sign_in(tab: Browser, username: str) -> None:
    tab.goto("/ui/")
    tab.page.fill("#sign-in-username", username)
    tab.page.fill("#sign-in-password", PASSWORDS[username])
    tab.page.click("button:has-text('Sign in')")
    tab.page.wait_for_url("**/ui/home")  # what needs attention


def text(tab: Browser, selector: str) -> str:
    return str(tab.page.inner_text(selector)).strip()


def pounds(shown: str) -> Decimal:
    return Decimal(re.sub(r"[£,]", "", shown))


def open_form(tab: Browser, summary: str) -> None:
    tab.page.click(f"summary:has-text('{summary}')")


def submit(tab: Browser, form: str, label: str) -> None:
    with tab.page.expect_navigation():
        tab.page.click(f"{form} button:has-text('{label}')")


def vcse_committed(tab: Browser) -> Decimal:
    return pounds(text(tab, "#shares-table tr:has(th:text-is('VCSE')) td:nth-of-type(1)"))


def outcomes_for(stack: Stack, agreement_id: str) -> None:
    """A measure with its trajectory and three quarters measured, attributed to the agreement
    with a rate per point of improvement: the outcomes service's own API."""
    measure = stack.post("outcomes", "/measures", {
        "name": "Children living with obesity in Brookfield", "unit": "%",
        "direction": "lower_is_better", "baseline": "22.0", "baseline_period": "2025-Q4",
        "trajectory": [{"period": f"2026-Q{q}", "target": t}
                       for q, t in ((1, "21.5"), (2, "21.0"), (3, "20.5"), (4, "20.0"))]})
    assert measure.status_code == 201, measure.text
    measure_id = measure.json()["measure_id"]
    for quarter, value in ((1, "21.4"), (2, "21.1"), (3, "20.2")):
        recorded = stack.post("outcomes", f"/measures/{measure_id}/measurements", {
            "period": f"2026-Q{quarter}", "value": value, "source": "NCMP (test)"})
        assert recorded.status_code == 201, recorded.text

    def attributed() -> bool:  # once the outcomes service has the agreement from the log
        return stack.post("outcomes", f"/agreements/{agreement_id}/attributions",
                          {"measure_id": measure_id, "weight": "1"}).status_code == 201

    wait_for(attributed, 30, "the attribution")
    card = httpx.put(f"{stack.url('outcomes')}/agreements/{agreement_id}/rate-card",
                     json={"periodicity": "quarterly",
                           "outcome_rates": [{"measure_id": measure_id, "rate": "5000.00"}]},
                     headers=stack.headers(), timeout=10)
    assert card.status_code == 200, card.text


def test_onboard_commission_vary_and_look_back(stack: Stack, browser: Browser) -> None:
    tab, page = browser, browser.page
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()

    # Signing in; the first tab stop skips to the content.
    tab.goto("/ui/market")
    assert "/ui/sign-in" in page.url
    tab.checked("sign-in")
    sign_in(tab, "admin")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to main content"
    tab.goto("/ui/network")
    tab.checked("network")
    approved_before = int(text(tab, "#fig-approved"))
    committed_before = text(tab, "#fig-committed")
    tab.goto("/ui/market")
    vcse_before = vcse_committed(tab)
    tab.checked("market-before")

    # Onboarding: the registry's refusal shows on the form, then the provider is registered,
    # reviewed and approved (its credentials shown once).
    tab.goto("/ui/network")
    page.click("text=Register a provider")
    tab.checked("register")
    page.select_option("#register-organisation_type", "vcse")
    submit(tab, "#register", "Register the application")
    assert "Required" in text(tab, "#register-name-error")
    tab.checked("register-refused")
    page.fill("#register-name", PROVIDER)
    page.fill("#register-description", "Cooking and activity clubs for families")
    page.check("input[name=areas_served][value=Brookfield]")
    page.select_option("#register-capability-category", "weight-management")
    submit(tab, "#register", "Register the application")
    assert f"{PROVIDER} registered" in text(tab, ".flash")
    provider_path = re.sub(r"^https?://[^/]+", "", page.url)
    tab.checked("provider-applied")
    for action, reason in (("review", "application complete"),
                           ("approve", "due diligence done: insurance and safeguarding")):
        open_form(tab, "Lifecycle decision")
        page.select_option("#decide-action", action)
        page.fill("#decide-reason", reason)
        submit(tab, "form[action$='/decision']", "Record the decision")
    assert page.input_value("#token").startswith("cit_")
    tab.checked("credentials")
    page.click(f"text=Continue to {PROVIDER}")
    assert "Approved" in text(tab, ".page-head")
    tab.checked("provider-approved")
    provider_id = provider_path.rsplit("/", 1)[1]

    # Commissioning: a need (first refused with a message at each field), options, a
    # decision awarding to the new provider, its agreement, in force, then varied.
    page.click("nav >> text=Commissioning")
    tab.checked("commissioning")
    open_form(tab, "Define a need")
    submit(tab, "#define-need", "Define the need")
    assert "Required" in text(tab, "#need-title-error")
    assert page.evaluate("() => document.activeElement.id") == "need-errors"
    assert page.get_attribute("#need-title", "aria-invalid") == "true"
    tab.checked("need-refused")
    page.fill("#need-title", "Healthy weight for Brookfield families")
    page.select_option("#need-service_area", "weight-management")
    page.fill("#need-population-description", "Families with children aged 5 to 12")
    page.fill("#need-outcomes-0-description", "Fewer children living with obesity")
    page.fill("#need-budget_envelope", "200000.00")
    page.fill("#need-starts_on", "2026-01-01")
    page.fill("#need-ends_on", "2028-12-31")
    submit(tab, "#define-need", "Define the need")
    assert "Need defined" in text(tab, ".flash")
    open_form(tab, "Appraise the options")
    page.select_option("#options-options-0-option", "vcse_grant")
    page.fill("#options-options-0-description", "A grant to a local VCSE")
    page.select_option("#options-recommended", "vcse_grant")
    page.fill("#options-rationale", "reaches families the council does not")
    submit(tab, "#options", "Record the appraisal")
    open_form(tab, "Record market engagement")  # the step before a decision
    page.fill("#engagement-summary", "met the family clubs in Brookfield")
    submit(tab, "#engagement", "Record the engagement")
    open_form(tab, "Record a commissioning decision")
    page.fill("#decision-awards-0-title", "Family clubs")
    page.select_option("#decision-awards-0-arrangement_type", "grant")
    page.fill("#decision-awards-0-allocation", "150000.00")
    page.check(f"#decision-pick-{provider_id}")  # the picker finds it by its capability
    page.fill("#decision-rationale", "the best local reach")
    page.fill("#decision-decision_maker", "Cabinet Member for Public Health")
    submit(tab, "#decision", "Record the decision")
    tab.checked("need-decided")
    open_form(tab, "Draft the agreement for this award")
    page.check("details[open] input[name=outcomes]")
    page.fill("details[open] textarea[name=exit_plan]", "hand the clubs to the schools")
    submit(tab, "details[open]", "Draft the agreement")
    assert "Agreement drafted" in text(tab, ".flash")
    agreement_path = re.sub(r"^https?://[^/]+", "", page.url)
    open_form(tab, "Record the signatures")
    page.fill("#sign-signatories", "Jo Bloggs for the council\nAmir Khan for Hillside")
    submit(tab, "#sign", "Record the signatures")
    assert "Signature recorded" in text(tab, ".flash")
    open_form(tab, "Bring into force")
    submit(tab, "#activate", "Bring into force")
    open_form(tab, "Record a variation")
    page.select_option("#vary-kind", "growth")
    page.fill("#vary-budget_change", "25000.00")
    page.fill("#vary-scope", "two more schools")
    page.fill("#vary-reason", "demand is higher than forecast")
    submit(tab, "#vary", "Record the variation")
    assert "Variation recorded" in text(tab, ".flash")
    assert text(tab, "#fig-budget") == "£175,000"
    tab.checked("agreement-varied")

    # The network and the market have changed.
    page.click("nav >> text=Network")
    assert int(text(tab, "#fig-approved")) == approved_before + 1
    assert text(tab, "#fig-committed") != committed_before
    page.fill("#q", "Hillside")
    with page.expect_navigation():
        page.click("button:has-text('Search')")
    row = text(tab, "#providers tbody tr")
    assert PROVIDER in row
    assert "£175,000" in row
    tab.checked("network-after")
    page.click("nav >> text=Market")
    assert vcse_committed(tab) == vcse_before + Decimal(175_000)
    tab.checked("market-after")
    # Outcomes: the outcomes service measures the result and pays for it; the page charts it.
    agreement_id = agreement_path.rsplit("/", 1)[1]
    outcomes_for(stack, agreement_id)
    section = "section:has(#by-agreement)"
    for _ in range(60):  # the log brings it over; the payments process settles the quarters
        tab.goto(f"/ui/outcomes?agreement_id={agreement_id}")
        if "No payment calculated yet" not in text(tab, section) and "Children living" in \
                text(tab, section):
            break
        page.wait_for_timeout(500)
    shown = text(tab, section)
    assert "Children living with obesity in Brookfield" in shown
    assert "No payment calculated yet" not in shown
    assert page.locator(f"{section} svg[role=img]").count() == 3  # achieved, paid, the measure
    tab.checked("outcomes")

    # The audit timeline has it all, newest first; as of yesterday, the older network.
    page.click("nav >> text=Audit timeline")
    latest = text(tab, ".timeline")  # the newest 50
    for event in ("Payment calculated", "Agreement varied", "Provider approved"):
        assert event in latest
    tab.checked("audit")
    page.fill("#a-as-of", yesterday)
    with page.expect_navigation():
        page.click("form[role=search] button:has-text('Show')")
    assert "As it stood at the end of" in text(tab, ".as-of-banner")
    assert int(text(tab, "#then-approved")) == approved_before
    newest = datetime.strptime(text(tab, ".timeline li:first-child .when"), "%d %b %Y %H:%M")
    assert newest.date().isoformat() <= yesterday
    assert PROVIDER not in text(tab, ".timeline")
    tab.checked("audit-as-of")
    page.click("text=The whole network on")
    assert int(text(tab, "#fig-approved")) == approved_before
    assert text(tab, "#fig-committed") == committed_before
    tab.checked("network-as-of")
    tab.goto(f"/ui/network?q=Hillside&as_of={yesterday}")
    assert text(tab, "#matched") == "0 providers match."
    tab.goto(provider_path)
    history = text(tab, "#history ~ .scroll")
    for event in ("Provider registered", "Provider approved", "Agreement drafted",
                  "Agreement varied"):
        assert event in history
    tab.checked("provider-history")


@pytest.mark.parametrize("username", ["staff", "regulator", "commissioner"])
def test_each_role_sees_what_it_may_do(stack: Stack, browser: Browser, username: str) -> None:
    tab, page = browser, browser.page
    sign_in(tab, username)
    tab.goto("/ui/network")
    writer = ROLES[username] is Role.COMMISSIONER
    assert page.locator("text=Register a provider").count() == (1 if writer else 0)
    tab.checked(f"{username}-network")
    first = page.locator("#providers tbody tr:has-text('Approved') a").first
    first.click()
    assert page.locator("summary:has-text('Lifecycle decision')").count() == 0
    assert page.locator("summary:has-text('Add a capability')").count() == (1 if writer else 0)
    tab.checked(f"{username}-provider")
    page.click("nav >> text=Commissioning")
    assert page.locator("summary:has-text('Define a need')").count() == (1 if writer else 0)
    page.click("#needs-table tbody tr:first-child a")
    assert page.locator("#steps").count() == (1 if writer else 0)
    tab.checked(f"{username}-need")
    page.click("nav >> text=Audit timeline")
    assert page.locator(".timeline li").count() > 0
    # Keyboard only: a folded section opens from its summary.
    page.click("nav >> text=Network")
    area = page.locator("details.area summary").first
    area.focus()
    page.keyboard.press("Enter")
    assert page.locator("details.area").first.get_attribute("open") is not None


def test_every_page_reports_its_server_time(stack: Stack, browser: Browser) -> None:
    """A regulator's round of the read-only pages, each checked and timed (the server's own
    time from its Server-Timing header, printed with the report; tests never assert on time:
    `council bench --deployment pages` measures)."""
    tab = browser
    sign_in(tab, "regulator")
    paths: list[tuple[str, str]] = [("network", "/ui/network"),
                                    ("commissioning", "/ui/commissioning"),
                                    ("outcomes", "/ui/outcomes"), ("market", "/ui/market"),
                                    ("audit", "/ui/audit"),
                                    ("market-as-of", "/ui/market?as_of=2025-03-31")]
    for name, path in paths:
        tab.goto(path)
        visit = tab.checked(f"regulator-{name}")
        assert visit.server_ms is not None, f"{path} sent no Server-Timing"


def test_a_scoped_regulator_sees_its_provider_and_nothing_else(stack: Stack,
                                                                browser: Browser) -> None:
    """A regulator's token scoped to one provider and one year, as a session: its provider's
    page, as of the year's end, and the audit timeline; another provider's page and the
    network are refused with the friendly page."""
    from council.platform.identity import Scope, TokenStore
    from council.platform.sql import open_database

    state = stack.get("integrator", "/network/state")
    holders = [p for p in state["providers"] if p["active_agreements"]]
    mine, other = holders[0], holders[1]
    db = open_database(stack.settings, "identity")
    try:
        token = TokenStore(db).create(Role.REGULATOR, "CQC inspector", scope=Scope.parse(
            [f"provider={mine['provider_id']}", "from=2025-04-01", "to=2026-03-31"])).token
    finally:
        db.close()
    tab, page = browser, browser.page
    page.context.add_cookies([{"name": "council_session", "value": token,
                               "url": tab.url("/ui/")}])
    tab.goto("/ui/")
    page.wait_for_url(f"**/ui/providers/{mine['provider_id']}")
    assert "As it stood at the end of 31 Mar 2026" in text(tab, "main")
    links = page.locator("nav[aria-label='Main'] a")
    assert links.all_inner_texts() == ["Audit timeline"]  # the only way out of its scope
    tab.checked("scoped-provider")
    tab.goto(f"/ui/providers/{other['provider_id']}")
    assert text(tab, "h1") == "Not allowed"
    tab.checked("scoped-refused")
    tab.goto("/ui/network")
    assert text(tab, "h1") == "Not allowed"
    tab.goto("/ui/audit")
    assert page.locator(".timeline li").count() > 0
    tab.checked("scoped-audit")


def test_sign_in_is_paused_after_failures_saying_until_when(stack: Stack,
                                                            browser: Browser) -> None:
    tab, page = browser, browser.page
    for attempt in range(5):
        tab.goto("/ui/sign-in")
        page.fill("#sign-in-username", "mallory")
        page.fill("#sign-in-password", f"guess number {attempt}")
        with page.expect_navigation():
            page.click("button:has-text('Sign in')")
    said = text(tab, "main")
    assert "Too many failed sign-ins to this account" in said
    assert re.search(r"paused until \d\d:\d\d UTC", said)
    tab.checked("sign-in-throttled")
