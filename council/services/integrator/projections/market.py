"""The integrator's two whole-network views, read from the network and commissioning projections
(which share one read-model database):

- the network state: providers x agreements x outcomes x budgets and spend, with each active
  agreement's performance (from the performance projection, when it is in the database);
- the market view: who holds the committed spend (by organisation type); per service category
  the approved providers offering it, the committed spend and who holds it, rolled up the
  service taxonomy (a category includes every category below it); how concentrated each market
  is (the Herfindahl-Hirschman index) and how that has moved quarter by quarter; and the gaps:
  open needs and outcomes with no active agreement, and areas where an open need wants a
  category no approved provider holds there (projections/supply.py).

"Committed" is the current budget of active agreements, held by each party as its allocation
(allocations are scaled with the budget when an agreement is varied).

Concentration is rated at the top-level categories of the service taxonomy (adult social care,
facilities, transport...), the level where a commissioner can substitute one provider for
another: providers offer several of the categories under one top-level category (a home care
agency also does reablement and carers' support, a facilities firm cleans, caters and keeps
grounds) and the council re-lets lots across them. It is also the only level every need sits
under, so a contract filed under a broad category ("facilities") is rated together with those
filed below it. Rated at each sub-category instead, one county has a handful of providers in each
and every index reads "highly concentrated", which tells a commissioner nothing.

Nothing here depends on today's date except which quarter is the current one (partial): every
figure follows the events applied, so a view rebuilt "as of" a moment, and asked at that moment,
is the view the live projection gave then (projections/concentration.py says how the quarterly
history is worked out).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from council.kernel import clock
from council.kernel.contracts.integrator import ArrangementType, SourcingStage
from council.kernel.contracts.provider_registry import OrganisationType
from council.kernel.money import pounds
from council.kernel.taxonomy import taxonomy
from council.platform.sql import Database, Row, Tx
from council.services.integrator.domain import ACTIVE
from council.services.integrator.projections.concentration import (
    BANDS,
    HHI_UNIT,
    AgreementTimeline,
    QuarterConcentration,
    concentration,
    hhi_of,
    history,
    largest,
    percent,
)
from council.services.integrator.projections.performance import PerformanceBrief, performance_of
from council.services.integrator.projections.supply import (
    POOLED,
    Demand,
    NeedRef,
    Offer,
    SupplyGap,
    offer,
    supply_gaps,
)

UNKNOWN = "unknown"  # a party the network projection has not (yet) heard of

LEVEL = (
    "top-level categories of the council's service taxonomy: where a commissioner can "
    "substitute one provider for another (providers offer several categories under one "
    "top-level category, and lots are re-let across them), and the one level every need sits "
    "under; a sub-category is rated in its top-level category")

COMMITTED = (
    "£, pounds and pence: committed spend, the current budgets of active agreements, each held "
    "by its parties as their allocations (scaled with the budget when an agreement is varied)")

# What each figure of the market view is, in its unit, and how it was worked out: in the API's
# schema (the fields' descriptions) and in every answer (MarketView.definitions).
DEFINITIONS: dict[str, str] = {
    "committed_total": COMMITTED,
    "committed_by_organisation_type": "committed spend by the organisation type of the party "
                                      "holding it (as the provider registry records the type)",
    "share_pct": "%, 2 places: the type's committed spend over all committed spend",
    "providers": "count of providers of the type holding committed spend",
    "active_providers": "count of distinct approved providers with a capability in the category "
                        "or any category below it",
    "active_providers_by_organisation_type": "the same count, by organisation type",
    "committed": f"{COMMITTED}; for needs filed under the category or any category below it "
                 "(rolled up the service taxonomy)",
    "providers_with_commitments": "count of providers holding any of the category's committed "
                                  "spend",
    "shares": "%, 2 places, per provider id: its share of the category's committed spend",
    "largest_share_pct": "%, 2 places: the largest provider's share of the category's committed "
                         "spend (largest_provider_id says who)",
    "hhi": f"{HHI_UNIT}, of committed spend (parties' allocations of active agreements), rolled "
           f"up to the top-level category; given for the {LEVEL.split(':')[0]} only",
    "concentration": f"the band of the index: {BANDS}",
    "hhi_by_quarter": "the index per calendar quarter, each at the quarter's last moment (23:59:59 "
                      "UTC on its last day) from the events applied by then (business time); "
                      "the quarter holding the moment of the view is to that moment and marked "
                      "partial",
    "open_needs": "count of open needs filed under the category or any category below it",
    "pooled_budget": POOLED,
    "needs_without_active_agreement": "open needs with no agreement in force",
    "outcomes_not_covered": "outcomes sought by open needs that no active agreement of theirs "
                            "names",
    "supply_gaps": "per area and category: open needs wanting the category in the area (their "
                   "population's areas) where no approved provider holds a capability in the "
                   "category or one below it (the capability's areas, or if it names none the "
                   "areas the provider serves); areas matched ignoring case",
    "approved_providers_elsewhere": "count of approved providers holding the category only in "
                                    "other areas",
    "open_needs_without_areas": "open needs whose population names no area, so their supply is "
                                "not checked by area",
}


# ---------------------------------------------------------------------- views


class LinkedOutcome(BaseModel):
    outcome_id: str
    description: str | None = Field(description="from the need's outcomes sought")
    measure_id: UUID | None
    target: str | None


class ProviderAgreement(BaseModel):
    agreement_id: UUID
    title: str
    need_id: UUID
    need_title: str | None
    service_area: str | None
    arrangement_type: ArrangementType
    starts_on: date
    ends_on: date
    agreement_budget: Decimal
    allocation: Decimal = Field(description="this provider's part of the current budget")
    spent: Decimal = Field(description="paid to this provider under the agreement")
    outcomes: list[LinkedOutcome]
    performance: PerformanceBrief | None = Field(
        description="RAG, latest achievement, payments, delivery volumes per unit and cost per "
                    "outcome per measure, from the outcomes service's events; none until it "
                    "has any for the agreement")


class ProviderState(BaseModel):
    provider_id: UUID
    name: str | None
    organisation_type: str = Field(description="from the network; 'unknown' if not in it")
    status: str | None
    active_agreements: list[ProviderAgreement]
    committed: Decimal = Field(description="allocations under its active agreements")
    spent_under_active: Decimal
    spent_to_date: Decimal = Field(description="paid to it under any agreement, ever")


class NetworkTotals(BaseModel):
    open_needs: int
    pooled_budget: Decimal = Field(description="pooled budgets of open needs")
    active_agreements: int
    committed: Decimal
    spent_to_date: Decimal
    providers_with_active_agreements: int


class NetworkState(BaseModel):
    """Every approved provider and every party to an active agreement, with what it holds."""

    totals: NetworkTotals
    providers: list[ProviderState]


class OrganisationTypeShare(BaseModel):
    organisation_type: str
    committed: Decimal = Field(description=f"{COMMITTED}; held by providers of this type")
    share_pct: Decimal = Field(description=DEFINITIONS["share_pct"])
    providers: int = Field(description=DEFINITIONS["providers"])


class CategoryMarket(BaseModel):
    """One service category, with everything filed under the categories below it."""

    category: str = Field(description="a code of the service taxonomy")
    name: str = Field(description="its name in the taxonomy (the code if it is not in it)")
    parent: str | None = Field(description="the category it sits under; none at the top level")
    market: str = Field(description="the top-level category whose index rates this one (its "
                                    "own code for a top-level category)")
    is_market: bool = Field(description="a top-level category, where concentration is rated")
    active_providers: int = Field(description=DEFINITIONS["active_providers"])
    active_providers_by_organisation_type: dict[str, int] = Field(
        description=DEFINITIONS["active_providers_by_organisation_type"])
    committed: Decimal = Field(description=DEFINITIONS["committed"])
    providers_with_commitments: int = Field(description=DEFINITIONS["providers_with_commitments"])
    shares: dict[str, Decimal] = Field(description=DEFINITIONS["shares"])
    largest_provider_id: str | None = Field(
        description="the provider holding most of the category's committed spend (on a tie, "
                    "the first id in order); none if nothing is committed")
    largest_share_pct: Decimal | None = Field(description=DEFINITIONS["largest_share_pct"])
    hhi: Decimal | None = Field(description=DEFINITIONS["hhi"])
    concentration: str | None = Field(description=DEFINITIONS["concentration"])
    hhi_by_quarter: list[QuarterConcentration] = Field(
        description=DEFINITIONS["hhi_by_quarter"] + "; top-level categories only")
    open_needs: int = Field(description=DEFINITIONS["open_needs"])


class NeedGap(BaseModel):
    need_id: UUID
    title: str
    service_area: str
    stage: SourcingStage
    pooled_budget: Decimal = Field(description=POOLED)


class OutcomeGap(BaseModel):
    need_id: UUID
    need_title: str
    service_area: str
    outcome_id: str
    description: str
    measure_id: UUID | None


class MarketGaps(BaseModel):
    needs_without_active_agreement: list[NeedGap] = Field(
        description=DEFINITIONS["needs_without_active_agreement"])
    outcomes_not_covered: list[OutcomeGap] = Field(
        description=DEFINITIONS["outcomes_not_covered"])
    supply_gaps: list[SupplyGap] = Field(description=DEFINITIONS["supply_gaps"])
    open_needs_without_areas: list[NeedRef] = Field(
        description=DEFINITIONS["open_needs_without_areas"])


class MarketView(BaseModel):
    committed_total: Decimal = Field(description=DEFINITIONS["committed_total"])
    committed_by_organisation_type: list[OrganisationTypeShare] = Field(
        description=DEFINITIONS["committed_by_organisation_type"])
    concentration_level: str = Field(description="where concentration is rated, and why")
    categories: list[CategoryMarket] = Field(
        description="every category the network offers or the council has commissioned in, "
                    "and the categories above them; each top-level category first, then those "
                    "below it")
    gaps: MarketGaps
    definitions: dict[str, str] = Field(
        description="each figure's unit and how it was worked out, by field name")


# ---------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Holding:
    """One party's allocation under one active agreement."""

    agreement_id: str
    need_id: str
    provider_id: str
    allocation: int  # pence


