"""Delivery reported by providers, projected from the outcomes service's DeliveryReported events,
with corrections applied; and the units delivered per agreement, activity type and period, for
payments and the performance view to build on.

Rules the read model follows:

- Every report is kept as a row. A correction is a report that names the one it corrects
  (`corrects`); the corrected row stays, marked `superseded_by` the correction, and no longer
  counts. A correction may itself be corrected: only the newest report of a chain counts. (The
  outcomes service refuses a second correction of the same report, so a chain never forks.)
- A correction and the report it corrects are different streams, which Kafka may deliver in
  either order: a report arriving after its correction is stored already superseded, so the
  answer does not depend on arrival order.
- A report counts in the month, and the quarter, in which its period ends (a report for
  2026-03-25..2026-04-05 counts in 2026-04 and 2026-Q2): delivery counts once it is complete.
- Quantities are exact decimals: kept as text, summed as Decimal (SQLite has no decimal type).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel

from council.kernel.contracts.outcomes import SOURCE, Channel, DeliveryReported, Periodicity
from council.kernel.envelope import EventEnvelope
from council.kernel.periods import MONTHLY, period_of, quarter_of
from council.platform.projection import TableProjection
from council.platform.sql import Database, Row, Tx

# Bump when the tables below change shape: the read model is then dropped and replayed.
SCHEMA_VERSION = 1

_COLUMNS = (
    "delivery_id, agreement_id, provider_id, activity_type, quantity, unit, period_start,"
    " period_end, month, quarter, location, idempotency_key, corrects, superseded_by, channel,"
    " reported_at, reported_by"
)
_TABLES = (
    "CREATE TABLE IF NOT EXISTS oc_deliveries ("
    " delivery_id TEXT PRIMARY KEY, agreement_id TEXT NOT NULL, provider_id TEXT NOT NULL,"
    " activity_type TEXT NOT NULL, quantity TEXT NOT NULL, unit TEXT NOT NULL,"
    " period_start TEXT NOT NULL, period_end TEXT NOT NULL, month TEXT NOT NULL,"
    " quarter TEXT NOT NULL, location TEXT, idempotency_key TEXT NOT NULL, corrects TEXT,"
    " superseded_by TEXT, channel TEXT NOT NULL, reported_at TEXT NOT NULL, reported_by TEXT)",
    "CREATE INDEX IF NOT EXISTS oc_deliveries_month ON oc_deliveries (agreement_id, month)",
    "CREATE INDEX IF NOT EXISTS oc_deliveries_quarter ON oc_deliveries (agreement_id, quarter)",
    "CREATE INDEX IF NOT EXISTS oc_deliveries_corrects ON oc_deliveries (corrects)",
    "CREATE INDEX IF NOT EXISTS oc_deliveries_provider ON oc_deliveries (provider_id)",
)
_DROPPED = ("oc_deliveries", "oc_deliveries_schema")
_CHUNK = 500  # ids per IN (...) list




def periodicity_of(period: str) -> Periodicity:
    """Monthly for 2026-04, quarterly for 2026-Q2."""
    return Periodicity.QUARTERLY if "Q" in period else Periodicity.MONTHLY


class DeliveryRow(BaseModel):
    """One delivery report as the read model holds it."""

    delivery_id: UUID
    agreement_id: UUID
    provider_id: UUID
    activity_type: str
    quantity: Decimal
    unit: str
    period_start: date
    period_end: date
    month: str
    quarter: str
    location: str | None
    idempotency_key: str
    corrects: UUID | None
    superseded_by: UUID | None
    channel: Channel
    reported_at: datetime
    reported_by: str | None

    @property
    def counts(self) -> bool:
        """Whether the report counts (it has not been corrected)."""
        return self.superseded_by is None


@dataclass(frozen=True)
class DeliveredUnits:
    """Units delivered under one agreement, of one activity type, in one period, after
    corrections; `reports` is how many (uncorrected) reports they add up from."""

    agreement_id: UUID
    activity_type: str
    period: str
    unit: str
    units: Decimal
    reports: int


class DeliveriesProjection(TableProjection):
    name = "outcomes.deliveries"
    sources = (SOURCE,)
    types = frozenset({"DeliveryReported"})

    marker = "oc_deliveries_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        self.apply_all(tx, [event])

    def apply_all(self, tx: Tx, events: Sequence[EventEnvelope]) -> None:
        """Every report's row in one statement, then the corrections' marks on the reports
        they correct. The same rows as one report at a time, whatever the order: a report
        finds the correction already applied (the subquery), or the correction finds it."""
        rows: list[tuple[str | None, ...]] = []
        corrections: list[tuple[str, str]] = []
        for event in events:
            if event.type != "DeliveryReported":
                continue
            report = DeliveryReported.model_validate(event.data)
            delivery_id = str(report.delivery_id)
            corrects = str(report.corrects) if report.corrects else None
            rows.append((
                delivery_id, str(report.agreement_id), str(report.provider_id),
                report.activity_type, str(report.quantity), report.unit,
                report.period_start.isoformat(), report.period_end.isoformat(),
                period_of(report.period_end, MONTHLY), quarter_of(report.period_end),
                report.location,
                report.idempotency_key, corrects, delivery_id, report.channel.value,
                event.occurred_at.isoformat(), event.actor,
            ))
            if corrects is not None:
                corrections.append((delivery_id, corrects))
        tx.executemany(
            f"INSERT INTO oc_deliveries ({_COLUMNS}) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            "  (SELECT c.delivery_id FROM oc_deliveries c WHERE c.corrects = ?"
            "   ORDER BY c.reported_at, c.delivery_id LIMIT 1), ?, ?, ?)"
            " ON CONFLICT (delivery_id) DO NOTHING",
            rows,
        )
        tx.executemany(
            "UPDATE oc_deliveries SET superseded_by = ?"
            " WHERE delivery_id = ? AND superseded_by IS NULL",
            corrections,
        )


# ---------------------------------------------------------------------- queries


def _row(row: Row) -> DeliveryRow:
    return DeliveryRow.model_validate(dict(zip(_COLUMNS.replace(" ", "").split(","), row,
                                               strict=True)))


def get_delivery_row(db: Database, delivery_id: UUID) -> DeliveryRow | None:
    with db.reading() as tx:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM oc_deliveries WHERE delivery_id = ?",
                          (str(delivery_id),))
    return _row(rows[0]) if rows else None


def list_deliveries(
    db: Database, *, agreement_id: UUID | None = None, provider_id: UUID | None = None,
    period: str | None = None, include_superseded: bool = True, limit: int = 1000,
    offset: int = 0,
) -> list[DeliveryRow]:
    """Delivery reports, newest period first, filtered by agreement, provider and period (a
    month such as 2026-04 or a quarter such as 2026-Q2, by the month the report's period ends);
    corrected reports are included (marked) unless `include_superseded` is false."""
    where, params = _filters(agreement_ids=[agreement_id] if agreement_id else None,
                             provider_id=provider_id, period=period,
                             include_superseded=include_superseded)
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM oc_deliveries {where}"
            " ORDER BY period_end DESC, reported_at DESC, delivery_id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
    return [_row(r) for r in rows]


def units_delivered(
    db: Database, *, agreement_ids: Sequence[UUID] | None = None,
    periodicity: Periodicity = Periodicity.MONTHLY, periods: Sequence[str] | None = None,
    activity_types: Sequence[str] | None = None,
) -> list[DeliveredUnits]:
    """Units delivered per agreement, activity type and period, after corrections.

    - `periodicity`: MONTHLY gives periods such as 2026-04, QUARTERLY such as 2026-Q2; a report
      counts in the period in which its own period ends.
    - `agreement_ids`, `periods` (all of the one periodicity), `activity_types`: optional
      filters; None means all.
    - Corrected (superseded) reports do not count; the report that corrects them does.

    Sorted by agreement id, period, activity type. Units are exact Decimals. One query per 500
    agreement ids.
    """
    column = "quarter" if periodicity is Periodicity.QUARTERLY else "month"
    totals: dict[tuple[str, str, str], tuple[str, Decimal, int]] = {}
    chunks: list[list[UUID] | None] = (
        [list(agreement_ids[i:i + _CHUNK]) for i in range(0, len(agreement_ids), _CHUNK)]
        if agreement_ids is not None else [None]
    )
    with db.reading() as tx:
        for chunk in chunks:
            where, params = _filters(agreement_ids=chunk, include_superseded=False)
            for column_name, values in ((column, periods), ("activity_type", activity_types)):
                if values is None:
                    continue
                marks = ",".join("?" * len(values)) or "NULL"  # IN (NULL) matches nothing
                where += f" AND {column_name} IN ({marks})"
                params.extend(values)
            for agreement_id, activity_type, period, unit, quantity in tx.execute(
                f"SELECT agreement_id, activity_type, {column}, unit, quantity"
                f" FROM oc_deliveries {where}", params,
            ):
                key = (str(agreement_id), str(activity_type), str(period))
                _, units, reports = totals.get(key, (unit, Decimal(0), 0))
                totals[key] = (str(unit), units + Decimal(quantity), reports + 1)
    return [
        DeliveredUnits(UUID(agreement_id), activity_type, period, unit, units, reports)
        for (agreement_id, activity_type, period), (unit, units, reports) in sorted(
            totals.items(), key=lambda item: (item[0][0], item[0][2], item[0][1]))
    ]


def units_delivered_in(db: Database, agreement_id: UUID, period: str,
                       within: tuple[date, date] | None = None) -> dict[str, Decimal]:
    """Units delivered under one agreement in one period (2026-04 or 2026-Q2), by activity type,
    after corrections: what a rate card's delivery lines pay for. `within` (the agreement's
    term, first and last day): only reports whose own period shares a day with it."""
    if within is not None:
        return _units_within(db, agreement_id, period, within)
    return {
        found.activity_type: found.units
        for found in units_delivered(db, agreement_ids=[agreement_id],
                                     periodicity=periodicity_of(period), periods=[period])
    }


def _units_within(db: Database, agreement_id: UUID, period: str,
                  term: tuple[date, date]) -> dict[str, Decimal]:
    where, params = _filters(agreement_ids=[agreement_id], period=period,
                             include_superseded=False)
    totals: dict[str, Decimal] = {}
    with db.reading() as tx:
        for activity_type, quantity in tx.execute(
            f"SELECT activity_type, quantity FROM oc_deliveries {where}"
            " AND period_end >= ? AND period_start <= ?",
            (*params, term[0].isoformat(), term[1].isoformat()),
        ):
            totals[str(activity_type)] = totals.get(str(activity_type), Decimal(0)) + Decimal(
                str(quantity))
    return totals


def _filters(
    *, agreement_ids: Sequence[UUID] | None = None, provider_id: UUID | None = None,
    period: str | None = None, include_superseded: bool = True,
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if agreement_ids is not None:
        clauses.append(f"agreement_id IN ({','.join('?' * len(agreement_ids)) or 'NULL'})")
        params.extend(str(i) for i in agreement_ids)
    if provider_id is not None:
        clauses.append("provider_id = ?")
        params.append(str(provider_id))
    if period is not None:
        clauses.append(f"{'quarter' if 'Q' in period else 'month'} = ?")
        params.append(period)
    if not include_superseded:
        clauses.append("superseded_by IS NULL")
    return ("WHERE " + " AND ".join(clauses) if clauses else "WHERE 1 = 1"), params
