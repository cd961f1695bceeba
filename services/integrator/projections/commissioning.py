"""The commissioning projection: needs, pooled contributions, decisions, agreements (with their
variations, extensions, business cases and spend) and lessons, as the integrator's events on the
shared log tell them.

Money is kept as whole pence (BIGINT), never as a float: SQLite has no decimal type, and sums of
integers are exact in both databases. Amounts leave the queries as Decimal pounds.

Each table follows one kind of stream (a need, an agreement, a lesson); anything that crosses
streams (a need's agreements, an agreement's need) is joined when read, so the view does not
depend on the order in which different streams' events arrive (Kafka keeps order per stream only).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts.integrator import SOURCE as INTEGRATOR
from shared.contracts.integrator import (
    AgreementActivated,
    AgreementDrafted,
    AgreementEnded,
    AgreementExtended,
    AgreementOutcome,
    AgreementSigned,
    AgreementVaried,
    ArrangementType,
    Award,
    BudgetEnvelopeRaised,
    BusinessCaseApproved,
    BusinessCaseProposed,
    BusinessCaseRejected,
    CommissioningDecided,
    LessonRecorded,
    MarketEngaged,
    NeedClosed,
    NeedContributionPledged,
    NeedDefined,
    NeedStageReached,
    Option,
    OptionsAppraised,
    OutcomeSought,
    Population,
    ResultsPaymentDue,
    RewardTerms,
    RiskShare,
    SourcingStage,
    SpendRecorded,
)
from shared.envelope import EventEnvelope
from shared.projection import TableProjection
from shared.sql import Database, Row, Tx

# Bump when the tables below change shape: the read model is then dropped and replayed.
# 2: cm_agreements.activated_at and ended_at, the business times of those events (the market
# view's quarterly history of concentration follows them).
# 3: agreements' signatures, extensions' performance data and overrides.
# 4: results payments due (cm_results_due) and the due item a payment pays (cm_spend.due_id).
SCHEMA_VERSION = 4

PENNY = Decimal("0.01")

DRAFTED, ACTIVE, ENDED = "drafted", "active", "ended"
OPEN, CLOSED = "open", "closed"


def pence(amount: Decimal) -> int:
    """Pounds (at most two decimal places, as the contracts allow) as whole pence."""
    return int(amount.quantize(PENNY).scaleb(2))


def pounds(amount: int) -> Decimal:
    return Decimal(int(amount)).scaleb(-2)


_TABLES = (
    "CREATE TABLE IF NOT EXISTS cm_needs ("
    " need_id TEXT PRIMARY KEY, title TEXT NOT NULL, service_area TEXT NOT NULL,"
    " population TEXT NOT NULL, outcomes TEXT NOT NULL, outputs TEXT NOT NULL,"
    " budget_envelope_pence BIGINT NOT NULL, starts_on TEXT NOT NULL, ends_on TEXT NOT NULL,"
    " lead_organisation TEXT NOT NULL, stage TEXT NOT NULL, status TEXT NOT NULL,"
    " closed_reason TEXT, options TEXT NOT NULL, recommended TEXT, options_rationale TEXT,"
    " engagements TEXT NOT NULL, defined_at TEXT NOT NULL, defined_by TEXT,"
    " updated_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS cm_needs_area ON cm_needs (service_area)",
    "CREATE TABLE IF NOT EXISTS cm_contributions ("
    " need_id TEXT NOT NULL, contribution_id TEXT NOT NULL, partner TEXT NOT NULL,"
    " amount_pence BIGINT NOT NULL, note TEXT, pledged_at TEXT NOT NULL,"
    " PRIMARY KEY (need_id, contribution_id))",
    "CREATE TABLE IF NOT EXISTS cm_decisions ("
    " need_id TEXT NOT NULL, decision_id TEXT NOT NULL, rationale TEXT NOT NULL,"
    " decision_maker TEXT NOT NULL, decided_at TEXT NOT NULL,"
    " PRIMARY KEY (need_id, decision_id))",
    "CREATE TABLE IF NOT EXISTS cm_awards ("
    " need_id TEXT NOT NULL, decision_id TEXT NOT NULL, award_id TEXT NOT NULL,"
    " ordinal INTEGER NOT NULL, title TEXT NOT NULL, arrangement_type TEXT NOT NULL,"
    " provider_ids TEXT NOT NULL, allocation_pence BIGINT NOT NULL,"
    " PRIMARY KEY (need_id, award_id))",
    "CREATE TABLE IF NOT EXISTS cm_agreements ("
    " agreement_id TEXT PRIMARY KEY, need_id TEXT NOT NULL, decision_id TEXT, award_id TEXT,"
    " title TEXT NOT NULL, arrangement_type TEXT NOT NULL, status TEXT NOT NULL,"
    " starts_on TEXT NOT NULL, ends_on TEXT NOT NULL, original_ends_on TEXT NOT NULL,"
    " budget_pence BIGINT NOT NULL, original_budget_pence BIGINT NOT NULL,"
    " activated_on TEXT, activated_at TEXT, ended_on TEXT, ended_at TEXT, ended_how TEXT,"
    " ended_reason TEXT,"
    " exit_plan_executed BOOLEAN, exit_notes TEXT, outcomes TEXT NOT NULL, reward_terms TEXT,"
    " risk_share TEXT, break_clauses TEXT NOT NULL, exit_plan TEXT NOT NULL,"
    " drafted_at TEXT NOT NULL, updated_at TEXT NOT NULL, signed_on TEXT, signatories TEXT)",
    "CREATE INDEX IF NOT EXISTS cm_agreements_need ON cm_agreements (need_id)",
    "CREATE INDEX IF NOT EXISTS cm_agreements_status ON cm_agreements (status)",
    "CREATE TABLE IF NOT EXISTS cm_parties ("
    " agreement_id TEXT NOT NULL, provider_id TEXT NOT NULL, ordinal INTEGER NOT NULL,"
    " allocation_pence BIGINT NOT NULL, original_allocation_pence BIGINT NOT NULL,"
    " PRIMARY KEY (agreement_id, provider_id))",
    "CREATE INDEX IF NOT EXISTS cm_parties_provider ON cm_parties (provider_id)",
    "CREATE TABLE IF NOT EXISTS cm_variations ("
    " agreement_id TEXT NOT NULL, variation_id TEXT NOT NULL, kind TEXT NOT NULL,"
    " budget_change_pence BIGINT NOT NULL, new_budget_pence BIGINT NOT NULL, scope TEXT,"
    " reason TEXT NOT NULL, business_case_id TEXT, varied_at TEXT NOT NULL,"
    " PRIMARY KEY (agreement_id, variation_id))",
    "CREATE TABLE IF NOT EXISTS cm_extensions ("
    " agreement_id TEXT NOT NULL, extension_id TEXT NOT NULL, previous_end TEXT NOT NULL,"
    " new_end TEXT NOT NULL, justification TEXT NOT NULL, performance_evidence TEXT NOT NULL,"
    " extended_at TEXT NOT NULL, performance_data TEXT, override_reason TEXT,"
    " override_approved_by TEXT, PRIMARY KEY (agreement_id, extension_id))",
    "CREATE TABLE IF NOT EXISTS cm_business_cases ("
    " agreement_id TEXT NOT NULL, business_case_id TEXT NOT NULL, need TEXT NOT NULL,"
    " expected_outcomes TEXT NOT NULL, cost_pence BIGINT NOT NULL, status TEXT NOT NULL,"
    " decision_reason TEXT, proposed_at TEXT NOT NULL, decided_at TEXT,"
    " PRIMARY KEY (agreement_id, business_case_id))",
    "CREATE TABLE IF NOT EXISTS cm_spend ("
    " agreement_id TEXT NOT NULL, spend_id TEXT NOT NULL, provider_id TEXT NOT NULL,"
    " amount_pence BIGINT NOT NULL, period TEXT NOT NULL, reference TEXT,"
    " recorded_at TEXT NOT NULL, due_id TEXT, PRIMARY KEY (agreement_id, spend_id))",
    "CREATE INDEX IF NOT EXISTS cm_spend_provider ON cm_spend (provider_id)",
    "CREATE TABLE IF NOT EXISTS cm_results_due ("
    " agreement_id TEXT NOT NULL, due_id TEXT NOT NULL, calculation_id TEXT NOT NULL,"
    " terms_id TEXT NOT NULL, period TEXT NOT NULL, amount_pence BIGINT NOT NULL,"
    " shares TEXT NOT NULL, calculated_on TEXT NOT NULL, calculated_total_pence BIGINT NOT NULL,"
    " previous_total_pence BIGINT, reason TEXT NOT NULL, over_budget_pence BIGINT NOT NULL,"
    " lines TEXT NOT NULL, recorded_at TEXT NOT NULL, paid_at TEXT, paid_by TEXT,"
    " paid_period TEXT, PRIMARY KEY (agreement_id, due_id))",
    "CREATE TABLE IF NOT EXISTS cm_lessons ("
    " lesson_id TEXT PRIMARY KEY, need_id TEXT, agreement_id TEXT, stage TEXT NOT NULL,"
    " went TEXT NOT NULL, what TEXT NOT NULL, why TEXT NOT NULL, tags TEXT NOT NULL,"
    " search_text TEXT NOT NULL, recorded_at TEXT NOT NULL, recorded_by TEXT)",
    "CREATE TABLE IF NOT EXISTS cm_lesson_tags ("
    " lesson_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (lesson_id, tag))",
    "CREATE INDEX IF NOT EXISTS cm_lesson_tags_tag ON cm_lesson_tags (tag)",
)
_DROPPED = (
    "cm_needs", "cm_contributions", "cm_decisions", "cm_awards", "cm_agreements", "cm_parties",
    "cm_variations", "cm_extensions", "cm_business_cases", "cm_spend", "cm_results_due",
    "cm_lessons",
    "cm_lesson_tags", "cm_schema",
)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def scale_allocations(allocations: list[Decimal], old_budget: Decimal,
                      new_budget: Decimal) -> list[Decimal]:
    """Parties keep their shares as the budget grows or shrinks, as the Agreement aggregate
    shares them (AgreementVaried carries only the new budget, so the rule is repeated here):
    each share rounded down to the penny, then the pennies left over one each to the largest
    remainders, the lead (first) party first on a tie."""
    if old_budget == 0 or not allocations:
        return allocations
    exact = [a * new_budget / old_budget for a in allocations]
    shares = [e.quantize(PENNY, rounding=ROUND_DOWN) for e in exact]
    left = int((new_budget - sum(shares, Decimal(0))) / PENNY)
    for i in sorted(range(len(shares)), key=lambda i: shares[i] - exact[i])[:left]:
        shares[i] += PENNY
    return shares


class CommissioningProjection(TableProjection):
    name = "integrator.commissioning"
    sources = (INTEGRATOR,)

    marker = "cm_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        data = event.data
        at = event.occurred_at.isoformat()
        match event.type:
            case "NeedDefined":
                self._need_defined(tx, event, NeedDefined.model_validate(data))
            case "NeedContributionPledged":
                pledged = NeedContributionPledged.model_validate(data)
                tx.execute(
                    "INSERT INTO cm_contributions (need_id, contribution_id, partner,"
                    " amount_pence, note, pledged_at) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (need_id, contribution_id) DO NOTHING",
                    (str(pledged.need_id), pledged.contribution_id, pledged.partner,
                     pence(pledged.amount), pledged.note, at),
                )
                self._need(tx, at, pledged.need_id)
            case "OptionsAppraised":
                appraised = OptionsAppraised.model_validate(data)
                self._need(tx, at, appraised.need_id, stage=SourcingStage.OPTIONS.value,
                           options=_json([o.model_dump(mode="json") for o in appraised.options]),
                           recommended=appraised.recommended.value,
                           options_rationale=appraised.rationale)
            case "MarketEngaged":
                self._market_engaged(tx, at, MarketEngaged.model_validate(data))
            case "CommissioningDecided":
                self._decided(tx, at, CommissioningDecided.model_validate(data))
            case "BudgetEnvelopeRaised":
                raised = BudgetEnvelopeRaised.model_validate(data)
                self._need(tx, at, raised.need_id,
                           budget_envelope_pence=pence(raised.new_envelope))
            case "NeedStageReached":
                reached = NeedStageReached.model_validate(data)
                self._need(tx, at, reached.need_id, stage=reached.stage.value)
            case "NeedClosed":
                closed = NeedClosed.model_validate(data)
                self._need(tx, at, closed.need_id, status=CLOSED, closed_reason=closed.reason)
            case "AgreementDrafted":
                self._drafted(tx, at, AgreementDrafted.model_validate(data))
            case "AgreementSigned":
                signed = AgreementSigned.model_validate(data)
                self._agreement(tx, at, signed.agreement_id,
                                signed_on=signed.signed_on.isoformat(),
                                signatories=_json(signed.signatories))
            case "AgreementActivated":
                activated = AgreementActivated.model_validate(data)
                self._agreement(tx, at, activated.agreement_id, status=ACTIVE,
                                activated_on=activated.activated_on.isoformat(),
                                activated_at=at)
            case "AgreementVaried":
                self._varied(tx, at, AgreementVaried.model_validate(data))
            case "AgreementExtended":
                self._extended(tx, at, AgreementExtended.model_validate(data))
            case "AgreementEnded":
                ended = AgreementEnded.model_validate(data)
                self._agreement(tx, at, ended.agreement_id, status=ENDED,
                                ended_on=ended.ended_on.isoformat(), ended_at=at,
                                ended_how=ended.how.value,
                                ended_reason=ended.reason,
                                exit_plan_executed=ended.exit_plan_executed,
                                exit_notes=ended.exit_notes)
            case "BusinessCaseProposed":
                proposed = BusinessCaseProposed.model_validate(data)
                tx.execute(
                    "INSERT INTO cm_business_cases (agreement_id, business_case_id, need,"
                    " expected_outcomes, cost_pence, status, proposed_at)"
                    " VALUES (?, ?, ?, ?, ?, 'proposed', ?)"
                    " ON CONFLICT (agreement_id, business_case_id) DO NOTHING",
                    (str(proposed.agreement_id), proposed.business_case_id, proposed.need,
                     proposed.expected_outcomes, pence(proposed.cost), at),
                )
                self._agreement(tx, at, proposed.agreement_id)
            case "BusinessCaseApproved":
                approved = BusinessCaseApproved.model_validate(data)
                # The budget moves with the AgreementVaried (kind business_case) that follows.
                self._case_decided(tx, at, approved.agreement_id, approved.business_case_id,
                                   "approved", approved.reason)
            case "BusinessCaseRejected":
                rejected = BusinessCaseRejected.model_validate(data)
                self._case_decided(tx, at, rejected.agreement_id, rejected.business_case_id,
                                   "rejected", rejected.reason)
            case "SpendRecorded":
                self._spent(tx, event, SpendRecorded.model_validate(data))
            case "ResultsPaymentDue":
                self._results_due(tx, at, ResultsPaymentDue.model_validate(data))
            case "LessonRecorded":
                self._lesson(tx, event, LessonRecorded.model_validate(data))
            case _:
                pass  # a type this projection does not know (a newer event, another version)

    # ------------------------------------------------------------------ needs

    def _need_defined(self, tx: Tx, event: EventEnvelope, data: NeedDefined) -> None:
        at = event.occurred_at.isoformat()
        tx.execute(
            "INSERT INTO cm_needs (need_id, title, service_area, population, outcomes, outputs,"
            " budget_envelope_pence, starts_on, ends_on, lead_organisation, stage, status,"
            " options, engagements, defined_at, defined_by, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', '[]', ?, ?, ?)"
            " ON CONFLICT (need_id) DO NOTHING",
            (str(data.need_id), data.title, data.service_area,
             _json(data.population.model_dump(mode="json")),
             _json([o.model_dump(mode="json") for o in data.outcomes]), _json(data.outputs),
             pence(data.budget_envelope), data.starts_on.isoformat(), data.ends_on.isoformat(),
             data.lead_organisation, SourcingStage.OBJECTIVES.value, OPEN, at, event.actor, at),
        )

    def _market_engaged(self, tx: Tx, at: str, data: MarketEngaged) -> None:
        rows = tx.execute("SELECT engagements FROM cm_needs WHERE need_id = ?",
                          (str(data.need_id),))
        if not rows:
            return
        engagements = [*json.loads(rows[0][0]), data.model_dump(mode="json", exclude={"need_id"})]
        self._need(tx, at, data.need_id, stage=SourcingStage.MARKET_ENGAGEMENT.value,
                   engagements=_json(engagements))

    def _decided(self, tx: Tx, at: str, data: CommissioningDecided) -> None:
        need_id = str(data.need_id)
        tx.execute(
            "INSERT INTO cm_decisions (need_id, decision_id, rationale, decision_maker,"
            " decided_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (need_id, decision_id) DO NOTHING",
            (need_id, data.decision_id, data.rationale, data.decision_maker, at),
        )
        tx.executemany(
            "INSERT INTO cm_awards (need_id, decision_id, award_id, ordinal, title,"
            " arrangement_type, provider_ids, allocation_pence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (need_id, award_id) DO NOTHING",
            [(need_id, data.decision_id, a.award_id, i, a.title, a.arrangement_type.value,
              _json([str(p) for p in a.provider_ids]), pence(a.allocation))
             for i, a in enumerate(data.awards)],
        )
        self._need(tx, at, data.need_id, stage=SourcingStage.DECISION.value)

    @staticmethod
    def _need(tx: Tx, at: str, need_id: UUID, **values: Any) -> None:
        sets = [f"{column} = ?" for column in values] + ["updated_at = ?"]
        tx.execute(f"UPDATE cm_needs SET {', '.join(sets)} WHERE need_id = ?",
                   (*values.values(), at, str(need_id)))

    # ------------------------------------------------------------------ agreements

    def _drafted(self, tx: Tx, at: str, data: AgreementDrafted) -> None:
        agreement_id = str(data.agreement_id)
        tx.execute(
            "INSERT INTO cm_agreements (agreement_id, need_id, decision_id, award_id, title,"
            " arrangement_type, status, starts_on, ends_on, original_ends_on, budget_pence,"
            " original_budget_pence, outcomes, reward_terms, risk_share, break_clauses,"
            " exit_plan, drafted_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (agreement_id) DO NOTHING",
            (agreement_id, str(data.need_id), data.decision_id, data.award_id, data.title,
             data.arrangement_type.value, DRAFTED, data.starts_on.isoformat(),
             data.ends_on.isoformat(), data.ends_on.isoformat(), pence(data.budget),
             pence(data.budget), _json([o.model_dump(mode="json") for o in data.outcomes]),
             _json(data.reward_terms.model_dump(mode="json")) if data.reward_terms else None,
             _json(data.risk_share.model_dump(mode="json")) if data.risk_share else None,
             _json(data.break_clauses), data.exit_plan, at, at),
        )
        tx.executemany(
            "INSERT INTO cm_parties (agreement_id, provider_id, ordinal, allocation_pence,"
            " original_allocation_pence) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (agreement_id, provider_id) DO NOTHING",
            [(agreement_id, str(p.provider_id), i, pence(p.allocation), pence(p.allocation))
             for i, p in enumerate(data.parties)],
        )

    def _varied(self, tx: Tx, at: str, data: AgreementVaried) -> None:
        agreement_id = str(data.agreement_id)
        tx.execute(
            "INSERT INTO cm_variations (agreement_id, variation_id, kind, budget_change_pence,"
            " new_budget_pence, scope, reason, business_case_id, varied_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (agreement_id, variation_id) DO NOTHING",
            (agreement_id, data.variation_id, data.kind.value, pence(data.budget_change),
             pence(data.new_budget), data.scope, data.reason, data.business_case_id, at),
        )
        budget = tx.execute("SELECT budget_pence FROM cm_agreements WHERE agreement_id = ?",
                            (agreement_id,))
        if not budget:
            return
        parties = tx.execute(
            "SELECT provider_id, allocation_pence FROM cm_parties WHERE agreement_id = ?"
            " ORDER BY ordinal", (agreement_id,))
        scaled = scale_allocations([pounds(a) for _, a in parties], pounds(budget[0][0]),
                                   data.new_budget)
        tx.executemany(
            "UPDATE cm_parties SET allocation_pence = ? WHERE agreement_id = ?"
            " AND provider_id = ?",
            [(pence(a), agreement_id, p) for (p, _), a in zip(parties, scaled, strict=True)],
        )
        self._agreement(tx, at, data.agreement_id, budget_pence=pence(data.new_budget))

    def _extended(self, tx: Tx, at: str, data: AgreementExtended) -> None:
        tx.execute(
            "INSERT INTO cm_extensions (agreement_id, extension_id, previous_end, new_end,"
            " justification, performance_evidence, extended_at, performance_data,"
            " override_reason, override_approved_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (agreement_id, extension_id) DO NOTHING",
            (str(data.agreement_id), data.extension_id, data.previous_end.isoformat(),
             data.new_end.isoformat(), data.justification, data.performance_evidence, at,
             data.performance_data, data.override_reason, data.override_approved_by),
        )
        self._agreement(tx, at, data.agreement_id, ends_on=data.new_end.isoformat())

    def _case_decided(self, tx: Tx, at: str, agreement_id: UUID, case_id: str, status: str,
                      reason: str) -> None:
        tx.execute(
            "UPDATE cm_business_cases SET status = ?, decision_reason = ?, decided_at = ?"
            " WHERE agreement_id = ? AND business_case_id = ?",
            (status, reason, at, str(agreement_id), case_id),
        )
        self._agreement(tx, at, agreement_id)

    def _spent(self, tx: Tx, event: EventEnvelope, spent: SpendRecorded) -> None:
        at = event.occurred_at.isoformat()
        tx.execute(
            "INSERT INTO cm_spend (agreement_id, spend_id, provider_id, amount_pence, period,"
            " reference, recorded_at, due_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (agreement_id, spend_id) DO NOTHING",
            (str(spent.agreement_id), spent.spend_id, str(spent.provider_id),
             pence(spent.amount), spent.period, spent.reference, at, spent.due_id),
        )
        if spent.due_id is not None:  # one payment per party: the first says when and who
            tx.execute(
                "UPDATE cm_results_due SET paid_at = ?, paid_by = ?, paid_period = ?"
                " WHERE agreement_id = ? AND due_id = ? AND paid_at IS NULL",
                (at, event.actor, spent.period, str(spent.agreement_id), spent.due_id),
            )
        self._agreement(tx, at, spent.agreement_id)

    def _results_due(self, tx: Tx, at: str, due: ResultsPaymentDue) -> None:
        tx.execute(
            "INSERT INTO cm_results_due (agreement_id, due_id, calculation_id, terms_id, period,"
            " amount_pence, shares, calculated_on, calculated_total_pence, previous_total_pence,"
            " reason, over_budget_pence, lines, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (agreement_id, due_id) DO NOTHING",
            (str(due.agreement_id), due.due_id, due.calculation_id, str(due.terms_id),
             due.period, pence(due.amount),
             _json([s.model_dump(mode="json") for s in due.shares]),
             due.calculated_on.isoformat(), pence(due.calculated_total),
             None if due.previous_total is None else pence(due.previous_total), due.reason,
             pence(due.over_budget_by), _json([line.model_dump(mode="json")
                                               for line in due.lines]), at),
        )
        self._agreement(tx, at, due.agreement_id)

    @staticmethod
    def _agreement(tx: Tx, at: str, agreement_id: UUID, **values: Any) -> None:
        sets = [f"{column} = ?" for column in values] + ["updated_at = ?"]
        tx.execute(f"UPDATE cm_agreements SET {', '.join(sets)} WHERE agreement_id = ?",
                   (*values.values(), at, str(agreement_id)))

    # ------------------------------------------------------------------ lessons

    def _lesson(self, tx: Tx, event: EventEnvelope, data: LessonRecorded) -> None:
        lesson_id = str(data.lesson_id)
        tags = sorted({t.casefold() for t in data.tags})
        tx.execute(
            "INSERT INTO cm_lessons (lesson_id, need_id, agreement_id, stage, went, what, why,"
            " tags, search_text, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?) ON CONFLICT (lesson_id) DO NOTHING",
            (lesson_id, str(data.need_id) if data.need_id else None,
             str(data.agreement_id) if data.agreement_id else None, data.stage.value,
             data.went, data.what, data.why, _json(tags),
             " ".join([data.what, data.why, *tags]).casefold(),
             event.occurred_at.isoformat(), event.actor),
        )
        tx.executemany(
            "INSERT INTO cm_lesson_tags (lesson_id, tag) VALUES (?, ?)"
            " ON CONFLICT (lesson_id, tag) DO NOTHING",
            [(lesson_id, tag) for tag in tags],
        )


# ---------------------------------------------------------------------- views


class Contribution(BaseModel):
    """One organisation's part of a need's pooled budget. The lead organisation's envelope is
    its contribution (contribution_id "envelope")."""

    contribution_id: str
    partner: str
    amount: Decimal
    is_lead: bool
    note: str | None = None
    pledged_at: datetime


class Decision(BaseModel):
    decision_id: str
    rationale: str
    decision_maker: str
    decided_at: datetime
    awards: list[Award]


class Party(BaseModel):
    provider_id: UUID
    allocation: Decimal = Field(description="current allocation (scaled by any variations)")
    original_allocation: Decimal
    spent: Decimal


class AgreementSummary(BaseModel):
    agreement_id: UUID
    need_id: UUID
    decision_id: str | None
    award_id: str | None
    title: str
    arrangement_type: ArrangementType
    status: str = Field(description="drafted, active or ended")
    starts_on: date
    ends_on: date = Field(description="the current end, after any extensions")
    original_ends_on: date
    activated_on: date | None
    ended_on: date | None
    ended_how: str | None = Field(description="completed, terminated or exited")
    budget: Decimal = Field(description="the current budget, after any variations")
    original_budget: Decimal
    spent: Decimal = Field(description="£: every payment recorded, by hand or of results "
                           "payments due (net of credits recovered)")
    due: Decimal = Field(default=Decimal(0), description="£: results payments due and not "
                         "paid yet (net of credits to recover)")
    parties: list[Party]
    updated_at: datetime


class Variation(BaseModel):
    variation_id: str
    kind: str
    budget_change: Decimal
    new_budget: Decimal
    scope: str | None
    reason: str
    business_case_id: str | None
    varied_at: datetime


class Extension(BaseModel):
    extension_id: str
    previous_end: date
    new_end: date
    justification: str
    performance_evidence: str
    extended_at: datetime
    performance_data: str | None = Field(
        default=None, description="the performance data held when it was extended")
    override_reason: str | None = Field(
        default=None, description="why it was extended with no performance data yet")
    override_approved_by: str | None = None


class BusinessCase(BaseModel):
    business_case_id: str
    need: str
    expected_outcomes: str
    cost: Decimal
    status: str = Field(description="proposed, approved or rejected")
    decision_reason: str | None
    proposed_at: datetime
    decided_at: datetime | None


class Spend(BaseModel):
    spend_id: str
    provider_id: UUID
    amount: Decimal = Field(description="£ paid (negative: a results payment's credit "
                            "recovered)")
    period: str = Field(description="YYYY-MM, the month it is for")
    reference: str | None
    recorded_at: datetime
    due_id: str | None = Field(default=None, description="the results payment due it pays "
                               "(results_due); none for payments recorded by hand")


class DueShare(BaseModel):
    provider_id: UUID
    amount: Decimal = Field(description="£: the party's share, by allocation, to the penny")


class CalculationLine(BaseModel):
    description: str
    basis: str
    amount: Decimal = Field(description="£")


class ResultsDueItem(BaseModel):
    """A results payment the outcomes service calculated, due under the agreement: paid (or,
    for a credit, recovered) by the council as spend, each party its share."""

    due_id: str
    calculation_id: str
    terms_id: UUID
    period: str = Field(description="the results period: a month (2026-04) or a quarter")
    amount: Decimal = Field(description="£ due: the calculated total, or a recalculation's "
                            "difference (negative: a credit to recover)")
    shares: list[DueShare]
    calculated_on: date
    calculated_total: Decimal = Field(description="£: the period's total by this calculation")
    previous_total: Decimal | None = Field(description="£: the period's total before a "
                                           "recalculation")
    reason: str
    lines: list[CalculationLine] = Field(description="the calculation, line by line")
    over_budget_by: Decimal = Field(description="£ by which paying everything due would have "
                                    "taken spend past the budget when it became due")
    status: str = Field(description="due, needs a variation (the budget cannot take it now), "
                        "to recover (a credit), paid or recovered")
    short_by: Decimal = Field(description="£ the budget is short to pay it now (0: it can be)")
    recorded_at: datetime
    paid_at: datetime | None
    paid_by: str | None
    paid_period: str | None = Field(description="the month its spend is for")
    how: str = Field(description="the figure in words: what, for which period, how it was "
                     "worked out, and where it stands")


class AgreementDetail(AgreementSummary):
    signed_on: date | None = Field(description="none for agreements in force before "
                                   "signatures were recorded")
    signatories: list[str]
    outcomes: list[AgreementOutcome]
    reward_terms: RewardTerms | None
    risk_share: RiskShare | None
    break_clauses: list[str]
    exit_plan: str
    ended_reason: str | None
    exit_plan_executed: bool | None
    exit_notes: str | None
    variations: list[Variation]
    extensions: list[Extension]
    business_cases: list[BusinessCase]
    spend: list[Spend]
    results_due: list[ResultsDueItem] = Field(default_factory=list)
    drafted_at: datetime
    workings: dict[str, str] = Field(default_factory=dict, description="each figure "
                                     "(budget, spent, due) in its unit and how it was worked "
                                     "out")


class NeedSummary(BaseModel):
    need_id: UUID
    title: str
    service_area: str
    stage: SourcingStage
    status: str = Field(description="open or closed")
    closed_reason: str | None
    lead_organisation: str
    starts_on: date
    ends_on: date
    outcomes: list[OutcomeSought]
    budget_envelope: Decimal = Field(description="the lead organisation's own budget")
    pooled_budget: Decimal = Field(description="the envelope plus every partner's contribution")
    awarded: Decimal = Field(description="allocated by commissioning decisions")
    committed: Decimal = Field(description="current budgets of the need's active agreements")
    spent: Decimal = Field(description="£: every payment under the need's agreements, by hand "
                           "or of results payments")
    due: Decimal = Field(default=Decimal(0), description="£: results payments due under its "
                         "agreements and not paid yet")
    active_agreements: int
    updated_at: datetime


class Engagement(BaseModel):
    summary: str
    engaged_on: date
    provider_ids: list[UUID]


class NeedDetail(NeedSummary):
    population: Population
    outputs: list[str]
    options: list[Option]
    recommended: str | None
    options_rationale: str | None
    engagements: list[Engagement]
    contributions: list[Contribution]
    decisions: list[Decision]
    agreements: list[AgreementSummary]
    defined_at: datetime
    defined_by: str | None
    workings: dict[str, str] = Field(default_factory=dict, description="each figure in its "
                                     "unit and how it was worked out")


class PartnerSplit(BaseModel):
    partner: str
    is_lead: bool
    contribution: Decimal
    share_pct: Decimal = Field(description="share of the pooled budget, in per cent")
    committed: Decimal
    spent: Decimal
    due: Decimal = Decimal(0)


class SpendByPartner(BaseModel):
    """A collaborative commission's committed spend and spend to date, split between the
    organisations pro rata to what each put into the pool (pennies of rounding go to the lead)."""

    need_id: UUID
    pooled_budget: Decimal
    committed: Decimal
    spent: Decimal
    due: Decimal = Decimal(0)
    partners: list[PartnerSplit]
    workings: dict[str, str] = Field(default_factory=dict, description="each figure in its "
                                     "unit and how it was worked out")


class LessonView(BaseModel):
    lesson_id: UUID
    need_id: UUID | None
    agreement_id: UUID | None
    stage: SourcingStage
    went: str
    what: str
    why: str
    tags: list[str]
    recorded_at: datetime
    recorded_by: str | None


# ---------------------------------------------------------------------- queries


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({','.join('?' * len(values))})"


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def _parties(tx: Tx, agreement_ids: list[str]) -> dict[str, list[Party]]:
    found: dict[str, list[Party]] = {a: [] for a in agreement_ids}
    for chunk in _chunks(agreement_ids):
        spent = {
            (str(a), str(p)): int(total) for a, p, total in tx.execute(
                "SELECT agreement_id, provider_id, SUM(amount_pence) FROM cm_spend"
                f" WHERE {_in('agreement_id', chunk)} GROUP BY agreement_id, provider_id",
                chunk)
        }
        for agreement_id, provider_id, allocation, original in tx.execute(
            "SELECT agreement_id, provider_id, allocation_pence, original_allocation_pence"
            f" FROM cm_parties WHERE {_in('agreement_id', chunk)}"
            " ORDER BY agreement_id, ordinal", chunk,
        ):
            found[str(agreement_id)].append(Party(
                provider_id=provider_id, allocation=pounds(allocation),
                original_allocation=pounds(original),
                spent=pounds(spent.get((str(agreement_id), str(provider_id)), 0)),
            ))
    return found


_AGREEMENT_COLUMNS = (
    "agreement_id, need_id, decision_id, award_id, title, arrangement_type, status, starts_on,"
    " ends_on, original_ends_on, activated_on, ended_on, ended_how, budget_pence,"
    " original_budget_pence, updated_at"
)
_AGREEMENT_DETAIL_COLUMNS = (
    ", outcomes, reward_terms, risk_share, break_clauses, exit_plan, ended_reason,"
    " exit_plan_executed, exit_notes, drafted_at, signed_on, signatories"
)


def _dues(tx: Tx, agreement_ids: list[str]) -> dict[str, int]:
    """Per agreement, in pence: results payments due and not paid yet (net of credits)."""
    found: dict[str, int] = {}
    for chunk in _chunks(agreement_ids):
        found.update({str(a): int(total) for a, total in tx.execute(
            "SELECT agreement_id, SUM(amount_pence) FROM cm_results_due"
            f" WHERE paid_at IS NULL AND {_in('agreement_id', chunk)} GROUP BY agreement_id",
            chunk)})
    return found


def _summary_fields(row: Row, parties: list[Party], due: int = 0) -> dict[str, Any]:
    (agreement_id, need_id, decision_id, award_id, title, kind, status, starts_on, ends_on,
     original_ends_on, activated_on, ended_on, ended_how, budget, original_budget,
     updated_at) = row[:16]
    return {
        "agreement_id": agreement_id, "need_id": need_id, "decision_id": decision_id,
        "award_id": award_id, "title": title, "arrangement_type": kind, "status": status,
        "starts_on": starts_on, "ends_on": ends_on, "original_ends_on": original_ends_on,
        "activated_on": activated_on, "ended_on": ended_on, "ended_how": ended_how,
        "budget": pounds(budget), "original_budget": pounds(original_budget),
        "spent": sum((p.spent for p in parties), pounds(0)), "due": pounds(due),
        "parties": parties, "updated_at": updated_at,
    }


def _agreement_summaries(tx: Tx, where: str, params: list[Any], limit: int = 10_000,
                         offset: int = 0) -> list[AgreementSummary]:
    rows = tx.execute(
        f"SELECT {_AGREEMENT_COLUMNS} FROM cm_agreements{where}"
        " ORDER BY drafted_at, agreement_id LIMIT ? OFFSET ?", (*params, limit, offset))
    ids = [str(r[0]) for r in rows]
    parties, dues = _parties(tx, ids), _dues(tx, ids)
    return [AgreementSummary(**_summary_fields(r, parties[str(r[0])], dues.get(str(r[0]), 0)))
            for r in rows]


def list_agreements(
    db: Database,
    limit: int = 1000,
    offset: int = 0,
    *,
    status: str | None = None,
    provider_id: UUID | None = None,
    need_id: UUID | None = None,
    arrangement_type: ArrangementType | None = None,
) -> list[AgreementSummary]:
    """Agreements in the order they were drafted; filters combine (all must hold)."""
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if provider_id is not None:
        where.append("agreement_id IN (SELECT agreement_id FROM cm_parties WHERE provider_id = ?)")
        params.append(str(provider_id))
    if need_id is not None:
        where.append("need_id = ?")
        params.append(str(need_id))
    if arrangement_type is not None:
        where.append("arrangement_type = ?")
        params.append(arrangement_type.value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with db.reading() as tx:
        return _agreement_summaries(tx, clause, params, limit, offset)


def get_agreement(db: Database, agreement_id: UUID) -> AgreementDetail | None:
    key = str(agreement_id)
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_AGREEMENT_COLUMNS}{_AGREEMENT_DETAIL_COLUMNS} FROM cm_agreements"
            " WHERE agreement_id = ?", (key,))
        if not rows:
            return None
        row = rows[0]
        parties = _parties(tx, [key])[key]
        variations = [
            Variation(variation_id=v, kind=kind, budget_change=pounds(change),
                      new_budget=pounds(new), scope=scope, reason=reason,
                      business_case_id=case, varied_at=at)
            for v, kind, change, new, scope, reason, case, at in tx.execute(
                "SELECT variation_id, kind, budget_change_pence, new_budget_pence, scope,"
                " reason, business_case_id, varied_at FROM cm_variations WHERE agreement_id = ?"
                " ORDER BY varied_at, variation_id", (key,))
        ]
        extensions = [
            Extension(extension_id=e, previous_end=prev, new_end=new, justification=why,
                      performance_evidence=evidence, extended_at=at, performance_data=held,
                      override_reason=override, override_approved_by=approver)
            for e, prev, new, why, evidence, at, held, override, approver in tx.execute(
                "SELECT extension_id, previous_end, new_end, justification,"
                " performance_evidence, extended_at, performance_data, override_reason,"
                " override_approved_by FROM cm_extensions WHERE agreement_id = ?"
                " ORDER BY extended_at, new_end", (key,))
        ]
        cases = [
            BusinessCase(business_case_id=c, need=need, expected_outcomes=expected,
                         cost=pounds(cost), status=status, decision_reason=reason,
                         proposed_at=proposed, decided_at=decided)
            for c, need, expected, cost, status, reason, proposed, decided in tx.execute(
                "SELECT business_case_id, need, expected_outcomes, cost_pence, status,"
                " decision_reason, proposed_at, decided_at FROM cm_business_cases"
                " WHERE agreement_id = ? ORDER BY proposed_at, business_case_id", (key,))
        ]
        spend = [
            Spend(spend_id=s, provider_id=p, amount=pounds(amount), period=period,
                  reference=ref, recorded_at=at, due_id=due_id)
            for s, p, amount, period, ref, at, due_id in tx.execute(
                "SELECT spend_id, provider_id, amount_pence, period, reference, recorded_at,"
                " due_id FROM cm_spend WHERE agreement_id = ?"
                " ORDER BY period, recorded_at, spend_id", (key,))
        ]
        due_rows = tx.execute(
            "SELECT due_id, calculation_id, terms_id, period, amount_pence, shares,"
            " calculated_on, calculated_total_pence, previous_total_pence, reason,"
            " over_budget_pence, lines, recorded_at, paid_at, paid_by, paid_period"
            " FROM cm_results_due WHERE agreement_id = ? ORDER BY recorded_at, due_id", (key,))
    (outcomes, reward_terms, risk_share, break_clauses, exit_plan, ended_reason, executed,
     exit_notes, drafted_at, signed_on, signatories) = row[16:]
    fields = _summary_fields(row, parties)
    spent, budget = fields["spent"], fields["budget"]
    items = [_due_item(r, spent, budget) for r in due_rows]
    fields["due"] = sum((i.amount for i in items if i.paid_at is None), pounds(0))
    return AgreementDetail(
        **fields, signed_on=signed_on,
        signatories=json.loads(signatories) if signatories else [],
        outcomes=json.loads(outcomes),
        reward_terms=json.loads(reward_terms) if reward_terms else None,
        risk_share=json.loads(risk_share) if risk_share else None,
        break_clauses=json.loads(break_clauses), exit_plan=exit_plan, ended_reason=ended_reason,
        exit_plan_executed=None if executed is None else bool(executed), exit_notes=exit_notes,
        variations=variations, extensions=extensions, business_cases=cases, spend=spend,
        results_due=items, drafted_at=drafted_at,
        workings=_agreement_workings(fields, variations, spend, items),
    )


def money(amount: Decimal) -> str:
    """Pounds as the figures are said: £1,125.00, or -£199.99."""
    return f"-£{-amount:,.2f}" if amount < 0 else f"£{amount:,.2f}"


def counted(n: int, one: str, many: str | None = None) -> str:
    """`n` things, said: 1 variation, 2 variations."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def _due_item(row: Row, spent: Decimal, budget: Decimal) -> ResultsDueItem:
    (due_id, calculation_id, terms_id, period, amount, shares, calculated_on, total, previous,
     reason, over, lines, recorded_at, paid_at, paid_by, paid_period) = row
    amount, total = pounds(amount), pounds(total)
    previous_total = None if previous is None else pounds(previous)
    short = max(spent + amount - budget, pounds(0)) if paid_at is None and amount > 0 \
        else pounds(0)
    if paid_at is not None:
        status = "recovered" if amount < 0 else "paid"
    else:
        status = "to recover" if amount < 0 else "needs a variation" if short else "due"
    item = ResultsDueItem(
        due_id=due_id, calculation_id=calculation_id, terms_id=terms_id, period=period,
        amount=amount, shares=json.loads(shares), calculated_on=calculated_on,
        calculated_total=total, previous_total=previous_total, reason=reason,
        lines=json.loads(lines), over_budget_by=pounds(over), status=status, short_by=short,
        recorded_at=recorded_at, paid_at=paid_at, paid_by=paid_by, paid_period=paid_period,
        how="")
    return item.model_copy(update={"how": due_in_words(item, budget)})


