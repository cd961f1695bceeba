"""The integrator's commissioning as Open Contracting Data Standard (OCDS 1.1) releases and
records. Pure mapping: events in, JSON-able dicts out, no I/O.

One commissioning need is one contracting process, `ocid = {prefix}-{need_id}`. Every integrator
event that changes what the public record says gives one release (release id = event id, release
date = when it happened in business time, `initiationType` "tender"). Releases of a process are
merged in date order, so no two of them share a date: dates are whole seconds (so their text
sorts as their time does), and a release that would be dated no later than the one before it in
its process is dated a second after that one.

- NeedDefined -> `planning`: the buyer (the lead organisation), the planning budget (the
  envelope), rationale, outcomes sought as planning milestones, the planned tender's title and
  contract period.
- NeedContributionPledged / BudgetEnvelopeRaised -> `planningUpdate` (+ `tenderUpdate`): the
  partner as a funder, or the council's raised envelope, and the pooled budget (and the
  tender's value, once it has one and until it is awarded).
- OptionsAppraised -> `tender` (+ `planningUpdate`): the procurement method chosen from the
  recommended option, its rationale, the tender's value (the pooled budget); each option
  appraised as a planning document.
- MarketEngaged -> `tender` or `tenderUpdate`: tender active, the providers engaged as
  tenderers, the engagement as a tender milestone.
- CommissioningDecided -> `award` + `tenderUpdate`: one active award per award decided, with its
  suppliers, value (the allocation) and date (the start of the day decided: `decided_on`, or
  the day of the decision's event on logs from before it was recorded); the tender is complete.
- AgreementDrafted -> `contract`: one pending contract per agreement, with its award, value (the
  budget), period (its term), outcomes as items, and exit plan, break clauses, risk share and
  reward terms as documents.
- AgreementSigned -> `contractUpdate`: dateSigned (the start of the day signed) and who signed,
  as a document; the contract stays pending until it comes into force. Agreements brought into
  force before signatures were recorded have no dateSigned.
- AgreementActivated -> `contractUpdate`: contract active.
- AgreementVaried / AgreementExtended -> `contractAmendment`: the new value / end date, with an
  amendment (id, rationale, date, the release it amends). Only an agreement in force is varied
  or extended, and only a signed one comes into force, so amendments follow the signature.
- BusinessCaseApproved -> `contractUpdate`: the business case as a contract document (its cost
  varies the budget in the AgreementVaried that follows).
- SpendRecorded -> `implementation`: a transaction, buyer paying provider, dated when the payment
  was recorded (a transaction is never dated after the release reporting it; the month it pays
  for may not have ended).
- AgreementEnded -> `contractTermination`: contract terminated, with how and why as a document.
- NeedClosed -> `tenderUpdate` or `tenderCancellation`: the tender complete (something was
  awarded), unsuccessful (the market was engaged but nothing awarded) or cancelled (closed
  before the market was engaged), with the reason.

NeedStageReached, BusinessCaseProposed, BusinessCaseRejected and LessonRecorded have no place in
OCDS and give no release (a proposal's details appear once it is approved), nor CommitmentVaried:
what a need commits is its contracts' values, which their amendments carry.

Parties accumulate roles across a process (a provider engaged, then awarded, then paid is
tenderer, supplier and payee), and every release that names a party carries all its roles so
far, because OCDS merging replaces a party's `roles` list wholesale.
"""

from __future__ import annotations

import copy
import heapq
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from council.kernel.contracts.integrator import (
    SOURCE,
    AgreementActivated,
    AgreementDrafted,
    AgreementEnded,
    AgreementExtended,
    AgreementOutcome,
    AgreementSigned,
    AgreementVaried,
    ArrangementType,
    BudgetEnvelopeRaised,
    BusinessCaseApproved,
    BusinessCaseProposed,
    CommissioningDecided,
    EndingKind,
    MarketEngaged,
    NeedClosed,
    NeedContributionPledged,
    NeedDefined,
    OptionsAppraised,
    OutcomeSought,
    RewardTerms,
    RiskShare,
    SourcingOption,
    SpendRecorded,
    VariationKind,
)
from council.kernel.envelope import EventEnvelope

Json = dict[str, Any]

OCDS_VERSION = "1.1"
DEFAULT_OCID_PREFIX = "ocds-counc1"
CURRENCY = "GBP"
LANGUAGE = "en"

# The recommended sourcing option decides the OCDS procurement method (closed codelist: open,
# selective, limited, direct) and its local name.
PROCUREMENT_METHODS: dict[SourcingOption, tuple[str, str]] = {
    SourcingOption.IN_HOUSE: ("direct", "In-house delivery by the council"),
    SourcingOption.SHARED_SERVICE: ("direct", "Shared service bought from another public body"),
    SourcingOption.INFORMAL_SLA: ("direct", "Informal service level agreement"),
    SourcingOption.VCSE_GRANT: (
        "limited", "Grant to voluntary, community and social enterprise organisations"),
    SourcingOption.FRAMEWORK_CALL_OFF: ("selective", "Call-off from a framework agreement"),
    SourcingOption.FORMAL_CONTRACT: ("open", "Formal contract, openly tendered"),
    SourcingOption.MIXED: ("limited", "A mix of providers and arrangements"),
}

