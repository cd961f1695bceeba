"""The payments process: turns delivery and outcome data into each agreement's payment schedule,
and recalculates a period when a late measurement, a revision, a late delivery report or a
correction changes what is due.

It follows the outcomes topic of the shared log with its own durable position (a projection):
applying an event only records which (agreement, period) pairs it may have changed ("dirty"),
with why, in the same transaction as the position. A separate step recalculates the dirty pairs
through the outcomes application and then clears them.

- Exactly once in effect: `AgreementTerms.settle` records nothing when a period's calculation is
  unchanged, so a crash between saving a payment and clearing its mark only repeats a calculation
  that then records nothing. A mark made while its pair was being recalculated is kept (marks are
  cleared only if no newer mark came in meanwhile), so nothing is missed.
- A period is settled once it has ended: the period's payment is worked out the first day after
  it (PaymentCalculated); anything that changes it later records a PaymentRecalculated with the
  difference and the reason. Marks for a period still running wait until it is over.
- Periods follow the rate card's periodicity: months (2026-04) or calendar quarters (2026-Q2); a
  delivery counts in the period containing its `period_end`.
- Nothing stalls it: an event its marking cannot apply is parked by its runner (see
  council.platform.parking) and later ones are marked; a pair whose recalculation fails for anything
  but the infrastructure is parked too (item "settle <agreement>/<period>", with the reason) and
  left alone until `council projections retry --projection outcomes.payments_process` releases
  it (its mark is kept meanwhile, gathering any later reasons). Parked work shows in /ready.
- Inputs: the rate card and attribution weights from the agreement's terms; units delivered from
  the deliveries read model (`projections.deliveries`), and only once that read model has applied
  the log at least as far as this process has (so a delivery that marked a period is always
  counted when the period is recalculated); baseline, direction, trajectory target and the
  current measurement (latest revision) for the period from each outcome measure.
- The agreement's term bounds what is paid (council.services.outcomes.domain.payments says how): a
period
  outside it earns nothing (no payment is calculated; one calculated before is recalculated to
  zero), a period it covers in part is pro-rated by days. The term is the integrator's, as the
  agreements read model (`projections.agreements`) has applied it from the integrator's topic;
  with no term known yet nothing is settled.
- A change of term must reach every period it affects, however the two topics interleave: this
  process follows the integrator's topic too. An AgreementExtended marks the periods from the
  day after the previous end to the new end, an AgreementEnded those from the day after it
  ended on (of an agreement with a rate card; only periods with payments, deliveries or
  measurements, as for any mark of many periods): those whose cover changed are recalculated
  with the change as the reason, the others record nothing. And the process settles only once
  the agreements read model has applied the integrator's topic at least as far as this process
  has, so never with a term older than the change that marked it.
- A period whose agreement's term is not known yet (the process has not read its drafting, and
  the agreements read model has not applied it either, as while that read model is rebuilt)
  waits: its mark is parked, keeping its reasons, and the drafting, when this process reads it,
  sets it going again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import IntegrityError

from council.kernel import clock
from council.kernel.context import (
    CommandContext,
    command_context,
    current_context,
    new_correlation_id,
)
from council.kernel.contracts.integrator import SOURCE as INTEGRATOR
from council.kernel.contracts.integrator import AgreementDrafted, AgreementEnded, AgreementExtended
from council.kernel.contracts.outcomes import (
    SOURCE,
    DeliveryReported,
    MeasurementRecorded,
    OutcomeAttributed,
    Periodicity,
    RateCardAgreed,
)
from council.kernel.envelope import EventEnvelope
from council.kernel.errors import NotFound
from council.kernel.money import to_penny
from council.kernel.periods import period_bounds, period_of, periodicity_of
from council.platform import parking
from council.platform.eventlog import EventLog, open_event_log
from council.platform.projection import (
    ProjectionRunner,
    TableProjection,
    event_context,
    keep_running,
)
from council.platform.runtime import Runtime
from council.platform.sql import Database, Tx
from council.services.outcomes.application import Outcomes, short_id
from council.services.outcomes.domain.aggregates import AgreementTerms
from council.services.outcomes.domain.payments import (
    Band,
    Calculation,
    Cover,
    DeliveryRate,
    OutcomeRate,
    OutcomeResult,
    RateCard,
    calculate,
    cover,
    outside_the_term,
)
from council.services.outcomes.projections.agreements import AgreementsProjection
from council.services.outcomes.projections.deliveries import (
    DeliveriesProjection,
    units_delivered,
    units_delivered_in,
)

log = structlog.get_logger("payments")

ACTOR = "system:payments-process"
EVERY_PERIOD = "*"  # a mark for every period of an agreement (after its terms changed)
_ALWAYS_DUE = ""  # sorts before every date
_PARKED = "9999-12-31"  # sorts after every date: waiting for the agreement's term
_OPEN_END = date(9999, 12, 31)


def every_period_within(first: date, last: date) -> str:
    """A mark for every period of an agreement that shares a day with `first` to `last`."""
    return f"{EVERY_PERIOD}{first.isoformat()}..{last.isoformat()}"


def _within(period: str) -> tuple[date, date] | None:
    """The days a mark for many periods is limited to (None: every period)."""
    if period == EVERY_PERIOD:
        return None
    first, last = period[len(EVERY_PERIOD):].split("..")
    return date.fromisoformat(first), date.fromisoformat(last)


class TermNotKnown(Exception):
    """The agreement's term is not known here yet."""
