"""Market signals a commissioner can act on, every figure worked out by hand:

- spend rolled up the service taxonomy (a parent category includes its children) and
  concentration rated at the top-level categories, where substitution happens, with the number
  of providers and the largest provider's share beside every index, and the index per calendar
  quarter from the events applied by then (the current quarter marked partial);
- supply gaps by area and category: an area where an open need wants a category and no approved
  provider holds that capability (or one below it) there.

The history: a facilities market (one big contract, so truly concentrated) and an adult social
care market (six providers across four sub-categories, each sub-category "highly concentrated"
on its own: a handful of providers each, as in any one county)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from council.kernel.clock import business_time
from council.kernel.contracts import integrator as ci
from council.kernel.contracts import provider_registry as pr
from council.kernel.contracts.integrator import VariationKind
from council.platform.accounts import UserStore
from council.platform.eventlog import open_event_log
from council.platform.eventlog.embedded import EmbeddedEventLog
from council.platform.identity import Role, TokenStore
from council.platform.runtime import create_service_app
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.integrator.projections.asof import as_of_moment, state_as_of
from council.services.integrator.projections.market import MarketView, market_view
from council.services.integrator.service import SPEC as INTEGRATOR
from council.services.integrator.web.sync import wait_caught_up
from tests.unit.test_network_state import History, Views
from tests.unit.test_web_pages import PASSWORD, follow, post, sign_in, text_of
from tests.unit.test_web_pages import runtime_of as web_runtime
from tests.waiting import eventually

D = Decimal
K = pr.OrganisationType
LEAD = "Northshire County Council"
SIX = ["Ashby Market", "Brookfield", "Castleton", "Deanbridge", "Eastmoor", "Fenwick"]


def ids(prefix: str, count: int) -> list[UUID]:
    return [UUID(f"00000000-0000-4000-{prefix}-{i:012d}") for i in range(1, count + 1)]


F1, F2, F3, F4, F5 = ids("8100", 5)
H1, H2, H3, H4, H5, H6, H7, H8 = ids("8200", 8)
NF, NC, NH, NR, NCS, ND, ND2, NA, NX = ids("9100", 9)
AF1, AF2, AF3, AC1, AH1, AH2, AR, ACS, AD1, AD2 = ids("a100", 10)


def provider(h: History, provider_id: UUID, name: str, kind: pr.OrganisationType,
             category: str, areas_served: list[str], capability_areas: list[str] | None = None,
             approved: bool = True) -> None:
    h.add("2024-01-10", pr.ProviderRegistered(provider_id=provider_id, name=name,
                                              organisation_type=kind,
                                              areas_served=areas_served), actor="provider:self")
    h.add("2024-01-15", pr.ProviderCapabilityAdded(
        provider_id=provider_id, capability_id="cap1", category=category,
        areas=capability_areas or []))
    if approved:
        h.add("2024-01-20", pr.ProviderApproved(provider_id=provider_id, reason="checks passed",
                                                credentials_id=f"cred-{provider_id}"))


def need(h: History, need_id: UUID, title: str, area: str, areas: list[str]) -> None:
    h.add("2024-02-01", ci.NeedDefined(
        need_id=need_id, title=title, service_area=area,
        population=ci.Population(description="residents", areas=areas),
        outcomes=[ci.OutcomeSought(outcome_id="o1", description="better lives")],
        budget_envelope=D("100000.00"), starts_on=date(2024, 4, 1), ends_on=date(2027, 3, 31),
        lead_organisation=LEAD))


def agreement(h: History, agreement_id: UUID, need_id: UUID, provider_id: UUID, amount: str,
              activated: str = "2024-04-01") -> None:
    h.add("2024-03-10", ci.AgreementDrafted(
        agreement_id=agreement_id, need_id=need_id, title=f"Agreement {agreement_id}",
        arrangement_type=ci.ArrangementType.FORMAL_CONTRACT,
        parties=[ci.Party(provider_id=provider_id, allocation=D(amount))],
        starts_on=date(2024, 4, 1), ends_on=date(2027, 3, 31), budget=D(amount),
        exit_plan="hand back to the council"))
    h.add(activated, ci.AgreementActivated(agreement_id=agreement_id,
                                           activated_on=date.fromisoformat(activated)))


def history() -> History:
    h = History()
    provider(h, F1, "Calder Cleaning", K.SME, "cleaning", ["Ashby Market", "Brookfield"])
    # Its capability names its areas, so those count, not the wider areas it serves.
    provider(h, F2, "Sparkle Office Services", K.SME, "cleaning",
             ["Castleton", "Fenwick", "Deanbridge"], ["Castleton", "Fenwick"])
    provider(h, F3, "Greenway Grounds", K.VCSE, "grounds-maintenance", SIX)
    provider(h, F4, "Orchard Catering", K.LARGE_PRIVATE, "catering", SIX)
    # Offers the broad category only: it does not hold "cleaning" (a child) in Deanbridge.
    provider(h, F5, "Estates Direct", K.SME, "facilities", ["Deanbridge"])
    provider(h, H1, "Acorn Care", K.SME, "home-care", ["Ashby Market", "Brookfield", "Castleton"])
    provider(h, H2, "Beacon Trust", K.VCSE, "home-care", ["Deanbridge", "Eastmoor"])
    provider(h, H3, "Castle Reablement", K.PUBLIC_BODY, "reablement", ["Castleton", "Deanbridge"])
    provider(h, H4, "Carers Together", K.VCSE, "carers-support", SIX)
    provider(h, H5, "Daybreak", K.VCSE, "day-opportunities", SIX, ["Eastmoor"])
    provider(h, H6, "Dales Day Services", K.SME, "day-opportunities", ["Ashby Market"])
    provider(h, H7, "Fenwick Friends", K.COMMUNITY_GROUP, "day-opportunities", ["Fenwick"],
             approved=False)
    provider(h, H8, "Moor Lunch Club", K.COMMUNITY_GROUP, "day-opportunities", ["Fenwick"])

    need(h, NF, "Cleaning, grounds and catering for council buildings", "facilities", [])
    need(h, NC, "Office cleaning", "cleaning", ["Castleton", "Deanbridge"])
    need(h, NH, "Home care", "home-care", ["Ashby Market", "Eastmoor", "Fenwick"])
    need(h, NR, "Reablement", "reablement", ["Deanbridge"])
    need(h, NCS, "Carers' breaks", "carers-support", ["eastmoor"])  # any case
    need(h, ND, "Day opportunities", "day-opportunities", ["Eastmoor", "Fenwick", "Ashby Market"])
    need(h, ND2, "Lunch clubs", "day-opportunities", ["fenwick"])
    need(h, NA, "Care closer to home", "adult-social-care", ["Deanbridge", "Westvale"])
    need(h, NX, "Cleaning in Westvale", "cleaning", ["Westvale"])
    h.add("2024-03-01", ci.NeedClosed(need_id=NX, reason="Westvale does its own"))

    agreement(h, AF1, NF, F1, "2000000.00")
    agreement(h, AF2, NF, F3, "600000.00")
    agreement(h, AF3, NF, F4, "300000.00")
    agreement(h, AC1, NC, F2, "500000.00", activated="2024-08-15")
    agreement(h, AH1, NH, H1, "250000.00")
    agreement(h, AH2, NH, H2, "150000.00")
    agreement(h, AR, NR, H3, "150000.00")
    agreement(h, ACS, NCS, H4, "150000.00")
    agreement(h, AD1, ND, H5, "150000.00")
    agreement(h, AD2, ND, H6, "150000.00")
    h.add("2025-02-10", ci.AgreementVaried(
        agreement_id=AF1, variation_id="v1", kind=VariationKind.GROWTH,
        budget_change=D("500000.00"), new_budget=D("2500000.00"), reason="more buildings"))
    h.add("2025-03-01", pr.ProviderSuspended(provider_id=H8, reason="no volunteers left"))
    h.add("2025-06-30", ci.AgreementEnded(
        agreement_id=AF3, how=ci.EndingKind.EXITED, ended_on=date(2025, 6, 30),
        reason="left local authority catering", exit_plan_executed=True))
    return h


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Views]:
    views = Views(tmp_path / "live")
    views.feed(history().in_time_order())
    yield views
    views.close()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EmbeddedEventLog]:
    event_log = EmbeddedEventLog(tmp_path / "log.sqlite")
    event_log.append(history().in_time_order())
    yield event_log
    event_log.close()


LIVE_AT = datetime(2025, 8, 15, 12, tzinfo=UTC)


def row(view: MarketView, code: str) -> Any:
    return next(c for c in view.categories if c.category == code)


# --------------------------------------------------------------------------- defect 1


def test_spend_rolls_up_and_concentration_is_rated_per_top_level_market(live: Views) -> None:
    view = market_view(live.db, at=LIVE_AT)
    care = row(view, "adult-social-care")
    # Adult social care: Acorn 250,000, Beacon, Castle, Carers Together, Daybreak and Dales
    # 150,000 each: 1,000,000 in all. Shares 25, 15, 15, 15, 15, 15 (%):
    # HHI = 25^2 + 5 x 15^2 = 625 + 1,125 = 1,750: concentrated (1,000 to 2,000), not high.
    assert (care.committed, care.providers_with_commitments, care.hhi, care.concentration) == (
        D("1000000.00"), 6, D("1750.00"), "concentrated")
    assert (care.largest_provider_id, care.largest_share_pct) == (str(H1), D("25.00"))
    assert (care.market, care.is_market, care.open_needs) == ("adult-social-care", True, 6)
    # Approved providers offering it or a category below it: Fenwick Friends was never
    # approved and the Moor Lunch Club is suspended.
    assert (care.active_providers, care.active_providers_by_organisation_type) == (
        6, {"public_body": 1, "sme": 2, "vcse": 3})
    # Home care on its own: Acorn 250,000 and Beacon 150,000, 62.5% and 37.5%. Rated in adult
    # social care, not on its own (its own index would be 5,312.5: "highly concentrated").
    home = row(view, "home-care")
    assert (home.committed, home.providers_with_commitments, home.largest_share_pct) == (
        D("400000.00"), 2, D("62.50"))
    assert (home.hhi, home.concentration, home.market, home.is_market) == (
        None, None, "adult-social-care", False)
    assert home.hhi_by_quarter == []

    # Facilities: the 2,500,000 lot (2,000,000 grown by 500,000) filed under "facilities",
    # grounds 600,000 also there, and office cleaning 500,000 filed under "cleaning" (the
    # catering lot ended): 3,600,000. Shares 2,500/3,600 = 69.444%, 600/3,600 = 16.667%,
    # 500/3,600 = 13.889%. HHI = 10,000 x (2,500^2 + 600^2 + 500^2) / 3,600^2
    # = 10,000 x 6,860,000 / 12,960,000 = 5,293.2098...: one contract dominates.
    facilities = row(view, "facilities")
    assert (facilities.committed, facilities.providers_with_commitments) == (
        D("3600000.00"), 3)
    assert facilities.shares == {str(F1): D("69.44"), str(F2): D("13.89"),
                                 str(F3): D("16.67")}
    assert (facilities.hhi, facilities.concentration) == (D("5293.21"), "highly concentrated")
    assert (facilities.largest_provider_id, facilities.largest_share_pct) == (str(F1), D("69.44"))
    # Estates Direct (offering "facilities" itself) and the four offering a category below it.
    assert facilities.active_providers == 5
    cleaning = row(view, "cleaning")
    assert (cleaning.committed, cleaning.active_providers, cleaning.hhi, cleaning.market) == (
        D("500000.00"), 2, None, "facilities")
    assert row(view, "catering").committed == D("0.00")  # its lot ended
    # A top-level market is listed before the categories below it.
    codes = [c.category for c in view.categories]
    assert codes.index("adult-social-care") < codes.index("home-care")
    assert codes.index("facilities") < codes.index("cleaning")
    assert [c.category for c in view.categories if c.is_market] == [
        "adult-social-care", "facilities"]


def test_each_index_moves_by_quarter_and_the_current_quarter_is_partial(live: Views) -> None:
    facilities = row(market_view(live.db, at=LIVE_AT), "facilities")
    quarters = [(q.quarter, q.ends_on, q.partial, q.committed, q.providers_with_commitments,
                 q.largest_share_pct, q.hhi, q.change) for q in facilities.hhi_by_quarter]
    assert quarters == [
        # Cleaning 2,000,000, grounds 600,000, catering 300,000 from 1 April 2024: 2,900,000.
        # 10,000 x (2,000^2 + 600^2 + 300^2) / 2,900^2 = 10,000 x 4,450,000 / 8,410,000
        # = 5,291.3198...; the largest 2,000/2,900 = 68.966%.
        ("2024-Q2", date(2024, 6, 30), False, D("2900000.00"), 3, D("68.97"), D("5291.32"),
         None),
        # Office cleaning 500,000 from 15 August: 3,400,000. 10,000 x (4,000,000 + 360,000 +
        # 90,000 + 250,000) / 11,560,000 = 4,065.7439...; 2,000/3,400 = 58.824%.
        ("2024-Q3", date(2024, 9, 30), False, D("3400000.00"), 4, D("58.82"), D("4065.74"),
         D("-1225.58")),
        ("2024-Q4", date(2024, 12, 31), False, D("3400000.00"), 4, D("58.82"), D("4065.74"),
         D("0.00")),
        # The cleaning lot grown to 2,500,000 on 10 February 2025: 3,900,000. 10,000 x
        # (6,250,000 + 360,000 + 90,000 + 250,000) / 15,210,000 = 4,569.3622...;
        # 2,500/3,900 = 64.103%.
        ("2025-Q1", date(2025, 3, 31), False, D("3900000.00"), 4, D("64.10"), D("4569.36"),
         D("503.62")),
        # Catering ended on 30 June 2025: 3,600,000, 5,293.2098... as above.
        ("2025-Q2", date(2025, 6, 30), False, D("3600000.00"), 3, D("69.44"), D("5293.21"),
         D("723.85")),
        # To 15 August 2025, the moment of the view: the quarter is not over.
        ("2025-Q3", date(2025, 9, 30), True, D("3600000.00"), 3, D("69.44"), D("5293.21"),
         D("0.00")),
    ]
    assert [q.concentration for q in facilities.hhi_by_quarter] == ["highly concentrated"] * 6
    care = row(market_view(live.db, at=LIVE_AT), "adult-social-care")
    assert [(q.quarter, q.hhi) for q in care.hhi_by_quarter] == [
        (q, D("1750.00")) for q in ("2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2",
                                    "2025-Q3")]


def test_the_current_quarter_is_the_business_clocks(live: Views) -> None:
    with business_time(datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)):
        quarters = row(market_view(live.db), "facilities").hhi_by_quarter
    assert (quarters[-1].quarter, quarters[-1].partial) == ("2025-Q2", False)  # its last moment
    with business_time(datetime(2025, 7, 1, tzinfo=UTC)):
        quarters = row(market_view(live.db), "facilities").hhi_by_quarter
    assert (quarters[-1].quarter, quarters[-1].partial) == ("2025-Q3", True)


def test_each_quarters_index_is_the_one_as_of_its_last_moment(
    live: Views, log: EmbeddedEventLog,
) -> None:
    """The history is a pure function of the events: quarter by quarter it is what the view
    as of the quarter's end says now, and what the live view said then."""
    for market in ("facilities", "adult-social-care"):
        for quarter in row(market_view(live.db, at=LIVE_AT), market).hhi_by_quarter:
            if quarter.partial:
                continue
            with state_as_of(log, None, quarter.ends_on) as db:
                then = row(market_view(db, at=as_of_moment(quarter.ends_on)), market)
            assert (then.committed, then.providers_with_commitments, then.largest_share_pct,
                    then.hhi) == (quarter.committed, quarter.providers_with_commitments,
                                  quarter.largest_share_pct, quarter.hhi), quarter.quarter
            assert then.hhi_by_quarter[-1].model_dump() == quarter.model_dump()