OPTION_NAMES: dict[SourcingOption, str] = {
    SourcingOption.IN_HOUSE: "in-house",
    SourcingOption.SHARED_SERVICE: "shared service",
    SourcingOption.VCSE_GRANT: "VCSE grant",
    SourcingOption.INFORMAL_SLA: "informal service level agreement",
    SourcingOption.FRAMEWORK_CALL_OFF: "framework call-off",
    SourcingOption.FORMAL_CONTRACT: "formal contract",
    SourcingOption.MIXED: "mixed arrangements",
}

ARRANGEMENT_NAMES: dict[ArrangementType, str] = {
    ArrangementType.INFORMAL_SLA: "Informal service level agreement",
    ArrangementType.GRANT: "Grant",
    ArrangementType.CALL_OFF: "Call-off",
    ArrangementType.SHARED_SERVICE: "Shared-service agreement",
    ArrangementType.FORMAL_CONTRACT: "Formal contract",
}

VARIATION_NAMES: dict[VariationKind, str] = {
    VariationKind.GROWTH: "Growth",
    VariationKind.SCOPE_CHANGE: "Scope change",
    VariationKind.BUDGET_CHANGE: "Budget change",
    VariationKind.BUSINESS_CASE: "Approved business case",
}

ENDING_NAMES: dict[EndingKind, str] = {
    EndingKind.COMPLETED: "completed",
    EndingKind.TERMINATED: "terminated early",
    EndingKind.EXITED: "exited under its exit plan",
}

# Fields a compiled release never takes from a release (the schema's `omitWhenMerged`), and
# arrays merged as a whole list even though their items are objects (`wholeListMerge`).
OMIT_WHEN_MERGED = frozenset({"id", "date", "tag"})
WHOLE_LIST_MERGE = frozenset({"additionalIdentifiers", "additionalClassifications"})


@dataclass(frozen=True)
class Publisher:
    """Who publishes the packages (OCDS 1.1 names the publisher on packages, not releases)."""

    name: str
    scheme: str | None = None
    uid: str | None = None
    uri: str | None = None

    def as_ocds(self) -> Json:
        found: Json = {"name": self.name}
        for key in ("scheme", "uid", "uri"):
            if (value := getattr(self, key)) is not None:
                found[key] = value
        return found


def ocid_for(need_id: UUID | str, prefix: str = DEFAULT_OCID_PREFIX) -> str:
    return f"{prefix}-{need_id}"


# --------------------------------------------------------------------------- formatting


def _value(amount: Decimal) -> Json:
    return {"amount": float(amount), "currency": CURRENCY}


def _gbp(amount: Decimal) -> str:
    return f"£{amount:,.2f}"


