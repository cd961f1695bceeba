"""Read-side questions the council's pages ask of the integrator's read models (network,
commissioning, performance, standing; one database), beyond the network state and market view:
the network grouped by area, the diversity of spend over time, the incubating providers, and
each outcome measure's and agreement's target against actual.

Like the market view these depend only on the events applied, so they answer the same on a
read model rebuilt "as of" a date.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from council.kernel.contracts.provider_registry import OrganisationType
from council.kernel.money import pounds
from council.kernel.performance_rule import MeasureFacts, PeriodAssessment, assess
from council.kernel.periods import overlaps, period_bounds, period_order, quarter_of, today_or_now
from council.platform.sql import Database, Tx
from council.services.integrator.projections.concentration import percent
from council.services.integrator.projections.market import UNKNOWN, NetworkState

# ---------------------------------------------------------------------- the network by area


@dataclass
class AreaGroup:
    area: str
    providers: list[dict[str, Any]] = field(default_factory=list)  # name, id, type, status
    by_type: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    active: int = 0
    with_agreements: int = 0
    committed: Decimal = Decimal("0.00")


NO_AREA = "No area recorded"


def network_by_area(db: Database, state: NetworkState) -> list[AreaGroup]:
    """Providers grouped by the areas they serve (a provider serving three districts is in
    each): per area, who they are, by type, how many are approved, how many hold agreements,
    and what they hold (a provider's whole commitment counts in each of its areas)."""
    held = {str(p.provider_id): p for p in state.providers}
    with db.transaction() as tx:
        rows = tx.execute("SELECT provider_id, name, organisation_type, status, areas_served"
                          " FROM network_providers ORDER BY name, provider_id")
    groups: dict[str, AreaGroup] = {}
    for provider_id, name, kind, status, areas in rows:
        for area in json.loads(areas) or [NO_AREA]:
            group = groups.setdefault(area, AreaGroup(area))
            group.providers.append({"provider_id": str(provider_id), "name": name,
                                    "organisation_type": kind, "status": status})
            group.by_type[str(kind)] += 1
            group.active += status == "approved"
            holding = held.get(str(provider_id))
            if holding is not None and holding.active_agreements:
                group.with_agreements += 1
                group.committed += holding.committed
    return sorted(groups.values(), key=lambda g: (g.area == NO_AREA, g.area.casefold()))


def areas_served(db: Database) -> list[str]:
    """Every area any provider serves or delivers a capability in, sorted."""
    found: set[str] = set()
    with db.transaction() as tx:
        for (areas,) in tx.execute("SELECT areas_served FROM network_providers"):
            found.update(json.loads(areas))
        for (areas,) in tx.execute("SELECT areas FROM network_capabilities"):
            found.update(json.loads(areas))
    return sorted(found, key=str.casefold)


def provider_areas(db: Database) -> dict[str, set[str]]:
    """provider id -> the areas it serves or has a capability in."""
    found: dict[str, set[str]] = defaultdict(set)
    with db.transaction() as tx:
        for provider_id, areas in tx.execute(
                "SELECT provider_id, areas_served FROM network_providers"):
            found[str(provider_id)].update(json.loads(areas))
        for provider_id, areas in tx.execute(
                "SELECT provider_id, areas FROM network_capabilities"):
            found[str(provider_id)].update(json.loads(areas))
    return found


# ---------------------------------------------------------------------- diversity over time


@dataclass(frozen=True)
class QuarterShares:
    quarter: str  # 2025-Q2
    total: Decimal
    by_type: dict[str, Decimal]  # organisation type -> amount paid in the quarter
    share_pct: dict[str, Decimal]




def spend_by_type_over_time(db: Database) -> list[QuarterShares]:
    """What was paid to providers in each calendar quarter, by their organisation type: how
    diverse the council's actual spend has been over time (oldest first)."""
    with db.transaction() as tx:
        kinds = {str(p): str(k) for p, k in tx.execute(
            "SELECT provider_id, organisation_type FROM network_providers")}
        rows = tx.execute("SELECT period, provider_id, SUM(amount_pence) FROM cm_spend"
                          " GROUP BY period, provider_id")
    quarters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for period, provider_id, pence in rows:
        quarter = quarter_of(period_bounds(str(period))[0])
        quarters[quarter][kinds.get(str(provider_id), UNKNOWN)] += int(pence)
    order = [k.value for k in OrganisationType]
    found = []
    for quarter in sorted(quarters):
        amounts = quarters[quarter]
        total = sum(amounts.values())
        kinds_seen = order + sorted(set(amounts) - set(order))
        found.append(QuarterShares(
            quarter=quarter, total=pounds(total),
            by_type={k: pounds(amounts.get(k, 0)) for k in kinds_seen if k in amounts},
            share_pct={k: percent(amounts[k], total) for k in kinds_seen if k in amounts},
        ))
    return found


# ---------------------------------------------------------------------- market making


@dataclass(frozen=True)
class Incubating:
    provider_id: str
    name: str
    organisation_type: str
    since: str
    milestones_total: int
    milestones_met: int
    milestones: list[dict[str, Any]]  # title, due_on, met (from the standing projection)


def incubating_providers(db: Database) -> list[Incubating]:
    """Providers the council is growing now, with their milestones."""
    with db.transaction() as tx:
        plans: dict[str, str] = {}
        if _has(tx, db, "st_profiles"):  # a database rebuilt "as of" may not hold it
            plans = {str(p): str(m) for p, m in tx.execute(
                "SELECT provider_id, milestones FROM st_profiles WHERE provider_id IN"
                " (SELECT provider_id FROM network_providers WHERE status = 'incubating')")}
        rows = tx.execute(
            "SELECT provider_id, name, organisation_type, status_changed_at, milestones_total,"
            " milestones_met FROM network_providers WHERE status = 'incubating'"
            " ORDER BY name, provider_id")
    return [Incubating(str(p), str(n), str(k), str(at)[:10], int(total or 0), int(met or 0),
                       json.loads(plans.get(str(p), "[]")))
            for p, n, k, at, total, met in rows]


def _has(tx: Tx, db: Database, table: str) -> bool:
    """Whether the database holds this table (one rebuilt "as of" has only some read models)."""
    if db.dialect == "sqlite":
        rows = tx.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (table,))
    else:
        rows = tx.execute("SELECT 1 FROM information_schema.tables"
                          " WHERE table_schema = current_schema() AND table_name = ?", (table,))
    return bool(rows)