@dataclass(frozen=True)
class _Need:
    need_id: str
    title: str
    service_area: str
    stage: str
    is_open: bool
    outcomes: list[dict[str, Any]]
    pooled: int  # pence
    areas: tuple[str, ...] = ()  # the population's

    @property
    def ref(self) -> NeedRef:
        return NeedRef(need_id=UUID(self.need_id), title=self.title,
                       pooled_budget=pounds(self.pooled))


def _active_holdings(tx: Tx) -> list[_Holding]:
    return [
        _Holding(str(a), str(n), str(p), int(pence))
        for a, n, p, pence in tx.execute(
            "SELECT p.agreement_id, a.need_id, p.provider_id, p.allocation_pence"
            " FROM cm_parties p JOIN cm_agreements a ON a.agreement_id = p.agreement_id"
            " WHERE a.status = 'active' ORDER BY p.agreement_id, p.ordinal")
    ]


def _providers(tx: Tx) -> dict[str, tuple[str, str, str]]:
    """provider_id -> (name, organisation type, status), from the network projection."""
    return {
        str(p): (str(name), str(kind), str(status))
        for p, name, kind, status in tx.execute(
            "SELECT provider_id, name, organisation_type, status FROM network_providers")
    }


def _needs(tx: Tx) -> dict[str, _Need]:
    pledged = {
        str(n): int(total) for n, total in tx.execute(
            "SELECT need_id, SUM(amount_pence) FROM cm_contributions GROUP BY need_id")
    }
    return {
        str(need_id): _Need(str(need_id), str(title), str(area), str(stage), status == "open",
                            json.loads(outcomes), int(envelope) + pledged.get(str(need_id), 0),
                            tuple(json.loads(population).get("areas") or ()))
        for need_id, title, area, stage, status, outcomes, envelope, population in tx.execute(
            "SELECT need_id, title, service_area, stage, status, outcomes,"
            " budget_envelope_pence, population FROM cm_needs ORDER BY defined_at, need_id")
    }


