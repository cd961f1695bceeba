"""The commissioning team's working day in headless Chromium, over the three services as
processes holding the demo data: a need walked through the eight strategic-sourcing steps
(by keyboard alone where a person types), what needs attention on the home page, providers
picked with the award preview changing, the network list sorted, paged and exported, lessons
recorded and found again on a similar need, and the friendly pages for errors. Every page is
screenshotted and checked with axe-core, as in test_web_browser."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from council.tools.cli import demo_users
from tests.e2e.browser import ARTEFACTS, Browser, chromium, require_browser
from tests.e2e.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

PASSWORDS: dict[str, str] = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_browser()
    built = Stack(tmp_path_factory.mktemp("day"), {"COUNCIL_LOG_URL": "embedded"})
    loaded = subprocess.run([sys.executable, "-m", "council.tools.cli", "demo"], env=built.env,
                            capture_output=True, text=True, timeout=600, check=False)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    PASSWORDS.update({username: password for username, _, password in demo_users(built.settings)})
    built.start_all()
    built.wait_caught_up()
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
    tab.goto("/ui/sign-in")
    tab.page.fill("#sign-in-username", username)
    tab.page.fill("#sign-in-password", PASSWORDS[username])
    with tab.page.expect_navigation():
        tab.page.click("button:has-text('Sign in')")


def text(tab: Browser, selector: str) -> str:
    return str(tab.page.inner_text(selector)).strip()


def path_of(tab: Browser) -> str:
    return re.sub(r"^https?://[^/]+", "", tab.page.url)


def focused(tab: Browser) -> str:
    return str(tab.page.evaluate("() => document.activeElement.id || "
                                 "document.activeElement.textContent.trim()"))


def tab_to(tab: Browser, target: str, limit: int = 120) -> None:
    """Press Tab until the element with id (or, for a button, text) `target` has the focus:
    it must be reachable from the keyboard, in the page's order."""
    for _ in range(limit):
        if focused(tab) == target:
            return
        tab.page.keyboard.press("Tab")
    raise AssertionError(f"{target} is not reachable with the Tab key (stuck at {focused(tab)})")


def by_keyboard(tab: Browser, summary: str, fields: dict[str, str], button: str) -> None:
    """Open a folded form from its summary with Enter, fill each field in the page's order
    by Tab and typing (a select takes the typed start of its option's words), and send it
    with Enter on its button: what a person without a mouse does. A date (YYYY-MM-DD) is
    reached by Tab and then set, since how its parts are typed is the browser's locale's."""
    page = tab.page
    page.locator(f"summary:has-text('{summary}')").first.focus()
    page.keyboard.press("Enter")
    for field_id, value in fields.items():
        tab_to(tab, field_id)
        kind = page.evaluate("(id) => document.getElementById(id).type", field_id)
        if kind.startswith("select"):
            page.keyboard.type(value, delay=20)
        elif kind == "date":
            page.fill(f"#{field_id}", value)
        else:
            page.keyboard.type(value)
    tab_to(tab, button)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def current_step(tab: Browser) -> str:
    return text(tab, ".steps li[aria-current=step] .step-title")


def checks(tab: Browser, where: str, met: bool) -> str:
    """The checklist's items met (or not yet met) in `where`, one a line."""
    return "\n".join(tab.page.locator(f"{where} li.{'met' if met else 'unmet'}")
                     .all_inner_texts())


def summaries(tab: Browser) -> list[str]:
    return [s.strip() for s in tab.page.locator("#steps summary").all_inner_texts()]