# ---------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class MeasureSeries:
    measure_id: str
    name: str
    unit: str
    lower_is_better: bool
    baseline: Decimal | None
    periods: list[str]
    targets: dict[str, Decimal]
    actuals: dict[str, Decimal]

    @property
    def facts(self) -> MeasureFacts:
        return MeasureFacts(self.measure_id, self.lower_is_better, self.baseline, self.targets,
                            self.actuals, self.name, self.unit)


def measure_series(db: Database, measure_ids: Sequence[str] | None = None) -> list[MeasureSeries]:
    """Each outcome measure's targets and latest measurement per period, by name."""
    with db.transaction() as tx:
        if not _has(tx, db, "ip_measures"):
            return []
        targets: dict[str, dict[str, Decimal]] = defaultdict(dict)
        actuals: dict[str, dict[str, Decimal]] = defaultdict(dict)
        for m, period, target in tx.execute("SELECT measure_id, period, target FROM ip_targets"):
            targets[str(m)][str(period)] = Decimal(str(target))
        for m, period, value in tx.execute("SELECT measure_id, period, value FROM ip_actuals"):
            actuals[str(m)][str(period)] = Decimal(str(value))
        rows = tx.execute("SELECT measure_id, name, unit, lower_is_better, baseline"
                          " FROM ip_measures")
    wanted = set(measure_ids) if measure_ids is not None else None
    found = []
    for m, name, unit, lower, baseline in rows:
        key = str(m)
        if wanted is not None and key not in wanted:
            continue
        periods = sorted(set(targets[key]) | set(actuals[key]), key=period_order)
        found.append(MeasureSeries(
            measure_id=key, name=str(name or key), unit=str(unit or ""),
            lower_is_better=bool(lower),
            baseline=None if baseline is None else Decimal(str(baseline)), periods=periods,
            targets=targets[key], actuals=actuals[key]))
    return sorted(found, key=lambda s: s.name.casefold())