def due_in_words(item: ResultsDueItem, budget: Decimal) -> str:
    """A due item as a finance officer signs it off: the figure, for which period, how it was
    worked out, and where it stands."""
    on = item.calculated_on.isoformat()
    if item.previous_total is None:
        said = (f"{money(item.amount)} due for {item.period}: results payment calculated {on} "
                f"(calculation {item.calculation_id}, {counted(len(item.lines), 'line')})")
    else:
        what = (f"{money(-item.amount)} to recover" if item.amount < 0
                else f"{money(item.amount)} further due")
        said = (f"{what} for {item.period}: recalculated {on} from "
                f"{money(item.previous_total)} to {money(item.calculated_total)} "
                f"({item.reason}; calculation {item.calculation_id})")
    said += "; split between the parties by their allocations, to the penny"
    if item.paid_at is not None:
        done = "recovered" if item.amount < 0 else "paid"
        said += (f"; {done} {item.paid_at.date().isoformat()} by {item.paid_by} as spend for "
                 f"{item.paid_period}")
    elif item.short_by:
        said += (f"; needs a variation: paying it would take spend {money(item.short_by)} "
                 f"over the {money(budget)} budget")
    return said


def _agreement_workings(fields: dict[str, Any], variations: list[Variation],
                        spend: list[Spend], items: list[ResultsDueItem]) -> dict[str, str]:
    by_hand = [s for s in spend if s.due_id is None]
    results = [s for s in spend if s.due_id is not None]
    open_items = [i for i in items if i.paid_at is None]
    change = sum((v.budget_change for v in variations), pounds(0))
    return {
        "budget": f"£, pounds and pence: the award of {money(fields['original_budget'])}"
                  + (f" and {counted(len(variations), 'variation')} ({money(change)})"
                     if variations else "")
                  + ", held by the parties as their allocations",
        "spent": f"£: {counted(len(spend), 'payment')} recorded: {len(by_hand)} by hand "
                 f"({money(sum((s.amount for s in by_hand), pounds(0)))}) and "
                 f"{counted(len(results), 'party share')} of results payments "
                 f"({money(sum((s.amount for s in results), pounds(0)))}, net of credits "
                 "recovered)",
        "due": f"£: {counted(len(open_items), 'results payment')} calculated by the outcomes "
               "service and not paid yet, net of credits to recover; each paid as spend when "
               "the council records it",
    }