def test_as_of_equals_what_the_live_view_gave_then(tmp_path: Path, log: EmbeddedEventLog) -> None:
    events = history().in_time_order()
    for day in ("2024-06-30", "2024-12-31", "2025-05-15", "2025-08-15"):
        moment = as_of_moment(day)
        then = Views(tmp_path / day)  # the live read models on that day
        then.feed([e for e in events if e.occurred_at <= moment])
        expected = market_view(then.db, at=moment).model_dump(mode="json")
        then.close()
        with state_as_of(log, None, day) as db:
            assert market_view(db, at=moment).model_dump(mode="json") == expected, day


# --------------------------------------------------------------------------- defect 2


def gaps(db: Database, at: datetime = LIVE_AT) -> list[tuple[str, str, list[UUID], int]]:
    return [(g.area, g.category, [n.need_id for n in g.needs], g.approved_providers_elsewhere)
            for g in market_view(db, at=at).gaps.supply_gaps]


def test_supply_gaps_by_area_and_category(live: Views) -> None:
    assert gaps(live.db) == [
        # Calder serves Ashby Market and Brookfield; Sparkle's cleaning names Castleton and
        # Fenwick (Deanbridge is only among the areas it serves); Estates Direct in Deanbridge
        # offers "facilities", the broader category, not cleaning.
        ("Deanbridge", "cleaning", [NC], 2),
        # Fenwick Friends never approved, the Moor Lunch Club suspended; Daybreak's capability
        # is in Eastmoor only, Dales in Ashby Market. Two needs want it there.
        ("Fenwick", "day-opportunities", [ND, ND2], 2),
        ("Fenwick", "home-care", [NH], 2),  # Acorn and Beacon serve other districts
        # A need for the broad category is met by a provider of any category below it
        # (Beacon's home care in Deanbridge), but nobody approved works in Westvale: all six
        # approved adult social care providers are elsewhere.
        ("Westvale", "adult-social-care", [NA], 6),
    ]
    found = market_view(live.db, at=LIVE_AT).gaps
    # The facilities need names no area, so its supply cannot be checked by area; the closed
    # Westvale cleaning need wants nothing now.
    assert [n.need_id for n in found.open_needs_without_areas] == [NF]
    assert [n.pooled_budget for n in found.supply_gaps[0].needs] == [D("100000.00")]