# Bump when the tables below change shape: the marks are then dropped and the log replayed
# (which marks every period again: recalculating them records nothing where nothing changed).
# 2: follows the integrator's topic for the term (the replay recalculates periods paid outside
# it).
SCHEMA_VERSION = 2

_TABLES = (
    "CREATE TABLE IF NOT EXISTS oc_pay_cards ("
    " agreement_id TEXT PRIMARY KEY, periodicity TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS oc_pay_card_measures ("
    " agreement_id TEXT NOT NULL, measure_id TEXT NOT NULL,"
    " PRIMARY KEY (agreement_id, measure_id))",
    "CREATE INDEX IF NOT EXISTS oc_pay_card_measures_measure ON oc_pay_card_measures (measure_id)",
    "CREATE TABLE IF NOT EXISTS oc_pay_dirty ("
    " agreement_id TEXT NOT NULL, period TEXT NOT NULL, due_on TEXT NOT NULL,"
    " reasons TEXT NOT NULL, marks BIGINT NOT NULL, correlation_id TEXT, causation_id TEXT,"
    " PRIMARY KEY (agreement_id, period))",
    "CREATE INDEX IF NOT EXISTS oc_pay_dirty_due ON oc_pay_dirty (due_on)",
)
_DROPPED = ("oc_pay_cards", "oc_pay_card_measures", "oc_pay_dirty", "oc_pay_schema")


@dataclass(frozen=True)
class Mark:
    """A pair waiting to be recalculated, and why."""

    agreement_id: UUID
    period: str
    reasons: tuple[str, ...]
    marks: int
    correlation_id: str | None
    causation_id: str | None

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) or "recalculated"

    def context(self) -> CommandContext:
        return CommandContext(
            actor=ACTOR, organisation="council",
            correlation_id=self.correlation_id or new_correlation_id(),
            causation_id=self.causation_id,
        )


def mark(tx: Tx, agreement_id: str, period: str, reason: str,
         correlation_id: str | None = None, causation_id: str | None = None) -> None:
    """Record that (agreement, period) needs recalculating because of `reason`."""
    due_on = _ALWAYS_DUE if period.startswith(EVERY_PERIOD) else \
        period_bounds(period)[1].isoformat()
    found = tx.execute(
        "SELECT reasons FROM oc_pay_dirty WHERE agreement_id = ? AND period = ?",
        (agreement_id, period),
    )
    reasons: list[str] = json.loads(found[0][0]) if found else []
    if reason not in reasons:
        reasons.append(reason)
    tx.execute(
        "INSERT INTO oc_pay_dirty (agreement_id, period, due_on, reasons, marks, correlation_id,"
        " causation_id) VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (agreement_id, period) DO UPDATE"
        " SET reasons = excluded.reasons, marks = oc_pay_dirty.marks + 1,"
        " correlation_id = excluded.correlation_id, causation_id = excluded.causation_id",
        (agreement_id, period, due_on, json.dumps(reasons), correlation_id, causation_id),
    )