_NEED_COLUMNS = (
    "need_id, title, service_area, stage, status, closed_reason, lead_organisation, starts_on,"
    " ends_on, outcomes, budget_envelope_pence, updated_at"
)
_NEED_DETAIL_COLUMNS = (
    ", population, outputs, options, recommended, options_rationale, engagements, defined_at,"
    " defined_by"
)


def _need_figures(tx: Tx, need_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per need, in pence: contributions pledged, awarded, committed, spent; and the number of
    active agreements."""
    figures: dict[str, dict[str, int]] = {
        n: {"pledged": 0, "awarded": 0, "committed": 0, "spent": 0, "active": 0,
            "results_spent": 0, "due": 0, "partners": 0}
        for n in need_ids
    }
    for chunk in _chunks(need_ids):
        queries = {
            "pledged": "SELECT need_id, SUM(amount_pence) FROM cm_contributions"
                       f" WHERE {_in('need_id', chunk)} GROUP BY need_id",
            "awarded": "SELECT need_id, SUM(allocation_pence) FROM cm_awards"
                       f" WHERE {_in('need_id', chunk)} GROUP BY need_id",
            "committed": "SELECT need_id, SUM(budget_pence) FROM cm_agreements"
                         f" WHERE status = 'active' AND {_in('need_id', chunk)} GROUP BY need_id",
            "active": "SELECT need_id, COUNT(*) FROM cm_agreements"
                      f" WHERE status = 'active' AND {_in('need_id', chunk)} GROUP BY need_id",
            "spent": "SELECT a.need_id, SUM(s.amount_pence) FROM cm_spend s"
                     " JOIN cm_agreements a ON a.agreement_id = s.agreement_id"
                     f" WHERE {_in('a.need_id', chunk)} GROUP BY a.need_id",
            "results_spent": "SELECT a.need_id, SUM(s.amount_pence) FROM cm_spend s"
                             " JOIN cm_agreements a ON a.agreement_id = s.agreement_id"
                             f" WHERE s.due_id IS NOT NULL AND {_in('a.need_id', chunk)}"
                             " GROUP BY a.need_id",
            "due": "SELECT a.need_id, SUM(d.amount_pence) FROM cm_results_due d"
                   " JOIN cm_agreements a ON a.agreement_id = d.agreement_id"
                   f" WHERE d.paid_at IS NULL AND {_in('a.need_id', chunk)} GROUP BY a.need_id",
            "partners": "SELECT need_id, COUNT(*) FROM cm_contributions"
                        f" WHERE {_in('need_id', chunk)} GROUP BY need_id",
        }
        for figure, sql in queries.items():
            for need_id, value in tx.execute(sql, chunk):
                figures[str(need_id)][figure] = int(value)
    return figures


def _need_fields(row: Row, figures: dict[str, int]) -> dict[str, Any]:
    (need_id, title, area, stage, status, closed_reason, lead, starts_on, ends_on, outcomes,
     envelope, updated_at) = row[:12]
    return {
        "need_id": need_id, "title": title, "service_area": area, "stage": stage,
        "status": status, "closed_reason": closed_reason, "lead_organisation": lead,
        "starts_on": starts_on, "ends_on": ends_on, "outcomes": json.loads(outcomes),
        "budget_envelope": pounds(envelope),
        "pooled_budget": pounds(int(envelope) + figures["pledged"]),
        "awarded": pounds(figures["awarded"]), "committed": pounds(figures["committed"]),
        "spent": pounds(figures["spent"]), "due": pounds(figures["due"]),
        "active_agreements": figures["active"], "updated_at": updated_at,
    }


def _need_workings(fields: dict[str, Any], figures: dict[str, int]) -> dict[str, str]:
    results = pounds(figures["results_spent"])
    partners = figures["partners"]
    return {
        "pooled_budget": f"£, pounds and pence: the lead's envelope of "
                         f"{money(fields['budget_envelope'])}"
                         + (f" and {partners} partner contributions of "
                            f"{money(pounds(figures['pledged']))}" if partners else ""),
        "awarded": "£: allocated by the need's commissioning decisions",
        "committed": f"£: the current budgets of its {figures['active']} active agreements",
        "spent": f"£: payments under its agreements: {money(fields['spent'] - results)} "
                 f"recorded by hand and {money(results)} of results payments",
        "due": "£: results payments due under its agreements and not paid yet, net of "
               "credits to recover",
    }


def list_needs(
    db: Database,
    limit: int = 1000,
    offset: int = 0,
    *,
    status: str | None = None,
    service_area: str | None = None,
    stage: SourcingStage | None = None,
) -> list[NeedSummary]:
    """Needs in the order they were defined; filters combine."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("status", status), ("service_area", service_area),
                          ("stage", stage.value if stage else None)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_NEED_COLUMNS} FROM cm_needs{clause} ORDER BY defined_at, need_id"
            " LIMIT ? OFFSET ?", (*params, limit, offset))
        figures = _need_figures(tx, [str(r[0]) for r in rows])
    return [NeedSummary(**_need_fields(r, figures[str(r[0])])) for r in rows]