def test_supply_gaps_as_of_a_date(log: EmbeddedEventLog) -> None:
    # Before the Moor Lunch Club was suspended it covered day opportunities in Fenwick.
    with state_as_of(log, None, "2025-02-28") as db:
        assert [(area, category) for area, category, _, _ in gaps(db)] == [
            ("Deanbridge", "cleaning"), ("Fenwick", "home-care"),
            ("Westvale", "adult-social-care")]


def test_a_need_defined_before_areas_existed_is_still_read() -> None:
    old = ci.NeedDefined.model_validate({
        "need_id": str(NF), "title": "t", "service_area": "facilities",
        "population": {"description": "residents", "size": 3}, "outcomes": [],
        "budget_envelope": "1.00", "starts_on": "2024-04-01", "ends_on": "2025-03-31",
        "lead_organisation": LEAD})
    assert old.population.areas == []


# --------------------------------------------------------------------------- units and the API


def _figures(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[tuple[str, str]]:
    """(field, description) of every figure (amount, count, share, index) in the model."""
    seen.add(model)
    for name, field in model.model_fields.items():
        kinds = [field.annotation, *get_args(field.annotation)]
        kinds += [a for k in kinds for a in get_args(k)]
        if any(k in (Decimal, int) for k in kinds) or name in ("shares", "hhi_by_quarter"):
            yield f"{model.__name__}.{name}", field.description or ""
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel) and kind not in seen:
                yield from _figures(kind, seen)