def network_state(db: Database, today: date | None = None) -> NetworkState:
    """Providers x agreements x outcomes x budgets and spend, all read at one moment; `today`,
    the day read for (what performance figures are still provisional; default today in
    business time)."""
    with db.reading() as tx:
        providers = _providers(tx)
        needs = _needs(tx)
        agreements = {
            str(row[0]): row for row in tx.execute(
                "SELECT agreement_id, title, need_id, arrangement_type, starts_on, ends_on,"
                " budget_pence, outcomes FROM cm_agreements WHERE status = 'active'")
        }
        holdings = _active_holdings(tx)
        performance = performance_of(tx, db.dialect, sorted(agreements), today)
        spend: dict[tuple[str, str], int] = {}
        spent_ever: dict[str, int] = defaultdict(int)
        for agreement_id, provider_id, total in tx.execute(
            "SELECT agreement_id, provider_id, SUM(amount_pence) FROM cm_spend"
            " GROUP BY agreement_id, provider_id"
        ):
            spend[(str(agreement_id), str(provider_id))] = int(total)
            spent_ever[str(provider_id)] += int(total)
    held: dict[str, list[_Holding]] = defaultdict(list)
    for h in holdings:
        held[h.provider_id].append(h)
    shown = sorted(
        {p for p, (_, _, status) in providers.items() if status == ACTIVE.value} | set(held),
        key=lambda p: ((providers[p][0] if p in providers else "").casefold(), p),
    )
    states: list[ProviderState] = []
    for provider_id in shown:
        name, kind, status = providers.get(provider_id, (None, UNKNOWN, None))
        rows = [_provider_agreement(agreements[h.agreement_id], needs.get(h.need_id), h,
                                    spend.get((h.agreement_id, provider_id), 0),
                                    performance.get(h.agreement_id))
                for h in held.get(provider_id, [])]
        states.append(ProviderState(
            provider_id=UUID(provider_id), name=name, organisation_type=kind, status=status,
            active_agreements=rows,
            committed=sum((r.allocation for r in rows), pounds(0)),
            spent_under_active=sum((r.spent for r in rows), pounds(0)),
            spent_to_date=pounds(spent_ever.get(provider_id, 0)),
        ))
    open_needs = [n for n in needs.values() if n.is_open]
    return NetworkState(
        totals=NetworkTotals(
            open_needs=len(open_needs),
            pooled_budget=pounds(sum(n.pooled for n in open_needs)),
            active_agreements=len(agreements),
            committed=pounds(sum(h.allocation for h in holdings)),
            spent_to_date=pounds(sum(spent_ever.values())),
            providers_with_active_agreements=len(held),
        ),
        providers=states,
    )


