"""The integrator's two whole-network views, read from the network and commissioning projections
(which share one read-model database):

- the network state: providers x agreements x outcomes x budgets and spend, with each active
  agreement's performance (from the performance projection, when it is in the database);
- the market view: who holds the committed spend (by organisation type), how many providers are
  active in each service category and how concentrated each category's spend is (the
  Herfindahl-Hirschman index), and the gaps: needs and outcomes with no active agreement.

"Committed" is the current budget of active agreements, held by each party as its allocation
(allocations are scaled with the budget when an agreement is varied). Nothing here depends on
today's date, only on the events applied, so a view rebuilt "as of" a date from the log is the
view the live projection gave on that date.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from services.integrator.domain import ACTIVE
from services.integrator.projections.commissioning import PENNY, pounds
from services.integrator.projections.performance import PerformanceBrief, performance_of
from shared.contracts.integrator import ArrangementType, SourcingStage
from shared.contracts.provider_registry import OrganisationType
from shared.sql import Database, Row, Tx

UNKNOWN = "unknown"  # a party the network projection has not (yet) heard of

# Concentration bands of the Herfindahl-Hirschman index (0..10,000), as the UK competition
# authorities' merger guidelines draw them.
CONCENTRATED_FROM = 1000
HIGHLY_CONCENTRATED_FROM = 2000


def concentration(hhi: Decimal) -> str:
    if hhi >= HIGHLY_CONCENTRATED_FROM:
        return "highly concentrated"
    if hhi >= CONCENTRATED_FROM:
        return "concentrated"
    return "unconcentrated"


def hhi_of(amounts: list[int]) -> Decimal | None:
    """The Herfindahl-Hirschman index of these holdings: the sum of the squared percentage
    shares, 10,000 for a monopoly; exact, then rounded to two places. None if nothing is held."""
    total = sum(amounts)
    if total <= 0:
        return None
    exact = Fraction(10_000 * sum(a * a for a in amounts), total * total)
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(PENNY)


def percent(part: int, whole: int) -> Decimal:
    if whole <= 0:
        return Decimal("0.00")
    return (Decimal(100 * part) / Decimal(whole)).quantize(PENNY)


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
    committed: Decimal
    share_pct: Decimal = Field(description="share of all committed spend, in per cent")
    providers: int = Field(description="providers of this type holding committed spend")


class CategoryMarket(BaseModel):
    category: str
    active_providers: int = Field(description="approved providers offering the category")
    active_providers_by_organisation_type: dict[str, int]
    committed: Decimal = Field(
        description="committed spend of active agreements for needs in this service area")
    providers_with_commitments: int
    shares: dict[str, Decimal] = Field(
        description="each provider's share of the category's committed spend, in per cent")
    hhi: Decimal | None = Field(
        description="Herfindahl-Hirschman index of those shares, 0..10,000; none if no spend")
    concentration: str | None
    open_needs: int


class NeedGap(BaseModel):
    need_id: UUID
    title: str
    service_area: str
    stage: SourcingStage
    pooled_budget: Decimal


class OutcomeGap(BaseModel):
    need_id: UUID
    need_title: str
    service_area: str
    outcome_id: str
    description: str
    measure_id: UUID | None


class MarketGaps(BaseModel):
    needs_without_active_agreement: list[NeedGap] = Field(
        description="open needs with no agreement in force")
    outcomes_not_covered: list[OutcomeGap] = Field(
        description="outcomes sought by open needs that no active agreement of theirs names")


class MarketView(BaseModel):
    committed_total: Decimal
    committed_by_organisation_type: list[OrganisationTypeShare]
    categories: list[CategoryMarket]
    gaps: MarketGaps


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
                            json.loads(outcomes), int(envelope) + pledged.get(str(need_id), 0))
        for need_id, title, area, stage, status, outcomes, envelope in tx.execute(
            "SELECT need_id, title, service_area, stage, status, outcomes,"
            " budget_envelope_pence FROM cm_needs ORDER BY defined_at, need_id")
    }


def network_state(db: Database, today: date | None = None) -> NetworkState:
    """Providers x agreements x outcomes x budgets and spend, all read at one moment; `today`,
    the day read for (what performance figures are still provisional; default today in
    business time)."""
    with db.transaction() as tx:
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


def market_view(db: Database) -> MarketView:
    """Committed spend by organisation type, active providers and concentration per service
    category, and the gaps, all read at one moment."""
    with db.transaction() as tx:
        providers = _providers(tx)
        needs = _needs(tx)
        holdings = _active_holdings(tx)
        active: dict[str, dict[str, int]] = defaultdict(dict)
        for category, kind, n in tx.execute(
            "SELECT c.category, p.organisation_type, COUNT(DISTINCT p.provider_id)"
            " FROM network_capabilities c"
            " JOIN network_providers p ON p.provider_id = c.provider_id"
            " WHERE p.status = ? GROUP BY c.category, p.organisation_type", (ACTIVE.value,),
        ):
            active[str(category)][str(kind)] = int(n)
        active_total = {
            str(category): int(n) for category, n in tx.execute(
                "SELECT c.category, COUNT(DISTINCT p.provider_id) FROM network_capabilities c"
                " JOIN network_providers p ON p.provider_id = c.provider_id"
                " WHERE p.status = ? GROUP BY c.category", (ACTIVE.value,))
        }
        covered: dict[str, set[str]] = defaultdict(set)
        for need_id, outcomes in tx.execute(
            "SELECT need_id, outcomes FROM cm_agreements WHERE status = 'active'"
        ):
            covered[str(need_id)].update(str(o["outcome_id"]) for o in json.loads(outcomes))
    total = sum(h.allocation for h in holdings)

    def kind_of(provider_id: str) -> str:
        return providers[provider_id][1] if provider_id in providers else UNKNOWN

    by_kind: dict[str, int] = defaultdict(int)
    holders: dict[str, set[str]] = defaultdict(set)
    for h in holdings:
        by_kind[kind_of(h.provider_id)] += h.allocation
        holders[kind_of(h.provider_id)].add(h.provider_id)
    kinds = [k.value for k in OrganisationType] + sorted(set(by_kind) - set(OrganisationType))
    shares = [
        OrganisationTypeShare(organisation_type=k, committed=pounds(by_kind.get(k, 0)),
                              share_pct=percent(by_kind.get(k, 0), total),
                              providers=len(holders.get(k, ())))
        for k in kinds
    ]
    return MarketView(
        committed_total=pounds(total),
        committed_by_organisation_type=shares,
        categories=_categories(needs, holdings, active, active_total),
        gaps=_gaps(needs, covered),
    )


def _categories(needs: dict[str, _Need], holdings: list[_Holding],
                active: dict[str, dict[str, int]],
                active_total: dict[str, int]) -> list[CategoryMarket]:
    per_provider: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for h in holdings:
        need = needs.get(h.need_id)
        if need is not None:
            per_provider[need.service_area][h.provider_id] += h.allocation
    open_needs: dict[str, int] = defaultdict(int)
    for need in needs.values():
        open_needs[need.service_area] += need.is_open
    found: list[CategoryMarket] = []
    # Every category the network offers or the council has commissioned in.
    for category in sorted(set(active_total) | set(per_provider) | set(open_needs)):
        held = per_provider.get(category, {})
        total = sum(held.values())
        hhi = hhi_of(list(held.values()))
        found.append(CategoryMarket(
            category=category, active_providers=active_total.get(category, 0),
            active_providers_by_organisation_type=dict(sorted(active.get(category, {}).items())),
            committed=pounds(total), providers_with_commitments=len(held),
            shares={p: percent(a, total) for p, a in sorted(held.items())},
            hhi=hhi, concentration=concentration(hhi) if hhi is not None else None,
            open_needs=open_needs.get(category, 0),
        ))
    return found


def _gaps(needs: dict[str, _Need], covered: dict[str, set[str]]) -> MarketGaps:
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
    return MarketGaps(needs_without_active_agreement=without, outcomes_not_covered=uncovered)