def test_a_need_walks_the_eight_steps_by_keyboard(stack: Stack, browser: Browser) -> None:
    tab, page = browser, browser.page
    sign_in(tab, "admin")
    tab.goto("/ui/commissioning")
    by_keyboard(tab, "Define a need", {
        "need-title": "Active travel to school in Ashby",
        "need-service_area": "Transport",
        "need-population-description": "Children at Ashby's primary schools",
        "need-outcomes-0-description": "More children walk or cycle to school",
        "need-budget_envelope": "60000.00",
        "need-starts_on": "2027-04-01", "need-ends_on": "2029-03-31"}, "Define the need")
    assert "Need defined" in text(tab, "main"), text(tab, "main")[:1500]
    need_path = path_of(tab)

    # Step 1: only what this step needs is offered; the checklist says what is missing.
    assert page.locator(".steps li").count() == 8
    assert current_step(tab) == "Specify the objectives"
    assert summaries(tab) == ["Record a partner's contribution (pooled budget)",
                              "Appraise the options"]
    assert "Each outcome tied to an outcome measure" in checks(tab, ".current-step", met=False)
    tab.checked("step-1-objectives")

    by_keyboard(tab, "Appraise the options", {
        "options-options-0-option": "VCSE",
        "options-options-0-description": "A grant to the walking bus charity",
        "options-options-0-score": "75",
        "options-options-1-option": "In",
        "options-options-1-description": "The council's road safety team",
        "options-options-1-score": "60",
        "options-recommended": "VCSE",
        "options-rationale": "volunteers already run two walking buses"}, "Record the appraisal")
    assert current_step(tab) == "Appraise the options"
    assert "A range of options (at least two)" in checks(tab, ".current-step", met=True)
    assert "Record market engagement" in summaries(tab)
    assert "Record a commissioning decision (awards)" not in summaries(tab)
    history = page.locator("#step-objectives")
    history.locator("summary").focus()
    page.keyboard.press("Enter")
    assert "Need defined" in history.inner_text()
    tab.checked("step-2-options")

    by_keyboard(tab, "Record market engagement", {
        "engagement-summary": "A morning with the walking bus charities"},
        "Record the engagement")
    assert current_step(tab) == "Engage the market"
    assert "Record a commissioning decision (awards)" in summaries(tab)
    tab.checked("step-3-engagement")

    page.click("summary:has-text('Record a commissioning decision')")
    page.fill("#decision-awards-0-title", "Walking buses")
    page.select_option("#decision-awards-0-arrangement_type", "grant")
    page.fill("#decision-awards-0-allocation", "40000.00")
    page.locator("#decision-form .candidates input[type=checkbox]").first.check()
    page.fill("#decision-rationale", "the charity's volunteers are already there")
    page.fill("#decision-decision_maker", "Head of Commissioning")
    with page.expect_navigation():
        page.click("#decision button:has-text('Record the decision')")
    assert "Decision recorded" in text(tab, ".flash"), text(tab, "main")
    assert current_step(tab) == "Decide and award"
    assert "Awards within the pooled budget" in checks(tab, ".current-step", met=True)
    tab.checked("step-4-decision")

    page.click("summary:has-text('Draft the agreement for this award')")
    page.check("details[open] input[name=outcomes]")
    page.fill("details[open] textarea[name=exit_plan]", "the schools take the buses on")
    with page.expect_navigation():
        page.click("details[open] button:has-text('Draft the agreement')")
    assert "Agreement drafted" in text(tab, ".flash")
    tab.goto(need_path)
    by_keyboard(tab, "Move on to the next step", {
        "stage-stage": "Mob", "stage-notes": "agreement drafted; signatures next"},
        "Record the stage")
    assert current_step(tab) == "Mobilise"
    assert "An agreement drafted for every award" in checks(tab, ".current-step", met=True)
    assert "Every agreement signed and in force" in checks(tab, ".current-step", met=False)
    page.click("a:has-text('Decide and award')")
    assert "Commissioning decided" in text(tab, "#step-decision")
    tab.checked("step-5-mobilisation")


def test_home_shows_an_accreditation_about_to_lapse(stack: Stack, browser: Browser) -> None:
    """A provider holding an active agreement records insurance that expires in a month: it
    appears first among what needs attention on the home page, where signing in lands."""
    tab, page = browser, browser.page
    holder = next(p for p in stack.get("integrator", "/network/state")["providers"]
                  if p["active_agreements"])
    sign_in(tab, "commissioner")
    assert path_of(tab) == "/ui/home"
    assert text(tab, "nav[aria-label='Main'] a[aria-current=page]") == "Home"
    before = int(text(tab, "#fig-lapsing"))
    tab.checked("home")
    soon = (date.today() + timedelta(days=30)).isoformat()
    tab.goto(f"/ui/providers/{holder['provider_id']}")
    page.click("summary:has-text('Record an accreditation, insurance or check')")
    page.select_option("#accreditation-kind", "insurance")
    page.fill("#accreditation-name", "Employers' liability insurance (test)")
    page.fill("#accreditation-expires_on", soon)
    with page.expect_navigation():
        page.click("#accreditation button[type=submit]")
    for _ in range(40):  # the registry's event reaches the integrator's read model
        tab.goto("/ui/home")
        if int(text(tab, "#fig-lapsing")) == before + 1:
            break
        page.wait_for_timeout(250)
    rows = text(tab, "#lapsing-table")
    assert "Employers' liability insurance (test)" in rows
    assert holder["name"] in rows
    tab.checked("home-lapsing")
    for figure in ("#fig-ending", "#fig-red", "#fig-waiting", "#fig-envelope"):
        assert int(text(tab, figure)) >= 0


