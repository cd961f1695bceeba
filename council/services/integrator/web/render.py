"""Pages out: the Jinja2 templates, the filters that write money, dates and the council's
vocabulary the way people read them, one-off messages after a change, and the Server-Timing
header every page carries (how long the server took, as the bench and browser tests read it)."""

from __future__ import annotations

import re
import time
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from council.kernel.taxonomy import taxonomy
from council.services.integrator.web import charts
from council.services.integrator.web.session import COOKIE_PATH, Viewer

HERE = Path(__file__).parent
FLASH_COOKIE = "council_flash"
# Our own stylesheet and script only, never framed by another site, nothing cached (pages show
# records people may not be allowed to see once signed out).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self';"
                               " script-src 'self'; form-action 'self'; frame-ancestors 'none';"
                               " base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

NAV = (
    ("home", "Home", "/ui/home"),
    ("network", "Network", "/ui/network"),
    ("commissioning", "Commissioning", "/ui/commissioning"),
    ("lessons", "Lessons", "/ui/lessons"),
    ("outcomes", "Outcomes", "/ui/outcomes"),
    ("market", "Market", "/ui/market"),
    ("audit", "Audit timeline", "/ui/audit"),
)

# How the council says its codes.
WORDS = {
    "vcse": "VCSE", "sme": "SME", "public_body": "Public body", "large_private": "Large firm",
    "community_group": "Community group", "partnership": "Partnership", "unknown": "Unknown",
    "informal_sla": "Informal SLA", "call_off": "Framework call-off",
    "framework_call_off": "Framework call-off", "vcse_grant": "VCSE grant",
    "provider_registry": "Provider registry", "integrator": "Integrator",
    "outcomes": "Outcomes", "under_review": "Under review", "in_house": "In house",
    "integrator_admin": "Integrator admin", "council_staff": "Council staff",
}


def words(code: object) -> str:
    """A code as words: `large_private` -> "Large firm", a category code -> its name."""
    text = str(code)
    if text in WORDS:
        return WORDS[text]
    term = taxonomy().terms.get(text)
    if term is not None:
        return term.name
    return text.replace("_", " ").capitalize()


def categories() -> list[tuple[str, str]]:
    """(code, name) of every service category, broad ones followed by theirs."""
    terms = taxonomy().terms
    found: list[tuple[str, str]] = []
    for top in sorted((t for t in terms.values() if t.parent is None), key=lambda t: t.name):
        found.append((top.code, top.name))
        found.extend((t.code, f"{top.name}: {t.name}") for t in sorted(
            (t for t in terms.values() if t.parent == top.code), key=lambda t: t.name))
    return found


def lineage(code: str) -> list[str]:
    """A category and every one above it, nearest first (how the market page files spend)."""
    return taxonomy().lineage(code)


def same_market(code: str) -> list[str]:
    """Every category in the market `code` belongs to (its top-level category and all below
    it): where a similar need would be filed."""
    tax = taxonomy()
    top = tax.top(code)
    return [c for c in tax.terms if tax.top(c) == top] or [code]


def money(amount: Decimal | int | float | None, pence: bool = False) -> str:
    if amount is None:
        return "—"
    value = Decimal(str(amount))
    if pence:
        return f"£{value:,.2f}"
    return f"£{value.quantize(Decimal(1), rounding=ROUND_HALF_UP):,}"


def money_short(amount: Decimal | int | None) -> str:
    """£12.3m, £450k: for headline figures."""
    if amount is None:
        return "—"
    value = Decimal(str(amount))
    for size, suffix in ((Decimal(1_000_000), "m"), (Decimal(1_000), "k")):
        if abs(value) >= size:
            return f"£{value / size:,.1f}{suffix}"
    return money(value)


