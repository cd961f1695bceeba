"""The Open Contracting Partnership's coherence checks on OCDS data, for the tests.

What OCP's data-quality tool (Pelican's resource-level "coherent" checks) asks of the dates and
statuses the integrator publishes, with OCP's guidance on ordering releases and lib-cove-ocds'
additional checks (fields set but empty), run over release and record packages. Pelican checks
compiled releases; here every release is checked as published, and so is the compiled release of
every process as it stood after each of its releases (a state wrong for a while, then put right,
is still found).

- tender_status: a tender still planning, planned, active, cancelled, unsuccessful or withdrawn
  has no awards or contracts: once something is awarded the tender is complete
  (coherent/tender_status).
- dates: awards' dates, contracts' dateSigned and transactions' dates are not after the date of
  the release that reports them; an award is not dated after the dateSigned of its contracts,
  nor a contract's dateSigned after its transactions (coherent/dates).
- amendments_dates: an amendment is not dated after the release that reports it, nor before its
  contract's dateSigned (or its award's date) (coherent/amendments_dates).
- period: every period starts no later than it ends (coherent/period).
- release_date: milestones met or modified, documents published or modified, not after the
  release's date; a document not modified before it was published (coherent/milestones_dates,
  documents_dates, release_date).
- contracts_status: a pending or cancelled contract has no transactions
  (coherent/contracts_status).
- awards_status: a pending, cancelled or unsuccessful award has no contract
  (coherent/awards_status).
- amended_releases: an amendment's releaseID and amendsReleaseID are releases of its process,
  the amended one dated before the amending one.
- release_order: no two releases of one process share a date (releases are merged in date
  order; on a tie the order, and so the compiled release, is ambiguous).
- published: no release (nor compiled release) is dated after the package that publishes it.
- empty_field: lib-cove-ocds' additional check, no field set but empty.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from libcoveocds.lib.additional_checks import CHECKS, run_additional_checks

Json = dict[str, Any]

INCOMPLETE_TENDER = frozenset({"planning", "planned", "active", "cancelled", "unsuccessful",
                               "withdrawn"})
UNSIGNED_CONTRACT = frozenset({"pending", "cancelled"})
INACTIVE_AWARD = frozenset({"pending", "cancelled", "unsuccessful"})
OMIT_WHEN_MERGED = frozenset({"id", "date", "tag"})
WHOLE_LIST_MERGE = frozenset({"additionalIdentifiers", "additionalClassifications"})


@dataclass(frozen=True)
class Finding:
    """One thing a check found: which check, where (a path in the package, or a process as of
    one of its releases) and what."""

    check: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check} at {self.where}: {self.detail}"


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _list(value: Any) -> list[Json]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


class _State:
    """The checks one release (or compiled release) answers on its own."""

    def __init__(self, release: Mapping[str, Any]) -> None:
        self.release = release
        self.date = release.get("date")
        self.findings: list[Finding] = []

    def _not_after(self, check: str, first: tuple[str, Any], second: tuple[str, Any]) -> None:
        a, b = _instant(first[1]), _instant(second[1])
        if a is not None and b is not None and a > b:
            self.findings.append(Finding(check, first[0], f"{first[1]} is after {second[0]} "
                                                          f"{second[1]}"))

    def run(self) -> list[Finding]:
        self.tender_status()
        self.dates()
        self.amendments_dates()
        self.periods()
        self.release_date()
        self.statuses()
        return self.findings

    def awards(self) -> Iterator[tuple[str, Json]]:
        for i, award in enumerate(_list(self.release.get("awards"))):
            yield f"awards/{i}", award

    def contracts(self) -> Iterator[tuple[str, Json]]:
        for i, contract in enumerate(_list(self.release.get("contracts"))):
            yield f"contracts/{i}", contract

    def tender_status(self) -> None:
        status = _dict(self.release.get("tender")).get("status")
        awards, contracts = list(self.awards()), list(self.contracts())
        if status in INCOMPLETE_TENDER and (awards or contracts):
            self.findings.append(Finding(
                "tender_status", "tender/status",
                f"{status} with {len(awards)} awards and {len(contracts)} contracts"))

    def dates(self) -> None:
        release_date = ("date", self.date)
        signed: dict[str, list[tuple[str, Any]]] = {}
        for path, contract in self.contracts():
            if "dateSigned" in contract:
                signed.setdefault(str(contract.get("awardID")), []).append(
                    (f"{path}/dateSigned", contract["dateSigned"]))
                self._not_after("dates", (f"{path}/dateSigned", contract["dateSigned"]),
                                release_date)
            transactions = _list(_dict(contract.get("implementation")).get("transactions"))
            for j, transaction in enumerate(transactions):
                when = (f"{path}/implementation/transactions/{j}/date", transaction.get("date"))
                self._not_after("dates", when, release_date)
                if "dateSigned" in contract:
                    self._not_after("dates", (f"{path}/dateSigned", contract["dateSigned"]),
                                    when)
        for path, award in self.awards():
            self._not_after("dates", (f"{path}/date", award.get("date")), release_date)
            for signature in signed.get(str(award.get("id")), []):
                self._not_after("dates", (f"{path}/date", award.get("date")), signature)

    def amendments_dates(self) -> None:
        release_date = ("date", self.date)
        holders: list[tuple[str, Json, str | None]] = [
            ("tender", _dict(self.release.get("tender")), None)]
        holders += [(path, award, "date") for path, award in self.awards()]
        holders += [(path, contract, "dateSigned") for path, contract in self.contracts()]
        for path, holder, since in holders:
            for j, amendment in enumerate(_list(holder.get("amendments"))):
                when = (f"{path}/amendments/{j}/date", amendment.get("date"))
                self._not_after("amendments_dates", when, release_date)
                if since is not None and since in holder:
                    self._not_after("amendments_dates", (f"{path}/{since}", holder[since]),
                                    when)

    def periods(self) -> None:
        tender = _dict(self.release.get("tender"))
        found = [(f"tender/{name}", _dict(tender.get(name))) for name in (
            "tenderPeriod", "enquiryPeriod", "awardPeriod", "contractPeriod")]
        found += [(f"{path}/contractPeriod", _dict(a.get("contractPeriod")))
                  for path, a in self.awards()]
        found += [(f"{path}/period", _dict(c.get("period"))) for path, c in self.contracts()]
        for path, period in found:
            self._not_after("period", (f"{path}/startDate", period.get("startDate")),
                            (f"{path}/endDate", period.get("endDate")))

    def _holders(self) -> Iterator[tuple[str, Json]]:
        yield "planning", _dict(self.release.get("planning"))
        yield "tender", _dict(self.release.get("tender"))
        yield from self.awards()
        for path, contract in self.contracts():
            yield path, contract
            yield f"{path}/implementation", _dict(contract.get("implementation"))

    def release_date(self) -> None:
        release_date = ("date", self.date)
        for path, holder in self._holders():
            for j, milestone in enumerate(_list(holder.get("milestones"))):
                for field in ("dateMet", "dateModified"):
                    self._not_after("release_date", (f"{path}/milestones/{j}/{field}",
                                                     milestone.get(field)), release_date)
            for j, document in enumerate(_list(holder.get("documents"))):
                where = f"{path}/documents/{j}"
                published = (f"{where}/datePublished", document.get("datePublished"))
                modified = (f"{where}/dateModified", document.get("dateModified"))
                self._not_after("release_date", published, release_date)
                self._not_after("release_date", modified, release_date)
                self._not_after("release_date", published, modified)

    def statuses(self) -> None:
        contracted = {str(c.get("awardID")) for _, c in self.contracts()}
        for path, contract in self.contracts():
            transactions = _list(_dict(contract.get("implementation")).get("transactions"))
            if contract.get("status") in UNSIGNED_CONTRACT and transactions:
                self.findings.append(Finding("contracts_status", f"{path}/status",
                                             f"{contract['status']} with {len(transactions)} "
                                             "transactions"))
        for path, award in self.awards():
            if award.get("status") in INACTIVE_AWARD and str(award.get("id")) in contracted:
                self.findings.append(Finding("awards_status", f"{path}/status",
                                             f"{award['status']} but a contract hangs off it"))


def check_release(release: Mapping[str, Any], where: str = "") -> list[Finding]:
    """The checks one release (or compiled release) answers on its own."""
    return [Finding(f.check, f"{where}/{f.where}" if where else f.where, f.detail)
            for f in _State(release).run()]


# --------------------------------------------------------------------------- merging


def _merge(target: Json, update: Mapping[str, Any]) -> None:
    """OCDS merging, written here apart from the code under test: later values win, null
    removes, objects merge, arrays of objects with ids merge by id, other arrays are replaced."""
    for key, value in update.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            _merge(target[key], value)
        elif (isinstance(value, list) and value and key not in WHOLE_LIST_MERGE
              and all(isinstance(v, dict) and "id" in v for v in value)):
            current = target.get(key) if isinstance(target.get(key), list) else []
            by_id = {str(item.get("id")): item for item in current}
            for item in value:
                if str(item["id"]) not in by_id:
                    by_id[str(item["id"])] = {}
                    current.append(by_id[str(item["id"])])
                _merge(by_id[str(item["id"])], item)
            target[key] = current
        else:
            target[key] = copy.deepcopy(value)


def _in_date_order(releases: Sequence[Json]) -> list[Json]:
    return sorted(releases, key=lambda r: _instant(r.get("date")) or datetime.min)


def check_process(ocid: str, releases: Sequence[Json]) -> list[Finding]:
    """One process's releases: their order, the releases amendments name, and the compiled
    release after each release (each finding once, as of the first release showing it)."""
    findings: list[Finding] = []
    ordered = _in_date_order(releases)
    dates = {str(r.get("id")): _instant(r.get("date")) for r in ordered}
    for earlier, later in pairwise(ordered):
        if _instant(earlier.get("date")) == _instant(later.get("date")):
            findings.append(Finding("release_order", ocid, f"releases {earlier.get('id')} "
                                    f"and {later.get('id')} are both dated {later.get('date')}"))
    compiled: Json = {}
    seen: set[tuple[str, str]] = set()
    for release in ordered:
        _merge(compiled, {k: v for k, v in release.items() if k not in OMIT_WHEN_MERGED})
        compiled["date"] = release.get("date")
        for finding in check_release(compiled):
            key = (finding.check, finding.where)
            if key not in seen:
                seen.add(key)
                findings.append(Finding(finding.check, f"{ocid} as of release "
                                        f"{release.get('id')}: {finding.where}", finding.detail))
        findings += _amended_releases(ocid, release, dates)
    return findings


def _amended_releases(ocid: str, release: Json,
                      dates: Mapping[str, datetime | None]) -> list[Finding]:
    found = []
    holders = [_dict(release.get("tender")), *_list(release.get("awards")),
               *_list(release.get("contracts"))]
    for holder in holders:
        for amendment in _list(holder.get("amendments")):
            amends, by = amendment.get("amendsReleaseID"), amendment.get("releaseID")
            where = f"{ocid} release {release.get('id')} amendment {amendment.get('id')}"
            if amends not in dates or by not in dates:
                found.append(Finding("amended_releases", where, f"names releases {amends} and "
                                     f"{by}, not both releases of {ocid}"))
                continue
            before, after = dates[str(amends)], dates[str(by)]
            if before is None or after is None or not before < after:
                found.append(Finding("amended_releases", where, f"amends release {amends} "
                                     f"dated {before}, not before its own {by} dated {after}"))
    return found


# --------------------------------------------------------------------------- packages


def _published(package: Json, dated: Sequence[tuple[str, Any]]) -> list[Finding]:
    published = ("publishedDate", package.get("publishedDate"))
    state = _State(package)
    for path, date in dated:
        state._not_after("published", (path, date), published)
    return state.findings


def _empty_fields(package: Json) -> list[Finding]:
    results = run_additional_checks(package, CHECKS["all"])
    return [Finding("empty_field", str(found["json_location"]), "set but empty")
            for found in results.get("empty_field", [])]


def check_release_package(package: Json) -> list[Finding]:
    """Every check on a release package: each release, and each process from its releases."""
    releases = _list(package.get("releases"))
    findings = _published(package, [(f"releases/{i}/date", r.get("date"))
                                     for i, r in enumerate(releases)])
    findings += _empty_fields(package)
    by_ocid: dict[str, list[Json]] = {}
    for i, release in enumerate(releases):
        findings += check_release(release, f"releases/{i}")
        by_ocid.setdefault(str(release.get("ocid")), []).append(release)
    for ocid, group in by_ocid.items():
        findings += check_process(ocid, group)
    return findings


def check_record_package(package: Json) -> list[Finding]:
    """Every check on a record package: each compiled release, and each process from its
    embedded releases (linked releases are checked in the release package they link to)."""
    records = _list(package.get("records"))
    compiled = [_dict(r.get("compiledRelease")) for r in records]
    findings = _published(package, [(f"records/{i}/compiledRelease/date", c.get("date"))
                                     for i, c in enumerate(compiled)])
    findings += _empty_fields(package)
    for i, record in enumerate(records):
        findings += check_release(compiled[i], f"records/{i}/compiledRelease")
        embedded = [r for r in _list(record.get("releases")) if "id" in r]
        for j, release in enumerate(embedded):
            findings += check_release(release, f"records/{i}/releases/{j}")
        if embedded:
            findings += check_process(str(record.get("ocid")), embedded)
    return findings


def counts(findings: Sequence[Finding]) -> dict[str, int]:
    """How many findings each check made."""
    found: dict[str, int] = {}
    for finding in findings:
        found[finding.check] = found.get(finding.check, 0) + 1
    return dict(sorted(found.items()))