def need_at_engagement(stack: Stack, title: str, area: str = "weight-management") -> str:
    """A need defined, appraised and with the market engaged, over the integrator's API: the
    decision is its next step."""
    need = stack.post("integrator", "/needs", {
        "title": title, "service_area": area,
        "population": {"description": "Families in Brookfield", "areas": ["Brookfield"]},
        "outcomes": [{"description": "Fewer children living with obesity"}],
        "budget_envelope": "300000.00", "starts_on": "2027-04-01", "ends_on": "2029-03-31"})
    assert need.status_code == 201, need.text
    need_id = str(need.json()["need_id"])
    for path, body in (
            ("options", {"options": [{"option": "vcse_grant", "description": "a grant"}],
                         "recommended": "vcse_grant", "rationale": "local reach"}),
            ("market-engagement", {"summary": "an open morning",
                                   "engaged_on": "2026-11-02"})):
        done = stack.post("integrator", f"/needs/{need_id}/{path}", body)
        assert done.status_code == 200, done.text
    return need_id


def test_providers_are_picked_and_the_award_preview_follows(stack: Stack,
                                                            browser: Browser) -> None:
    tab, page = browser, browser.page
    need_id = need_at_engagement(stack, "Family weight clubs in Brookfield")
    sign_in(tab, "admin")
    tab.goto(f"/ui/needs/{need_id}")
    assert current_step(tab) == "Engage the market"
    # Searching a broad category finds the providers of what lies below it; a type narrows.
    page.select_option("#pick-category", "public-health")
    page.select_option("#pick-type", "vcse")
    with page.expect_navigation():
        page.click("#picker-search button:has-text('Find providers')")
    picker = "#decision-form .candidates"
    rows = page.locator(f"{picker} tbody tr")
    assert rows.count() > 0
    kinds = page.locator(f"{picker} tbody td:nth-child(3)").all_text_contents()
    assert kinds
    assert all(k.startswith("VCSE") for k in kinds), kinds
    standing = page.locator(f"{picker} tbody td:nth-child(5)").all_text_contents()
    assert all("Good standing" in s or "Lapsed" in s for s in standing), standing
    tab.checked("picker")

    page.click("summary:has-text('Record a commissioning decision')")
    vcse_before = text(tab, "#preview-vcse")
    providers_before = text(tab, "#award-preview tbody")
    page.locator(f"{picker} input[type=checkbox]").first.check()
    page.fill("#decision-awards-0-allocation", "250000.00")
    page.wait_for_function("() => document.getElementById('award-preview')"
                           ".getAttribute('data-drawn') !== null"
                           " && document.getElementById('preview-vcse').textContent"
                           f" !== {vcse_before!r}")
    assert float(text(tab, "#preview-vcse").rstrip("%")) > float(vcse_before.rstrip("%"))
    assert text(tab, "#award-preview tbody") != providers_before
    assert "would rest on a single provider" in text(tab, "#award-preview")
    tab.checked("award-preview")
    # A second provider shares the award: the preview is drawn again.
    drawn = page.get_attribute("#award-preview", "data-drawn")
    page.locator(f"{picker} input[type=checkbox]").nth(1).check()
    page.wait_for_function("(drawn) => document.getElementById('award-preview')"
                           ".getAttribute('data-drawn') !== drawn", arg=drawn)
    assert "would rest on a single provider" not in text(tab, "#award-preview")


def pounds_in(cell: str) -> Decimal:
    figure = cell.split("\n")[0].strip()
    return Decimal(0) if figure == "—" else Decimal(re.sub(r"[£,]", "", figure))