def test_every_figure_says_its_unit_and_how_it_was_worked_out() -> None:
    figures = dict(_figures(MarketView, set()))
    assert "CategoryMarket.hhi" in figures
    assert "QuarterConcentration.hhi" in figures
    for name, description in figures.items():
        assert len(description) > 20, name
    assert "top-level" in figures["CategoryMarket.hhi"]
    assert "0 to 10,000" in figures["CategoryMarket.hhi"]
    assert "£" in figures["CategoryMarket.committed"]


def test_the_api_says_what_each_figure_is_live_and_as_of(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, relay_interval=0.01)
    tokens = TokenStore(open_database(settings, "identity"))
    reader = {"Authorization": f"Bearer {tokens.create(Role.COUNCIL_STAFF, 'finance').token}"}
    shared_log = open_event_log(settings)
    shared_log.append(history().in_time_order())
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        def get(**params: str) -> Any:
            response = client.get("/market", params=params, headers=reader)
            assert response.status_code == 200, response.text
            return response.json()

        deadline = time.monotonic() + 10
        while get()["committed_total"] != "4600000.00":
            assert time.monotonic() < deadline, "the projections did not catch up"
            time.sleep(0.02)
        body = get(as_of="2024-12-31")
        facilities = next(c for c in body["categories"] if c["category"] == "facilities")
        assert (facilities["hhi"], facilities["largest_share_pct"]) == ("4065.74", "58.82")
        assert [(q["quarter"], q["partial"]) for q in facilities["hhi_by_quarter"]] == [
            ("2024-Q2", False), ("2024-Q3", False), ("2024-Q4", False)]
        partial = get(as_of="2025-08-15")
        facilities = next(c for c in partial["categories"] if c["category"] == "facilities")
        assert facilities["hhi_by_quarter"][-1]["partial"] is True
        assert "top-level" in body["concentration_level"]
        assert "0 to 10,000" in body["definitions"]["hhi"]
        assert {"committed_total", "share_pct", "active_providers", "committed", "shares",
                "largest_share_pct", "hhi", "concentration", "hhi_by_quarter", "open_needs",
                "supply_gaps"} <= set(body["definitions"])
        assert [(g["area"], g["category"]) for g in body["gaps"]["supply_gaps"]] == [
            ("Deanbridge", "cleaning"), ("Fenwick", "home-care"),
            ("Westvale", "adult-social-care")]
    shared_log.close()
    tokens.db.close()


