"""The outcomes part of the demo data set: measurements per quarter for every outcome measure
(provisional figures, some revised later), attribution and quarterly rate cards for the
agreements that commission on outcomes, monthly delivery reports from the providers of every
active agreement (a few corrected), and the payments they lead to, worked out by the outcomes
service's own payments process at each quarter's settlement (and recalculated when a late
measurement, a revision, a late report or a correction changes what is due). Each calculation
becomes due on the integrator's agreement (its results payments process, run at the same
settlement), and finance pays what is due a week or two later, as spend: each party its share,
never over the budget (an amount the budget cannot take waits, flagged, for a variation).

Planned like the rest of the demo (council/tools/demo/loader.py): every value and date is
drawn here from the loader's seeded generator; the steps run in business time through the
outcomes service's commands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING
from uuid import UUID

from council.kernel.contracts.outcomes import Channel, Periodicity
from council.kernel.contracts.provider_registry import OrganisationType
from council.kernel.errors import NotFound
from council.kernel.periods import period_bounds, quarter_of, quarters
from council.platform.eventlog import open_event_log
from council.platform.eventstore import store_database
from council.platform.projection import ProjectionRunner
from council.platform.relay import OutboxRelay
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.services.integrator.application import Integrator
from council.services.integrator.domain.commands import DuePayment
from council.services.integrator.processes.results_payments import ResultsPaymentsProcess
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.acceptance import AgreementInfo, DeliveryOutcome
from council.services.outcomes.domain.aggregates import delivery_id_for
from council.services.outcomes.domain.commands import (
    Attribution,
    BandIn,
    DeliveryIn,
    DeliveryRateIn,
    NewMeasure,
    NewMeasurement,
    OutcomeRateIn,
    RateCardIn,
    TrajectoryPointIn,
)
from council.services.outcomes.processes.payments import PaymentsProcess
from council.services.outcomes.projections.agreements import term_end
from council.services.outcomes.projections.deliveries import DeliveriesProjection
from council.tools.demo import data
from council.tools.demo.data import END, AwardSpec, NeedSpec

if TYPE_CHECKING:
    from council.tools.demo.loader import DemoLoader

D = Decimal
QUARTER_DAYS = 91






def _places(spec: data.MeasureSpec) -> int:
    """Decimal places the measure is published with (whole numbers for counts)."""
    return 0 if "per" in spec.unit else 1


def planned(spec: data.MeasureSpec, quarter: str) -> Decimal:
    """The trajectory's target for a quarter: a straight line from the baseline to the target."""
    steps = quarters(data.BASELINE_PERIOD, spec.by)
    done = min(steps.index(quarter), len(steps) - 1) if quarter in steps else len(steps) - 1
    base, target = D(spec.baseline), D(spec.target)
    return round(base + (target - base) * done / (len(steps) - 1), 2)


def new_measure(spec: data.MeasureSpec) -> NewMeasure:
    """The measure as the council defines it: baseline, trajectory, source and geography."""
    points = quarters(data.BASELINE_PERIOD, spec.by)[1:]
    return NewMeasure(
        name=spec.name, unit=spec.unit, direction=spec.direction,
        baseline=D(spec.baseline), baseline_period=data.BASELINE_PERIOD,
        trajectory=[TrajectoryPointIn(period=q, target=planned(spec, q)) for q in points],
        data_source=spec.source, geography=data.GEOGRAPHY,
    )