def _pct(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _second(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(microsecond=0)


def _instant(at: datetime) -> str:
    """An RFC 3339 UTC timestamp in whole seconds: one format, so that sorting the text (as
    OCDS tools merging releases do) sorts the time."""
    return _second(at).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _day_start(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _day_end(day: date) -> str:
    return f"{day.isoformat()}T23:59:59Z"


def _parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _sentence(text: str) -> str:
    """Free text as a sentence that can be followed by another."""
    text = text.strip()
    return text if not text or text[-1] in ".!?" else f"{text}."


def _listed(names: Sequence[str]) -> str:
    """Names as a sentence lists them: "A", "A and B", "A, B and C"."""
    return f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else "".join(names)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "organisation"


# --------------------------------------------------------------------------- state


@dataclass
class _Party:
    id: str
    name: str
    roles: list[str] = field(default_factory=list)
    identifiers: Sequence[tuple[str, str]] = ()

    def reference(self) -> Json:
        return {"id": self.id, "name": self.name}

    def as_ocds(self) -> Json:
        found: Json = {"id": self.id, "name": self.name}
        if self.identifiers:
            (scheme, ident), *more = self.identifiers
            found["identifier"] = {"scheme": scheme, "id": ident, "legalName": self.name}
            if more:
                found["additionalIdentifiers"] = [{"scheme": s, "id": i} for s, i in more]
        found["roles"] = list(self.roles)
        return found


@dataclass
class _Contract:
    id: str
    award_id: str
    last_release_id: str
    proposals: dict[str, BusinessCaseProposed] = field(default_factory=dict)

    def reference(self) -> Json:
        return {"id": self.id, "awardID": self.award_id}


@dataclass
class _Process:
    """What the mapping remembers of one contracting process (one need) between releases."""

    ocid: str
    need: NeedDefined
    buyer: _Party
    parties: dict[str, _Party]
    budget: Decimal  # pounds: the council's envelope, as raised, and every contribution
    contributions: list[NeedContributionPledged] = field(default_factory=list)
    raises: list[BudgetEnvelopeRaised] = field(default_factory=list)
    tender_released: bool = False  # a release tagged "tender" has been made
    tender_valued: bool = False
    engaged: bool = False
    engagements: int = 0
    tenderers: set[str] = field(default_factory=set)
    awarded: bool = False  # and so the tender complete
    contracts: dict[UUID, _Contract] = field(default_factory=dict)
    last_date: datetime | None = None  # of the process's latest release

    @property
    def tender_id(self) -> str:
        return self.ocid

    def outcome(self, outcome_id: str) -> OutcomeSought | None:
        return next((o for o in self.need.outcomes if o.outcome_id == outcome_id), None)


class _Release:
    """One release being written: collects the parties it names, with their roles."""

    def __init__(self, process: _Process, event: EventEnvelope) -> None:
        self.process = process
        self.event = event
        self.id = str(event.event_id)
        # Never the date of an earlier release of the process (see the module's docstring).
        at = _second(event.occurred_at)
        if process.last_date is not None and at <= process.last_date:
            at = process.last_date + timedelta(seconds=1)
        process.last_date = at
        self.day = event.occurred_at.astimezone(UTC).date()  # in business time
        self.date = _instant(at)
        self.named: dict[str, None] = {}

    def name(self, party: _Party, role: str) -> Json:
        if role not in party.roles:
            party.roles.append(role)
        self.named[party.id] = None
        return party.reference()

    def build(self, tags: list[str], body: Json) -> Json:
        release: Json = {
            "ocid": self.process.ocid, "id": self.id, "date": self.date, "tag": tags,
            "initiationType": "tender", "language": LANGUAGE,
        }
        if self.named:
            release["parties"] = [self.process.parties[p].as_ocds() for p in self.named]
        release.update(body)
        return release


# --------------------------------------------------------------------------- releases

Written = tuple[list[str], Json]  # a release's tags and body
NeedWriter = Callable[[_Process, _Release], Written]
ContractWriter = Callable[[_Process, _Contract, _Release], Written]


def _ordered(events: Iterable[EventEnvelope]) -> list[EventEnvelope]:
    """The integrator's events, each stream in its own order and the streams interleaved by
    when things happened (then when they were recorded); events seen twice (the log delivers at
    least once) count once. The same events in any order give the same sequence."""
    streams: dict[str, dict[int, EventEnvelope]] = {}
    seen: set[UUID] = set()
    for event in events:
        if event.source != SOURCE or event.event_id in seen:
            continue
        seen.add(event.event_id)
        streams.setdefault(event.stream_id, {})[event.stream_position] = event
    queues = {sid: [s[pos] for pos in sorted(s)] for sid, s in streams.items()}
    heap = [((q[0].occurred_at, q[0].recorded_at), sid, 0) for sid, q in queues.items()]
    heapq.heapify(heap)
    ordered: list[EventEnvelope] = []
    while heap:
        _, sid, index = heapq.heappop(heap)
        queue = queues[sid]
        ordered.append(queue[index])
        if index + 1 < len(queue):
            head = queue[index + 1]
            heapq.heappush(heap, ((head.occurred_at, head.recorded_at), sid, index + 1))
    return ordered


def provider_ids_in(events: Iterable[EventEnvelope]) -> list[UUID]:
    """Every provider the integrator's events name (to look their names up), in a stable order."""
    found: set[UUID] = set()
    for event in events:
        if event.source != SOURCE:
            continue
        match event.type:
            case "MarketEngaged":
                found.update(MarketEngaged.model_validate(event.data).provider_ids)
            case "CommissioningDecided":
                decided = CommissioningDecided.model_validate(event.data)
                found.update(p for award in decided.awards for p in award.provider_ids)
            case "AgreementDrafted":
                drafted = AgreementDrafted.model_validate(event.data)
                found.update(p.provider_id for p in drafted.parties)
            case "SpendRecorded":
                found.add(SpendRecorded.model_validate(event.data).provider_id)
    return sorted(found, key=str)


class _Mapper:
    def __init__(
        self,
        provider_names: Mapping[UUID, str],
        ocid_prefix: str,
        provider_identifiers: Mapping[UUID, Sequence[tuple[str, str]]],
    ) -> None:
        self.provider_names = provider_names
        self.ocid_prefix = ocid_prefix
        self.provider_identifiers = provider_identifiers
        self.processes: dict[UUID, _Process] = {}
        self.agreement_needs: dict[UUID, UUID] = {}

    # ------------------------------------------------------------------ parties

    def _provider(self, process: _Process, provider_id: UUID) -> _Party:
        party_id = f"provider-{provider_id}"
        if party_id not in process.parties:
            name = self.provider_names.get(provider_id) or f"Provider {provider_id}"
            process.parties[party_id] = _Party(
                party_id, name, identifiers=tuple(self.provider_identifiers.get(provider_id, ())))
        return process.parties[party_id]

    @staticmethod
    def _organisation(parties: dict[str, _Party], name: str) -> _Party:
        """A party known only by name (the lead organisation, a partner): the same name,
        whatever its case, is the same party."""
        base = f"org-{_slug(name)}"
        party_id, n = base, 1
        while party_id in parties and parties[party_id].name.casefold() != name.casefold():
            n += 1
            party_id = f"{base}-{n}"
        if party_id not in parties:
            parties[party_id] = _Party(party_id, name)
        return parties[party_id]

    # ------------------------------------------------------------------ dispatch

    def release(self, event: EventEnvelope) -> Json | None:
        data = event.data
        match event.type:
            case "NeedDefined":
                return self._defined(event, NeedDefined.model_validate(data))
            case "NeedContributionPledged":
                pledged = NeedContributionPledged.model_validate(data)
                return self._on_need(pledged.need_id, event, lambda p, r: self._pledged(
                    p, r, pledged))
            case "BudgetEnvelopeRaised":
                raised = BudgetEnvelopeRaised.model_validate(data)
                return self._on_need(raised.need_id, event, lambda p, r: self._raised(p, raised))
            case "OptionsAppraised":
                appraised = OptionsAppraised.model_validate(data)
                return self._on_need(appraised.need_id, event, lambda p, r: self._appraised(
                    p, r, appraised))
            case "MarketEngaged":
                engaged = MarketEngaged.model_validate(data)
                return self._on_need(engaged.need_id, event, lambda p, r: self._engaged(
                    p, r, engaged))
            case "CommissioningDecided":
                decided = CommissioningDecided.model_validate(data)
                return self._on_need(decided.need_id, event, lambda p, r: self._decided(
                    p, r, decided))
            case "NeedClosed":
                closed = NeedClosed.model_validate(data)
                return self._on_need(closed.need_id, event, lambda p, r: self._closed(
                    p, r, closed))
            case "AgreementDrafted":
                return self._drafted(event, AgreementDrafted.model_validate(data))
            case "AgreementSigned":
                signed = AgreementSigned.model_validate(data)
                return self._on_contract(signed.agreement_id, event, lambda p, c, r: (
                    self._signed(c, r, signed)))
            case "AgreementActivated":
                activated = AgreementActivated.model_validate(data)
                return self._on_contract(activated.agreement_id, event, lambda p, c, r: (
                    ["contractUpdate"], {**c.reference(), "status": "active"}))
            case "AgreementVaried":
                varied = AgreementVaried.model_validate(data)
                return self._on_contract(varied.agreement_id, event, lambda p, c, r: (
                    self._varied(c, r, varied)))
            case "AgreementExtended":
                extended = AgreementExtended.model_validate(data)
                return self._on_contract(extended.agreement_id, event, lambda p, c, r: (
                    self._extended(c, r, extended)))
            case "BusinessCaseProposed":
                proposed = BusinessCaseProposed.model_validate(data)
                self._remember_proposal(proposed)
                return None
            case "BusinessCaseApproved":
                approved = BusinessCaseApproved.model_validate(data)
                return self._on_contract(approved.agreement_id, event, lambda p, c, r: (
                    self._case_approved(c, r, approved)))
            case "SpendRecorded":
                spent = SpendRecorded.model_validate(data)
                return self._on_contract(spent.agreement_id, event, lambda p, c, r: (
                    self._spent(p, c, r, spent)))
            case "AgreementEnded":
                ended = AgreementEnded.model_validate(data)
                return self._on_contract(ended.agreement_id, event, lambda p, c, r: (
                    self._ended(c, r, ended)))
            case _:
                return None  # no place in OCDS (see the module's docstring), or not ours

    def _on_need(self, need_id: UUID, event: EventEnvelope, write: NeedWriter) -> Json | None:
        process = self.processes.get(need_id)
        if process is None:
            return None  # a need we never saw defined is no contracting process we can describe
        release = _Release(process, event)
        tags, body = write(process, release)
        return release.build(tags, body)

    def _on_contract(
        self, agreement_id: UUID, event: EventEnvelope, write: ContractWriter
    ) -> Json | None:
        need_id = self.agreement_needs.get(agreement_id)
        process = self.processes.get(need_id) if need_id is not None else None
        if process is None or agreement_id not in process.contracts:
            return None
        contract = process.contracts[agreement_id]
        release = _Release(process, event)
        tags, contract_body = write(process, contract, release)
        built = release.build(tags, {"contracts": [contract_body]})
        contract.last_release_id = release.id
        return built

    # ------------------------------------------------------------------ planning and tender

    def _defined(self, event: EventEnvelope, need: NeedDefined) -> Json:
        ocid = ocid_for(need.need_id, self.ocid_prefix)
        parties: dict[str, _Party] = {}
        buyer = self._organisation(parties, need.lead_organisation)
        process = _Process(ocid=ocid, need=need, buyer=buyer, parties=parties,
                           budget=need.budget_envelope)
        self.processes[need.need_id] = process
        release = _Release(process, event)
        buyer_ref = release.name(buyer, "buyer")
        population = need.population.description
        if need.population.size is not None:
            population += f" (about {need.population.size:,} people)"
        rationale = f"Commissioning on outcomes in {need.service_area} for {population}."
        if need.outputs:
            rationale += f" Outputs expected: {'; '.join(need.outputs)}."
        planning: Json = {
            "rationale": rationale,
            "budget": {
                "description": self._budget_description(process),
                "amount": _value(process.budget),
                "project": need.title,
                "projectID": str(need.need_id),
            },
            "milestones": [_outcome_milestone(o) for o in need.outcomes],
        }
        tender: Json = {
            "id": process.tender_id,
            "title": need.title,
            "description": f"Outcomes for {population}; service area: {need.service_area}.",
            "status": "planning",
            "mainProcurementCategory": "services",
            "contractPeriod": {"startDate": _day_start(need.starts_on),
                               "endDate": _day_end(need.ends_on)},
        }
        return release.build(["planning"], {"buyer": buyer_ref, "planning": planning,
                                            "tender": tender})

    @staticmethod
    def _budget_description(process: _Process) -> str:
        need = process.need
        envelope = need.budget_envelope + sum((r.amount for r in process.raises), Decimal(0))
        text = f"{need.lead_organisation}'s budget envelope of {_gbp(envelope)}"
        if process.raises:
            raised = "; then by ".join(f"{_gbp(r.amount)}: {r.reason.strip().rstrip('.')}"
                                       for r in process.raises)
            text += f" ({_gbp(need.budget_envelope)} raised by {raised})"
        if process.contributions:
            pooled = ", ".join(f"{c.partner} ({_gbp(c.amount)})" for c in process.contributions)
            text += f", pooled with contributions from {pooled}: {_gbp(process.budget)} in all"
        return text + "."

    def _budget_changed(self, process: _Process) -> Written:
        """The pooled budget after a contribution or a raise: the planning budget, and the
        tender's value while it is still being tendered (once awarded it stays as it was)."""
        body: Json = {"planning": {"budget": {
            "description": self._budget_description(process),
            "amount": _value(process.budget),
        }}}
        tags = ["planningUpdate"]
        if process.tender_valued and not process.awarded:
            body["tender"] = {"id": process.tender_id, "value": _value(process.budget)}
            tags.append("tenderUpdate")
        return tags, body

    def _pledged(
        self, process: _Process, release: _Release, pledged: NeedContributionPledged
    ) -> tuple[list[str], Json]:
        process.budget += pledged.amount
        process.contributions.append(pledged)
        release.name(self._organisation(process.parties, pledged.partner), "funder")
        return self._budget_changed(process)

    def _raised(self, process: _Process, raised: BudgetEnvelopeRaised) -> Written:
        process.budget += raised.amount
        process.raises.append(raised)
        return self._budget_changed(process)

    def _tender_tag(self, process: _Process) -> str:
        tag = "tenderUpdate" if process.tender_released else "tender"
        process.tender_released = True
        return tag

    def _appraised(
        self, process: _Process, release: _Release, appraised: OptionsAppraised
    ) -> tuple[list[str], Json]:
        method, details = PROCUREMENT_METHODS[appraised.recommended]
        process.tender_valued = True
        documents = []
        for option in appraised.options:
            name = OPTION_NAMES[option.option]
            parts = [_sentence(option.description)]
            if option.estimated_cost is not None:
                parts.append(f"Estimated cost {_gbp(option.estimated_cost)}.")
            if option.score is not None:
                parts.append(f"Scored {option.score} out of 100.")
            if option.benefits:
                parts.append(_sentence(f"Benefits: {option.benefits}"))
            if option.risks:
                parts.append(_sentence(f"Risks: {option.risks}"))
            recommended = " (recommended)" if option.option is appraised.recommended else ""
            documents.append({
                "id": f"option-{option.option.value}",
                "documentType": "feasibilityStudy",
                "title": f"Sourcing option: {name}{recommended}",
                "description": " ".join(parts),
                "datePublished": release.date,
            })
        tender: Json = {
            "id": process.tender_id,
            "status": "active" if process.engaged else "planned",
            "value": _value(process.budget),
            "procurementMethod": method,
            "procurementMethodDetails": details,
            "procurementMethodRationale": appraised.rationale,
        }
        tags = ["planningUpdate", self._tender_tag(process)]
        return tags, {"planning": {"documents": documents}, "tender": tender}

    def _engaged(
        self, process: _Process, release: _Release, engaged: MarketEngaged
    ) -> tuple[list[str], Json]:
        process.engaged = True
        process.engagements += 1
        tenderers = [release.name(self._provider(process, p), "tenderer")
                     for p in dict.fromkeys(engaged.provider_ids)]
        process.tenderers.update(t["id"] for t in tenderers)
        tender: Json = {"id": process.tender_id, "status": "active"}
        if tenderers:
            tender["tenderers"] = tenderers
        tender["numberOfTenderers"] = len(process.tenderers)
        tender["milestones"] = [{
            "id": f"market-engagement-{process.engagements}",
            "title": "Market engagement",
            "type": "engagement",
            "description": engaged.summary,
            "dueDate": _day_start(engaged.engaged_on),
            "dateMet": _day_start(engaged.engaged_on),
            "status": "met",
        }]
        return [self._tender_tag(process)], {"tender": tender}

    def _completed(self, process: _Process, tags: list[str], body: Json) -> Written:
        """An award's release: the first completes the tender (OCDS: a tender with awards is
        complete)."""
        if process.awarded:
            return tags, body
        process.awarded = True
        return [*tags, self._tender_tag(process)], {
            "tender": {"id": process.tender_id, "status": "complete"}, **body}

    def _decided(
        self, process: _Process, release: _Release, decided: CommissioningDecided
    ) -> tuple[list[str], Json]:
        # Dated by the day decided (old logs: the day of the event), as signatures are by the
        # day signed, so an award signed the day it was decided is not dated after signature.
        decided_on = _day_start(decided.decided_on or release.day)
        awards = [{
            "id": award.award_id,
            "title": award.title,
            "description": (
                f"{ARRANGEMENT_NAMES[award.arrangement_type]}, decided by "
                f"{decided.decision_maker} (decision {decided.decision_id}): {decided.rationale}"
            ),
            "status": "active",
            "date": decided_on,
            "value": _value(award.allocation),
            "suppliers": [release.name(self._provider(process, p), "supplier")
                          for p in dict.fromkeys(award.provider_ids)],
        } for award in decided.awards]
        return self._completed(process, ["award"], {"awards": awards})

    def _closed(
        self, process: _Process, release: _Release, closed: NeedClosed
    ) -> tuple[list[str], Json]:
        # Awarded: complete. Closed without award after engaging the market: the tender ran
        # and was unsuccessful. Closed before that: cancelled.
        status = ("complete" if process.awarded else
                  "unsuccessful" if process.engaged else "cancelled")
        cancelled = status == "cancelled"
        document: Json = {"id": "closure"}
        if cancelled:
            document["documentType"] = "cancellationDetails"
        document.update(title="Why the need was closed", description=closed.reason,
                        datePublished=release.date)
        tender = {"id": process.tender_id, "status": status, "documents": [document]}
        return ["tenderCancellation" if cancelled else "tenderUpdate"], {"tender": tender}

    # ------------------------------------------------------------------ contracts

    def _drafted(self, event: EventEnvelope, drafted: AgreementDrafted) -> Json | None:
        process = self.processes.get(drafted.need_id)
        if process is None:
            return None
        self.agreement_needs[drafted.agreement_id] = drafted.need_id
        release = _Release(process, event)
        award_id = drafted.award_id or f"agreement-{drafted.agreement_id}"
        contract = _Contract(str(drafted.agreement_id), award_id, release.id)
        process.contracts[drafted.agreement_id] = contract
        suppliers = [release.name(self._provider(process, p.provider_id), "supplier")
                     for p in drafted.parties]
        names = [s["name"] for s in suppliers]
        description = f"{ARRANGEMENT_NAMES[drafted.arrangement_type]} with {_listed(names)}"
        if len(names) > 1:
            # Variations rescale the shares, so these are dated: the split as drafted.
            description += "; shares of the budget as drafted: " + ", ".join(
                f"{n} {_gbp(p.allocation)}" for n, p in zip(names, drafted.parties, strict=True))
        body: Json = {**contract.reference(), "title": drafted.title,
                      "description": f"{description}.",
                      "status": "pending",
                      "period": {"startDate": _day_start(drafted.starts_on),
                                 "endDate": _day_end(drafted.ends_on)},
                      "value": _value(drafted.budget)}
        if drafted.outcomes:
            body["items"] = [self._outcome_item(process, o) for o in drafted.outcomes]
        body["documents"] = _agreement_documents(drafted)
        tags = ["contract"]
        built: Json = {"contracts": [body]}
        if drafted.award_id is None:
            # OCDS contracts hang off an award: an agreement made without a decision's award
            # gets one of its own, dated the day it was drafted.
            tags, built = self._completed(process, ["award", "contract"], {"awards": [{
                "id": award_id, "title": drafted.title, "status": "active",
                "date": _day_start(release.day), "value": _value(drafted.budget),
                "suppliers": suppliers,
            }], **built})
        return release.build(tags, built)

    def _outcome_item(self, process: _Process, outcome: AgreementOutcome) -> Json:
        sought = process.outcome(outcome.outcome_id)
        description = sought.description if sought else f"Outcome {outcome.outcome_id}"
        if outcome.target:
            description += f" (target: {outcome.target})"
        if outcome.measure_id:
            description += f"; measured by {outcome.measure_id}"
        return {"id": outcome.outcome_id, "description": description}

    @staticmethod
    def _signed(contract: _Contract, release: _Release, signed: AgreementSigned) -> Written:
        """The signature: dateSigned, and who signed as a document. The contract stays pending
        until it comes into force (OCDS: active is signed and in force)."""
        document = {"id": "signatures", "title": "Signatures",
                    "description": f"Signed on {signed.signed_on.isoformat()} by "
                                   f"{_listed(signed.signatories)}.",
                    "datePublished": release.date}
        return ["contractUpdate"], {**contract.reference(),
                                    "dateSigned": _day_start(signed.signed_on),
                                    "documents": [document]}

    @staticmethod
    def _amendment(
        contract: _Contract, release: _Release, amendment_id: str, rationale: str,
        description: str,
    ) -> Json:
        return {"id": amendment_id, "date": release.date, "rationale": rationale,
                "description": description, "amendsReleaseID": contract.last_release_id,
                "releaseID": release.id}

    def _varied(
        self, contract: _Contract, release: _Release, varied: AgreementVaried
    ) -> tuple[list[str], Json]:
        description = (f"{VARIATION_NAMES[varied.kind]}: the budget changes by "
                       f"{'+' if varied.budget_change >= 0 else '-'}"
                       f"{_gbp(abs(varied.budget_change))} to {_gbp(varied.new_budget)}."
                       if varied.budget_change else
                       f"{VARIATION_NAMES[varied.kind]}: the budget stays "
                       f"{_gbp(varied.new_budget)}.")
        if varied.scope:
            description += f" {_sentence(f'Scope: {varied.scope}')}"
        if varied.business_case_id:
            description += f" Under business case {varied.business_case_id}."
        amendment = self._amendment(contract, release, varied.variation_id, varied.reason,
                                    description)
        return ["contractAmendment"], {**contract.reference(), "value": _value(varied.new_budget),
                                       "amendments": [amendment]}

    def _extended(
        self, contract: _Contract, release: _Release, extended: AgreementExtended
    ) -> tuple[list[str], Json]:
        description = (f"Term extended from {extended.previous_end.isoformat()} to "
                       f"{extended.new_end.isoformat()}. "
                       f"{_sentence(f'Performance evidence: {extended.performance_evidence}')}")
        if extended.performance_data:
            description += f" {_sentence(f'Performance data held: {extended.performance_data}')}"
        elif extended.override_reason:
            description += (" No performance data was held yet: extended by an override "
                            "approved under the scheme of delegation. "
                            f"{_sentence(f'Why: {extended.override_reason}')}")
        amendment = self._amendment(contract, release, extended.extension_id,
                                    extended.justification, description)
        return ["contractAmendment"], {**contract.reference(),
                                       "period": {"endDate": _day_end(extended.new_end)},
                                       "amendments": [amendment]}

    def _remember_proposal(self, proposed: BusinessCaseProposed) -> None:
        need_id = self.agreement_needs.get(proposed.agreement_id)
        process = self.processes.get(need_id) if need_id is not None else None
        if process is not None and proposed.agreement_id in process.contracts:
            process.contracts[proposed.agreement_id].proposals[proposed.business_case_id] = (
                proposed)

    @staticmethod
    def _case_approved(
        contract: _Contract, release: _Release, approved: BusinessCaseApproved
    ) -> tuple[list[str], Json]:
        proposal = contract.proposals.get(approved.business_case_id)
        parts = []
        if proposal is not None:
            parts.append(_sentence(f"Need: {proposal.need}"))
            parts.append(_sentence(f"Expected outcomes: {proposal.expected_outcomes}"))
            parts.append(f"Cost: {_gbp(proposal.cost)}.")
        parts.append(_sentence(f"Approved: {approved.reason}"))
        document = {
            "id": f"business-case-{approved.business_case_id}",
            "documentType": "contractAnnexe",
            "title": f"Business case {approved.business_case_id} for additional delivery",
            "description": " ".join(parts),
            "datePublished": release.date,
        }
        return ["contractUpdate"], {**contract.reference(), "documents": [document]}

    def _spent(
        self, process: _Process, contract: _Contract, release: _Release, spent: SpendRecorded
    ) -> tuple[list[str], Json]:
        transaction = {
            "id": spent.spend_id,
            "date": release.date,  # when it was paid (recorded), never after the release
            "value": _value(spent.amount),
            "payer": release.name(process.buyer, "payer"),
            "payee": release.name(self._provider(process, spent.provider_id), "payee"),
        }
        return ["implementation"], {**contract.reference(),
                                    "implementation": {"transactions": [transaction]}}

    @staticmethod
    def _ended(
        contract: _Contract, release: _Release, ended: AgreementEnded
    ) -> tuple[list[str], Json]:
        description = (f"The agreement {ENDING_NAMES[ended.how]} on {ended.ended_on.isoformat()}:"
                       f" {_sentence(ended.reason)} Exit plan executed: "
                       f"{'yes' if ended.exit_plan_executed else 'no'}.")
        if ended.exit_notes:
            description += f" {_sentence(ended.exit_notes)}"
        document = {"id": "ending", "documentType": "contractArrangements",
                    "title": "How the agreement ended", "description": description,
                    "datePublished": release.date}
        return ["contractTermination"], {**contract.reference(), "status": "terminated",
                                         "period": {"endDate": _day_end(ended.ended_on)},
                                         "documents": [document]}


def _outcome_milestone(outcome: OutcomeSought) -> Json:
    milestone: Json = {"id": outcome.outcome_id, "title": outcome.description,
                       "type": "delivery"}
    notes = []
    if outcome.target:
        notes.append(f"Target: {outcome.target}.")
    if outcome.measure_id:
        notes.append(f"Measured by {outcome.measure_id}.")
    if notes:
        milestone["description"] = " ".join(notes)
    if outcome.target_date:
        milestone["dueDate"] = _day_end(outcome.target_date)
    milestone["status"] = "scheduled"
    return milestone


def _agreement_documents(drafted: AgreementDrafted) -> list[Json]:
    documents: list[Json] = [{"id": "exit-plan", "documentType": "contractArrangements",
                              "title": "Exit plan", "description": drafted.exit_plan}]
    if drafted.break_clauses:
        documents.append({"id": "break-clauses", "documentType": "contractArrangements",
                          "title": "Break clauses",
                          "description": " ".join(f"({n}) {clause}" for n, clause in enumerate(
                              drafted.break_clauses, start=1))})
    if drafted.risk_share is not None:
        documents.append({"id": "risk-share", "documentType": "riskProvisions",
                          "title": "Risk share", "description": _risk_text(drafted.risk_share)})
    if drafted.reward_terms is not None:
        documents.append({"id": "reward-terms", "documentType": "contractAnnexe",
                          "title": "Rewards tied to outcomes",
                          "description": _reward_text(drafted.reward_terms)})
    return documents


def _risk_text(risk: RiskShare) -> str:
    text = f"The council bears {_pct(risk.council_pct)}% and the providers " \
           f"{_pct(risk.provider_pct)}% of the risk."
    return f"{text} {_sentence(risk.notes)}" if risk.notes else text


def _reward_text(terms: RewardTerms) -> str:
    parts = [f"{_pct(terms.payment_by_results_share_pct)}% of payment is by results."]
    if terms.bonus_max is not None:
        parts.append(f"Bonus of up to {_gbp(terms.bonus_max)}.")
    if terms.penalty_max is not None:
        parts.append(f"Penalty of up to {_gbp(terms.penalty_max)}.")
    if terms.payment_frequency is not None:
        parts.append(f"Results are paid {terms.payment_frequency.value}.")
    if terms.notes:
        parts.append(_sentence(terms.notes))
    return " ".join(parts)


def releases_for(
    events: Iterable[EventEnvelope],
    provider_names: Mapping[UUID, str],
    ocid_prefix: str = DEFAULT_OCID_PREFIX,
    *,
    provider_identifiers: Mapping[UUID, Sequence[tuple[str, str]]] | None = None,
) -> list[Json]:
    """OCDS releases for the integrator's events (other services' events are passed over), in
    the order things happened. `provider_names` names the providers (one missing is called
    "Provider <id>"); `provider_identifiers` gives, where known, each provider's organisation
    identifiers as (org-id scheme, identifier) pairs, the first being its primary one."""
    mapper = _Mapper(provider_names, ocid_prefix, provider_identifiers or {})
    releases = []
    for event in _ordered(events):
        release = mapper.release(event)
        if release is not None:
            releases.append(release)
    return releases


# --------------------------------------------------------------------------- packages, records


def _latest(releases: Sequence[Mapping[str, Any]]) -> str:
    return max((str(r["date"]) for r in releases), key=_parse_instant)


def _published(releases: Sequence[Mapping[str, Any]], published_date: datetime | None) -> str:
    if published_date is not None:
        return _instant(published_date)
    if not releases:
        raise ValueError("an empty package needs a published_date")
    return _latest(releases)


def _package_head(
    uri: str, publisher: Publisher, published: str, license_url: str | None,
    publication_policy: str | None,
) -> Json:
    head: Json = {"uri": uri, "version": OCDS_VERSION, "publishedDate": published,
                  "publisher": publisher.as_ocds()}
    if license_url is not None:
        head["license"] = license_url
    if publication_policy is not None:
        head["publicationPolicy"] = publication_policy
    return head


def release_package(
    releases: Sequence[Json],
    *,
    uri: str,
    publisher: Publisher,
    published_date: datetime | None = None,
    license_url: str | None = None,
    publication_policy: str | None = None,
) -> Json:
    """A release package. Its published date is the latest release's (the package is made on
    demand, so it dates from the last change to what it holds) unless one is given."""
    package = _package_head(uri, publisher, _published(releases, published_date), license_url,
                            publication_policy)
    package["releases"] = list(releases)
    return package


def _merge(target: Json, update: Mapping[str, Any]) -> None:
    """OCDS merging: a later value replaces an earlier one, null removes the field, objects
    merge field by field, arrays of objects with ids merge item by item by id (new ids are
    appended), and any other array replaces the earlier one whole."""
    for key, value in update.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict):
                current = target[key] = {}
            _merge(current, value)
        elif isinstance(value, list) and _identified(value) and key not in WHOLE_LIST_MERGE:
            existing = target.get(key)
            merged: list[Json] = existing if isinstance(existing, list) and _identified(
                existing) else []
            by_id = {_item_key(item): item for item in merged}
            for item in value:
                found = by_id.get(_item_key(item))
                if found is None:
                    found = by_id[_item_key(item)] = {}
                    merged.append(found)
                _merge(found, item)
            target[key] = merged
        else:
            target[key] = copy.deepcopy(value)


def merge_release(target: Json, release: Mapping[str, Any]) -> None:
    """Merge one release's fields into a compiled state, as a record compiles (the notices
    keep each process compiled as far as the release they come from)."""
    _merge(target, release)


def _identified(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and i.get("id") is not None for i in items)


def _item_key(item: Mapping[str, Any]) -> str:
    return str(item["id"])


def compiled_record(releases: Sequence[Json], *, package_url: str | None = None) -> Json:
    """The record of one contracting process: its releases (embedded, or linked into the release
    package at `package_url` when given) and the compiled release, merged from the releases in
    date order (ties keep the order given)."""
    if not releases:
        raise ValueError("a record needs at least one release")
    ocids = {r["ocid"] for r in releases}
    if len(ocids) != 1:
        raise ValueError(f"a record is one process, not {len(ocids)}: {sorted(ocids)}")
    (ocid,) = ocids
    ordered = sorted(releases, key=lambda r: _parse_instant(str(r["date"])))
    merged: Json = {}
    for release in ordered:
        _merge(merged, {k: v for k, v in release.items() if k not in OMIT_WHEN_MERGED})
    latest = _latest(ordered)
    compiled: Json = {"ocid": ocid, "id": f"{ocid}-{latest}", "date": latest, "tag": ["compiled"]}
    compiled.update((k, v) for k, v in merged.items() if k != "ocid")
    listed: list[Json]
    if package_url is None:
        listed = [copy.deepcopy(r) for r in ordered]
    else:
        listed = [{"url": f"{package_url}#{r['id']}", "date": r["date"], "tag": list(r["tag"])}
                  for r in ordered]
    return {"ocid": ocid, "releases": listed, "compiledRelease": compiled}


def record_package(
    releases: Sequence[Json],
    *,
    uri: str,
    publisher: Publisher,
    published_date: datetime | None = None,
    packages: Sequence[str] = (),
    package_url: str | None = None,
    license_url: str | None = None,
    publication_policy: str | None = None,
) -> Json:
    """A record package: one record per process among `releases`, in the order each process
    first appears. `packages` lists the release packages the records were made from;
    `package_url` links the records' releases into that package instead of embedding them."""
    by_ocid: dict[str, list[Json]] = {}
    for release in releases:
        by_ocid.setdefault(str(release["ocid"]), []).append(release)
    package = _package_head(uri, publisher, _published(releases, published_date), license_url,
                            publication_policy)
    if packages:
        package["packages"] = list(dict.fromkeys(packages))
    package["records"] = [compiled_record(group, package_url=package_url)
                          for group in by_ocid.values()]
    return package
