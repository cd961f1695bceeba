"""Procurement Act 2023 transparency notices as OCDS releases, in the form Find a Tender (the UK's
central digital platform) publishes them: one release per notice, the notice itself a document
of the section it concerns with the OCDS `documentType` and the UK extension's `noticeType`
(UK7...), KPIs as the metrics extension's `implementation.metrics` with the UK extension's
`measureClassification` rating (https://github.com/cabinetoffice/ocds_uk_extension). Pure: the
integrator's OCDS releases (projections/ocds.py) and the performance read model's KPI
assessments in, notice releases out.

- UK7 contract details: the release of an AgreementSigned. The notice carries the contract as
  it then stood in full (value, period, items, documents, signature date), its award and the
  buyer and suppliers: a notice stands on its own, as on Find a Tender.
- UK10 contract change: the release of an AgreementVaried or AgreementExtended, with the
  contract's new value or end date and that one amendment.
- UK11 contract termination: the release of an AgreementEnded.
- UK9 contract performance: per agreement and period, its KPIs (the measures attributed to
  it) with the target, the measurement and the rating (domain/notices.kpi_rating), dated when
  the measurement reached the integrator on the log.

A contract never signed was never entered into, so it gives no notices. A notice release's id
is the id of the release it comes from and the notice type (`<id>-UK7`); no two notices of a
process share a date (one that would is dated a second later), so they compile unambiguously
on their own. The notices are a publication of their own beside the releases at /ocds/releases
(as Find a Tender's beside Contracts Finder's): merge the one or the other.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from council.kernel.contracts.integrator import SOURCE, AgreementDrafted
from council.kernel.envelope import EventEnvelope
from council.kernel.periods import period_bounds
from council.services.integrator.domain.notices import (
    CONTRACT_CHANGE,
    CONTRACT_DETAILS,
    CONTRACT_PERFORMANCE,
    CONTRACT_TERMINATION,
    RATING_NAMES,
    RATING_SCHEME,
    NoticeType,
    kpi_rating,
)
from council.services.integrator.projections.ocds_releases import (
    OMIT_WHEN_MERGED,
    merge_release,
    ocid_for,
)
from council.services.integrator.projections.performance import KpiAssessment

Json = dict[str, Any]

# The OCDS and UK extensions the notices use, as Find a Tender's packages declare them.
EXTENSIONS = (
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_metrics_extension/"
    "master/extension.json",
    "https://raw.githubusercontent.com/cabinetoffice/ocds_uk_extension/main/extension.json",
)
NOTICE_OF_EVENT = {
    "AgreementSigned": CONTRACT_DETAILS,
    "AgreementVaried": CONTRACT_CHANGE,
    "AgreementExtended": CONTRACT_CHANGE,
    "AgreementEnded": CONTRACT_TERMINATION,
}


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _document(notice: NoticeType, release_id: str, date: str) -> Json:
    return {"id": f"notice-{release_id}", "documentType": notice.document_type,
            "noticeType": notice.code, "title": notice.title, "datePublished": date}


def _by_id(items: Iterable[Json], wanted: str) -> Json | None:
    return next((i for i in items if str(i.get("id")) == wanted), None)


class _Process:
    """One process's notices being written, with the state compiled from its releases."""

    def __init__(self) -> None:
        self.compiled: Json = {}
        self.entered: set[str] = set()  # contracts signed so far
        self.last_notice: dict[str, str] = {}  # by contract: the id of its latest notice
        self.dates: set[str] = set()
        self.notices: list[Json] = []

    def date(self, wanted: datetime) -> str:
        at = wanted.astimezone(UTC).replace(microsecond=0)
        while _instant(at) in self.dates:
            at += timedelta(seconds=1)
        self.dates.add(_instant(at))
        return _instant(at)

    def _head(self, notice: NoticeType, release_id: str, ocid: str, date: str,
              contract: Json) -> Json:
        """The notice release around `contract`: buyer and suppliers named in full."""
        award = _by_id(self.compiled.get("awards", []), str(contract.get("awardID")))
        named = [self.compiled.get("buyer", {}).get("id")]
        named += [s.get("id") for s in (award or {}).get("suppliers", [])]
        parties = [copy.deepcopy(p) for p in self.compiled.get("parties", [])
                   if p.get("id") in named]
        release: Json = {"ocid": ocid, "id": f"{release_id}-{notice.code}", "date": date,
                         "tag": list(notice.tags), "initiationType": "tender",
                         "language": "en", "parties": parties}
        if "buyer" in self.compiled:
            release["buyer"] = copy.deepcopy(self.compiled["buyer"])
        if notice is CONTRACT_DETAILS and award is not None:
            release["awards"] = [copy.deepcopy(award)]
        release["contracts"] = [contract]
        return release

    def from_release(self, notice: NoticeType, release: Json) -> None:
        (changed,) = release["contracts"]
        contract_id = str(changed["id"])
        if notice is CONTRACT_DETAILS:
            self.entered.add(contract_id)
        if contract_id not in self.entered:
            return
        compiled = _by_id(self.compiled.get("contracts", []), contract_id) or {}
        date = self.date(_parse(str(release["date"])))
        if notice is CONTRACT_DETAILS:
            contract = copy.deepcopy(compiled)
            contract.pop("implementation", None)  # payments are not a contract's details
        else:
            contract = {"id": contract_id, "awardID": compiled.get("awardID")}
            for key in ("status", "value", "period", "documents"):
                if key in changed:
                    contract[key] = copy.deepcopy(compiled.get(key, changed[key]))
            if notice is CONTRACT_CHANGE:
                contract["value"] = copy.deepcopy(compiled.get("value"))
                contract["period"] = copy.deepcopy(compiled.get("period"))
                # Amending the contract as its previous notice gave it.
                contract["amendments"] = [
                    {**a, "amendsReleaseID": self.last_notice[contract_id],
                     "releaseID": f"{release['id']}-{notice.code}"}
                    for a in changed.get("amendments", [])]
            if notice is CONTRACT_TERMINATION:
                contract["documents"] = copy.deepcopy(changed.get("documents", []))
        contract["documents"] = [*contract.get("documents", []),
                                 _document(notice, str(release["id"]), date)]
        written = self._head(notice, str(release["id"]), str(release["ocid"]), date,
                             {k: v for k, v in contract.items() if v is not None})
        self.last_notice[contract_id] = written["id"]
        self.notices.append(written)

    def performance(self, ocid: str, agreement_id: str,
                    kpis: Sequence[KpiAssessment]) -> None:
        """One contract performance notice: the KPIs of one agreement in one period."""
        compiled = _by_id(self.compiled.get("contracts", []), agreement_id)
        if agreement_id not in self.entered or compiled is None:
            return
        period = kpis[0].period
        date = self.date(max(k.recorded_at for k in kpis))
        first, last = period_bounds(period)
        metrics = []
        for kpi in kpis:
            facts = kpi.measure
            rating = kpi_rating(facts.lower_is_better, facts.baseline, kpi.target, kpi.actual)
            better = "lower" if facts.lower_is_better else "higher"
            baseline = ("" if facts.baseline is None else
                        f"; baseline {facts.baseline}"
                        + (f" ({facts.baseline_period})" if facts.baseline_period else ""))
            observation: Json = {
                "id": f"{facts.measure_id}-{period}",
                "period": {"startDate": f"{first.isoformat()}T00:00:00Z",
                           "endDate": f"{last.isoformat()}T23:59:59Z"},
                "measure": str(kpi.actual),
                "notes": f"Target for {period}: {kpi.target}{baseline}; {better} is better.",
                "measureClassification": {"scheme": RATING_SCHEME, "id": rating.value,
                                          "description": RATING_NAMES[rating]},
            }
            if facts.unit:
                observation["unit"] = {"name": facts.unit}
            metrics.append({"id": facts.measure_id, "title": facts.name,
                            "observations": [observation]})
        release_id = f"{agreement_id}-{period}"
        contract = {"id": agreement_id, "awardID": compiled.get("awardID"),
                    "implementation": {"metrics": metrics},
                    "documents": [_document(CONTRACT_PERFORMANCE, release_id, date)]}
        written = self._head(CONTRACT_PERFORMANCE, release_id, ocid, date, contract)
        self.last_notice[agreement_id] = written["id"]
        self.notices.append(written)


