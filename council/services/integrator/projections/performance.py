"""How each agreement performs, as the integrator sees it: a compact read model built from the
outcomes service's events on the shared log, so the network state can show, next to each active
agreement's budget and spend, its RAG, latest achievement, payments, delivery volume and cost per
outcome, and the council can see which arrangements work.

It keeps only the facts the figures need: each measure's name, unit, direction, baseline (and
its period) and targets and the latest measurement of each period (the measure's stream is in
order, so a revision simply replaces the value); each agreement's attribution weights; the
latest payment total of each period (the terms stream is in order too); and the delivery reports,
with their unit, and what they correct (a report and its correction are different streams, so
what corrections leave standing is worked out when read). The agreement's term and spend come
from the commissioning projection, which shares the read-model database.

The rules (RAG, achievement, provisional periods, cost per outcome per measure in its own unit,
delivery volumes per unit) are the outcomes service's performance view's, imported from there so
both sides judge an agreement alike: see council.services.outcomes.projections.performance. The
figures depend only on the events applied and the day they are read for (a period not yet over on
that day is provisional), so the view rebuilt "as of" a date and read for that date
(council.services.integrator.projections.asof builds this projection with the others) is the one the
live projection gave on that date.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from council.kernel.contracts.integrator import ArrangementType
from council.kernel.contracts.outcomes import SOURCE as OUTCOMES
from council.kernel.contracts.outcomes import (
    DeliveryReported,
    Direction,
    MeasurementRecorded,
    OutcomeAttributed,
    OutcomeMeasureDefined,
    PaymentCalculated,
    PaymentRecalculated,
)
from council.kernel.envelope import EventEnvelope
from council.kernel.money import pence, pounds
from council.kernel.performance_rule import (
    RAG_ORDER,
    MeasureFacts,
    OutcomeCost,
    Rag,
    UnitVolume,
    assess,
    outcome_costs,
    volumes_by_unit,
)
from council.kernel.periods import period_bounds, today_or_now
from council.platform.projection import TableProjection
from council.platform.sql import Database, Row, Tx

# Bump when the tables below change shape: the read model is then dropped and replayed.
# 2: measures keep their name and unit (the outcomes page's charts); 3: and their baseline
# period, and delivery reports their unit and activity (volumes are added up per unit only);
# 4: when each measurement reached the log (ip_actuals.recorded_at: contract performance
# notices are dated by it)
SCHEMA_VERSION = 4

_CHUNK = 500

_TABLES = (
    "CREATE TABLE IF NOT EXISTS ip_measures ("
    " measure_id TEXT PRIMARY KEY, lower_is_better INTEGER NOT NULL, baseline TEXT,"
    " name TEXT, unit TEXT, baseline_period TEXT)",
    "CREATE TABLE IF NOT EXISTS ip_targets ("
    " measure_id TEXT NOT NULL, period TEXT NOT NULL, target TEXT NOT NULL,"
    " PRIMARY KEY (measure_id, period))",
    "CREATE TABLE IF NOT EXISTS ip_actuals ("
    " measure_id TEXT NOT NULL, period TEXT NOT NULL, value TEXT NOT NULL, recorded_at TEXT,"
    " PRIMARY KEY (measure_id, period))",
    "CREATE TABLE IF NOT EXISTS ip_attributions ("
    " agreement_id TEXT NOT NULL, measure_id TEXT NOT NULL, weight TEXT NOT NULL,"
    " PRIMARY KEY (agreement_id, measure_id))",
    "CREATE TABLE IF NOT EXISTS ip_payments ("
    " agreement_id TEXT NOT NULL, period TEXT NOT NULL, total_pence BIGINT NOT NULL,"
    " PRIMARY KEY (agreement_id, period))",
    "CREATE TABLE IF NOT EXISTS ip_deliveries ("
    " delivery_id TEXT PRIMARY KEY, agreement_id TEXT NOT NULL, quantity TEXT NOT NULL,"
    " corrects TEXT, unit TEXT NOT NULL, activity_type TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ip_deliveries_agreement ON ip_deliveries (agreement_id)",
    "CREATE INDEX IF NOT EXISTS ip_deliveries_corrects ON ip_deliveries (corrects)",
)
_DROPPED = ("ip_measures", "ip_targets", "ip_actuals", "ip_attributions", "ip_payments",
            "ip_deliveries", "ip_schema")


def uuid_as_given(given: Any, value: UUID) -> str:
    """str(value) for a UUID validated from `given`: `given` itself when it is already that
    text (36 characters, lowercase: the only 36-character form a UUID is read from is the
    hyphenated one), as the shared log carries it. str() of a UUID is not free, and a delivery
    report, most of the log, has two (docs/performance.md)."""
    if type(given) is str and len(given) == 36 and given.islower():
        return given
    return str(value)


class AgreementPerformanceProjection(TableProjection):
    name = "integrator.performance"
    sources = (OUTCOMES,)

    marker = "ip_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        data = event.data
        match event.type:  # delivery reports first: most of the outcomes log is made of them
            case "DeliveryReported":
                report = DeliveryReported.model_validate(data)
                tx.execute(
                    "INSERT INTO ip_deliveries (delivery_id, agreement_id, quantity, corrects,"
                    " unit, activity_type) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (delivery_id) DO NOTHING",
                    (uuid_as_given(data["delivery_id"], report.delivery_id),
                     uuid_as_given(data["agreement_id"], report.agreement_id), str(report.quantity),
                     str(report.corrects) if report.corrects else None, report.unit,
                     report.activity_type),
                )
            case "OutcomeMeasureDefined":
                measure = OutcomeMeasureDefined.model_validate(data)
                tx.execute(
                    "INSERT INTO ip_measures (measure_id, lower_is_better, baseline, name, unit,"
                    " baseline_period) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (measure_id) DO NOTHING",
                    (str(measure.measure_id),
                     int(measure.direction is Direction.LOWER_IS_BETTER),
                     None if measure.baseline is None else str(measure.baseline),
                     measure.name, measure.unit, measure.baseline_period),
                )
                tx.executemany(
                    "INSERT INTO ip_targets (measure_id, period, target) VALUES (?, ?, ?)"
                    " ON CONFLICT (measure_id, period) DO NOTHING",
                    [(str(measure.measure_id), p.period, str(p.target))
                     for p in measure.trajectory],
                )
            case "MeasurementRecorded":
                measured = MeasurementRecorded.model_validate(data)
                tx.execute(
                    "INSERT INTO ip_actuals (measure_id, period, value, recorded_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (measure_id, period)"
                    " DO UPDATE SET value = excluded.value, recorded_at = excluded.recorded_at",
                    (str(measured.measure_id), measured.period, str(measured.value),
                     event.occurred_at.isoformat()),
                )
            case "OutcomeAttributed":
                attributed = OutcomeAttributed.model_validate(data)
                tx.execute(
                    "INSERT INTO ip_attributions (agreement_id, measure_id, weight)"
                    " VALUES (?, ?, ?) ON CONFLICT (agreement_id, measure_id)"
                    " DO UPDATE SET weight = excluded.weight",
                    (str(attributed.agreement_id), str(attributed.measure_id),
                     str(attributed.weight)),
                )
            case "PaymentCalculated" | "PaymentRecalculated":
                model = PaymentCalculated if event.type == "PaymentCalculated" \
                    else PaymentRecalculated
                paid = model.model_validate(data)
                tx.execute(
                    "INSERT INTO ip_payments (agreement_id, period, total_pence) VALUES (?, ?, ?)"
                    " ON CONFLICT (agreement_id, period)"
                    " DO UPDATE SET total_pence = excluded.total_pence",
                    (str(paid.agreement_id), paid.period, pence(paid.total)),
                )
            case _:
                pass  # a type this projection does not use


# ---------------------------------------------------------------------- views


class PerformanceBrief(BaseModel):
    """An agreement's performance in a line (the outcomes service's view has the detail)."""

    rag: Rag | None = Field(description="green, amber or red in its latest assessed period "
                                        "that has ended (a provisional period sets none)")
    rag_period: str | None
    latest_achievement_pct: Decimal | None = Field(
        description="weighted improvement achieved / targeted in that period, in per cent")
    payments_total: Decimal = Field(description="the latest payment total of every period")
    spend_total: Decimal
    delivery_volumes: list[UnitVolume] = Field(
        description="units delivered, after corrections, added up per unit only")
    outcome_costs: list[OutcomeCost] = Field(
        description="per attributed measure, the cost of a unit of its improvement in the "
                    "measure's own unit, and how it was worked out")


class ArrangementPerformance(PerformanceBrief):
    agreement_id: UUID
    title: str
    need_id: UUID
    need_title: str | None
    service_area: str | None
    arrangement_type: ArrangementType
    status: str
    provider_ids: list[UUID]
    budget: Decimal


# ---------------------------------------------------------------------- reading


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({','.join('?' * len(values))})"


def _select(tx: Tx, sql: str, column: str, ids: Sequence[str], tail: str = "") -> list[Row]:
    rows: list[Row] = []
    joiner = " AND " if " WHERE " in sql else " WHERE "
    for i in range(0, len(ids), _CHUNK):
        chunk = list(ids[i:i + _CHUNK])
        rows.extend(tx.execute(f"{sql}{joiner}{_in(column, chunk)}{tail}", chunk))
    return rows


def _has_read_model(tx: Tx, dialect: str) -> bool:
    """Whether this database holds the read model (a database built without it has none)."""
    if dialect == "sqlite":
        rows = tx.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          ("ip_schema",))
    else:
        rows = tx.execute("SELECT 1 FROM information_schema.tables"
                          " WHERE table_schema = current_schema() AND table_name = ?",
                          ("ip_schema",))
    return bool(rows)


def performance_of(tx: Tx, dialect: str, agreement_ids: Sequence[str],
                   today: date | None = None) -> dict[str, PerformanceBrief]:
    """The performance of those of `agreement_ids` the outcomes service has said anything about
    (an attribution, a payment or a delivery report); the others are left out. `today`: the day
    read for (what is provisional), default today in business time."""
    if not agreement_ids or not _has_read_model(tx, dialect):
        return {}
    day = today_or_now(today)
    ids = sorted(set(agreement_ids))
    weights: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for a, m, weight in _select(tx, "SELECT agreement_id, measure_id, weight"
                                " FROM ip_attributions", "agreement_id", ids):
        weights[str(a)][str(m)] = Decimal(str(weight))
    payments: dict[str, int] = {
        str(a): int(total) for a, total in _select(
            tx, "SELECT agreement_id, SUM(total_pence) FROM ip_payments", "agreement_id", ids,
            " GROUP BY agreement_id")
    }
    delivered: dict[str, list[tuple[str, str, Decimal]]] = defaultdict(list)
    # Counted per distinct quantity (decimal text, summed exactly here): an agreement may have
    # hundreds of thousands of reports but only a few distinct quantities.
    for a, activity, unit, quantity, times in _select(
        tx, "SELECT d.agreement_id, d.activity_type, d.unit, d.quantity, COUNT(*)"
            " FROM ip_deliveries d WHERE NOT EXISTS"
            " (SELECT 1 FROM ip_deliveries c WHERE c.corrects = d.delivery_id"
            " AND c.delivery_id <> d.delivery_id)", "d.agreement_id", ids,
            " GROUP BY d.agreement_id, d.activity_type, d.unit, d.quantity",
    ):
        delivered[str(a)].append((str(activity), str(unit), Decimal(str(quantity)) * int(times)))
    known = set(weights) | set(payments) | set(delivered)
    if not known:
        return {}
    measures = _measures(tx, sorted({m for w in weights.values() for m in w}))
    terms: dict[str, tuple[date, date]] = {}
    for a, starts_on, ends_on, ended_on in _select(
        tx, "SELECT agreement_id, starts_on, ends_on, ended_on FROM cm_agreements",
        "agreement_id", sorted(known),
    ):
        end = date.fromisoformat(str(ends_on))
        if ended_on:
            end = min(end, date.fromisoformat(str(ended_on)))
        terms[str(a)] = (date.fromisoformat(str(starts_on)), end)
    spend: dict[str, int] = {
        str(a): int(total) for a, total in _select(
            tx, "SELECT agreement_id, SUM(amount_pence) FROM cm_spend", "agreement_id",
            sorted(known), " GROUP BY agreement_id")
    }
    found: dict[str, PerformanceBrief] = {}
    for agreement_id in sorted(known):
        attributed, term = weights.get(agreement_id, {}), terms.get(agreement_id)
        assessment = assess(measures, attributed, term, day)
        paid, spent = payments.get(agreement_id), spend.get(agreement_id)
        found[agreement_id] = PerformanceBrief(
            rag=assessment.rag, rag_period=assessment.rag_period,
            latest_achievement_pct=assessment.achievement_pct,
            payments_total=pounds(paid or 0), spend_total=pounds(spent or 0),
            delivery_volumes=volumes_by_unit(delivered.get(agreement_id, [])),
            outcome_costs=outcome_costs(measures, attributed, term, day, paid, spent),
        )
    return found


def performance_evidence(db: Database, agreement_id: UUID) -> str | None:
    """The performance data the integrator holds for an agreement, said in a line: its RAG
    assessment, else the latest measurement of a measure it is tied to (attributed, or named by
    one of its outcomes) for a period that ended after it started. None: nothing yet, so an
    extension cannot be justified by performance."""
    key = str(agreement_id)
    with db.reading() as tx:
        if not _has_read_model(tx, db.dialect):
            return None
        brief = performance_of(tx, db.dialect, [key]).get(key)
        if brief is not None and brief.rag is not None:
            achieved = (f" (achievement {brief.latest_achievement_pct}% of target)"
                        if brief.latest_achievement_pct is not None else "")
            return f"RAG {brief.rag.value} in {brief.rag_period}{achieved}"
        return _latest_measurement(tx, key)


def _latest_measurement(tx: Tx, agreement_id: str) -> str | None:
    rows = tx.execute("SELECT starts_on, outcomes FROM cm_agreements WHERE agreement_id = ?",
                      (agreement_id,))
    if not rows:
        return None
    started = date.fromisoformat(str(rows[0][0]))
    measures = {str(o["measure_id"]) for o in json.loads(str(rows[0][1])) if o.get("measure_id")}
    measures |= {str(m) for (m,) in tx.execute(
        "SELECT measure_id FROM ip_attributions WHERE agreement_id = ?", (agreement_id,))}
    if not measures:
        return None
    found = [(period_bounds(str(period))[1], str(period), str(value), str(name), unit)
             for period, value, name, unit in _select(
                 tx, "SELECT a.period, a.value, m.name, m.unit FROM ip_actuals a"
                 " JOIN ip_measures m ON m.measure_id = a.measure_id", "a.measure_id",
                 sorted(measures))]
    since = [f for f in found if f[0] >= started]
    if not since:
        return None
    _, period, value, name, unit = max(since, key=lambda f: (f[0], f[1]))
    return f"{name}: {value}{f' {unit}' if unit else ''} in {period}"


def _measures(tx: Tx, measure_ids: Sequence[str]) -> dict[str, MeasureFacts]:
    targets: dict[str, dict[str, Decimal]] = defaultdict(dict)
    actuals: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for m, period, target in _select(tx, "SELECT measure_id, period, target FROM ip_targets",
                                     "measure_id", measure_ids):
        targets[str(m)][str(period)] = Decimal(str(target))
    for m, period, value in _select(tx, "SELECT measure_id, period, value FROM ip_actuals",
                                    "measure_id", measure_ids):
        actuals[str(m)][str(period)] = Decimal(str(value))
    return {
        str(m): MeasureFacts(str(m), bool(lower), None if base is None else Decimal(str(base)),
                             targets[str(m)], actuals[str(m)], str(name or m), str(unit or ""),
                             None if period is None else str(period))
        for m, lower, base, name, unit, period in _select(
            tx, "SELECT measure_id, lower_is_better, baseline, name, unit, baseline_period"
                " FROM ip_measures", "measure_id", measure_ids)
    }


@dataclass(frozen=True)
class KpiAssessment:
    """One measure tied to an agreement, in one period that has a target and a measurement:
    what a contract performance notice reports as a KPI."""

    agreement_id: str
    measure: MeasureFacts
    period: str
    target: Decimal
    actual: Decimal
    recorded_at: datetime  # when the measurement (its latest revision) reached the log


def kpi_assessments(db: Database) -> list[KpiAssessment]:
    """Every KPI assessment the read model can make: each agreement's attributed measures, in
    each period with a target and a measurement, by agreement, measure and period."""
    with db.transaction() as tx:
        if not _has_read_model(tx, db.dialect):
            return []
        pairs = [(str(a), str(m)) for a, m in tx.execute(
            "SELECT agreement_id, measure_id FROM ip_attributions"
            " ORDER BY agreement_id, measure_id")]
        ids = sorted({m for _, m in pairs})
        measures = _measures(tx, ids)
        recorded = {(str(m), str(p)): str(at) for m, p, at in _select(
            tx, "SELECT measure_id, period, recorded_at FROM ip_actuals WHERE recorded_at"
                " IS NOT NULL", "measure_id", ids)}
    found = []
    for agreement_id, measure_id in pairs:
        facts = measures.get(measure_id)
        if facts is None:
            continue
        for period in facts.periods():
            target, actual = facts.targets.get(period), facts.actuals.get(period)
            at = recorded.get((measure_id, period))
            if target is not None and actual is not None and at is not None:
                found.append(KpiAssessment(agreement_id, facts, period, target, actual,
                                           datetime.fromisoformat(at)))
    return found


def network_performance(
    db: Database, *, status: str | None = None, rag: Rag | None = None, unrated: bool = False,
    today: date | None = None,
) -> list[ArrangementPerformance]:
    """Which arrangements work: every agreement (or those of `status`) with its performance,
    best first: by RAG (green, amber, red, none), then title (costs per outcome are in each
    measure's own unit: they do not rank one agreement against another). `rag` keeps one RAG,
    `unrated` those with none; `today`, the day read for (default today in business time)."""
    where, params = (" WHERE a.status = ?", [status]) if status is not None else ("", [])
    with db.reading() as tx:
        rows = tx.execute(
            "SELECT a.agreement_id, a.title, a.need_id, n.title, n.service_area,"
            " a.arrangement_type, a.status, a.budget_pence FROM cm_agreements a"
            f" LEFT JOIN cm_needs n ON n.need_id = a.need_id{where}"
            " ORDER BY a.drafted_at, a.agreement_id", params)
        parties: dict[str, list[UUID]] = defaultdict(list)
        for a, p in tx.execute("SELECT agreement_id, provider_id FROM cm_parties"
                               " ORDER BY agreement_id, ordinal"):
            parties[str(a)].append(UUID(str(p)))
        ids = [str(r[0]) for r in rows]
        briefs = performance_of(tx, db.dialect, ids, today)
        spend: dict[str, int] = {
            str(a): int(total) for a, total in tx.execute(
                "SELECT agreement_id, SUM(amount_pence) FROM cm_spend GROUP BY agreement_id")
        }
    found: list[ArrangementPerformance] = []
    for agreement_id, title, need_id, need_title, area, kind, state, budget in rows:
        key = str(agreement_id)
        brief = briefs.get(key) or _nothing_yet(spend.get(key))
        if (rag is not None or unrated) and brief.rag != rag:
            continue
        found.append(ArrangementPerformance(
            **brief.model_dump(), agreement_id=agreement_id, title=title, need_id=need_id,
            need_title=need_title, service_area=area, arrangement_type=kind, status=state,
            provider_ids=parties.get(key, []), budget=pounds(int(budget)),
        ))
    found.sort(key=_best_first)
    return found


def _nothing_yet(spent: int | None) -> PerformanceBrief:
    """An agreement the outcomes service has said nothing about: only its spend is known."""
    return PerformanceBrief(
        rag=None, rag_period=None, latest_achievement_pct=None, payments_total=pounds(0),
        spend_total=pounds(spent or 0), delivery_volumes=[], outcome_costs=[],
    )


def _best_first(row: ArrangementPerformance) -> tuple[Any, ...]:
    return (RAG_ORDER[row.rag], row.title.casefold(), str(row.agreement_id))
