"""The Local Government Transparency Code 2015: what of the council's spending and contracts it
must publish, and in which columns. Pure rules; the registers are read from the integrator's read
models (projections/registers.py) and served as CSV with their Table Schema (api/transparency.py).

The Code (https://www.gov.uk/government/publications/local-government-transparency-code-2015),
part 2, asks, each quarter:

- **Expenditure exceeding £500**: for each individual item, the date the expenditure was
  incurred, the local authority department which incurred it, the beneficiary, a summary of its
  purpose, the amount, the VAT that cannot be recovered and the merchant category. The LGA's
  practitioners' guide to the Code counts credit notes over £500 as items too, so a credit
  recovered from a provider of more than £500 is published, as a negative amount.
- **Contracts exceeding £5,000** (the contracts register): reference number, title of the
  agreement, the department responsible, a description of the goods or services, the supplier's
  name and details, the sum to be paid over the length of the contract, the VAT that cannot be
  recovered, the start, end and review dates, whether the contract was the result of an
  invitation to quote or a published invitation to tender, and whether the supplier is a small
  or medium-sized enterprise or a voluntary or community sector organisation, with its
  registration number.

"Exceeds" is strictly more than: an item of exactly £500.00, or a contract of exactly
£5,000.00, is not published.
"""

from __future__ import annotations

from decimal import Decimal

from council.kernel.contracts.integrator import ArrangementType, SourcingOption
from council.kernel.contracts.provider_registry import OrganisationType
from council.kernel.money import to_penny

SPEND_THRESHOLD = Decimal("500.00")
CONTRACT_THRESHOLD = Decimal("5000.00")

# How the Code's question "an invitation to quote or a published invitation to tender?" is
# answered from the option the council recommended when it appraised its options.
TENDERED = "published invitation to tender"
QUOTED = "invitation to quote"
NEITHER = "neither"


def spend_is_published(amount: Decimal) -> bool:
    """Whether one payment (or credit) is an item of expenditure exceeding £500."""
    return abs(to_penny(amount)) > SPEND_THRESHOLD


def contract_is_published(value: Decimal) -> bool:
    """Whether an agreement of this value belongs in the contracts register."""
    return to_penny(value) > CONTRACT_THRESHOLD


def procurement_route(recommended: SourcingOption | None, market_engaged: bool) -> str:
    """Whether the agreement came from a published invitation to tender (a formal contract,
    openly tendered), an invitation to quote (the council engaged the market and asked
    providers for proposals) or neither (in-house, a shared service, an informal agreement, or
    a grant or call-off made without engaging the market)."""
    if recommended is SourcingOption.FORMAL_CONTRACT:
        return TENDERED
    if market_engaged:
        return QUOTED
    return NEITHER


def supplier_kind(organisation_type: OrganisationType) -> str:
    """The Code's question: is the supplier an SME or a voluntary or community sector
    organisation? "SME", "VCSE" or "" (neither: a public body, a large firm, a partnership)."""
    if organisation_type is OrganisationType.SME:
        return "SME"
    if organisation_type in (OrganisationType.VCSE, OrganisationType.COMMUNITY_GROUP):
        return "VCSE"
    return ""


def registration_number(identifiers: dict[str, str]) -> str:
    """The supplier's registration number: its Companies House number, else its charity
    number ("" when it gave neither)."""
    return identifiers.get("companies_house") or identifiers.get("charity_number") or ""


MERCHANT_CATEGORIES: dict[ArrangementType, str] = {
    ArrangementType.INFORMAL_SLA: "Service level agreement",
    ArrangementType.GRANT: "Grant",
    ArrangementType.CALL_OFF: "Framework call-off",
    ArrangementType.SHARED_SERVICE: "Shared service",
    ArrangementType.FORMAL_CONTRACT: "Contract for services",
}
