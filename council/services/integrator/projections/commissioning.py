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
from decimal import ROUND_DOWN, Decimal
from typing import Any
from uuid import UUID

from council.kernel.contracts.integrator import SOURCE as INTEGRATOR
from council.kernel.contracts.integrator import (
    AgreementActivated,
    AgreementDrafted,
    AgreementEnded,
    AgreementExtended,
    AgreementSigned,
    AgreementVaried,
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
    OptionsAppraised,
    ResultsPaymentDue,
    SourcingStage,
    SpendRecorded,
)
from council.kernel.envelope import EventEnvelope
from council.kernel.money import pence, pounds
from council.platform.projection import TableProjection
from council.platform.sql import Tx

# Bump when the tables below change shape: the read model is then dropped and replayed.
# 2: cm_agreements.activated_at and ended_at, the business times of those events (the market
# view's quarterly history of concentration follows them).
# 3: agreements' signatures, extensions' performance data and overrides.
# 4: results payments due (cm_results_due) and the due item a payment pays (cm_spend.due_id).
SCHEMA_VERSION = 4

PENNY = Decimal("0.01")

DRAFTED, ACTIVE, ENDED = "drafted", "active", "ended"
OPEN, CLOSED = "open", "closed"






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