def _contributions(tx: Tx, need_id: str, lead: str, envelope: int,
                   defined_at: str) -> list[Contribution]:
    found = [Contribution(contribution_id="envelope", partner=lead, amount=pounds(envelope),
                          is_lead=True, note="the lead organisation's budget envelope",
                          pledged_at=datetime.fromisoformat(defined_at))]
    for contribution_id, partner, amount, note, at in tx.execute(
        "SELECT contribution_id, partner, amount_pence, note, pledged_at FROM cm_contributions"
        " WHERE need_id = ? ORDER BY pledged_at, contribution_id", (need_id,),
    ):
        found.append(Contribution(contribution_id=contribution_id, partner=partner,
                                  amount=pounds(amount), is_lead=partner == lead, note=note,
                                  pledged_at=at))
    return found


def get_need(db: Database, need_id: UUID) -> NeedDetail | None:
    key = str(need_id)
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_NEED_COLUMNS}{_NEED_DETAIL_COLUMNS} FROM cm_needs WHERE need_id = ?",
            (key,))
        if not rows:
            return None
        row = rows[0]
        figures = _need_figures(tx, [key])[key]
        (population, outputs, options, recommended, rationale, engagements, defined_at,
         defined_by) = row[12:]
        contributions = _contributions(tx, key, str(row[6]), int(row[10]), str(defined_at))
        awards: dict[str, list[Award]] = {}
        for decision_id, award_id, title, kind, providers, allocation in tx.execute(
            "SELECT decision_id, award_id, title, arrangement_type, provider_ids,"
            " allocation_pence FROM cm_awards WHERE need_id = ? ORDER BY decision_id, ordinal",
            (key,),
        ):
            awards.setdefault(str(decision_id), []).append(Award(
                award_id=award_id, title=title, arrangement_type=kind,
                provider_ids=json.loads(providers), allocation=pounds(allocation)))
        decisions = [
            Decision(decision_id=d, rationale=why, decision_maker=who, decided_at=at,
                     awards=awards.get(str(d), []))
            for d, why, who, at in tx.execute(
                "SELECT decision_id, rationale, decision_maker, decided_at FROM cm_decisions"
                " WHERE need_id = ? ORDER BY decided_at, decision_id", (key,))
        ]
        agreements = _agreement_summaries(tx, " WHERE need_id = ?", [key])
    fields = _need_fields(row, figures)
    return NeedDetail(
        **fields, workings=_need_workings(fields, figures), population=json.loads(population),
        outputs=json.loads(outputs), options=json.loads(options), recommended=recommended,
        options_rationale=rationale, engagements=json.loads(engagements),
        contributions=contributions, decisions=decisions, agreements=agreements,
        defined_at=defined_at, defined_by=defined_by,
    )


