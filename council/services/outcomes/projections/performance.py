"""Performance: per outcome measure and per agreement, target against actual over time, delivery
volumes, payments and spend, cost per outcome and a RAG (red / amber / green) status, built
entirely from events on the shared log (the outcomes service's own and the integrator's), so it
can be dropped and rebuilt from the log at any time.

The read model keeps facts only, one table per kind of stream; everything derived (the latest
revision, what corrections leave standing, RAG, achievement, cost per outcome) is worked out when
read. Streams are ordered on the log but not against each other (Kafka keeps order per stream),
so nothing stored depends on which stream's events came first.

Facts kept:
- per measure (OutcomeMeasureDefined, MeasurementRecorded): direction, baseline, the trajectory's
  target per period, and every measurement. The actual for a period is its latest measurement
  (highest position in the measure's stream); a revision replaces what it revises, and the number
  of revisions is shown;
- per agreement, from the outcomes service (OutcomeAttributed, RateCardAgreed, DeliveryReported,
  PaymentCalculated, PaymentRecalculated): the attributed measures and their weights (the latest
  attribution of a measure wins), the rate card's periodicity, every delivery report, and every
  calculation of each period's payment (the latest is the period's total; the rest are its
  history, each recalculation with its difference);
- per agreement, from the integrator (AgreementDrafted/Activated/Varied/Extended/Ended,
  SpendRecorded): title, parties, status, term, budget (the latest variation's) and spend.

Periods: a month (2026-04) or a calendar quarter (2026-Q2 is April to June). A delivery report
counts in the period in which its own period ends (as the deliveries projection counts it);
a correction replaces the report it corrects, and only the last report of a chain of corrections
counts. Delivery volumes are shown in the periodicity of the agreement's rate card (quarterly if
it has none), and are only ever added up within one unit (sessions are not added to people).

Provisional: a period that has not ended (its last day is not before today, in business time,
council.kernel.clock; or the "as of" date) is provisional. Its figures are shown, marked so, but
never set a RAG: a measure's and an agreement's RAG are those of their latest period that has ended.

The RAG rule (per measure and per agreement, from the latest ended period) and cost per outcome
(in each measure's own unit) are the council's published rule, council.kernel.performance_rule,
which the integrator applies too, so both judge an agreement alike.

Money is kept as whole pence (BIGINT); measure values, targets, weights and quantities as decimal
text (SQLite has no decimal type), summed as Decimal.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from council.kernel.context import command_context
from council.kernel.contracts.integrator import SOURCE as INTEGRATOR
from council.kernel.contracts.integrator import (
    AgreementActivated,
    AgreementDrafted,
    AgreementEnded,
    AgreementExtended,
    AgreementVaried,
    SpendRecorded,
)
from council.kernel.contracts.outcomes import SOURCE as OUTCOMES
from council.kernel.contracts.outcomes import (
    DeliveryReported,
    MeasurementRecorded,
    OutcomeAttributed,
    OutcomeMeasureDefined,
    PaymentCalculated,
    PaymentRecalculated,
    RateCardAgreed,
)
from council.kernel.envelope import EventEnvelope
from council.kernel.money import pence
from council.platform.projection import TableProjection, event_context
from council.platform.sql import Tx

# Bump when the tables below change shape: the read model is then dropped and replayed.
SCHEMA_VERSION = 1

PENNY = Decimal("0.01")
TENTH = Decimal("0.1")
HUNDRED = Decimal(100)
ZERO = Decimal(0)
_CHUNK = 500  # ids per IN (...) list


# ---------------------------------------------------------------------- the projection

_TABLES = (
    "CREATE TABLE IF NOT EXISTS pf_measures ("
    " measure_id TEXT PRIMARY KEY, name TEXT NOT NULL, unit TEXT NOT NULL,"
    " direction TEXT NOT NULL, baseline TEXT, baseline_period TEXT, defined_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pf_targets ("
    " measure_id TEXT NOT NULL, period TEXT NOT NULL, target TEXT NOT NULL,"
    " PRIMARY KEY (measure_id, period))",
    "CREATE TABLE IF NOT EXISTS pf_measurements ("
    " measure_id TEXT NOT NULL, measurement_id TEXT NOT NULL, period TEXT NOT NULL,"
    " value TEXT NOT NULL, source TEXT NOT NULL, revises TEXT, position BIGINT NOT NULL,"
    " recorded_at TEXT NOT NULL, PRIMARY KEY (measure_id, measurement_id))",
    "CREATE TABLE IF NOT EXISTS pf_attributions ("
    " agreement_id TEXT NOT NULL, measure_id TEXT NOT NULL, weight TEXT NOT NULL,"
    " PRIMARY KEY (agreement_id, measure_id))",
    "CREATE INDEX IF NOT EXISTS pf_attributions_measure ON pf_attributions (measure_id)",
    "CREATE TABLE IF NOT EXISTS pf_rate_cards ("
    " agreement_id TEXT PRIMARY KEY, periodicity TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pf_deliveries ("
    " delivery_id TEXT PRIMARY KEY, agreement_id TEXT NOT NULL, activity_type TEXT NOT NULL,"
    " quantity TEXT NOT NULL, unit TEXT NOT NULL, period_end TEXT NOT NULL, corrects TEXT)",
    "CREATE INDEX IF NOT EXISTS pf_deliveries_agreement ON pf_deliveries (agreement_id)",
    "CREATE INDEX IF NOT EXISTS pf_deliveries_corrects ON pf_deliveries (corrects)",
    "CREATE TABLE IF NOT EXISTS pf_payments ("
    " terms_id TEXT NOT NULL, position BIGINT NOT NULL, agreement_id TEXT NOT NULL,"
    " period TEXT NOT NULL, calculation_id TEXT NOT NULL, total_pence BIGINT NOT NULL,"
    " achievement_pct TEXT, previous_total_pence BIGINT, difference_pence BIGINT, reason TEXT,"
    " calculated_at TEXT NOT NULL, PRIMARY KEY (terms_id, position))",
    "CREATE INDEX IF NOT EXISTS pf_payments_agreement ON pf_payments (agreement_id)",
    "CREATE TABLE IF NOT EXISTS pf_agreements ("
    " agreement_id TEXT PRIMARY KEY, title TEXT NOT NULL, need_id TEXT NOT NULL,"
    " status TEXT NOT NULL, starts_on TEXT NOT NULL, ends_on TEXT NOT NULL, ended_on TEXT,"
    " budget_pence BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pf_parties ("
    " agreement_id TEXT NOT NULL, provider_id TEXT NOT NULL, ordinal INTEGER NOT NULL,"
    " PRIMARY KEY (agreement_id, provider_id))",
    "CREATE INDEX IF NOT EXISTS pf_parties_provider ON pf_parties (provider_id)",
    "CREATE TABLE IF NOT EXISTS pf_spend ("
    " agreement_id TEXT NOT NULL, spend_id TEXT NOT NULL, amount_pence BIGINT NOT NULL,"
    " period TEXT NOT NULL, PRIMARY KEY (agreement_id, spend_id))",
)
_DROPPED = (
    "pf_measures", "pf_targets", "pf_measurements", "pf_attributions", "pf_rate_cards",
    "pf_deliveries", "pf_payments", "pf_agreements", "pf_parties", "pf_spend", "pf_schema",
)


class PerformanceProjection(TableProjection):
    name = "outcomes.performance"
    sources = (OUTCOMES, INTEGRATOR)

    marker = "pf_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        if event.source == OUTCOMES:
            self._outcomes(tx, event)
        elif event.source == INTEGRATOR:
            self._integrator(tx, event)

    def _outcomes(self, tx: Tx, event: EventEnvelope) -> None:
        data, at = event.data, event.occurred_at.isoformat()
        match event.type:
            case "OutcomeMeasureDefined":
                measure = OutcomeMeasureDefined.model_validate(data)
                tx.execute(
                    "INSERT INTO pf_measures (measure_id, name, unit, direction, baseline,"
                    " baseline_period, defined_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (measure_id) DO NOTHING",
                    (str(measure.measure_id), measure.name, measure.unit,
                     measure.direction.value, _text(measure.baseline), measure.baseline_period,
                     at),
                )
                tx.executemany(
                    "INSERT INTO pf_targets (measure_id, period, target) VALUES (?, ?, ?)"
                    " ON CONFLICT (measure_id, period) DO NOTHING",
                    [(str(measure.measure_id), p.period, str(p.target))
                     for p in measure.trajectory],
                )
            case "MeasurementRecorded":
                measured = MeasurementRecorded.model_validate(data)
                tx.execute(
                    "INSERT INTO pf_measurements (measure_id, measurement_id, period, value,"
                    " source, revises, position, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (measure_id, measurement_id) DO NOTHING",
                    (str(measured.measure_id), measured.measurement_id, measured.period,
                     str(measured.value), measured.source, measured.revises,
                     event.stream_position, at),
                )
            case "OutcomeAttributed":
                attributed = OutcomeAttributed.model_validate(data)
                tx.execute(
                    "INSERT INTO pf_attributions (agreement_id, measure_id, weight)"
                    " VALUES (?, ?, ?) ON CONFLICT (agreement_id, measure_id)"
                    " DO UPDATE SET weight = excluded.weight",
                    (str(attributed.agreement_id), str(attributed.measure_id),
                     str(attributed.weight)),
                )
            case "RateCardAgreed":
                card = RateCardAgreed.model_validate(data)
                tx.execute(
                    "INSERT INTO pf_rate_cards (agreement_id, periodicity) VALUES (?, ?)"
                    " ON CONFLICT (agreement_id) DO UPDATE SET periodicity = excluded.periodicity",
                    (str(card.agreement_id), card.periodicity.value),
                )
            case "DeliveryReported":
                self._delivery(tx, data)
            case "PaymentCalculated":
                paid = PaymentCalculated.model_validate(data)
                self._payment(tx, event, paid.terms_id, paid.agreement_id, paid.period,
                              paid.calculation_id, paid.total, paid.achievement_pct)
            case "PaymentRecalculated":
                again = PaymentRecalculated.model_validate(data)
                self._payment(tx, event, again.terms_id, again.agreement_id, again.period,
                              again.calculation_id, again.total, again.achievement_pct,
                              again.previous_total, again.difference, again.reason)
            case _:
                pass  # a type this projection does not use

    def apply_all(self, tx: Tx, events: Sequence[EventEnvelope]) -> None:
        """As one at a time, but each run of delivery reports (most of what the log holds)
        written with one statement."""
        reports: list[tuple[str | None, ...]] = []
        for event in events:
            if event.source == OUTCOMES and event.type == "DeliveryReported":
                reports.append(self._delivery_row(event.data))
                continue
            self._deliveries(tx, reports)
            reports = []
            with command_context(event_context(event)):
                self.apply(tx, event)
        self._deliveries(tx, reports)

    @staticmethod
    def _delivery_row(data: dict[str, Any]) -> tuple[str | None, ...]:
        report = DeliveryReported.model_validate(data)
        return (str(report.delivery_id), str(report.agreement_id), report.activity_type,
                str(report.quantity), report.unit, report.period_end.isoformat(),
                str(report.corrects) if report.corrects else None)

    @staticmethod
    def _deliveries(tx: Tx, rows: Sequence[tuple[str | None, ...]]) -> None:
        tx.executemany(
            "INSERT INTO pf_deliveries (delivery_id, agreement_id, activity_type, quantity, unit,"
            " period_end, corrects) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (delivery_id) DO NOTHING",
            rows,
        )

    def _delivery(self, tx: Tx, data: dict[str, Any]) -> None:
        self._deliveries(tx, [self._delivery_row(data)])

    @staticmethod
    def _payment(tx: Tx, event: EventEnvelope, terms_id: UUID, agreement_id: UUID, period: str,
                 calculation_id: str, total: Decimal, pct: Decimal | None,
                 previous: Decimal | None = None, difference: Decimal | None = None,
                 reason: str | None = None) -> None:
        tx.execute(
            "INSERT INTO pf_payments (terms_id, position, agreement_id, period, calculation_id,"
            " total_pence, achievement_pct, previous_total_pence, difference_pence, reason,"
            " calculated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (terms_id, position) DO NOTHING",
            (str(terms_id), event.stream_position, str(agreement_id), period, calculation_id,
             pence(total), _text(pct), None if previous is None else pence(previous),
             None if difference is None else pence(difference), reason,
             event.occurred_at.isoformat()),
        )

    def _integrator(self, tx: Tx, event: EventEnvelope) -> None:
        data = event.data
        match event.type:
            case "AgreementDrafted":
                drafted = AgreementDrafted.model_validate(data)
                key = str(drafted.agreement_id)
                tx.execute(
                    "INSERT INTO pf_agreements (agreement_id, title, need_id, status, starts_on,"
                    " ends_on, budget_pence) VALUES (?, ?, ?, 'drafted', ?, ?, ?)"
                    " ON CONFLICT (agreement_id) DO NOTHING",
                    (key, drafted.title, str(drafted.need_id), drafted.starts_on.isoformat(),
                     drafted.ends_on.isoformat(), pence(drafted.budget)),
                )
                tx.executemany(
                    "INSERT INTO pf_parties (agreement_id, provider_id, ordinal) VALUES (?, ?, ?)"
                    " ON CONFLICT (agreement_id, provider_id) DO NOTHING",
                    [(key, str(p.provider_id), i) for i, p in enumerate(drafted.parties)],
                )
            case "AgreementActivated":
                activated = AgreementActivated.model_validate(data)
                self._agreement(tx, activated.agreement_id, status="active")
            case "AgreementVaried":
                varied = AgreementVaried.model_validate(data)
                self._agreement(tx, varied.agreement_id, budget_pence=pence(varied.new_budget))
            case "AgreementExtended":
                extended = AgreementExtended.model_validate(data)
                self._agreement(tx, extended.agreement_id, ends_on=extended.new_end.isoformat())
            case "AgreementEnded":
                ended = AgreementEnded.model_validate(data)
                self._agreement(tx, ended.agreement_id, status="ended",
                                ended_on=ended.ended_on.isoformat())
            case "SpendRecorded":
                spent = SpendRecorded.model_validate(data)
                tx.execute(
                    "INSERT INTO pf_spend (agreement_id, spend_id, amount_pence, period)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (agreement_id, spend_id) DO NOTHING",
                    (str(spent.agreement_id), spent.spend_id, pence(spent.amount), spent.period),
                )
            case _:
                pass

    @staticmethod
    def _agreement(tx: Tx, agreement_id: UUID, **values: Any) -> None:
        sets = ", ".join(f"{column} = ?" for column in values)
        tx.execute(f"UPDATE pf_agreements SET {sets} WHERE agreement_id = ?",
                   (*values.values(), str(agreement_id)))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def as_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


__all__ = ["PerformanceProjection"]