class OutcomesPlan:
    """Adds the outcomes steps to a DemoLoader's plan (after its agreements are planned)."""

    def __init__(self, loader: DemoLoader, settle: Callable[[], object] | None) -> None:
        self.loader = loader
        self.rng = loader.rng
        self.outcomes = loader.outcomes
        self.settle = settle
        self.measures = {spec.key: spec for spec in data.MEASURES}
        self.reports: dict[tuple[str, int], str] = {}  # (award, n) -> idempotency key

    def agreements(self, agreement_ids: Sequence[UUID]) -> dict[UUID, AgreementInfo]:
        """What the integrator says of these agreements now (in the load: the step's date);
        the outcomes service learns this from the shared log, the loader asks directly."""
        found: dict[UUID, AgreementInfo] = {}
        for agreement_id in agreement_ids:
            try:
                agreement = self.loader.integrator.agreement(agreement_id)
            except NotFound:
                continue
            ended = agreement.ending["ended_on"] if agreement.ending is not None else None
            ends_on = term_end(date.fromisoformat(agreement.ends_on),
                               date.fromisoformat(ended) if ended else None)
            reward = agreement.reward_terms or {}
            found[agreement_id] = AgreementInfo(
                agreement_id, agreement.status.value,
                frozenset(UUID(str(p["provider_id"])) for p in agreement.parties),
                date.fromisoformat(agreement.starts_on), ends_on,
                reward.get("payment_frequency"))
        return found

    def plan(self) -> None:
        for spec in data.MEASURES:
            self._plan_measurements(spec)
        for need in data.NEEDS:
            for decision in need.decisions:
                for award in decision.awards:
                    if award.activate:
                        self._plan_award(need, award)
        self._plan_settlements()

    # ------------------------------------------------------------------ measurements

    def _plan_measurements(self, spec: data.MeasureSpec) -> None:
        base, target = D(spec.baseline), D(spec.target)
        spread = float(abs(target - base)) * 0.04
        for quarter in quarters("2023-Q2", quarter_of(END)):
            published = period_bounds(quarter)[1] + timedelta(days=data.MEASURES_PUBLISHED_AFTER)
            if published > END:
                break
            change = float(planned(spec, quarter) - base) * spec.progress
            value = round(D(str(float(base) + change + self.rng.gauss(0, spread))),
                          _places(spec))
            self._measure(spec, published, quarter, value, f"{spec.source}, provisional")
            revised = published + timedelta(days=data.REVISED_AFTER)
            if quarter in spec.revised and revised <= END:
                step = D(1).scaleb(-_places(spec)) * self.rng.choice((-2, -1, 1, 2))
                self._measure(spec, revised, quarter, value + step, f"{spec.source}, final",
                              f"Final figures replace the provisional {value}")

    def _measure(self, spec: data.MeasureSpec, on: date, quarter: str, value: Decimal,
                 source: str, note: str | None = None) -> None:
        def record() -> None:
            self.outcomes.record_measurement(
                self.loader.measure_ids[spec.key],
                NewMeasurement(period=quarter, value=value, source=source, note=note))

        self.loader.plan.add(on, data.PERFORMANCE, f"measure {spec.key} {quarter}", record,
                             f"measure:{spec.key}")

    # ------------------------------------------------------------------ agreements

    def _plan_award(self, need: NeedSpec, award: AwardSpec) -> None:
        starts = award.starts or need.starts
        final_end, _ = self.loader._final_end(award, need)
        if award.reward:
            self._plan_terms(need, award, starts, final_end)
        self._plan_deliveries(need, award, starts, final_end)

    def _plan_terms(self, need: NeedSpec, award: AwardSpec, starts: date,
                    final_end: date) -> None:
        """Attribution (the agreement's share of its need's outcomes) and a quarterly rate
        card paying its results share partly on delivery, mostly on improvement."""
        assert award.reward is not None
        pct, bonus, penalty = award.reward
        quarters_in_term = max(1, (final_end - starts).days // QUARTER_DAYS)
        pot = D(award.allocation * pct) / 100 / quarters_in_term
        measures = [self.measures[o.measure] for o in need.outcomes
                    if o.measure in self.measures]
        activated = sum(a.allocation for d in need.decisions for a in d.awards if a.activate)
        weight = min(D(1), max(D("0.1"), round(D(award.allocation) / activated, 2)))
        activity, cost, share = data.DELIVERY.get(need.area, data.DELIVERY_DEFAULT)[0]
        months_in_term = max(1, (final_end - starts).days // 30)
        per_quarter = D(3 * award.allocation * share / months_in_term / cost)
        delivery_pot = pot * D(str(1 - data.OUTCOME_SHARE))
        outcome_pot = pot * D(str(data.OUTCOME_SHARE)) / max(1, len(measures))

        def card() -> RateCardIn:
            rates = [OutcomeRateIn(
                measure_id=self.loader.measure_ids[m.key],
                rate=round(outcome_pot * 2 / (abs(D(m.target) - D(m.baseline)) * weight), -1),
                cap=round(outcome_pot * 2, 2)) for m in measures]
            return RateCardIn(
                periodicity=Periodicity.QUARTERLY,
                delivery_rates=[DeliveryRateIn(
                    activity_type=activity, rate=round(delivery_pot / per_quarter, 2),
                    threshold=round(per_quarter / 2), cap=round(delivery_pot * D("1.2"), 2))],
                outcome_rates=rates,
                bands=[BandIn(min_pct=D(0), max_pct=D(50),
                              adjustment=-round(D(penalty) / quarters_in_term, 2),
                              label="less than half the planned improvement"),
                       BandIn(min_pct=D(100), adjustment=round(D(bonus) / quarters_in_term, 2),
                              label="planned improvement met or beaten")],
                provider_risk_pct=D(award.risk[1]) if award.risk else D(100),
                period_cap=round(pot * 2, 2))

        def agree() -> None:
            agreement_id = self.loader.agreement_ids[award.key]
            for measure in measures:
                self.outcomes.attribute(agreement_id, Attribution(
                    measure_id=self.loader.measure_ids[measure.key], weight=weight))
            self.outcomes.agree_rate_card(agreement_id, card())

        self.loader.plan.add(starts + timedelta(days=14), need.commissioner,
                             f"{award.key}: attribution and rate card", agree,
                             f"agreement:{award.key}")

    def _plan_deliveries(self, need: NeedSpec, award: AwardSpec, starts: date,
                         final_end: date) -> None:
        """A report per activity each month, a few days after the month (while the agreement
        is still active); now and then one corrected a few weeks later."""
        key = award.providers[0]
        spec = self.loader.specs[key]
        provider_id = self.loader.provider_ids[key]
        actor = f"provider:{spec.name}"
        channel = (Channel.KAFKA if spec.kind in (OrganisationType.LARGE_PRIVATE,
                                                   OrganisationType.PUBLIC_BODY)
                   else Channel.HTTP)
        activities = data.DELIVERY.get(need.area, data.DELIVERY_DEFAULT)
        monthly = award.allocation / max(1, (final_end - starts).days / 30.4)
        month = starts.replace(day=1)
        while True:
            first = max(month, starts)
            last = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            reported = last + timedelta(days=self.rng.randint(*data.DELIVERY_REPORTED_AFTER))
            if reported >= final_end or reported > END:
                break
            reports = []
            for activity, cost, share in activities:
                quantity = max(1, round(monthly * share / cost * self.rng.uniform(0.8, 1.15)))
                n = len(self.reports)
                idempotency_key = f"{award.key}-{first:%Y-%m}-{activity}"
                self.reports[(award.key, n)] = idempotency_key
                reports.append(DeliveryIn(
                    idempotency_key=idempotency_key, agreement_id=UUID(int=0),
                    activity_type=activity, quantity=D(quantity), period_start=first,
                    period_end=last, location=f"{data.DISTRICTS[spec.home][0]}"))
                fix = reported + timedelta(days=self.rng.randint(14, 35))
                if n % data.CORRECTION_EVERY == data.CORRECTION_EVERY - 1 and fix < final_end \
                        and fix <= END:
                    corrected = max(1, round(quantity * self.rng.uniform(0.85, 0.97)))
                    self._report(award, provider_id, actor, channel, fix, [reports[-1].model_copy(
                        update={"idempotency_key": f"{idempotency_key}-corrected",
                                "quantity": D(corrected),
                                "corrects": delivery_id_for(provider_id, idempotency_key)})],
                        "correct delivery")
            self._report(award, provider_id, actor, channel, reported, reports, "report delivery")
            month = last + timedelta(days=1)

    def _report(self, award: AwardSpec, provider_id: UUID, actor: str, channel: Channel,
                on: date, reports: list[DeliveryIn], label: str) -> None:
        def report() -> None:
            agreement_id = self.loader.agreement_ids[award.key]
            batch = self.outcomes.report_deliveries(provider_id, [
                (i, r.model_copy(update={"agreement_id": agreement_id}))
                for i, r in enumerate(reports)], channel)
            refused: list[DeliveryOutcome] = batch.rejected
            if refused:
                raise RuntimeError(f"delivery refused: {refused[0].field}: {refused[0].error}")

        self.loader.plan.add(on, actor, f"{award.key}: {label} {reports[0].period_end:%Y-%m}",
                             report, f"deliveries:{award.key}", organisation=str(provider_id))

    # ------------------------------------------------------------------ payments

    def _plan_settlements(self) -> None:
        """The payments process settles each quarter the month after it ends (and recalculates
        what late measurements, revisions and corrections changed since the last time); what
        it calculated becomes due on the integrator's agreements, and finance pays it a week
        or two later."""
        rewarded = [(need, award) for need in data.NEEDS for decision in need.decisions
                    for award in decision.awards if award.reward and award.activate]
        for quarter in quarters("2023-Q3", quarter_of(END)):
            ends = period_bounds(quarter)[1]
            after = ends + timedelta(days=data.SETTLEMENT_DAY)
            if after > END:
                break
            self.loader.plan.add(after, data.FINANCE, f"settle payments {quarter}",
                                 self._settle, "payments")
            for need, award in rewarded:
                paid = after + timedelta(days=self.rng.randint(*data.RESULTS_PAID_AFTER))
                if (award.starts or need.starts) <= ends and paid <= END:
                    self.loader.plan.add(paid, data.FINANCE, f"{award.key}: pay results due",
                                         partial(self._pay_results, award.key),
                                         f"agreement:{award.key}")

    def _settle(self) -> None:
        if self.settle is not None:
            self.settle()

    def _pay_results(self, award_key: str) -> None:
        """Finance pays what is due on the agreement (recovering credits), as the budget
        allows: an amount it cannot take stays due, flagged as needing a variation."""
        integrator = self.loader.integrator
        agreement_id = self.loader.agreement_ids[award_key]
        agreement = integrator.agreement(agreement_id)
        spent = agreement.spent
        for due_id, item in list(agreement.results_due.items()):
            amount: Decimal = item["amount"]
            if item["paid"] or not D(0) <= spent + amount <= agreement.budget:
                continue
            reference = f"NCC-R-{item['period'].replace('-', '')}-{due_id[:6].upper()}"
            integrator.pay_results_due(agreement_id, due_id, DuePayment(reference=reference),
                                       self.loader.acting())
            spent += amount


class Settlement:
    """The outcomes service's payments process, run by the loader at each settlement date: the
    outcomes store published so far, the deliveries read model brought up to date, then what is
    due settled as of the step's business date (as the service does, continuously); then the
    integrator's results payments process makes what was calculated due on its agreements."""

    def __init__(self, settings: Settings, outcomes: Outcomes, integrator: Integrator) -> None:
        self.event_log = open_event_log(settings)
        self.store_db = store_database(settings, Outcomes.service)
        self.views = open_database(settings, f"{Outcomes.service}_views")
        self.integrator_views = open_database(settings, f"{Integrator.service}_views")
        self.relay = OutboxRelay(outcomes, self.event_log, self.store_db)
        # Quiet: the load prints its own progress, not a line per event.
        self.deliveries = ProjectionRunner(DeliveriesProjection(), self.views, self.event_log,
                                           quiet=True)
        self.payments = PaymentsProcess(outcomes, self.views, self.event_log, quiet=True)
        self.results = ResultsPaymentsProcess(integrator, self.integrator_views,
                                              self.event_log, quiet=True)

    def __call__(self) -> None:
        self.relay.drain()
        self.deliveries.catch_up()
        self.payments.catch_up()
        self.relay.drain()  # what was settled, onto the log for the integrator
        self.results.catch_up()

    def close(self) -> None:
        self.event_log.close()
        self.store_db.close()
        self.views.close()
        self.integrator_views.close()


__all__ = ["OutcomesPlan", "Settlement", "new_measure", "planned"]