@dataclass(frozen=True)
class AgreementOutcomes:
    """One agreement's outcomes: per attributed measure target against actual over its term,
    per period the weighted improvement targeted against achieved (a period not yet over on
    `today` marked provisional), and its payment schedule."""

    agreement_id: str
    title: str
    status: str
    term: tuple[date, date]
    weights: dict[str, Decimal]
    measures: list[MeasureSeries]
    periods: list[PeriodAssessment]
    payments: list[tuple[str, Decimal]]  # period, latest total (oldest first)
    today: date  # the day read for


def agreements_with_outcomes(db: Database) -> list[tuple[str, str]]:
    """(agreement id, title) of agreements with attributed outcomes or payments, by title."""
    with db.transaction() as tx:
        if not _has(tx, db, "ip_attributions"):
            return []
        rows = tx.execute(
            "SELECT a.agreement_id, a.title FROM cm_agreements a WHERE a.agreement_id IN"
            " (SELECT agreement_id FROM ip_attributions UNION"
            " SELECT agreement_id FROM ip_payments) ORDER BY a.title, a.agreement_id")
    return [(str(a), str(t)) for a, t in rows]


def agreement_outcomes(db: Database, agreement_id: str,
                       today: date | None = None) -> AgreementOutcomes | None:
    day = today_or_now(today)
    with db.transaction() as tx:
        rows = tx.execute("SELECT title, status, starts_on, ends_on, ended_on FROM cm_agreements"
                          " WHERE agreement_id = ?", (agreement_id,))
        if not rows or not _has(tx, db, "ip_attributions"):
            return None
        weights = {str(m): Decimal(str(w)) for m, w in tx.execute(
            "SELECT measure_id, weight FROM ip_attributions WHERE agreement_id = ?",
            (agreement_id,))}
        payments = [(str(p), pounds(int(total))) for p, total in tx.execute(
            "SELECT period, total_pence FROM ip_payments WHERE agreement_id = ?",
            (agreement_id,))]
    title, status, starts_on, ends_on, ended_on = rows[0]
    end = date.fromisoformat(str(ends_on))
    if ended_on:
        end = min(end, date.fromisoformat(str(ended_on)))
    term = (date.fromisoformat(str(starts_on)), end)
    series = [
        MeasureSeries(s.measure_id, s.name, s.unit, s.lower_is_better, s.baseline,
                      [p for p in s.periods if overlaps(p, term)], s.targets, s.actuals)
        for s in measure_series(db, sorted(weights))
    ]
    assessment = assess({s.measure_id: s.facts for s in series}, weights, term, day)
    return AgreementOutcomes(
        agreement_id=agreement_id, title=str(title), status=str(status), term=term,
        weights=weights, measures=series, periods=list(assessment.periods),
        payments=sorted(payments, key=lambda p: period_order(p[0])), today=day,
    )


def record_names(db: Database) -> dict[str, str]:
    """id -> name of every provider, need and agreement (what timelines say events are about)."""
    with db.transaction() as tx:
        rows = [*tx.execute("SELECT provider_id, name FROM network_providers"),
                *tx.execute("SELECT need_id, title FROM cm_needs"),
                *tx.execute("SELECT agreement_id, title FROM cm_agreements")]
    return {str(key): str(name) for key, name in rows}
