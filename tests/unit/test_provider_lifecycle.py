"""The Provider aggregate's onboarding lifecycle and rules, with no I/O: every transition of the
TRANSITIONS table from every status, incubation, credentials, closed records, details,
capabilities, standing, the SME and partnership profile rules, replay and upcasting."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import date
from functools import reduce
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from council.kernel.contracts.provider_registry import (
    OrganisationType,
    ProviderRegistered,
    ProviderStatus,
    SizeBand,
    StandingKind,
)
from council.kernel.errors import DomainRuleBroken, InvalidInput
from council.platform.eventstore import open_application
from council.platform.settings import Settings
from council.services.provider_registry.application import ProviderRegistry
from council.services.provider_registry.domain.providers import (
    CLOSED,
    TRANSITIONS,
    Provider,
    check_profile,
    is_expired,
    size_band,
)

S = ProviderStatus
ALL_STATUSES = list(ProviderStatus)
REASON = "recorded for the audit trail"
MILESTONES: list[dict[str, Any]] = [
    {"milestone_id": "m1", "title": "Safeguarding policy adopted", "due_on": "2026-09-30"},
    {"milestone_id": "m2", "title": "First 50 meals delivered", "due_on": None},
]

# The event each lifecycle command records.
EVENT_OF: dict[str, type] = {
    "start_review": Provider.ReviewStarted,
    "approve": Provider.Approved,
    "reject": Provider.Rejected,
    "incubate": Provider.IncubationStarted,
    "graduate": Provider.Graduated,
    "suspend": Provider.Suspended,
    "reinstate": Provider.Reinstated,
    "exit": Provider.Exited,
}

# How to reach each status by legal steps from `applied`.
PATHS: dict[ProviderStatus, tuple[str, ...]] = {
    S.APPLIED: (),
    S.UNDER_REVIEW: ("start_review",),
    S.INCUBATING: ("start_review", "incubate"),
    S.APPROVED: ("start_review", "approve"),
    S.SUSPENDED: ("start_review", "approve", "suspend"),
    S.EXITED: ("start_review", "approve", "exit"),
    S.REJECTED: ("reject",),
}


def new_provider(kind: str = "vcse", **details: Any) -> Provider:
    return Provider(  # type: ignore[call-arg]
        id=uuid4(), name="Hillside Kitchen", organisation_type=kind, details=details
    )


def run(provider: Provider, command: str, reason: str = REASON) -> str | None:
    """Run a lifecycle command with what it needs; returns the credentials id it gave, if any."""
    if command in ("approve", "reinstate", "graduate"):
        credentials_id = f"cred-{uuid4().hex[:8]}"
        getattr(provider, command)(reason, credentials_id)
        return credentials_id
    if command == "incubate":
        provider.incubate("Mentoring and a start-up grant", copy.deepcopy(MILESTONES), reason)
    else:
        getattr(provider, command)(reason)
    return None


def at(status: ProviderStatus, **details: Any) -> Provider:
    """A provider brought to `status` by legal steps, its events already collected."""
    provider = new_provider(**details)
    for command in PATHS[status]:
        run(provider, command)
    assert provider.status is status
    provider.collect_events()
    return provider


def replay(events: Sequence[Any]) -> Any:
    return reduce(lambda aggregate, event: event.mutate(aggregate), events, None)


def unchanged(
    provider: Provider, action: Callable[[], Any], match: str, field: str | None = None
) -> None:
    """`action` is refused with a message matching `match` (as invalid input naming `field`
    when one is given, else as a broken domain rule), and the provider is as it was."""
    before = copy.deepcopy(provider)
    if field is None:
        with pytest.raises(DomainRuleBroken, match=match):
            action()
    else:
        with pytest.raises(InvalidInput, match=match) as refused:
            action()
        assert refused.value.field == field
    assert provider.version == before.version
    assert provider.collect_events() == []
    assert provider == before


LEGAL = [(command, status) for command, (allowed, _) in TRANSITIONS.items() for status in allowed]
ILLEGAL = [
    (command, status)
    for command, (allowed, _) in TRANSITIONS.items()
    for status in ALL_STATUSES
    if status not in allowed
]


def test_the_transition_table_is_the_onboarding_lifecycle() -> None:
    # Written out here so a change to the table is a visible, deliberate change.
    assert {command: (set(allowed), to) for command, (allowed, to) in TRANSITIONS.items()} == {
        "start_review": ({S.APPLIED}, S.UNDER_REVIEW),
        "approve": ({S.UNDER_REVIEW}, S.APPROVED),
        "reject": ({S.APPLIED, S.UNDER_REVIEW, S.INCUBATING}, S.REJECTED),
        "incubate": ({S.UNDER_REVIEW}, S.INCUBATING),
        "graduate": ({S.INCUBATING}, S.APPROVED),
        "suspend": ({S.APPROVED}, S.SUSPENDED),
        "reinstate": ({S.SUSPENDED}, S.APPROVED),
        "exit": ({S.APPROVED, S.SUSPENDED, S.INCUBATING}, S.EXITED),
    }


def test_the_cases_cover_every_command_from_every_status() -> None:
    assert set(EVENT_OF) == set(TRANSITIONS)
    assert set(PATHS) == set(ALL_STATUSES)
    assert len(LEGAL) + len(ILLEGAL) == len(TRANSITIONS) * len(ALL_STATUSES)
    assert set(LEGAL).isdisjoint(ILLEGAL)


# --------------------------------------------------------------------------- transitions


@pytest.mark.parametrize(("command", "status"), LEGAL, ids=[f"{c}-from-{s}" for c, s in LEGAL])
def test_a_legal_transition_moves_to_its_status_and_records_one_event(
    command: str, status: ProviderStatus
) -> None:
    provider = at(status)
    if command == "graduate":
        for milestone in MILESTONES:
            provider.meet_milestone(milestone["milestone_id"], "evidence on file")
        provider.collect_events()
    version = provider.version

    run(provider, command, reason=f"because: {command}")

    assert provider.status is TRANSITIONS[command][1]
    assert provider.version == version + 1
    (event,) = provider.collect_events()
    assert type(event) is EVENT_OF[command]
    assert event.reason == f"because: {command}"
    assert event.originator_version == version + 1


@pytest.mark.parametrize(("command", "status"), ILLEGAL,
                         ids=[f"{c}-from-{s}" for c, s in ILLEGAL])
def test_an_illegal_transition_is_refused_naming_the_status_and_changes_nothing(
    command: str, status: ProviderStatus
) -> None:
    provider = at(status)
    allowed = ", ".join(sorted(s.value for s in TRANSITIONS[command][0]))

    unchanged(
        provider, lambda: run(provider, command),
        rf"^cannot {command.replace('_', ' ')} a provider that is {status.value}; "
        rf"allowed from: {allowed}$",
    )
    assert provider.status is status


def test_a_long_lifecycle_goes_the_whole_way_round() -> None:
    provider = new_provider()
    for command in ("start_review", "incubate"):
        run(provider, command)
    for milestone in MILESTONES:
        provider.meet_milestone(milestone["milestone_id"], "seen")
    for command in ("graduate", "suspend", "reinstate", "suspend", "exit"):
        run(provider, command)
    assert provider.status is S.EXITED
    assert [type(e).__name__ for e in provider.collect_events()] == [
        "Registered", "ReviewStarted", "IncubationStarted", "MilestoneMet", "MilestoneMet",
        "Graduated", "Suspended", "Reinstated", "Suspended", "Exited",
    ]


# --------------------------------------------------------------------------- incubation


def test_incubation_records_the_plan_with_every_milestone_unmet() -> None:
    provider = at(S.UNDER_REVIEW)
    provider.incubate("Mentoring", copy.deepcopy(MILESTONES), "the market needs it")

    (event,) = provider.collect_events()
    assert isinstance(event, Provider.IncubationStarted)
    assert (event.support_plan, event.milestones, event.reason) == (
        "Mentoring", MILESTONES, "the market needs it"
    )
    assert provider.incubation == {
        "support_plan": "Mentoring",
        "milestones": {
            "m1": {**MILESTONES[0], "met": False, "evidence": None},
            "m2": {**MILESTONES[1], "met": False, "evidence": None},
        },
    }
    assert [m["title"] for m in provider.unmet_milestones()] == [
        "Safeguarding policy adopted", "First 50 meals delivered"
    ]


def test_incubation_needs_at_least_one_milestone() -> None:
    provider = at(S.UNDER_REVIEW)
    unchanged(provider, lambda: provider.incubate("Mentoring", [], REASON),
              "at least one milestone")
    assert provider.incubation is None


def test_milestone_ids_must_be_distinct() -> None:
    provider = at(S.UNDER_REVIEW)
    twice = [{"milestone_id": "m1", "title": "A"}, {"milestone_id": "m1", "title": "B"}]
    unchanged(provider, lambda: provider.incubate("Mentoring", twice, REASON), "distinct")


def test_meeting_a_milestone_records_the_evidence() -> None:
    provider = at(S.INCUBATING)
    provider.meet_milestone("m1", "policy v1 adopted by the board")

    (event,) = provider.collect_events()
    assert isinstance(event, Provider.MilestoneMet)
    assert (event.milestone_id, event.evidence) == ("m1", "policy v1 adopted by the board")
    assert provider.incubation is not None
    assert provider.incubation["milestones"]["m1"]["met"] is True
    assert provider.incubation["milestones"]["m1"]["evidence"] == "policy v1 adopted by the board"
    assert [m["milestone_id"] for m in provider.unmet_milestones()] == ["m2"]
    assert provider.status is S.INCUBATING


def test_an_unknown_milestone_cannot_be_met() -> None:
    provider = at(S.INCUBATING)
    unchanged(provider, lambda: provider.meet_milestone("m9", "x"),
              "no milestone m9 in the incubation plan")


def test_a_milestone_cannot_be_met_twice() -> None:
    provider = at(S.INCUBATING)
    provider.meet_milestone("m1", "first")
    provider.collect_events()
    unchanged(provider, lambda: provider.meet_milestone("m1", "again"), "m1 was already met")
    assert provider.incubation is not None
    assert provider.incubation["milestones"]["m1"]["evidence"] == "first"


@pytest.mark.parametrize("status", [s for s in ALL_STATUSES if s is not S.INCUBATING])
def test_only_an_incubating_provider_meets_milestones(status: ProviderStatus) -> None:
    provider = at(status)
    unchanged(provider, lambda: provider.meet_milestone("m1", "x"),
              f"a provider that is {status.value} is not incubating")


def test_graduation_is_refused_while_milestones_are_unmet_and_lists_them() -> None:
    provider = at(S.INCUBATING)
    unchanged(
        provider, lambda: provider.graduate(REASON, "cred-1"),
        "^milestones not yet met: Safeguarding policy adopted; First 50 meals delivered$",
    )
    provider.meet_milestone("m1", "seen")
    provider.collect_events()
    unchanged(provider, lambda: provider.graduate(REASON, "cred-1"),
              "^milestones not yet met: First 50 meals delivered$")
    assert provider.credentials_id is None

    provider.meet_milestone("m2", "seen")
    provider.graduate("all milestones met", "cred-1")

    assert provider.status is S.APPROVED
    assert provider.credentials_id == "cred-1"
    *_, graduated = provider.collect_events()
    assert isinstance(graduated, Provider.Graduated)
    assert (graduated.reason, graduated.credentials_id) == ("all milestones met", "cred-1")


def test_graduation_checks_the_status_before_the_milestones() -> None:
    provider = at(S.UNDER_REVIEW)
    unchanged(provider, lambda: provider.graduate(REASON, "c"),
              "cannot graduate a provider that is under_review")


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize("command", ["approve", "graduate", "reinstate"])
def test_the_approving_commands_set_the_credentials_id(command: str) -> None:
    status = next(iter(TRANSITIONS[command][0]))
    provider = at(status)
    if command == "graduate":
        for milestone in MILESTONES:
            provider.meet_milestone(milestone["milestone_id"], "seen")
        provider.collect_events()
    assert provider.credentials_id is None

    given = run(provider, command)

    assert provider.credentials_id == given
    (event,) = provider.collect_events()
    assert event.credentials_id == given


@pytest.mark.parametrize("command", ["suspend", "exit"])
def test_suspending_and_exiting_clear_the_credentials_and_record_the_revoked_id(
    command: str,
) -> None:
    provider = at(S.UNDER_REVIEW)
    provider.approve(REASON, "cred-approved")
    provider.collect_events()

    run(provider, command)

    assert provider.credentials_id is None
    (event,) = provider.collect_events()
    assert event.revoked_credentials_id == "cred-approved"


def test_an_incubating_provider_exits_with_no_credentials_to_revoke() -> None:
    provider = at(S.INCUBATING)
    provider.exit(REASON)
    (event,) = provider.collect_events()
    assert isinstance(event, Provider.Exited)
    assert event.revoked_credentials_id is None


def test_reinstating_gives_new_credentials() -> None:
    provider = at(S.UNDER_REVIEW)
    provider.approve(REASON, "first")
    provider.suspend(REASON)
    provider.reinstate(REASON, "second")
    suspended = provider.collect_events()[-2]
    assert isinstance(suspended, Provider.Suspended)
    assert suspended.revoked_credentials_id == "first"
    assert provider.credentials_id == "second"


def test_rotating_replaces_the_credentials_and_returns_the_revoked_id() -> None:
    provider = at(S.UNDER_REVIEW)
    provider.approve(REASON, "old")
    provider.collect_events()

    revoked = provider.rotate_credentials("new")

    assert revoked == "old"
    assert provider.credentials_id == "new"
    (event,) = provider.collect_events()
    assert isinstance(event, Provider.CredentialsRotated)
    assert (event.credentials_id, event.revoked_credentials_id) == ("new", "old")
    assert provider.status is S.APPROVED


@pytest.mark.parametrize("status", [s for s in ALL_STATUSES if s is not S.APPROVED])
def test_only_an_approved_provider_rotates_credentials(status: ProviderStatus) -> None:
    provider = at(status)
    unchanged(provider, lambda: provider.rotate_credentials("new"),
              f"only an approved provider holds credentials; this one is {status.value}")


# --------------------------------------------------------------------------- closed records


def closed(status: ProviderStatus) -> Provider:
    """A closed record that had a capability and an accreditation before it closed."""
    provider = new_provider()
    provider.add_capability("cap-1", "home-care", None, [], None)
    provider.add_accreditation("acc-1", StandingKind.CERTIFICATION, "ISO 9001")
    for command in PATHS[status]:
        run(provider, command)
    provider.collect_events()
    return provider


CLOSED_CHANGES: dict[str, Callable[[Provider], Any]] = {
    "update_details": lambda p: p.update_details({"description": "new"}),
    "rename": lambda p: p.update_details({"name": "Another"}),
    "add_capability": lambda p: p.add_capability("cap-2", "catering", None, [], None),
    "remove_capability": lambda p: p.remove_capability("cap-1", REASON),
    "add_accreditation": lambda p: p.add_accreditation("acc-2", StandingKind.INSURANCE, "PL"),
    "remove_accreditation": lambda p: p.remove_accreditation("acc-1", REASON),
    "record_quality_rating": lambda p: p.record_quality_rating(
        "r-1", "CQC", "Good", date(2025, 1, 1), None),
}


def test_the_closed_statuses_are_exited_and_rejected() -> None:
    assert frozenset({S.EXITED, S.REJECTED}) == CLOSED


@pytest.mark.parametrize("status", sorted(CLOSED))
@pytest.mark.parametrize("change", list(CLOSED_CHANGES))
def test_a_closed_record_refuses_changes(status: ProviderStatus, change: str) -> None:
    provider = closed(status)
    unchanged(provider, lambda: CLOSED_CHANGES[change](provider),
              f"the record of a provider that is {status.value} is closed")


@pytest.mark.parametrize("status", sorted(CLOSED))
def test_a_closed_record_still_takes_conflict_of_interest_declarations(
    status: ProviderStatus,
) -> None:
    provider = closed(status)
    provider.declare_conflict_of_interest("d-1", "Cllr Smith", "Former trustee", date(2026, 1, 5))

    (event,) = provider.collect_events()
    assert isinstance(event, Provider.ConflictDeclared)
    assert event.declared_on == "2026-01-05"
    assert provider.conflicts_of_interest == [{
        "declaration_id": "d-1", "declared_by": "Cllr Smith", "interest": "Former trustee",
        "declared_on": "2026-01-05",
    }]
    assert provider.status is status


@pytest.mark.parametrize("status", sorted(set(ALL_STATUSES) - CLOSED))
@pytest.mark.parametrize("change", list(CLOSED_CHANGES))
def test_an_open_record_accepts_the_same_changes(status: ProviderStatus, change: str) -> None:
    provider = closed(status)  # the same set-up, but left open
    CLOSED_CHANGES[change](provider)
    assert len(provider.collect_events()) == 1


# --------------------------------------------------------------------------- details


def test_update_details_records_only_what_changed() -> None:
    provider = new_provider(description="Meals", website="https://a.example")
    provider.collect_events()

    provider.update_details({"name": "Hillside Meals", "description": "Meals",
                             "website": "https://b.example"})

    (event,) = provider.collect_events()
    assert isinstance(event, Provider.DetailsUpdated)
    assert event.changes == {"name": "Hillside Meals", "website": "https://b.example"}
    assert provider.name == "Hillside Meals"
    assert provider.details == {"description": "Meals", "website": "https://b.example"}


@pytest.mark.parametrize(
    "changes",
    [{"name": "Hillside Kitchen"}, {"description": "Meals"},
     {"name": "Hillside Kitchen", "description": "Meals"}, {"website": None}],
    ids=["same-name", "same-description", "both-same", "absent-stays-absent"],
)
def test_update_details_refuses_a_no_op(changes: dict[str, Any]) -> None:
    provider = new_provider(description="Meals")
    provider.collect_events()
    unchanged(provider, lambda: provider.update_details(changes), "nothing to update")


def test_update_details_keeps_the_profile_rules() -> None:
    sme = new_provider("sme", sme_size={"headcount": 5, "turnover_gbp": 10, "band": "micro"})
    sme.collect_events()
    unchanged(sme, lambda: sme.update_details({"sme_size": None}), "an SME must give",
              field="sme_size")
    unchanged(sme, lambda: sme.update_details({"members": [str(uuid4()), str(uuid4())]}),
              "only a partnership", field="members")
    over = {"headcount": 250, "turnover_gbp": 10, "band": None}
    unchanged(sme, lambda: sme.update_details({"sme_size": over}), "over the SME ceilings",
              field="sme_size")

    a, b = str(uuid4()), str(uuid4())
    partnership = new_provider("partnership", members=[a, b])
    partnership.collect_events()
    unchanged(partnership, lambda: partnership.update_details({"members": [a]}),
              "at least two distinct", field="members")
    partnership.update_details({"members": [a, b, str(uuid4())]})
    assert len(partnership.details["members"]) == 3


# --------------------------------------------------------------------------- capabilities


def test_capabilities_are_one_per_category() -> None:
    provider = new_provider()
    provider.add_capability("cap-1", "home-care", "Visits", ["Hillside"],
                            {"amount": 400, "unit": "hours per week"})
    provider.collect_events()

    unchanged(provider, lambda: provider.add_capability("cap-2", "home-care", None, [], None),
              "already has a capability in home-care")

    provider.add_capability("cap-3", "catering", None, [], None)
    assert set(provider.capabilities) == {"cap-1", "cap-3"}
    assert provider.capabilities["cap-1"] == {
        "capability_id": "cap-1", "category": "home-care", "description": "Visits",
        "areas": ["Hillside"], "capacity": {"amount": 400, "unit": "hours per week"},
    }


def test_a_removed_capability_frees_its_category() -> None:
    provider = new_provider()
    provider.add_capability("cap-1", "home-care", None, [], None)
    provider.remove_capability("cap-1", "no longer offered")
    provider.add_capability("cap-2", "home-care", None, [], None)

    removed = provider.collect_events()[2]
    assert isinstance(removed, Provider.CapabilityRemoved)
    assert (removed.capability_id, removed.reason) == ("cap-1", "no longer offered")
    assert list(provider.capabilities) == ["cap-2"]


def test_an_unknown_capability_cannot_be_removed() -> None:
    provider = new_provider()
    provider.collect_events()
    unchanged(provider, lambda: provider.remove_capability("cap-9", REASON),
              "has no capability cap-9")


# --------------------------------------------------------------------------- standing


def test_an_accreditation_cannot_expire_before_it_is_valid() -> None:
    provider = new_provider()
    provider.collect_events()
    unchanged(
        provider,
        lambda: provider.add_accreditation("acc-1", StandingKind.ACCREDITATION, "ISO 9001",
                                           valid_from=date(2026, 2, 1),
                                           expires_on=date(2026, 1, 31)),
        "cannot expire before it is valid",
    )
    # Valid for a single day is fine; dates travel as ISO strings.
    provider.add_accreditation("acc-1", StandingKind.INSURANCE, "PL", "Mutual", "PL-1",
                               date(2026, 2, 1), date(2026, 2, 1), 5_000_000)
    (event,) = provider.collect_events()
    assert (event.kind, event.valid_from, event.expires_on) == ("insurance", "2026-02-01",
                                                                "2026-02-01")
    assert provider.accreditations["acc-1"]["cover_gbp"] == 5_000_000


def test_an_unknown_accreditation_cannot_be_removed() -> None:
    provider = new_provider()
    provider.add_accreditation("acc-1", StandingKind.CERTIFICATION, "ISO 9001")
    provider.collect_events()
    unchanged(provider, lambda: provider.remove_accreditation("acc-2", REASON),
              "has no accreditation acc-2")
    provider.remove_accreditation("acc-1", "withdrawn")
    assert provider.accreditations == {}


@pytest.mark.parametrize(
    ("expires_on", "expired"),
    [(None, False), ("2026-03-09", True), ("2026-03-10", False), ("2026-03-11", False)],
    ids=["never", "yesterday", "today", "tomorrow"],
)
def test_is_expired(expires_on: str | None, expired: bool) -> None:
    assert is_expired(expires_on, date(2026, 3, 10)) is expired


def test_the_current_rating_is_the_latest_given() -> None:
    provider = new_provider()
    provider.record_quality_rating("r-2", "CQC", "Good", date(2025, 6, 1), None)
    provider.record_quality_rating("r-1", "CQC", "Requires improvement", date(2024, 1, 1), None)
    provider.record_quality_rating("r-3", "Ofsted", "Outstanding", date(2026, 1, 1), "x")

    current = provider.current_rating("CQC")
    assert current is not None
    assert current["rating"] == "Good"
    assert provider.current_rating("Nobody") is None


# --------------------------------------------------------------------------- profile rules


@pytest.mark.parametrize(
    ("headcount", "turnover", "band"),
    [
        (0, 0, SizeBand.MICRO),
        (9, 2_000_000, SizeBand.MICRO),
        (10, 2_000_000, SizeBand.SMALL),
        (9, 2_000_001, SizeBand.SMALL),
        (49, 10_000_000, SizeBand.SMALL),
        (50, 10_000_000, SizeBand.MEDIUM),
        (49, 10_000_001, SizeBand.MEDIUM),
        (249, 50_000_000, SizeBand.MEDIUM),
        (250, 50_000_000, None),
        (249, 50_000_001, None),
        (250, 0, None),
    ],
)
def test_size_band_boundaries(headcount: int, turnover: int, band: SizeBand | None) -> None:
    assert size_band(headcount, turnover) is band


def sme_size(headcount: int, turnover: int) -> dict[str, Any]:
    return {"headcount": headcount, "turnover_gbp": turnover}


@pytest.mark.parametrize(
    ("kind", "size", "members"),
    [
        (OrganisationType.SME, sme_size(249, 50_000_000), []),
        (OrganisationType.SME, sme_size(0, 0), []),
        (OrganisationType.VCSE, None, []),
        (OrganisationType.LARGE_PRIVATE, None, []),
        (OrganisationType.PARTNERSHIP, None, ["a", "b"]),
    ],
)
def test_profiles_that_keep_the_rules(
    kind: OrganisationType, size: dict[str, Any] | None, members: list[str]
) -> None:
    check_profile(kind, size, members)  # no error


@pytest.mark.parametrize(
    ("kind", "size", "members", "field", "match"),
    [
        (OrganisationType.SME, None, [], "sme_size",
         "an SME must give its headcount and turnover"),
        (OrganisationType.SME, sme_size(250, 1), [], "sme_size", "register as large_private"),
        (OrganisationType.SME, sme_size(1, 50_000_001), [], "sme_size",
         "register as large_private"),
        (OrganisationType.LARGE_PRIVATE, sme_size(1, 1), [], "sme_size",
         "applies only to organisation_type sme"),
        (OrganisationType.VCSE, sme_size(1, 1), [], "sme_size",
         "applies only to organisation_type sme"),
        (OrganisationType.PARTNERSHIP, None, [], "members",
         "a partnership needs at least two distinct members"),
        (OrganisationType.PARTNERSHIP, None, ["a"], "members",
         "a partnership needs at least two distinct members"),
        (OrganisationType.PARTNERSHIP, None, ["a", "a"], "members", "at least two distinct"),
        (OrganisationType.VCSE, None, ["a", "b"], "members",
         "only a partnership has member providers"),
        (OrganisationType.SME, sme_size(1, 1), ["a", "b"], "members", "only a partnership"),
    ],
)
def test_profiles_that_break_the_rules(
    kind: OrganisationType, size: dict[str, Any] | None, members: list[str], field: str,
    match: str,
) -> None:
    with pytest.raises(InvalidInput, match=match) as refused:
        check_profile(kind, size, members)
    assert refused.value.field == field


# --------------------------------------------------------------------------- replay


def test_a_long_history_replays_to_an_equal_provider() -> None:
    provider = new_provider("vcse", description="Meals", identifiers={"charity_number": "1234"})
    provider.update_details({"name": "Hillside Meals", "areas_served": ["Hillside"]})
    provider.add_capability("cap-1", "home-care", "Visits", ["Hillside"],
                            {"amount": 10, "unit": "places"})
    provider.add_capability("cap-2", "catering", None, [], None)
    provider.remove_capability("cap-2", "stopped")
    provider.add_accreditation("acc-1", StandingKind.INSURANCE, "PL", None, None,
                               date(2026, 1, 1), date(2027, 1, 1), 1_000_000)
    provider.add_accreditation("acc-2", StandingKind.SAFEGUARDING_CHECK, "DBS")
    provider.remove_accreditation("acc-2", "recorded in error")
    provider.record_quality_rating("r-1", "CQC", "Good", date(2025, 5, 1), "ref")
    provider.declare_conflict_of_interest("d-1", "Cllr Smith", "Trustee", date(2026, 1, 2))
    run(provider, "start_review")
    run(provider, "incubate")
    provider.meet_milestone("m1", "policy")
    provider.meet_milestone("m2", "meals")
    run(provider, "graduate")
    provider.rotate_credentials("rotated")
    run(provider, "suspend")
    run(provider, "reinstate")
    run(provider, "exit")
    provider.declare_conflict_of_interest("d-2", "Officer", "Related", date(2026, 2, 2))

    events = provider.collect_events()
    rebuilt = replay(events)

    assert len(events) == provider.version == 20
    assert isinstance(rebuilt, Provider)
    assert rebuilt == provider
    assert rebuilt.status is S.EXITED
    assert rebuilt.name == "Hillside Meals"
    assert rebuilt.details["areas_served"] == ["Hillside"]
    assert list(rebuilt.capabilities) == ["cap-1"]
    assert list(rebuilt.accreditations) == ["acc-1"]
    assert rebuilt.incubation == provider.incubation
    assert [c["declaration_id"] for c in rebuilt.conflicts_of_interest] == ["d-1", "d-2"]
    assert rebuilt.credentials_id is None
    # Part of the history gives the provider as it stood then.
    as_approved = replay(events[:16])
    assert as_approved.status is S.APPROVED
    assert as_approved.credentials_id == "rotated"
    assert replay(events[:17]).status is S.SUSPENDED


# --------------------------------------------------------------------------- upcasting


def test_a_v1_registration_without_details_is_upcast(tmp_path: Path) -> None:
    registry = open_application(ProviderRegistry, Settings(var_dir=tmp_path))
    try:
        provider = new_provider()
        (registered,) = provider.collect_events()
        current = registry.mapper.to_stored_event(registered)
        state = registry.mapper.transcoder.decode(current.state)
        assert state.pop("class_version") == 2
        del state["details"]  # as the foundation slice stored it
        v1 = StoredEvent(current.originator_id, current.originator_version, current.topic,
                         registry.mapper.transcoder.encode(state))
        registry.recorder.insert_events([v1])

        stored = registry.provider(provider.id)
        assert stored.details == {}
        assert (stored.name, stored.status) == ("Hillside Kitchen", S.APPLIED)
        (notification,) = registry.recorder.select_notifications(start=1, limit=10)
        envelope = registry.to_envelope(notification)
        assert ProviderRegistered.model_validate(envelope.data).name == "Hillside Kitchen"
        assert envelope.data == {"provider_id": str(provider.id), "name": "Hillside Kitchen",
                                 "organisation_type": "vcse"}
        # An upcast provider carries on as any other.
        stored.start_review(REASON)
        registry.save(stored)
        assert registry.provider(provider.id).status is S.UNDER_REVIEW
    finally:
        registry.close()