# --------------------------------------------------------------------------- the pages


@pytest.fixture
def pages(tmp_path: Path, users: None) -> Iterator[TestClient]:
    """The integrator's pages over a log holding the history (no registry: nothing is posted
    to it)."""
    settings = Settings(var_dir=tmp_path, relay_interval=0.01)
    shared_log = open_event_log(settings)
    shared_log.append(history().in_time_order())
    shared_log.close()
    with TestClient(create_service_app(INTEGRATOR, settings), follow_redirects=False) as client:
        wait_caught_up(web_runtime(client))
        yield client


@pytest.fixture
def users(tmp_path: Path) -> None:
    db = open_database(Settings(var_dir=tmp_path), "identity")
    try:
        UserStore(db).create("jo", Role.COMMISSIONER, "Jo (commissioner)", PASSWORD)
    finally:
        db.close()


def test_the_market_page_shows_each_index_with_its_providers_history_and_gaps(
    pages: TestClient,
) -> None:
    sign_in(pages, "jo")
    page = text_of(pages.get("/ui/market?as_of=2025-08-15").text)
    assert ("Adult social care 6 6 £1,000,000 25.00% Acorn Care 1,750.00 Concentrated +0.00 6"
            in page)
    assert "Facilities 5 3 £3,600,000 69.44% Calder Cleaning 5,293.21 Highly concentrated" \
           in page
    # Below each market, its categories, rated in it.
    assert "Home care (domiciliary care) Adult social care 2 2 £400,000 62.50% Acorn Care 1" \
           in page
    # By quarter: the current one only to the as-of date, and marked.
    assert "2025-Q2 2025-Q3 *" in page
    assert "2025-Q3* is not over: its figures are to 15 Aug 2025." in page
    assert ("Facilities 5,291.32 (3, 68.97%) 4,065.74 (4, 58.82%) 4,065.74 (4, 58.82%) "
            "4,569.36 (4, 64.10%) 5,293.21 (3, 69.44%) 5,293.21 (3, 69.44%)") in page
    assert "Fenwick Day opportunities Day opportunities , Lunch clubs 2" in page
    assert "Westvale Adult social care Care closer to home 6" in page
    assert ("Not checked by area, as they name no area: Cleaning, grounds and catering for "
            "council buildings .") in page
    # A whole quarter is not marked.
    whole = text_of(pages.get("/ui/market?as_of=2025-06-30").text)
    assert "2025-Q2 Adult social care" in whole
    assert "is not over" not in whole