def test_the_network_list_sorts_pages_and_exports(stack: Stack, browser: Browser,
                                                  tmp_path: Path) -> None:
    tab, page = browser, browser.page
    sign_in(tab, "staff")
    tab.goto("/ui/network?status=approved")
    matched = int(text(tab, "#matched").split()[0])
    assert matched > 25
    assert text(tab, "#page-of") == f"Page 1 of {-(-matched // 25)}"
    assert page.locator("#providers tbody tr").count() == 25
    # Sorted by committed, largest first: the header says so, the figures fall.
    with page.expect_navigation():
        page.click("#providers th a:has-text('Committed')")
    with page.expect_navigation():
        page.click("#providers th a:has-text('Committed')")
    assert page.get_attribute("#providers th[aria-sort]", "aria-sort") == "descending"
    committed = [pounds_in(c) for c in
                 page.locator("#providers tbody td:nth-child(7)").all_inner_texts()]
    assert committed == sorted(committed, reverse=True)
    assert committed[0] > 0
    tab.checked("network-sorted")
    with page.expect_navigation():
        page.click(".pager a:has-text('Next')")
    assert text(tab, "#page-of").startswith("Page 2 of")
    later = [pounds_in(c) for c in
             page.locator("#providers tbody td:nth-child(7)").all_inner_texts()]
    assert max(later) <= min(committed)
    tab.checked("network-page-2")
    # Exported as shown: every approved provider, in this order.
    with page.expect_download() as csv_download:
        page.click("#export-csv")
    csv_path = tmp_path / "providers.csv"
    csv_download.value.save_as(csv_path)
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        records = list(csv.DictReader(f))
    assert len(records) == matched
    assert {r["Status"] for r in records} == {"Approved"}
    with page.expect_download() as xlsx_download:
        page.click("#export-xlsx")
    xlsx_path = tmp_path / "providers.xlsx"
    xlsx_download.value.save_as(xlsx_path)
    sheet = openpyxl.load_workbook(xlsx_path).active
    assert sheet is not None
    table = list(sheet.iter_rows(values_only=True))
    assert table[0][0] == "Provider"
    assert table[0][8] == "Committed (£)"
    assert len(table) == matched + 1
    amounts = [Decimal(str(row[8])) for row in table[1:]]
    assert amounts == sorted(amounts, reverse=True)
    assert [row[0] for row in table[1:]] == [r["Provider"] for r in records]


def test_a_lesson_recorded_appears_on_a_similar_need(stack: Stack, browser: Browser) -> None:
    tab, page = browser, browser.page
    earlier = need_at_engagement(stack, "Cooking clubs in Castleton")
    later = stack.post("integrator", "/needs", {
        "title": "Healthy weight for Eastmoor families", "service_area": "weight-management",
        "population": {"description": "Families in Eastmoor"},
        "outcomes": [{"description": "Fewer children living with obesity"}],
        "budget_envelope": "90000.00", "starts_on": "2027-04-01", "ends_on": "2029-03-31"})
    assert later.status_code == 201, later.text
    sign_in(tab, "commissioner")
    page.click("nav >> text=Lessons")
    tab.checked("lessons")
    by_keyboard(tab, "Record a lesson", {
        "lesson-need_id": "Cooking clubs in Castleton",
        "lesson-stage": "Mob",
        "lesson-went": "Badly",
        "lesson-what": "Volunteers were not vetted before the clubs opened",
        "lesson-why": "safeguarding checks were left to the week before launch",
        "lesson-tags": "safeguarding, vcse"}, "Record the lesson")
    assert "Lesson recorded" in text(tab, ".flash")
    assert page.locator(".lesson").count() >= 1
    page.fill("#l-q", "vetted")
    page.select_option("#l-went", "badly")
    with page.expect_navigation():
        page.click("form[aria-label=Lessons] button:has-text('Search')")
    assert text(tab, "#lessons-matched") == "1 lesson matches."
    assert "Cooking clubs in Castleton" in text(tab, ".lessons")
    tab.checked("lessons-found")
    page.select_option("#l-went", "well")
    with page.expect_navigation():
        page.click("form[aria-label=Lessons] button:has-text('Search')")
    assert text(tab, "#lessons-matched") == "0 lessons match."
    # The newer need, in the same market, shows it before its options are appraised.
    tab.goto(f"/ui/needs/{later.json()['need_id']}")
    assert current_step(tab) == "Specify the objectives"
    similar = text(tab, "#similar-lessons")
    assert "Volunteers were not vetted before the clubs opened" in similar
    assert "Cooking clubs in Castleton" in similar
    tab.checked("need-similar-lessons")
    tab.goto(f"/ui/needs/{earlier}")  # its own lesson is not "similar" to itself
    assert "Volunteers were not vetted" not in text(tab, "#similar-lessons")