def day(value: date | datetime | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    return f"{value.day} {value:%b %Y}"


def moment(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value.day} {value:%b %Y %H:%M}"


def pct(value: Decimal | float | None, places: int = 1) -> str:
    if value is None:
        return "—"
    return f"{Decimal(str(value)):.{places}f}%"


def field_words(name: str) -> str:
    """A form field's path as words: `outcomes.0.description` -> "Outcomes 1: description"."""
    parts: list[str] = []
    for part in name.split("."):
        if part.isdigit():
            parts[-1] = f"{parts[-1]} {int(part) + 1}:"
        else:
            parts.append(part.replace("_", " "))
    return " ".join(parts).capitalize()


def type_words(kind: str) -> str:
    """An event type as words: ProviderApproved -> "Provider approved"."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", kind).capitalize()


_SAID = ("name", "title", "kind", "category", "scheme", "rating", "partner", "option", "stage",
         "how", "period", "new_end", "activity_type", "reason", "rationale", "summary",
         "justification", "what", "legal_basis")
_CODED = ("kind", "category", "option", "stage", "activity_type")  # codes, said as words
_AMOUNTS = ("amount", "budget_change", "new_budget", "budget", "allocation", "cost", "total",
            "budget_envelope")


def describe(data: dict[str, Any], limit: int = 180) -> str:
    """The gist of an event's data in a line: names, amounts and the reason given."""
    said: list[str] = []
    for key in _SAID:
        value = data.get(key)
        if isinstance(value, str | int) and str(value):
            if key in ("name", "title", "reason", "rationale", "summary", "what"):
                said.append(str(value))
            else:  # a code ("market_engagement", "weight-management") as the council says it
                said.append(f"{words(key)}: {words(value) if key in _CODED else value}")
    for key in _AMOUNTS:
        value = data.get(key)
        if isinstance(value, str | int | float | Decimal) and str(value):
            try:
                said.append(f"{words(key)}: {money(Decimal(str(value)), pence=True)}")
            except ArithmeticError:
                continue
    if "quantity" in data:
        said.append(f"{data['quantity']} {data.get('unit', '')}".strip())
    if "value" in data and "measure_id" in data:
        said.append(f"value {data['value']}")
    if isinstance(data.get("service_users"), list):  # sealed: only the outcomes service opens it
        count = len(data["service_users"])
        said.append(f"names {count} service user{'s' if count != 1 else ''} (personal data, "
                    "encrypted)")
    text = "; ".join(said)
    return text if len(text) <= limit else text[:limit - 1] + "…"


_NEED_EVENTS = ("Need", "Options", "Market", "Commissioning")
_AGREEMENT_EVENTS = ("Agreement", "BusinessCase", "Spend")


def link_of(source: str, kind: str, stream_id: str, data: dict[str, Any]) -> str | None:
    """The page of what an event is about, if it has one."""
    if source == "provider_registry":
        return f"/ui/providers/{stream_id}"
    if source == "integrator" and kind.startswith(_NEED_EVENTS):
        return f"/ui/needs/{stream_id}"
    if source == "integrator" and kind.startswith(_AGREEMENT_EVENTS):
        return f"/ui/agreements/{stream_id}"
    if data.get("agreement_id"):
        return f"/ui/agreements/{data['agreement_id']}"
    return None


def link(viewer: Viewer | None, href: str, text: object) -> Markup:
    """A link to one of our pages, or its text alone where the viewer may not open it (a
    scoped regulator sees no links out of its scope)."""
    if viewer is not None and not viewer.may_open(href):
        return escape(text)
    return Markup('<a href="{}">{}</a>').format(href, text)


ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(from_map=lambda key, mapping: mapping.get(key),
                   payment_bar=lambda row: (row[0], row[1], charts.PALETTE[0]),
                   words=words, money=money, money_short=money_short, day=day, moment=moment,
                   pct=pct, type_words=type_words, describe=describe,
                   field_words=field_words)
ENV.globals.update(nav=NAV, charts=charts, words=words, link_of=link_of, link=link,
                   pairs=lambda values: [(v, v) for v in values],
                   worded=lambda codes: [(c, words(c)) for c in codes],
                   party_pairs=lambda parties, names: [
                       (str(p.provider_id), names.get(str(p.provider_id), str(p.provider_id)))
                       for p in parties],
                   type_bars=lambda shares: [
                       (words(s.organisation_type), s.share_pct,
                        charts.colour_of(s.organisation_type)) for s in shares],
                   quarter_columns=lambda quarters: [(q.quarter, q.share_pct) for q in quarters],
                   kind_names=lambda kinds: {k: words(k) for k in kinds},
                   outcome_pairs=lambda outcomes: [(o.outcome_id, o.description)
                                                   for o in outcomes])


def start_clock(request: Request) -> None:
    """A router dependency: when the page's work began (for Server-Timing)."""
    request.state.page_started = time.perf_counter()


def server_ms(request: Request) -> float:
    started: float = getattr(request.state, "page_started", time.perf_counter())
    return (time.perf_counter() - started) * 1000


def page(request: Request, template: str, viewer: Viewer | None, *, section: str = "",
         status: int = 200, **context: Any) -> HTMLResponse:
    flash = request.cookies.get(FLASH_COOKIE)
    html = ENV.get_template(template).render(
        request=request, viewer=viewer, section=section,
        flash=unquote(flash) if flash else None, **context)
    response = HTMLResponse(html, status_code=status)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
    response.headers["Server-Timing"] = f'app;dur={server_ms(request):.1f};desc="page"'
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(request: Request, url: str, flash: str | None = None) -> RedirectResponse:
    """After a change: see the result (POST-redirect-GET), with a one-off message."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(FLASH_COOKIE, quote(flash), max_age=60, path=COOKIE_PATH,
                            httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response
