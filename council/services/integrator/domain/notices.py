"""Procurement Act 2023 transparency notices the council's agreements give rise to, and the
rating scale of a contract performance notice. Pure; the notices are written as OCDS releases in
projections/notices.py.

| notice | when | from |
|---|---|---|
| UK7 contract details notice | a contract is entered into | AgreementSigned |
| UK9 contract performance notice | a KPI is assessed | the performance read model |
| UK10 contract change notice | a contract is modified | AgreementVaried, AgreementExtended |
| UK11 contract termination notice | a contract ends | AgreementEnded |

In a performance notice each KPI is rated on the Act's scale, which Find a Tender publishes in
the UK OCDS extension as `measureClassification` ids (`met`, `slightlyBelow`, `below`,
`significantlyBelow`, `other`; https://github.com/cabinetoffice/ocds_uk_extension). The rating
follows the council's published performance rule (council.kernel.performance_rule): green is
met and amber (within a tenth of the targeted improvement) slightly below; the rule's red is
split in two by how much of the targeted improvement was achieved: at least half is below,
less than half (or worse than the baseline) significantly below. A red with no baseline to
measure the shortfall from is below.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from council.kernel.performance_rule import Rag, improvement, measure_rag


@dataclass(frozen=True)
class NoticeType:
    code: str
    title: str
    document_type: str  # OCDS documentType (core, or the UK extension's implementationNotice...)
    tags: tuple[str, ...]


CONTRACT_DETAILS = NoticeType("UK7", "Contract details notice", "contractNotice",
                              ("award", "contract"))
CONTRACT_PERFORMANCE = NoticeType("UK9", "Contract performance notice", "implementationNotice",
                                  ("implementation",))
CONTRACT_CHANGE = NoticeType("UK10", "Contract change notice", "contractNotice",
                             ("contractAmendment",))
CONTRACT_TERMINATION = NoticeType("UK11", "Contract termination notice",
                                  "contractTerminationNotice", ("contractTermination",))
NOTICE_TYPES = {n.code: n for n in (CONTRACT_DETAILS, CONTRACT_PERFORMANCE, CONTRACT_CHANGE,
                                    CONTRACT_TERMINATION)}


class KpiRating(StrEnum):
    """A KPI's rating in a contract performance notice (the UK extension's ids)."""

    MET = "met"
    SLIGHTLY_BELOW = "slightlyBelow"
    BELOW = "below"
    SIGNIFICANTLY_BELOW = "significantlyBelow"


# As the Procurement Regulations 2024 and Find a Tender's form word them.
RATING_NAMES = {
    KpiRating.MET: "Good",
    KpiRating.SLIGHTLY_BELOW: "Approaching target",
    KpiRating.BELOW: "Requires improvement",
    KpiRating.SIGNIFICANTLY_BELOW: "Inadequate",
}
RATING_SCHEME = "UK_KPI_RATING"


def kpi_rating(lower_is_better: bool, baseline: Decimal | None, target: Decimal,
               actual: Decimal) -> KpiRating:
    """One KPI (a measure tied to the contract) in one period, by the rule in the module
    docstring."""
    rag = measure_rag(lower_is_better, baseline, target, actual)
    if rag is Rag.GREEN:
        return KpiRating.MET
    if rag is Rag.AMBER:
        return KpiRating.SLIGHTLY_BELOW
    if baseline is None:
        return KpiRating.BELOW
    targeted = improvement(lower_is_better, baseline, target)
    achieved = improvement(lower_is_better, baseline, actual)
    if targeted > 0 and 2 * achieved >= targeted:
        return KpiRating.BELOW
    return KpiRating.SIGNIFICANTLY_BELOW