def test_errors_answer_friendly_pages(stack: Stack, browser: Browser) -> None:
    tab, page = browser, browser.page
    sign_in(tab, "regulator")
    for name, path, said in (("bad-id", "/ui/agreements/not-an-id", "There is no agreement"),
                             ("no-page", "/ui/no-such-page", "There is no page")):
        response = page.goto(tab.url(path))
        assert response is not None
        assert response.status == 404
        assert text(tab, "h1") == "Not found"
        assert said in text(tab, "#problem-message")
        tab.checked(f"error-{name}")
    decimals = stack.get("integrator", "/network/state")
    assert "E+" not in str(decimals)


def shown(stack: Stack, path: str) -> dict[str, Any] | None:
    """The integrator's answer at `path`, or None while its read model has not got there."""
    answer = httpx.get(stack.url("integrator") + path, headers=stack.headers(), timeout=10)
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def agreement_via_api(stack: Stack, title: str) -> str:
    """A drafted agreement for a VCSE grant, over the integrator's API."""
    need_id = need_at_engagement(stack, title)
    need = wait_for(lambda: shown(stack, f"/needs/{need_id}"), 30, "the need's read model")
    provider = next(p for p in stack.get("integrator", "/network/state")["providers"]
                    if p["status"] == "approved")
    decided = stack.post("integrator", f"/needs/{need_id}/decisions", {
        "awards": [{"title": title, "arrangement_type": "grant", "allocation": "50000.00",
                    "provider_ids": [provider["provider_id"]]}],
        "rationale": "the best reach", "decision_maker": "Head of Commissioning"})
    assert decided.status_code == 201, decided.text
    decisions = wait_for(lambda: (shown(stack, f"/needs/{need_id}") or {}).get("decisions"),
                         30, "the decision in the read model")
    award_id = decisions[0]["awards"][0]["award_id"]
    drafted = stack.post("integrator", "/agreements", {
        "need_id": need_id, "award_id": award_id, "starts_on": "2027-04-01",
        "ends_on": "2029-03-31", "exit_plan": "the clubs pass to the schools",
        "outcomes": [{"outcome_id": need["outcomes"][0]["outcome_id"]}]})
    assert drafted.status_code == 201, drafted.text
    return str(drafted.json()["agreement_id"])


def test_outcome_terms_are_set_on_the_agreement_page(stack: Stack, browser: Browser) -> None:
    tab, page = browser, browser.page
    measure = stack.post("outcomes", "/measures", {
        "name": "Children in Brookfield walking to school", "unit": "%",
        "direction": "higher_is_better", "baseline": "40.0", "baseline_period": "2026-Q4"})
    assert measure.status_code == 201, measure.text
    measure_id = measure.json()["measure_id"]
    agreement_id = agreement_via_api(stack, "Walking to school clubs")
    sign_in(tab, "commissioner")
    option = f"#attribution-measure_id option[value='{measure_id}']"
    for _ in range(60):  # the measure and the agreement reach the read models by the log
        tab.goto(f"/ui/agreements/{agreement_id}")
        if page.locator(option).count():
            break
        page.wait_for_timeout(250)
    assert "No outcome measure attributed yet." in text(tab, "#outcome-terms")
    tab.checked("terms-none")
    for _ in range(40):  # until the outcomes service has the agreement from the log
        page.click("summary:has-text('Attribute an outcome measure')")
        page.select_option("#attribution-measure_id", measure_id)
        page.fill("#attribution-weight", "1")
        with page.expect_navigation():
            page.click("#attribution button[type=submit]")
        if page.locator(".flash").count():
            break
        page.wait_for_timeout(250)
    assert "Outcome measure attributed" in text(tab, ".flash")
    assert "Children in Brookfield walking to school" in text(tab, "#attributions")
    page.click("summary:has-text('Agree or vary the rate card')")
    page.fill("#rate_card-outcome_rates-0-rate", "4000.00")
    with page.expect_navigation():
        page.click("#rate_card button[type=submit]")
    assert "Rate card agreed" in text(tab, ".flash")
    tab.checked("terms-agreed")
    card = stack.get("outcomes", f"/agreements/{agreement_id}/terms")["rate_card"]
    assert [Decimal(r["rate"]) for r in card["outcome_rates"]] == [Decimal("4000.00")]