def _agreement_needs(events: Iterable[EventEnvelope]) -> dict[str, UUID]:
    return {str(d.agreement_id): d.need_id for d in (
        AgreementDrafted.model_validate(e.data) for e in events
        if e.source == SOURCE and e.type == "AgreementDrafted")}


def notice_releases(events: Sequence[EventEnvelope], releases: Sequence[Json],
                    kpis: Sequence[KpiAssessment], ocid_prefix: str) -> list[Json]:
    """The notices of the releases (made from `events` by ocds.releases_for) and of the KPI
    assessments, every process's in date order, processes interleaved by date."""
    kinds = {str(e.event_id): e.type for e in events if e.source == SOURCE}
    needs = _agreement_needs(events)
    processes: dict[str, _Process] = defaultdict(_Process)
    # Performance notices wait for the first release of their process dated after them.
    waiting: dict[str, list[tuple[datetime, str, list[KpiAssessment]]]] = defaultdict(list)
    grouped: dict[tuple[str, str], list[KpiAssessment]] = defaultdict(list)
    for kpi in kpis:
        grouped[(kpi.agreement_id, kpi.period)].append(kpi)
    for (agreement_id, _), group in sorted(grouped.items()):
        need = needs.get(agreement_id)
        if need is not None:
            waiting[ocid_for(need, ocid_prefix)].append(
                (max(k.recorded_at for k in group), agreement_id, group))
    for queue in waiting.values():
        queue.sort(key=lambda item: (item[0], item[1]))
    for release in releases:
        ocid = str(release["ocid"])
        process = processes[ocid]
        at = _parse(str(release["date"]))
        queue = waiting[ocid]
        while queue and queue[0][0] < at:
            _, agreement_id, group = queue.pop(0)
            process.performance(ocid, agreement_id, group)
        merge_release(process.compiled,
                      {k: v for k, v in release.items() if k not in OMIT_WHEN_MERGED})
        notice = NOTICE_OF_EVENT.get(kinds.get(str(release["id"]), ""))
        if notice is not None:
            process.from_release(notice, release)
    for ocid, queue in waiting.items():
        for _, agreement_id, group in queue:
            processes[ocid].performance(ocid, agreement_id, group)
    every = [n for p in processes.values() for n in p.notices]
    return sorted(every, key=lambda n: (_parse(str(n["date"])), str(n["ocid"])))
