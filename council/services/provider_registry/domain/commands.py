"""What the registry accepts from the outside (HTTP bodies, CSV rows), validated field by field
before any command runs. Identifiers and postcodes are normalised so the same organisation is
recognised however it was typed."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from council.kernel.contracts.provider_registry import OrganisationType, StandingKind
from council.kernel.taxonomy import taxonomy
from council.kernel.text import ONE_LINE, BusinessDate, LongText, Reason, Text
from council.services.provider_registry.domain.providers import size_band


def _squash(value: str) -> str:
    return re.sub(r"\s+", "", value).upper()


def _matching(pattern: str, what: str) -> Any:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        value = _squash(value)
        if not compiled.fullmatch(value):
            raise ValueError(f"not a valid {what}")
        return value

    return AfterValidator(check)


CompaniesHouseNumber = Annotated[
    str, _matching(r"[0-9]{8}|[A-Z]{2}[0-9]{6}", "Companies House number (8 characters)")
]
CharityNumber = Annotated[
    str,
    _matching(r"[0-9]{6,7}(-[0-9]{1,2})?|SC0[0-9]{5}", "charity number (e.g. 1234567, SC012345)"),
]
UKPRN = Annotated[str, _matching(r"1[0-9]{7}", "UK provider reference number (1 + 7 digits)")]

_POSTCODE = re.compile(r"(GIR0AA|[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2})")


def _postcode(value: str) -> str:
    squashed = _squash(value)
    if not _POSTCODE.fullmatch(squashed):
        raise ValueError("not a valid UK postcode")
    return f"{squashed[:-3]} {squashed[-3:]}"


Postcode = Annotated[str, AfterValidator(_postcode)]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    ),
    ONE_LINE,
]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{7,20}$")
]
Url = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500,
                                       pattern=r"^https?://[^\s]+$"), ONE_LINE]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class IdentifiersIn(_Input):
    companies_house: CompaniesHouseNumber | None = None
    charity_number: CharityNumber | None = None
    ukprn: UKPRN | None = None


class ContactIn(_Input):
    name: Text | None = None
    email: Email | None = None
    phone: Phone | None = None


class AddressIn(_Input):
    lines: list[Text] = Field(default_factory=list, max_length=4)
    town: Text | None = None
    county: Text | None = Field(default=None, description="county or unitary area")
    postcode: Postcode


class SmeSizeIn(_Input):
    headcount: int = Field(ge=0, le=1_000_000, description="staff headcount")
    turnover_gbp: int = Field(ge=0, le=10**12, description="annual turnover in pounds")

    def as_event(self) -> dict[str, Any]:
        band = size_band(self.headcount, self.turnover_gbp)
        return {"headcount": self.headcount, "turnover_gbp": self.turnover_gbp,
                "band": band.value if band else None}


Area = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                 ONE_LINE]


class DetailsIn(_Input):
    """The optional details shared by registration and updates."""

    description: LongText | None = None
    website: Url | None = None
    identifiers: IdentifiersIn | None = None
    contact: ContactIn | None = None
    address: AddressIn | None = None
    areas_served: list[Area] | None = Field(default=None, max_length=200)
    sme_size: SmeSizeIn | None = None
    members: list[UUID] | None = Field(default=None, max_length=100)

    @field_validator("areas_served", "members", mode="before")
    @classmethod
    def _null_list_is_empty(cls, value: Any) -> Any:
        # A list given as null means an empty one (clears it in an update): published lists
        # are never null.
        return [] if value is None else value

    @field_validator("members")
    @classmethod
    def _distinct_members(cls, value: list[UUID] | None) -> list[UUID] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("a member is listed more than once")
        return value


class NewProvider(DetailsIn):
    """A provider's application to join the network."""

    name: Text = Field(description="the provider's legal or trading name")
    organisation_type: OrganisationType

    def details(self) -> dict[str, Any]:
        """The details as they are recorded in the ProviderRegistered event."""
        return details_of(self, exclude={"name", "organisation_type"})


class DetailsUpdate(DetailsIn):
    """Fields to change; those left out keep their values."""

    name: Text | None = None

    @field_validator("name")
    @classmethod
    def _name_kept(cls, value: str | None) -> str | None:
        # null would clear the name (every provider has one): give a new one or leave it out.
        if value is None:
            raise ValueError("a provider's name cannot be removed")
        return value

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one field to update")
        return self


def details_of(model: BaseModel, exclude: set[str] | None = None) -> dict[str, Any]:
    """Plain JSON details for an event: only the fields given, SME size with its band."""
    data: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True, exclude=exclude)
    sme = getattr(model, "sme_size", None)
    if "sme_size" in data and sme is not None:
        data["sme_size"] = sme.as_event()
    if data.get("identifiers") is not None:
        data["identifiers"] = {k: v for k, v in data["identifiers"].items() if v}
    return data


class Decision(_Input):
    reason: Reason = Field(description="why: recorded with the decision for the audit trail")


def _known_category(code: str) -> str:
    if not taxonomy().has(code):
        raise ValueError("not a category of the service taxonomy (GET /taxonomy lists them)")
    return code


Category = Annotated[str, AfterValidator(_known_category)]


class CapacityIn(_Input):
    amount: int = Field(ge=0, le=10**9)
    unit: Text = Field(examples=["hours of care per week", "places"])


class NewCapability(_Input):
    category: Category
    description: LongText | None = None
    areas: list[Area] = Field(default_factory=list, max_length=200)
    capacity: CapacityIn | None = None


class NewAccreditation(_Input):
    kind: StandingKind
    name: Text = Field(examples=["ISO 9001", "Enhanced DBS checks for all staff"])
    issuer: Text | None = None
    reference: Text | None = None
    valid_from: BusinessDate | None = None
    expires_on: BusinessDate | None = None
    cover_gbp: int | None = Field(default=None, ge=0, le=10**11,
                                  description="insurance cover, for kind insurance")

    # Field validators (not one for the model) so the error names the field at fault.
    @field_validator("expires_on")
    @classmethod
    def _after_valid_from(cls, value: date | None, info: ValidationInfo) -> date | None:
        valid_from = info.data.get("valid_from")
        if value and valid_from and value < valid_from:
            raise ValueError("expires_on is before valid_from")
        return value

    @field_validator("cover_gbp")
    @classmethod
    def _insurance_only(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("kind") is not StandingKind.INSURANCE:
            raise ValueError("cover_gbp applies only to kind insurance")
        return value


class NewQualityRating(_Input):
    scheme: Text = Field(examples=["CQC", "Ofsted"])
    rating: Text = Field(examples=["Good", "Requires improvement"])
    rated_on: BusinessDate
    reference: Text | None = None

    @field_validator("rated_on")
    @classmethod
    def _not_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("a rating cannot be given in the future")
        return value


class NewConflictOfInterest(_Input):
    declared_by: Text
    interest: LongText
    declared_on: BusinessDate


class MilestoneIn(_Input):
    title: Text
    due_on: BusinessDate | None = None


class IncubationPlan(_Input):
    support_plan: LongText
    milestones: list[MilestoneIn] = Field(min_length=1, max_length=50)
    reason: Reason


class MilestoneEvidence(_Input):
    evidence: LongText