def split_pro_rata(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """`total` shared in proportion to `weights` to the penny, the way agreement budgets are
    shared between parties: each part rounded down, then the pennies left over one each to the
    largest remainders (the first, the lead, first on a tie), so the parts add up exactly. A
    negative total (credits to recover) is shared as its size is."""
    if total < 0:
        return [-part for part in split_pro_rata(-total, weights)]
    whole = sum(weights, Decimal(0))
    if not weights or whole <= 0:
        return [Decimal("0.00") for _ in weights]
    exact = [total * w / whole for w in weights]
    parts = [e.quantize(PENNY, rounding=ROUND_DOWN) for e in exact]
    left = int((total - sum(parts, Decimal(0))) / PENNY)
    for i in sorted(range(len(parts)), key=lambda i: parts[i] - exact[i])[:left]:
        parts[i] += PENNY
    return parts


def spend_by_partner(db: Database, need_id: UUID) -> SpendByPartner | None:
    """The need's committed spend and spend to date, split between the lead organisation and
    its partners pro rata to their contributions to the pooled budget."""
    key = str(need_id)
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT lead_organisation, budget_envelope_pence, defined_at FROM cm_needs"
            " WHERE need_id = ?", (key,))
        if not rows:
            return None
        lead, envelope, defined_at = rows[0]
        contributions = _contributions(tx, key, str(lead), int(envelope), str(defined_at))
        figures = _need_figures(tx, [key])[key]
    by_partner: dict[str, Decimal] = {}
    for c in contributions:  # the lead first, then partners as they joined
        by_partner[c.partner] = by_partner.get(c.partner, Decimal(0)) + c.amount
    partners = list(by_partner)
    amounts = [by_partner[p] for p in partners]
    pooled = sum(amounts, Decimal(0))
    committed, spent = pounds(figures["committed"]), pounds(figures["spent"])
    due = pounds(figures["due"])
    shares = split_pro_rata(Decimal(100), amounts)
    return SpendByPartner(
        need_id=need_id, pooled_budget=pooled, committed=committed, spent=spent, due=due,
        partners=[
            PartnerSplit(partner=p, is_lead=p == lead, contribution=amount, share_pct=share,
                         committed=part_committed, spent=part_spent, due=part_due)
            for p, amount, share, part_committed, part_spent, part_due in zip(
                partners, amounts, shares, split_pro_rata(committed, amounts),
                split_pro_rata(spent, amounts), split_pro_rata(due, amounts), strict=True)
        ],
        workings={
            "share_pct": "%, 2 places: the organisation's contribution over the pooled "
                         f"budget of {money(pooled)} (the lead's envelope is its contribution)",
            "committed": f"£: the need's committed {money(committed)} (the current budgets "
                         "of its active agreements) split pro rata to the contributions",
            "spent": f"£: the need's spend of {money(spent)} (payments by hand and of "
                     "results payments) split pro rata to the contributions",
            "due": f"£: the need's results payments due of {money(due)} split pro rata to "
                   "the contributions",
            "rounding": "each part rounded down to the penny, the pennies left over one each "
                        "to the largest remainders, the lead first on a tie: the parts add up "
                        "exactly",
        },
    )


