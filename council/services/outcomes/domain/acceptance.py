"""Which delivery reports the outcomes service accepts, and what became of each: the rules
a report meets before it is stored (an agreement known here, the provider a party to it, the
agreement active, the period within its term). Pure: the agreements are what the service has
read from the shared log, handed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from council.services.outcomes.domain.commands import DeliveryIn


@dataclass(frozen=True)
class AgreementInfo:
    """What this service knows of an agreement from the shared log."""

    agreement_id: UUID
    status: str  # drafted | active | ended
    provider_ids: frozenset[UUID]
    starts_on: date | None = None  # None: the term is not known here
    ends_on: date | None = None  # its end now: as extended, or the day it ended early
    # How often its results are paid (monthly | quarterly), from its reward terms; None when
    # they name none (agreements drafted before the field existed, or without reward terms).
    payment_frequency: str | None = None

    @property
    def term(self) -> tuple[date, date] | None:
        """The first and last day of the agreement's term, if known."""
        if self.starts_on is None or self.ends_on is None:
            return None
        return self.starts_on, self.ends_on


# Why a delivery report was rejected: bad input (HTTP 422), not the provider's agreement (403),
# or a clash with what is recorded: an inactive agreement, a reused key, a report already
# corrected (409).
INVALID, FORBIDDEN, CONFLICT = "invalid", "forbidden", "conflict"

@dataclass
class DeliveryOutcome:
    """What became of one delivery report: accepted (new or a replay) or rejected, and why."""

    index: int
    delivery_id: UUID | None = None
    duplicate: bool = False
    # A duplicate of a report stored before this batch (by an earlier request: perhaps an
    # earlier attempt at this very batch whose answer was lost), not of an earlier line of it.
    already_stored: bool = False
    error: str | None = None
    field: str | None = None
    code: str | None = None  # INVALID, FORBIDDEN or CONFLICT when rejected


def check_within_term(report: DeliveryIn,
                      agreement: AgreementInfo) -> tuple[str, str] | None:
    """The field and reason if the report's period is outside the agreement's term: delivery
    before an agreement began or after it ends was not delivered under it (a period typed
    as 0001-01-01 or 1900-01-01 would otherwise be summed and paid for)."""
    if agreement.starts_on is not None and report.period_start < agreement.starts_on:
        return "period_start", (f"period_start {report.period_start} is before the agreement "
                                f"started on {agreement.starts_on}")
    if agreement.ends_on is not None and report.period_end > agreement.ends_on:
        return "period_end", (f"period_end {report.period_end} is after the agreement ends "
                              f"on {agreement.ends_on}")
    return None


def accept(provider_id: UUID, report: DeliveryIn, agreements: dict[UUID, AgreementInfo],
           index: int, delivery_id: UUID) -> DeliveryOutcome:
    """Whether a provider may report this delivery: the agreement is known here, is one of
    the provider's, is active, and the period is within its term. Accepted (with its id) or
    rejected with the field at fault and why."""
    agreement = agreements.get(report.agreement_id)
    if agreement is None:
        return DeliveryOutcome(
            index, error=f"no agreement {report.agreement_id} in the shared log (yet)",
            field="agreement_id", code=INVALID,
        )
    if provider_id not in agreement.provider_ids:
        return DeliveryOutcome(index, error="the agreement is not one of this provider's",
                               field="agreement_id", code=FORBIDDEN)
    if agreement.status != "active":
        return DeliveryOutcome(
            index, error=f"the agreement is {agreement.status}, not active: delivery is "
            "reported only against active agreements", field="agreement_id", code=CONFLICT,
        )
    outside = check_within_term(report, agreement)
    if outside is not None:
        return DeliveryOutcome(index, error=outside[1], field=outside[0], code=INVALID)
    return DeliveryOutcome(index, delivery_id=delivery_id)