class PaymentsToSettle(TableProjection):
    """Which (agreement, period) pairs an event may have changed. Keeps what it needs to know
    that: each agreement's rate-card periodicity and the measures its outcome rates pay on."""

    name = "outcomes.payments_process"
    sources = (SOURCE, INTEGRATOR)
    types = frozenset({"DeliveryReported", "MeasurementRecorded", "RateCardAgreed",
                       "OutcomeAttributed", "AgreementDrafted", "AgreementExtended",
                       "AgreementEnded"})

    marker = "oc_pay_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    def apply_all(self, tx: Tx, events: Sequence[EventEnvelope]) -> None:
        """As one at a time, but each run of delivery reports looks up its agreements' rate
        cards with one query (most reports are of agreements without one, and mark nothing)."""
        run: list[EventEnvelope] = []
        for event in events:
            if event.type == "DeliveryReported":
                run.append(event)
                continue
            self._reported(tx, run)
            run = []
            with command_context(event_context(event)):
                self.apply(tx, event)
        self._reported(tx, run)

    def _reported(self, tx: Tx, events: Sequence[EventEnvelope]) -> None:
        reports = [(e, DeliveryReported.model_validate(e.data)) for e in events]
        agreements = sorted({str(r.agreement_id) for _, r in reports if r.corrects is None})
        cards: dict[str, str] = {}
        for start in range(0, len(agreements), 500):
            chunk = agreements[start:start + 500]
            cards.update({str(a): str(p) for a, p in tx.execute(
                "SELECT agreement_id, periodicity FROM oc_pay_cards"
                f" WHERE agreement_id IN ({','.join('?' * len(chunk))})", chunk)})
        for event, report in reports:
            context = event_context(event)
            why = {"correlation_id": context.correlation_id, "causation_id": str(event.event_id)}
            agreement_id = str(report.agreement_id)
            if report.corrects is not None:
                # The corrected report may count in another period: recalculate them all.
                mark(tx, agreement_id, EVERY_PERIOD, "delivery correction", **why)
            elif agreement_id in cards:
                mark(tx, agreement_id, period_of(report.period_end, cards[agreement_id]),
                     "late delivery report", **why)
            # (no rate card yet: agreeing one marks every period)

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        if event.type == "DeliveryReported":
            self._reported(tx, [event])
            return
        ctx = current_context()  # the runner's: the event's correlation, caused by the event
        why: dict[str, Any] = {"correlation_id": ctx.correlation_id,
                               "causation_id": str(event.event_id)}
        match event.type:
            case "MeasurementRecorded":
                measured = MeasurementRecorded.model_validate(event.data)
                rows = tx.execute(
                    "SELECT c.agreement_id FROM oc_pay_card_measures m JOIN oc_pay_cards c"
                    " ON c.agreement_id = m.agreement_id WHERE m.measure_id = ?"
                    " AND c.periodicity = ?",
                    (str(measured.measure_id), periodicity_of(measured.period)),
                )
                what = "revised" if measured.revises else "late"
                for (agreement_id,) in rows:
                    mark(tx, str(agreement_id), measured.period,
                         f"{what} measurement for {measured.period}", **why)
            case "RateCardAgreed":
                card = RateCardAgreed.model_validate(event.data)
                agreement_id = str(card.agreement_id)
                known = self._periodicity(tx, agreement_id) is not None
                tx.execute(
                    "INSERT INTO oc_pay_cards (agreement_id, periodicity) VALUES (?, ?)"
                    " ON CONFLICT (agreement_id) DO UPDATE SET periodicity = excluded.periodicity",
                    (agreement_id, card.periodicity.value),
                )
                tx.execute("DELETE FROM oc_pay_card_measures WHERE agreement_id = ?",
                           (agreement_id,))
                tx.executemany(
                    "INSERT INTO oc_pay_card_measures (agreement_id, measure_id) VALUES (?, ?)"
                    " ON CONFLICT (agreement_id, measure_id) DO NOTHING",
                    [(agreement_id, str(r.measure_id)) for r in card.outcome_rates],
                )
                mark(tx, agreement_id, EVERY_PERIOD,
                     "rate card changed" if known else "rate card agreed", **why)
            case "OutcomeAttributed":
                attributed = OutcomeAttributed.model_validate(event.data)
                mark(tx, str(attributed.agreement_id), EVERY_PERIOD,
                     f"attribution of measure {attributed.measure_id} set to weight "
                     f"{attributed.weight}", **why)
            case "AgreementDrafted":
                drafted = AgreementDrafted.model_validate(event.data)
                _unpark(tx, str(drafted.agreement_id))
            case "AgreementExtended" | "AgreementEnded":
                agreement_id, days, change = _term_change(event)
                # Without a rate card there is nothing to pay yet: agreeing one marks every
                # period, and those are settled with the term known by then.
                if self._periodicity(tx, agreement_id) is not None:
                    mark(tx, agreement_id, every_period_within(*days), change, **why)

    @staticmethod
    def _periodicity(tx: Tx, agreement_id: str) -> str | None:
        rows = tx.execute("SELECT periodicity FROM oc_pay_cards WHERE agreement_id = ?",
                          (agreement_id,))
        return str(rows[0][0]) if rows else None