def test_the_need_form_takes_the_populations_areas(pages: TestClient) -> None:
    sign_in(pages, "jo")
    form = {"title": "Lunch clubs in the villages", "service_area": "day-opportunities",
            "population.description": "Older people living alone",
            "population.areas": "Eastmoor\r\n\r\n fenwick \r\neastmoor",
            "outcomes.0.description": "Fewer older people lonely",
            "budget_envelope": "250000.00", "starts_on": "2027-04-01", "ends_on": "2029-03-31"}
    too_long = post(pages, "/ui/needs", {**form, "population.areas": "Eastmoor\n" + "x" * 101},
                    page="/ui/commissioning", expect=422)
    assert re.search(r'id="need-population-areas-error"><span class="visually-hidden">Error: '
                     r'</span>At most 100 characters', too_long.text)
    need = text_of(follow(pages, post(pages, "/ui/needs", form, page="/ui/commissioning")))
    assert "For Older people living alone, in Eastmoor, fenwick." in need
    market = text_of(pages.get("/ui/market").text)
    assert ("Fenwick Day opportunities Day opportunities , Lunch clubs , Lunch clubs in the "
            "villages 2") in market


def test_the_api_takes_and_gives_back_a_populations_areas(pages: TestClient,
                                                          tmp_path: Path) -> None:
    tokens = TokenStore(open_database(Settings(var_dir=tmp_path), "identity"))
    writer = {"Authorization": f"Bearer {tokens.create(Role.COMMISSIONER, 'jo').token}"}
    tokens.db.close()
    body = {"title": "Lunch clubs", "service_area": "day-opportunities",
            "population": {"description": "Older people", "areas": ["Eastmoor", " eastmoor "]},
            "outcomes": [{"description": "Fewer older people lonely"}],
            "budget_envelope": "1000.00", "starts_on": "2027-04-01", "ends_on": "2029-03-31"}
    bad = pages.post("/needs", json={**body, "population": {"description": "x", "areas": [""]}},
                     headers=writer)
    assert bad.status_code == 422
    assert "areas" in bad.text
    created = pages.post("/needs", json=body, headers=writer)
    assert created.status_code == 201, created.text
    need_id = created.json()["need_id"]

    def read_back() -> Any:
        found = pages.get(f"/needs/{need_id}", headers=writer)
        return found.json()["population"]["areas"] if found.status_code == 200 else None

    assert eventually(read_back, lambda areas: areas is not None) == ["Eastmoor"]