def _provider_agreement(row: Row, need: _Need | None, holding: _Holding, spent: int,
                        performance: PerformanceBrief | None) -> ProviderAgreement:
    agreement_id, title, need_id, arrangement, starts_on, ends_on, budget, outcomes = row
    sought = {str(o["outcome_id"]): o for o in need.outcomes} if need else {}
    return ProviderAgreement(
        agreement_id=agreement_id, title=title, need_id=need_id,
        need_title=need.title if need else None,
        service_area=need.service_area if need else None, arrangement_type=arrangement,
        starts_on=starts_on, ends_on=ends_on, agreement_budget=pounds(budget),
        allocation=pounds(holding.allocation), spent=pounds(spent),
        outcomes=[
            LinkedOutcome(outcome_id=o["outcome_id"],
                          description=sought.get(str(o["outcome_id"]), {}).get("description"),
                          measure_id=o.get("measure_id"), target=o.get("target"))
            for o in json.loads(outcomes)
        ],
        performance=performance,
    )


def market_view(db: Database, at: datetime | None = None) -> MarketView:
    """Committed spend by organisation type; per service category (rolled up the taxonomy) the
    approved providers, committed spend and who holds it; per top-level category the
    concentration now and by quarter; and the gaps, all read at one moment. `at` is the moment
    the view stands at, which only decides the current (partial) quarter: the "as of" moment,
    or by default now (council.kernel.clock's business time)."""
    moment = _utc(at or clock.now())
    with db.reading() as tx:
        providers = _providers(tx)
        needs = _needs(tx)
        holdings = _active_holdings(tx)
        offers = _offers(tx)
        timelines = _timelines(tx)
        covered: dict[str, set[str]] = defaultdict(set)
        for need_id, outcomes in tx.execute(
            "SELECT need_id, outcomes FROM cm_agreements WHERE status = 'active'"
        ):
            covered[str(need_id)].update(str(o["outcome_id"]) for o in json.loads(outcomes))
    kinds = {p: kind for p, (_, kind, _) in providers.items()}
    total = sum(h.allocation for h in holdings)
    quarterly = history(timelines, lambda n: taxonomy().top(needs[n].service_area)
                        if n in needs else None, moment)
    return MarketView(
        committed_total=pounds(total),
        committed_by_organisation_type=_by_kind(holdings, kinds),
        concentration_level=LEVEL,
        categories=_categories(needs, holdings, offers, kinds, quarterly),
        gaps=_gaps(needs, covered, offers),
        definitions=DEFINITIONS,
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _offers(tx: Tx) -> list[Offer]:
    """Every capability of every approved provider, with the areas it is offered in."""
    return [
        offer(str(provider_id), str(category), json.loads(areas), json.loads(served))
        for provider_id, category, areas, served in tx.execute(
            "SELECT c.provider_id, c.category, c.areas, p.areas_served"
            " FROM network_capabilities c"
            " JOIN network_providers p ON p.provider_id = c.provider_id"
            " WHERE p.status = ? ORDER BY c.provider_id, c.capability_id", (ACTIVE.value,))
    ]


def _timelines(tx: Tx) -> list[AgreementTimeline]:
    """Every agreement ever activated, with what it committed over time."""
    parties: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for agreement_id, provider_id, allocation in tx.execute(
        "SELECT agreement_id, provider_id, original_allocation_pence FROM cm_parties"
        " ORDER BY agreement_id, ordinal"
    ):
        parties[str(agreement_id)].append((str(provider_id), int(allocation)))
    varied: dict[str, list[tuple[datetime, int, int]]] = defaultdict(list)
    for agreement_id, at, change, new_budget in tx.execute(
        "SELECT agreement_id, varied_at, budget_change_pence, new_budget_pence"
        " FROM cm_variations"
    ):
        varied[str(agreement_id)].append((_utc(datetime.fromisoformat(str(at))), int(change),
                                          int(new_budget)))
    return [
        AgreementTimeline(
            need_id=str(need_id), activated_at=_utc(datetime.fromisoformat(str(activated))),
            ended_at=_utc(datetime.fromisoformat(str(ended))) if ended else None,
            budget=int(budget), parties=parties[str(agreement_id)],
            variations=varied[str(agreement_id)])
        for agreement_id, need_id, activated, ended, budget in tx.execute(
            "SELECT agreement_id, need_id, activated_at, ended_at, original_budget_pence"
            " FROM cm_agreements WHERE activated_at IS NOT NULL ORDER BY agreement_id")
    ]


def _by_kind(holdings: list[_Holding], kinds: dict[str, str]) -> list[OrganisationTypeShare]:
    total = sum(h.allocation for h in holdings)
    by_kind: dict[str, int] = defaultdict(int)
    holders: dict[str, set[str]] = defaultdict(set)
    for h in holdings:
        kind = kinds.get(h.provider_id, UNKNOWN)
        by_kind[kind] += h.allocation
        holders[kind].add(h.provider_id)
    order = [k.value for k in OrganisationType] + sorted(set(by_kind) - set(OrganisationType))
    return [
        OrganisationTypeShare(organisation_type=k, committed=pounds(by_kind.get(k, 0)),
                              share_pct=percent(by_kind.get(k, 0), total),
                              providers=len(holders.get(k, ())))
        for k in order
    ]


def _categories(needs: dict[str, _Need], holdings: list[_Holding], offers: list[Offer],
                kinds: dict[str, str],
                quarterly: dict[str, list[QuarterConcentration]]) -> list[CategoryMarket]:
    """Each category with what is filed under it or any category below it."""
    tax = taxonomy()
    held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for h in holdings:
        need = needs.get(h.need_id)
        if need is not None:
            for code in tax.lineage(need.service_area):
                held[code][h.provider_id] += h.allocation
    offering: dict[str, set[str]] = defaultdict(set)
    for o in offers:
        for code in tax.lineage(o.category):
            offering[code].add(o.provider_id)
    open_needs: dict[str, int] = defaultdict(int)
    for need in needs.values():
        for code in tax.lineage(need.service_area):
            open_needs[code] += need.is_open
    # Every category the network offers or the council has commissioned in, with those above.
    shown = set(offering) | set(held) | set(open_needs)
    order = [c for c in tax.tree_order() if c in shown] + sorted(shown - set(tax.terms))
    return [_category(code, dict(held.get(code, {})), offering.get(code, set()), kinds,
                      open_needs.get(code, 0), quarterly.get(code, []))
            for code in order]


def _category(code: str, held: dict[str, int], offering: set[str], kinds: dict[str, str],
              open_needs: int, quarterly: list[QuarterConcentration]) -> CategoryMarket:
    tax = taxonomy()
    term = tax.terms.get(code)
    market = tax.top(code)
    is_market = market == code
    total = sum(held.values())
    hhi = hhi_of(list(held.values())) if is_market else None
    by_kind: dict[str, int] = defaultdict(int)
    for provider_id in offering:
        by_kind[kinds.get(provider_id, UNKNOWN)] += 1
    top, top_share = largest(held)
    return CategoryMarket(
        category=code, name=term.name if term else code,
        parent=term.parent if term else None, market=market, is_market=is_market,
        active_providers=len(offering),
        active_providers_by_organisation_type=dict(sorted(by_kind.items())),
        committed=pounds(total), providers_with_commitments=len(held),
        shares={p: percent(a, total) for p, a in sorted(held.items())},
        largest_provider_id=top, largest_share_pct=top_share,
        hhi=hhi, concentration=concentration(hhi) if hhi is not None else None,
        hhi_by_quarter=quarterly if is_market else [], open_needs=open_needs,
    )


def _gaps(needs: dict[str, _Need], covered: dict[str, set[str]],
          offers: list[Offer]) -> MarketGaps:
    without: list[NeedGap] = []
    uncovered: list[OutcomeGap] = []
    for need in needs.values():
        if not need.is_open:
            continue
        if need.need_id not in covered:
            without.append(NeedGap(need_id=UUID(need.need_id), title=need.title,
                                   service_area=need.service_area, stage=need.stage,
                                   pooled_budget=pounds(need.pooled)))
        named = covered.get(need.need_id, set())
        uncovered.extend(
            OutcomeGap(need_id=UUID(need.need_id), need_title=need.title,
                       service_area=need.service_area, outcome_id=o["outcome_id"],
                       description=o["description"], measure_id=o.get("measure_id"))
            for o in need.outcomes if str(o["outcome_id"]) not in named
        )
    open_needs = [n for n in needs.values() if n.is_open]
    demand = [Demand(n.ref, n.service_area, n.areas) for n in open_needs if n.areas]
    return MarketGaps(
        needs_without_active_agreement=without, outcomes_not_covered=uncovered,
        supply_gaps=supply_gaps(demand, offers),
        open_needs_without_areas=[n.ref for n in open_needs if not n.areas],
    )