def _term_change(event: EventEnvelope) -> tuple[str, tuple[date, date], str]:
    """The agreement an extension or ending changes the term of, the days whose periods it may
    change, and the change in words."""
    if event.type == "AgreementExtended":
        extended = AgreementExtended.model_validate(event.data)
        return (str(extended.agreement_id),
                (extended.previous_end + timedelta(days=1), extended.new_end),
                f"term extended to {extended.new_end}")
    ended = AgreementEnded.model_validate(event.data)
    # Every day after it ended: an ending on or after the term's end changes no period's cover,
    # and recalculating those records nothing.
    return (str(ended.agreement_id), (ended.ended_on + timedelta(days=1), _OPEN_END),
            f"agreement ended on {ended.ended_on}")


def _unpark(tx: Tx, agreement_id: str) -> None:
    """Set going again the marks of an agreement that waited for its term."""
    for (period,) in tx.execute(
        "SELECT period FROM oc_pay_dirty WHERE agreement_id = ? AND due_on = ?",
        (agreement_id, _PARKED),
    ):
        tx.execute("UPDATE oc_pay_dirty SET due_on = ? WHERE agreement_id = ? AND period = ?",
                   (period_bounds(str(period))[1].isoformat(), agreement_id, str(period)))


def rate_card_of(terms: AgreementTerms, names: dict[str, str] | None = None) -> RateCard:
    """The calculation's rate card from an agreement's agreed terms and attribution weights."""
    card = terms.rate_card
    if card is None:
        raise NotFound(f"agreement {terms.agreement_id} has no rate card")
    names = names or {}

    def dec(value: Any) -> Decimal:
        return Decimal(str(value))

    def opt(value: Any) -> Decimal | None:
        return None if value is None else dec(value)

    return RateCard(
        delivery=tuple(
            DeliveryRate(r["activity_type"], dec(r["rate"]), dec(r.get("threshold", 0)),
                         opt(r.get("cap")))
            for r in card["delivery_rates"]
        ),
        outcomes=tuple(
            OutcomeRate(
                str(r["measure_id"]), dec(r["rate"]),
                weight=terms.attributions.get(str(r["measure_id"]), Decimal(0)),
                threshold=dec(r.get("threshold", 0)), cap=opt(r.get("cap")),
                label=names.get(str(r["measure_id"])),
            )
            for r in card["outcome_rates"]
        ),
        bands=tuple(
            Band(dec(b["min_pct"]), opt(b.get("max_pct")), dec(b["adjustment"]), b["label"])
            for b in card["bands"]
        ),
        provider_risk_pct=dec(card["provider_risk_pct"]),
        period_cap=opt(card["period_cap"]),
    )


