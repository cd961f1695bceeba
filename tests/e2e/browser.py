"""Headless Chromium for the browser tests: the Debian `chromium` driven by Playwright (never a
browser Playwright downloads), axe-core (npm, tests/e2e/a11y) injected into every page, and a
screenshot of every page kept as a test artefact.

Missing Chromium, Playwright or axe-core fails the test under REQUIRE_INFRA=1 and skips it with
the reason otherwise, like the other infrastructure the tests need.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("COUNCIL_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "tests" / "e2e" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
ARTEFACTS = Path(os.environ.get("COUNCIL_ARTEFACTS_DIR", ROOT / "var" / "artefacts" / "web"))
# Without the background-networking flags Chromium keeps trying to reach Google's services,
# which on a closed network makes it slow and flaky.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAPTOP = {"width": 1366, "height": 768}
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FAILING_IMPACTS = ("serious", "critical")


def _unavailable(message: str) -> None:
    if os.environ.get("REQUIRE_INFRA", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (REQUIRE_INFRA=1)", pytrace=False)
    pytest.skip(message)


def require_browser() -> None:
    if not CHROMIUM.exists():
        _unavailable(f"Chromium unavailable: no {CHROMIUM} (apt-get install chromium "
                     "chromium-driver; .ci/run does)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        _unavailable(f"Playwright unavailable ({exc}): pip install -e '.[dev]'")
    if not AXE.exists():
        _unavailable(f"axe-core unavailable: no {AXE} (npm ci --prefix tests/e2e/a11y)")


@dataclass
class Visit:
    name: str
    path: str
    server_ms: float | None
    serious: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


@dataclass
class Browser:
    """One signed-in-or-not browser tab over the stack, keeping what each page showed."""

    page: Any
    base_url: str
    shots: Path
    visits: list[Visit] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def goto(self, path: str) -> None:
        self.page.goto(self.url(path))

    def checked(self, name: str) -> Visit:
        """Screenshot the page as it is, then check it: axe-core (every <details> opened, so
        folded forms are checked too) and that it fits a laptop screen's width."""
        page = self.page
        page.wait_for_load_state("load")
        number = len(self.visits) + 1
        page.screenshot(path=str(self.shots / f"{number:02d}-{name}.png"), full_page=True)
        timing = page.evaluate(
            "() => { const e = performance.getEntriesByType('navigation')[0];"
            " const s = e && e.serverTiming.find(t => t.name === 'app');"
            " return s ? s.duration : null; }")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => {"
                      " d.dataset.wasOpen = d.open ? '1' : ''; d.open = true; })")
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
            WCAG)
        visit = Visit(name, re.sub(r"^https?://[^/]+", "", page.url), timing)
        for violation in result["violations"]:
            nodes = "; ".join(n["target"][0] if isinstance(n["target"][0], str)
                              else str(n["target"]) for n in violation["nodes"][:5])
            line = f"{violation['id']} ({violation['impact']}): {violation['help']} at {nodes}"
            (visit.serious if violation["impact"] in FAILING_IMPACTS else visit.other).append(
                line)
        wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        if wide > 0:
            visit.serious.append(f"wider than a {LAPTOP['width']}px laptop screen by {wide}px")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => {"
                      " d.open = d.dataset.wasOpen === '1'; })")
        self.visits.append(visit)
        return visit

    def report(self) -> str:
        lines = [f"screenshots in {self.shots}"]
        for v in self.visits:
            timing = f"{v.server_ms:6.1f} ms" if v.server_ms is not None else "     ? ms"
            lines.append(f"  {v.name:<24} {timing}  {v.path}")
            lines.extend(f"      axe: {o}" for o in v.other)
        return "\n".join(lines)

    def problems(self) -> list[str]:
        return [f"{v.name} ({v.path}): {s}" for v in self.visits for s in v.serious]


@contextmanager
def chromium(base_url: str, shots: Path) -> Iterator[Browser]:
    """A fresh Chromium (its own new profile) with one tab the size of a laptop screen."""
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    with sync_playwright() as driver, tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        context = driver.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport=LAPTOP, locale="en-GB", timezone_id="UTC",
            bypass_csp=True)  # so axe-core can be injected; the pages' own policy is strict
        context.set_default_timeout(30_000)
        try:
            yield Browser(context.new_page(), base_url, shots)
        finally:
            context.close()