def test_a_regulator_verifies_the_trail_in_the_pages(stack: Stack, browser: Browser) -> None:
    tab, page = browser, browser.page
    sign_in(tab, "regulator")
    tab.goto("/ui/audit")
    with page.expect_navigation():
        page.click("#verify-link")
    tab.checked("verify")
    with page.expect_navigation():
        page.click("button:has-text('Verify the trail now')")
    assert text(tab, "#result") == "Intact"
    said = text(tab, "#verify-said")
    assert "Every chain is whole" in said
    counted = re.search(r"([\d,]+) events", said)
    assert counted is not None
    assert int(counted.group(1).replace(",", "")) > 1000
    tab.checked("verified")
    reads = stack.get("integrator", "/audit/reads")
    assert any("/ui/audit/verify" in str(r) for r in reads)


def test_a_regulator_compares_the_network_on_two_dates(stack: Stack, browser: Browser) -> None:
    tab, page = browser, browser.page
    sign_in(tab, "regulator")
    tab.goto("/ui/audit")
    with page.expect_navigation():
        page.click("#compare-link")
    page.fill("#compare-from", "2025-03-31")
    page.fill("#compare-to", "2026-03-31")
    with page.expect_navigation():
        page.click("button:has-text('Compare')")
    summary = text(tab, "#compare-summary")
    counts = [int(n) for n in re.findall(r"(\d+) (?:added|changed|ended)", summary)]
    assert len(counts) == 3
    assert sum(counts) > 0
    assert page.locator("#compare-added tbody tr").count() == counts[0]
    tab.checked("compare")
    page.fill("#compare-to", "2024-01-01")  # before the first: refused beside the field
    with page.expect_navigation():
        page.click("button:has-text('Compare')")
    assert "Must be after the first date" in text(tab, "#compare-to-error")
    tab.checked("compare-refused")


def test_a_regulator_downloads_an_evidence_pack_that_verifies(stack: Stack, browser: Browser,
                                                             tmp_path: Path) -> None:
    tab, page = browser, browser.page
    sign_in(tab, "regulator")
    tab.goto("/ui/audit/verify")
    page.fill("#pack-until", "2026-03-31")
    with page.expect_download(timeout=120_000) as download:
        page.click("#pack-download")
    packed = tmp_path / "pack.zip"
    download.value.save_as(packed)
    with zipfile.ZipFile(packed) as archive:
        archive.extractall(tmp_path)
    folder = tmp_path / "evidence-pack-2026-03-31"
    assert (folder / "README.md").exists()
    verified = subprocess.run([sys.executable, "-m", "council.tools.cli", "audit", "verify",
                               "--bundle", str(folder)], env=stack.env, capture_output=True,
                              text=True, timeout=300, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout


def test_a_partner_statement_says_what_its_money_bought(stack: Stack, browser: Browser) -> None:
    tab, page = browser, browser.page
    sign_in(tab, "staff")
    tab.goto("/ui/commissioning")
    with page.expect_navigation():
        page.click("#partners-link")
    page.select_option("#partner", "Northshire Police")
    with page.expect_navigation():
        page.click("button:has-text('Show the statement')")
    assert text(tab, "h1") == "Northshire Police: what its money bought"
    assert pounds_in(text(tab, "#fig-contributed")) > 0
    statements = page.locator("section.statement")
    assert statements.count() >= 1
    assert "pooled" in statements.first.inner_text()
    assert pounds_in(text(tab, "#fig-spent")) > 0  # the Police's share of what was paid
    tab.checked("partner-statement")