def _like(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_lessons(
    db: Database,
    q: str | None = None,
    *,
    went: str | None = None,
    tag: str | None = None,
    need_id: UUID | None = None,
    agreement_id: UUID | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[LessonView]:
    """Lessons, newest first. `q` is free text: every word must appear (in any case) in what
    happened, why, or the tags; `tag` is one exact tag."""
    where: list[str] = []
    params: list[Any] = []
    for word in (q or "").split():
        where.append("search_text LIKE ? ESCAPE '\\'")
        params.append(_like(word))
    if went is not None:
        where.append("went = ?")
        params.append(went)
    if tag is not None:
        where.append("lesson_id IN (SELECT lesson_id FROM cm_lesson_tags WHERE tag = ?)")
        params.append(tag.strip().casefold())
    if need_id is not None:
        where.append("need_id = ?")
        params.append(str(need_id))
    if agreement_id is not None:
        where.append("agreement_id = ?")
        params.append(str(agreement_id))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT lesson_id, need_id, agreement_id, stage, went, what, why, tags,"
            f" recorded_at, recorded_by FROM cm_lessons{clause}"
            " ORDER BY recorded_at DESC, lesson_id LIMIT ? OFFSET ?", (*params, limit, offset))
    return [
        LessonView(lesson_id=lesson_id, need_id=need, agreement_id=agreement, stage=stage,
                   went=went_, what=what, why=why, tags=json.loads(tags), recorded_at=at,
                   recorded_by=by)
        for lesson_id, need, agreement, stage, went_, what, why, tags, at, by in rows
    ]
