"""The results payments process: makes each payment the outcomes service calculates due under
the integrator's agreement, so results payments and the payments the council records by hand
are one record of money (council.services.integrator.domain.agreements says how).

It follows the outcomes topic of the shared log with its own durable position (a projection),
as the outcomes service's payments process does: applying a PaymentCalculated or
PaymentRecalculated only files it in an inbox (`ig_results_inbox`, keyed by calculation id), in
the same transaction as the position. A separate step records each filed calculation on its
Agreement (`Integrator.record_results_due`) and then takes it out of the inbox.

- Exactly once in effect: the Agreement records a calculation once (its id is the due item's),
  so a crash between recording it and clearing the inbox only repeats a command that then
  records nothing; replaying the log (a rebuild) files every calculation again, and recording
  them records nothing.
- The services never import each other: the calculation arrives as the outcomes service's
  published contract (council.kernel.contracts.outcomes).
- Nothing stalls it: an event it cannot file is parked by its runner (council.platform.parking); a
filed
  calculation it cannot record for anything but the infrastructure (an agreement the integrator
  does not hold, say) is parked too (item "due <calculation id>", with the reason) and left
  alone until `council projections retry --projection integrator.results_payments` releases
  it. Parked work shows in /ready.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from eventsourcing.persistence import IntegrityError

from council.kernel.context import (
    CommandContext,
    command_context,
    current_context,
    new_correlation_id,
)
from council.kernel.contracts.outcomes import SOURCE as OUTCOMES
from council.kernel.contracts.outcomes import PaymentCalculated, PaymentRecalculated
from council.kernel.envelope import EventEnvelope
from council.kernel.errors import ConcurrentChange
from council.platform import parking
from council.platform.eventlog import EventLog, open_event_log
from council.platform.projection import ProjectionRunner, TableProjection, keep_running
from council.platform.runtime import Runtime
from council.platform.sql import Database, Tx
from council.services.integrator.application import Integrator

log = structlog.get_logger("results_payments")

ACTOR = "system:results-payments-process"
SCHEMA_VERSION = 1

_TABLES = (
    "CREATE TABLE IF NOT EXISTS ig_results_inbox ("
    " calculation_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, type TEXT NOT NULL,"
    " data TEXT NOT NULL, calculated_on TEXT NOT NULL, event_id TEXT NOT NULL,"
    " correlation_id TEXT)",
    "CREATE INDEX IF NOT EXISTS ig_results_inbox_seq ON ig_results_inbox (seq)",
)
_DROPPED = ("ig_results_inbox", "ig_results_schema")


class ResultsPaymentsToRecord(TableProjection):
    """The calculations read from the outcomes topic and not yet recorded as due."""

    name = "integrator.results_payments"
    sources = (OUTCOMES,)
    types = frozenset({"PaymentCalculated", "PaymentRecalculated"})

    marker = "ig_results_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        model = PaymentCalculated if event.type == "PaymentCalculated" else PaymentRecalculated
        calculated = model.model_validate(event.data)
        (last,) = tx.execute("SELECT COALESCE(MAX(seq), 0) FROM ig_results_inbox")
        tx.execute(
            "INSERT INTO ig_results_inbox (calculation_id, seq, type, data, calculated_on,"
            " event_id, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (calculation_id) DO NOTHING",
            (calculated.calculation_id, int(last[0]) + 1, event.type,
             calculated.model_dump_json(), event.occurred_at.date().isoformat(),
             str(event.event_id), current_context().correlation_id),
        )


@dataclass(frozen=True)
class Filed:
    """A calculation waiting to be recorded as due."""

    calculation_id: str
    calculated: PaymentCalculated | PaymentRecalculated
    calculated_on: str
    event_id: str
    correlation_id: str | None

    def context(self) -> CommandContext:
        return CommandContext(actor=ACTOR, organisation="council",
                              correlation_id=self.correlation_id or new_correlation_id(),
                              causation_id=self.event_id)


def due_item(calculation_id: str) -> str:
    """How a calculation whose recording is parked is named (council.platform.parking's `item`)."""
    return f"due {calculation_id}"


class ResultsPaymentsProcess:
    """Follows the log (filing calculations) and records them as due. `run` is the background
    worker; `run_once` does one round of both (tests and the demo loader drive it by hand)."""

    def __init__(self, app: Integrator, views: Database, event_log: EventLog,
                 batch: int = 200, quiet: bool = False) -> None:
        self.app = app
        self.views = views
        self.batch = batch
        self.quiet = quiet
        self.runner = ProjectionRunner(ResultsPaymentsToRecord(), views, event_log, quiet=quiet)

    def run(self, stop: threading.Event, idle_wait: float = 0.05) -> None:
        try:
            keep_running(self.run_once, stop, idle_wait, "results_payments_process_failed")
        finally:
            self.runner.event_log.close()

    def run_once(self) -> int:
        """Read the next batch from the log, then record what was filed: how much was done."""
        return self.runner.run_once() + self.record_filed()

    def catch_up(self) -> int:
        total = 0
        while moved := self.run_once():
            total += moved
        return total

    def filed(self, limit: int = 10_000) -> list[Filed]:
        """The calculations waiting, oldest first, leaving out those parked."""
        with self.views.transaction() as tx:
            rows = tx.execute(
                "SELECT calculation_id, type, data, calculated_on, event_id, correlation_id"
                " FROM ig_results_inbox i WHERE NOT EXISTS (SELECT 1 FROM projection_parked p"
                " WHERE p.projection = ? AND p.item = 'due ' || i.calculation_id)"
                " ORDER BY seq LIMIT ?", (ResultsPaymentsToRecord.name, limit))
        found = []
        for calculation_id, kind, data, on, event_id, correlation_id in rows:
            model = PaymentCalculated if kind == "PaymentCalculated" else PaymentRecalculated
            found.append(Filed(str(calculation_id), model.model_validate(json.loads(str(data))),
                               str(on), str(event_id),
                               None if correlation_id is None else str(correlation_id)))
        return found

    def record_filed(self) -> int:
        """Record each filed calculation as due on its agreement; returns how many were
        taken out of the inbox."""
        done = 0
        for filed in self.filed(self.batch):
            try:
                with command_context(filed.context()):
                    recorded = self.app.record_results_due(filed.calculated, filed.calculated_on)
            except (IntegrityError, ConcurrentChange):
                continue  # the agreement changed meanwhile: try again next round
            except Exception as exc:  # one bad calculation must not hold back the others
                log.error("results_due_failed", calculation_id=filed.calculation_id,
                          error=f"{type(exc).__name__}: {exc}")
                if not parking.transient(exc):
                    with self.views.transaction() as tx:
                        parking.park(tx, ResultsPaymentsToRecord.name,
                                     due_item(filed.calculation_id), parking.reason_of(exc),
                                     event_id=filed.event_id, event_type="results due")
                continue
            with self.views.transaction() as tx:
                tx.execute("DELETE FROM ig_results_inbox WHERE calculation_id = ?",
                           (filed.calculation_id,))
            if recorded and not self.quiet:
                log.info("results_payment_due", calculation_id=filed.calculation_id,
                         agreement_id=str(filed.calculated.agreement_id),
                         period=filed.calculated.period)
            done += 1
        return done


def results_workers(runtime: Runtime) -> Sequence[ResultsPaymentsProcess]:
    """The service's background worker (ServiceSpec.workers)."""
    assert isinstance(runtime.app, Integrator)
    return [ResultsPaymentsProcess(runtime.app, runtime.views,
                                   open_event_log(runtime.settings, True))]