class PaymentsProcess:
    """Follows the log (marking what may have changed) and settles what is due. `run` is the
    background worker; `run_once` does one round of both (tests drive it by hand)."""

    def __init__(
        self, app: Outcomes, views: Database, event_log: EventLog,
        today: Callable[[], date] | None = None, batch: int = 200, quiet: bool = False,
    ) -> None:
        """`quiet`: no line per event applied or payment settled (bulk work)."""
        self.app = app
        self.views = views
        self.quiet = quiet
        self.runner = ProjectionRunner(PaymentsToSettle(), views, event_log, quiet=quiet)
        self.today = today or (lambda: clock.now().date())
        self.batch = batch

    # ------------------------------------------------------------------ the worker

    def run(self, stop: threading.Event, idle_wait: float = 0.05) -> None:
        try:
            keep_running(self.run_once, stop, idle_wait, "payments_process_failed")
        finally:
            self.runner.event_log.close()

    def run_once(self) -> int:
        """Read the next batch from the log, then settle what is due: how much was done."""
        return self.runner.run_once() + self.settle_due()

    def catch_up(self) -> int:
        """Everything the log has now, then everything due (until nothing more moves)."""
        total = 0
        while moved := self.run_once():
            total += moved
        return total

    # ------------------------------------------------------------------ settling

    def pending(self, limit: int = 10_000) -> list[Mark]:
        """The pairs waiting to be recalculated (due or not)."""
        return self._marks(due_before=None, limit=limit)

    def inputs_ready(self) -> bool:
        """Whether the read models the process reads have applied the log as far as this
        process has: the deliveries read model the outcomes topic, the agreements read model
        (the term) the integrator's."""
        mine = PaymentsToSettle.name
        deliveries, agreements = DeliveriesProjection.name, AgreementsProjection.name
        integrator = f"{self.runner.event_log.topic_for(INTEGRATOR)}:"
        with self.views.transaction() as tx:
            rows = tx.execute(
                "SELECT projection, log_partition, next_offset FROM projection_position"
                " WHERE projection IN (?, ?, ?)", (mine, deliveries, agreements),
            )
        positions: dict[str, dict[str, int]] = {mine: {}, deliveries: {}, agreements: {}}
        for projection, partition, offset in rows:
            positions[str(projection)][str(partition)] = int(offset)
        return all(
            positions[agreements if p.startswith(integrator) else deliveries].get(p, 0) >= o
            for p, o in positions[mine].items()
        )

    def settle_due(self) -> int:
        """Recalculate the pairs whose period has ended; returns how many marks were cleared."""
        if not self.inputs_ready():
            return 0
        done = 0
        for due in self._marks(due_before=self.today(), limit=self.batch):
            try:
                if due.period.startswith(EVERY_PERIOD):
                    self._expand(due)  # cleared with the expansion, in one transaction
                else:
                    self.settle(due)
                    self.clear(due)
            except TermNotKnown:
                # Its drafting, when this process reads it, sets the mark going again.
                log.info("payment_waits_for_term", agreement_id=str(due.agreement_id),
                         period=due.period)
                self.park(due)
            except IntegrityError:
                # Someone recalculated the same terms meanwhile: try again next round.
                log.info("payment_settle_clashed", agreement_id=str(due.agreement_id),
                         period=due.period)
                continue
            except Exception as exc:  # one bad pair must not hold back the others
                log.error("payment_settle_failed", agreement_id=str(due.agreement_id),
                          period=due.period, error=f"{type(exc).__name__}: {exc}")
                if not parking.transient(exc):  # it would fail at every round: set it aside
                    self._park(due, exc)
                continue
            done += 1
        return done

    def term_of(self, agreement_id: UUID) -> tuple[date, date] | None:
        """The agreement's term as this service knows it (None: not known yet)."""
        lookup = self.app.agreements
        found = lookup([agreement_id]).get(agreement_id) if lookup is not None else None
        return found.term if found is not None else None

    def _park(self, due: Mark, exc: Exception) -> None:
        with self.views.transaction() as tx:
            parking.park(tx, PaymentsToSettle.name, settle_item(due.agreement_id, due.period),
                         parking.reason_of(exc), event_id=due.causation_id,
                         event_type="settlement")

    def settle(self, due: Mark) -> bool:
        """Recalculate one period of one agreement; returns whether a payment was recorded."""
        try:
            terms = self.app.terms(due.agreement_id)
        except NotFound:
            return False
        card = terms.rate_card
        if card is None or periodicity_of(due.period) != card["periodicity"]:
            return False
        term = self.term_of(due.agreement_id)
        if term is None:
            raise TermNotKnown(f"the term of agreement {due.agreement_id} is not known yet")
        covered = cover(due.period, *term)
        if covered.outside and due.period not in terms.payments:
            return False  # nothing was paid for it, and nothing is due
        calc = self.calculate(terms, due.period, covered)
        lines = [{"description": line.description, "basis": line.basis,
                  "amount": to_penny(line.amount)} for line in calc.lines]
        with command_context(due.context()):
            changed = terms.settle(due.period, short_id(), lines, calc.total,
                                   calc.achievement_pct, due.reason)
            if changed:
                self.app.save(terms)
        if changed and not self.quiet:
            log.debug("payment_settled", agreement_id=str(due.agreement_id), period=due.period,
                      total=str(calc.total), reason=due.reason)
        return changed

    def calculate(self, terms: AgreementTerms, period: str,
                  covered: Cover | None = None) -> Calculation:
        """The period's payment from the agreement's terms and what is known now; `covered`,
        how much of the period its term covers (None: all of it)."""
        if covered is not None and covered.outside:
            return outside_the_term(covered)
        names: dict[str, str] = {}
        results: dict[str, OutcomeResult] = {}
        for rate in (terms.rate_card or {}).get("outcome_rates", []):
            measure_id = str(rate["measure_id"])
            try:
                measure = self.app.measure(UUID(measure_id))
            except NotFound:
                continue
            names[measure_id] = measure.name
            if measure.baseline is None:
                continue
            current = measure.current(period)
            results[measure_id] = OutcomeResult(
                baseline=measure.baseline,
                actual=current["value"] if current else None,
                target=measure.trajectory.get(period),
                lower_is_better=measure.lower_is_better,
            )
        within = None
        if covered is not None and not covered.whole:  # only the units delivered in the term
            within = (covered.starts_on, covered.ends_on)
        units = units_delivered_in(self.views, terms.agreement_id, period, within)
        return calculate(rate_card_of(terms, names), period, units, results, covered)

    def clear(self, due: Mark) -> None:
        """Forget a mark, unless a newer one came in while it was being recalculated."""
        with self.views.transaction() as tx:
            tx.execute(
                "DELETE FROM oc_pay_dirty WHERE agreement_id = ? AND period = ? AND marks = ?",
                (str(due.agreement_id), due.period, due.marks),
            )

    def park(self, due: Mark) -> None:
        """Keep a mark waiting for its agreement's term (unless a newer one came in meanwhile:
        that one is tried again)."""
        with self.views.transaction() as tx:
            tx.execute(
                "UPDATE oc_pay_dirty SET due_on = ? WHERE agreement_id = ? AND period = ?"
                " AND marks = ?", (_PARKED, str(due.agreement_id), due.period, due.marks),
            )

    def _expand(self, due: Mark) -> None:
        """Replace a mark for every period of an agreement (or every one sharing a day with
        some days) with one per period it has: those with deliveries, with measurements of the
        measures it is paid on, or already paid."""
        periods: set[str] = set()
        try:
            terms = self.app.terms(due.agreement_id)
        except NotFound:
            terms = None
        card = terms.rate_card if terms is not None else None
        if terms is not None and card is not None:
            periodicity = Periodicity(card["periodicity"])
            periods.update(p for p in terms.payments if periodicity_of(p) == periodicity)
            periods.update(u.period for u in units_delivered(
                self.views, agreement_ids=[due.agreement_id], periodicity=periodicity))
            for rate in card["outcome_rates"]:
                try:
                    measure = self.app.measure(UUID(str(rate["measure_id"])))
                except NotFound:
                    continue
                periods.update(p for p in measure.measurements
                               if periodicity_of(p) == periodicity)
        within = _within(due.period)
        if within is not None:
            periods = {p for p in periods if cover(p, *within).days > 0}
        with self.views.transaction() as tx:
            for period in sorted(periods):
                for reason in due.reasons:
                    mark(tx, str(due.agreement_id), period, reason, due.correlation_id,
                         due.causation_id)
            tx.execute(
                "DELETE FROM oc_pay_dirty WHERE agreement_id = ? AND period = ? AND marks = ?",
                (str(due.agreement_id), due.period, due.marks),
            )

    def _marks(self, due_before: date | None, limit: int) -> list[Mark]:
        """Marks (due before a date), leaving out those parked when only the due ones."""
        where, params = ("", [])
        if due_before:
            where = ("WHERE due_on < ? AND NOT EXISTS (SELECT 1 FROM projection_parked p"
                     " WHERE p.projection = ? AND p.item = 'settle ' || agreement_id || '/'"
                     " || period)")
            params = [due_before.isoformat(), PaymentsToSettle.name]
        with self.views.transaction() as tx:
            rows = tx.execute(
                "SELECT agreement_id, period, reasons, marks, correlation_id, causation_id"
                f" FROM oc_pay_dirty {where} ORDER BY due_on, agreement_id, period LIMIT ?",
                (*params, limit),
            )
        return [
            Mark(UUID(str(a)), str(p), tuple(json.loads(r)), int(m),
                 str(c) if c else None, str(x) if x else None)
            for a, p, r, m, c, x in rows
        ]


def settle_item(agreement_id: UUID, period: str) -> str:
    """How a pair whose recalculation is parked is named (council.platform.parking's `item`)."""
    return f"settle {agreement_id}/{period}"


def payments_workers(runtime: Runtime) -> Sequence[PaymentsProcess]:
    """The service's background worker (ServiceSpec.workers)."""
    assert isinstance(runtime.app, Outcomes)
    return [PaymentsProcess(runtime.app, runtime.views, open_event_log(runtime.settings, True))]
