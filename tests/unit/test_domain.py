"""Aggregates, their replay, the applications that store them, and the envelopes they publish."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import reduce
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.sqlite import SQLiteApplicationRecorder

from council.kernel.context import CommandContext, command_context
from council.kernel.contracts.outcomes import Direction, OutcomeMeasureDefined
from council.kernel.contracts.provider_registry import (
    Identifiers,
    OrganisationType,
    ProviderRegistered,
    ProviderStatus,
)
from council.kernel.envelope import event_id_for
from council.kernel.errors import NotFound, PersistenceNotConfigured
from council.platform.eventstore import CouncilApplication, open_application, persistence_env
from council.platform.settings import Settings
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.aggregates import OutcomeMeasure
from council.services.outcomes.domain.commands import NewMeasure
from council.services.provider_registry.application import (
    ProviderRegistry,
    claim_id_for,
    provider_id_for,
)
from council.services.provider_registry.domain.commands import NewProvider
from council.services.provider_registry.domain.providers import Provider


def applicant(name: str, kind: OrganisationType, **details: Any) -> NewProvider:
    """A valid application; an SME gets a size unless one is given."""
    if kind is OrganisationType.SME:
        details.setdefault("sme_size", {"headcount": 12, "turnover_gbp": 900_000})
    return NewProvider.model_validate({"name": name, "organisation_type": kind, **details})


def replay(events: Sequence[Any]) -> Any:
    """An aggregate rebuilt from its events alone."""
    return reduce(lambda aggregate, event: event.mutate(aggregate), events, None)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path)


@pytest.fixture
def registry(settings: Settings) -> Iterator[ProviderRegistry]:
    app = open_application(ProviderRegistry, settings)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def outcomes(settings: Settings) -> Iterator[Outcomes]:
    app = open_application(Outcomes, settings)
    try:
        yield app
    finally:
        app.close()


def stored(app: CouncilApplication) -> list[Any]:
    return list(app.recorder.select_notifications(start=1, limit=100))


# --------------------------------------------------------------------------- Provider


def test_a_new_provider_records_one_registered_event_with_its_fields() -> None:
    provider_id = uuid4()
    details = {"description": "Meals on wheels", "areas_served": ["Hillside"]}
    provider = Provider(  # type: ignore[call-arg]
        id=provider_id, name="Hillside Kitchen", organisation_type="vcse", details=details
    )

    assert provider.id == provider_id
    assert provider.name == "Hillside Kitchen"
    assert provider.organisation_type is OrganisationType.VCSE
    assert provider.details == details
    assert provider.status is ProviderStatus.APPLIED
    assert provider.credentials_id is None
    assert provider.version == 1
    events = provider.collect_events()
    assert len(events) == 1
    (registered,) = events
    assert isinstance(registered, Provider.Registered)
    assert registered.originator_id == provider_id
    assert registered.originator_version == 1
    assert registered.name == "Hillside Kitchen"
    assert registered.details == details
    # The event carries the plain value, so what is stored never depends on the enum class.
    assert registered.organisation_type == "vcse"
    assert type(registered.organisation_type) is str
    assert provider.collect_events() == []  # collected once


@pytest.mark.parametrize("kind", list(OrganisationType))
def test_every_organisation_type_is_accepted(kind: OrganisationType) -> None:
    provider = Provider(id=uuid4(), name="Any", organisation_type=kind.value, details={})  # type: ignore[call-arg]
    assert provider.organisation_type is kind


@pytest.mark.parametrize("kind", ["charity", "VCSE", "", "public body"])
def test_an_unknown_organisation_type_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match="OrganisationType"):
        Provider(id=uuid4(), name="Hillside Kitchen", organisation_type=kind, details={})  # type: ignore[call-arg]


def test_a_provider_replayed_from_its_events_equals_the_original() -> None:
    sme_size = {"headcount": 4, "turnover_gbp": 150_000, "band": "micro"}
    provider = Provider(  # type: ignore[call-arg]
        id=uuid4(), name="Hillside Kitchen", organisation_type="sme",
        details={"sme_size": sme_size},
    )
    rebuilt = replay(provider.collect_events())

    assert isinstance(rebuilt, Provider)
    assert rebuilt == provider
    assert rebuilt.id == provider.id
    assert rebuilt.name == "Hillside Kitchen"
    assert rebuilt.organisation_type is OrganisationType.SME
    assert rebuilt.details == {"sme_size": sme_size}
    assert rebuilt.version == provider.version == 1
    assert rebuilt.created_on == provider.created_on


# --------------------------------------------------------------------------- OutcomeMeasure


def test_a_new_measure_records_one_defined_event_with_its_fields() -> None:
    measure_id = uuid4()
    measure = OutcomeMeasure(  # type: ignore[call-arg]
        id=measure_id, name="Teenage obesity rate", unit="%", direction="lower_is_better"
    )

    assert (measure.id, measure.name, measure.unit) == (measure_id, "Teenage obesity rate", "%")
    assert measure.direction is Direction.LOWER_IS_BETTER
    (defined,) = measure.collect_events()
    assert isinstance(defined, OutcomeMeasure.Defined)
    assert defined.originator_id == measure_id
    assert (defined.name, defined.unit, defined.direction) == (
        "Teenage obesity rate", "%", "lower_is_better"
    )


@pytest.mark.parametrize("direction", ["up", "higher", "LOWER_IS_BETTER", ""])
def test_an_unknown_direction_is_refused(direction: str) -> None:
    with pytest.raises(ValueError, match="Direction"):
        OutcomeMeasure(id=uuid4(), name="Rate", unit="%", direction=direction)  # type: ignore[call-arg]


def test_a_measure_replayed_from_its_events_equals_the_original() -> None:
    measure = OutcomeMeasure(  # type: ignore[call-arg]
        id=uuid4(), name="Adults in work", unit="people", direction="higher_is_better"
    )
    rebuilt = replay(measure.collect_events())

    assert isinstance(rebuilt, OutcomeMeasure)
    assert rebuilt == measure
    assert rebuilt.direction is Direction.HIGHER_IS_BETTER


# --------------------------------------------------------------------------- applications


def test_a_registered_provider_reads_back_from_the_sqlite_store(
    registry: ProviderRegistry, settings: Settings
) -> None:
    provider_id, created = registry.register_provider(
        applicant("Hillside Kitchen", OrganisationType.VCSE, address={"postcode": "ls1 4ap"})
    )

    assert created is True
    assert settings.sqlite_path("provider_registry").exists()
    provider = registry.provider(provider_id)
    assert isinstance(provider, Provider)
    assert provider.id == provider_id
    assert provider.name == "Hillside Kitchen"
    assert provider.organisation_type is OrganisationType.VCSE
    assert provider.details == {"address": {"postcode": "LS1 4AP"}}
    assert provider.version == 1
    notifications = stored(registry)
    assert len(notifications) == 1
    assert notifications[0].originator_id == provider_id


def test_a_provider_survives_reopening_the_store(settings: Settings) -> None:
    first = open_application(ProviderRegistry, settings)
    try:
        provider_id, _ = first.register_provider(
            applicant("Northside Trust", OrganisationType.PUBLIC_BODY, website="https://n.example")
        )
        original = first.provider(provider_id)
    finally:
        first.close()

    second = open_application(ProviderRegistry, settings)
    try:
        again = second.provider(provider_id)
    finally:
        second.close()
    assert again == original
    assert again.organisation_type is OrganisationType.PUBLIC_BODY


def test_registering_twice_with_one_idempotency_key_registers_once(
    registry: ProviderRegistry,
) -> None:
    first_id, first_created = registry.register_provider(
        applicant("Hillside Kitchen", OrganisationType.VCSE), idempotency_key="req-42"
    )
    second_id, second_created = registry.register_provider(
        applicant("Hillside Kitchen", OrganisationType.VCSE), idempotency_key="req-42"
    )

    assert first_created is True
    assert second_created is False
    assert second_id == first_id == provider_id_for("req-42")
    assert len(stored(registry)) == 1
    assert registry.provider(first_id).version == 1


def test_different_idempotency_keys_and_no_key_register_separate_providers(
    registry: ProviderRegistry,
) -> None:
    a, _ = registry.register_provider(applicant("A", OrganisationType.SME), idempotency_key="key-a")
    b, _ = registry.register_provider(applicant("B", OrganisationType.SME), idempotency_key="key-b")
    c, created_c = registry.register_provider(applicant("C", OrganisationType.SME))
    d, created_d = registry.register_provider(applicant("C", OrganisationType.SME))

    assert len({a, b, c, d}) == 4
    assert created_c
    assert created_d
    assert len(stored(registry)) == 4


def test_an_unknown_provider_is_not_found(registry: ProviderRegistry) -> None:
    missing = uuid4()
    with pytest.raises(NotFound, match=str(missing)):
        registry.provider(missing)


def test_an_identifier_claim_is_not_a_provider(registry: ProviderRegistry) -> None:
    # Claims live in the same store under ids anyone can work out from the identifier.
    registry.register_provider(applicant("Hillside Kitchen", OrganisationType.VCSE,
                                         identifiers={"companies_house": "12345678"}))
    claim = claim_id_for("companies_house", "12345678")
    with pytest.raises(NotFound, match=str(claim)):
        registry.provider(claim)
    with pytest.raises(NotFound, match=str(claim)):
        registry.history(claim)


def test_measures_are_defined_idempotently_and_read_back(outcomes: Outcomes) -> None:
    new = NewMeasure(name="Teenage obesity rate", unit="%", direction=Direction.LOWER_IS_BETTER)
    measure_id, created = outcomes.define_measure(new, idempotency_key="m-1")
    again_id, again_created = outcomes.define_measure(new, idempotency_key="m-1")

    assert (created, again_created) == (True, False)
    assert again_id == measure_id
    assert len(stored(outcomes)) == 1
    measure = outcomes.measure(measure_id)
    assert (measure.name, measure.unit) == ("Teenage obesity rate", "%")
    assert measure.direction is Direction.LOWER_IS_BETTER
    with pytest.raises(NotFound):
        outcomes.measure(uuid4())


# --------------------------------------------------------------------------- persistence


class _Scratch(CouncilApplication):
    service = "scratch"


def test_open_application_refuses_to_keep_events_in_memory(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever the environment came to say, memory is refused.
    monkeypatch.setattr(
        "council.platform.eventstore.persistence_env",
        lambda *_: {"PERSISTENCE_MODULE": "eventsourcing.popo"},
    )

    with pytest.raises(PersistenceNotConfigured, match="scratch would keep its events in memory"):
        open_application(_Scratch, settings)


def test_stray_process_environment_cannot_redirect_a_store(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The library would let <NAME>_PERSISTENCE_MODULE or PERSISTENCE_MODULE in the process
    # override what we pass; our settings are the only source of persistence configuration.
    monkeypatch.setenv(f"{_Scratch.name.upper()}_PERSISTENCE_MODULE", "eventsourcing.popo")
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.popo")
    app = open_application(_Scratch, settings)
    try:
        assert isinstance(app.recorder, SQLiteApplicationRecorder)
    finally:
        app.close()


def test_open_application_uses_sqlite_under_var_dir(settings: Settings) -> None:
    app = open_application(_Scratch, settings)
    try:
        assert isinstance(app.recorder, SQLiteApplicationRecorder)
    finally:
        app.close()
    assert settings.sqlite_path("scratch") == settings.var_dir / "scratch.sqlite"
    assert settings.sqlite_path("scratch").exists()


def test_persistence_env_for_sqlite_names_one_file_per_service(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "not" / "yet")
    env = persistence_env(settings, "outcomes")

    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == str(tmp_path / "not" / "yet" / "outcomes.sqlite")
    assert env["CREATE_TABLE"] == "y"
    assert not any(key.startswith("POSTGRES_") for key in env)
    assert (tmp_path / "not" / "yet").is_dir()  # created so SQLite can make the file
    assert persistence_env(settings, "integrator")["SQLITE_DBNAME"].endswith("integrator.sqlite")


def test_persistence_env_for_postgres_gives_each_service_its_schema(tmp_path: Path) -> None:
    settings = Settings(
        var_dir=tmp_path,
        database_url="postgresql://council%40ops:p%40ss%2Fw%3Ard@db.example:6543/council",
        schema_prefix="cty",
    )
    env = persistence_env(settings, "provider_registry")

    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert env["POSTGRES_HOST"] == "db.example"
    assert env["POSTGRES_PORT"] == "6543"
    assert env["POSTGRES_DBNAME"] == "council"
    assert env["POSTGRES_USER"] == "council@ops"
    assert env["POSTGRES_PASSWORD"] == "p@ss/w:rd"
    assert env["POSTGRES_SCHEMA"] == "cty_provider_registry"
    assert persistence_env(settings, "outcomes")["POSTGRES_SCHEMA"] == "cty_outcomes"
    assert "SQLITE_DBNAME" not in env
    assert list(tmp_path.iterdir()) == []  # nothing written locally for PostgreSQL


def test_persistence_env_for_postgres_fills_defaults(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, database_url="postgres://dbhost")
    env = persistence_env(settings, "integrator")

    assert env["POSTGRES_HOST"] == "dbhost"
    assert env["POSTGRES_PORT"] == "5432"
    assert env["POSTGRES_DBNAME"] == "postgres"
    assert env["POSTGRES_USER"] == "postgres"
    assert env["POSTGRES_PASSWORD"] == ""
    assert env["POSTGRES_SCHEMA"] == "council_integrator"


# --------------------------------------------------------------------------- envelopes


def test_the_envelope_of_a_stored_registration(registry: ProviderRegistry) -> None:
    ctx = CommandContext(
        actor="commissioner:jo", organisation="council", correlation_id="corr-123",
        causation_id="cause-9",
    )
    with command_context(ctx):
        provider_id, _ = registry.register_provider(
            applicant("Hillside Kitchen", OrganisationType.VCSE,
                      identifiers={"charity_number": "1234567"}, areas_served=["Hillside"])
        )
    provider = registry.provider(provider_id)
    # The identifier claim is stored beside the provider but never published.
    notification, claim = stored(registry)
    assert not registry.is_published(claim)
    assert registry.is_published(notification)

    envelope = registry.to_envelope(notification)

    assert envelope.type == "ProviderRegistered"
    assert envelope.schema_version == 1
    assert envelope.source == "provider_registry"
    assert envelope.stream_id == str(provider_id)
    assert envelope.stream_position == 1
    assert envelope.event_id == event_id_for("provider_registry", str(provider_id), 1)
    assert registry.to_envelope(notification).event_id == envelope.event_id
    assert registry.to_envelope(notification).to_json() == envelope.to_json()
    assert envelope.actor == "commissioner:jo"
    assert envelope.organisation == "council"
    assert envelope.correlation_id == "corr-123"
    assert envelope.causation_id == "cause-9"
    assert envelope.occurred_at == provider.created_on
    assert envelope.recorded_at >= envelope.occurred_at
    data = ProviderRegistered.model_validate(envelope.data)
    assert data == ProviderRegistered(
        provider_id=provider_id, name="Hillside Kitchen", organisation_type=OrganisationType.VCSE,
        identifiers=Identifiers(charity_number="1234567"), areas_served=["Hillside"],
    )
    # The details are listed in the contract's own fields, not nested; only those given.
    assert envelope.data == {
        "provider_id": str(provider_id), "name": "Hillside Kitchen", "organisation_type": "vcse",
        "identifiers": {"charity_number": "1234567"}, "areas_served": ["Hillside"],
    }


def test_events_stored_outside_a_command_are_stamped_as_system(registry: ProviderRegistry) -> None:
    registry.register_provider(applicant("Hillside Kitchen", OrganisationType.SME))
    registry.register_provider(applicant("Northside Trust", OrganisationType.SME))
    first, second = (registry.to_envelope(n) for n in stored(registry))

    assert first.actor == second.actor == "system"
    assert first.correlation_id
    assert second.correlation_id
    assert first.correlation_id != second.correlation_id  # a fresh one per command
    assert first.event_id != second.event_id


def test_the_envelope_of_a_stored_measure(outcomes: Outcomes) -> None:
    with command_context(CommandContext(actor="integrator_admin:sam", correlation_id="c-1")):
        measure_id, _ = outcomes.define_measure(
            NewMeasure(name="Adults in work", unit="people", direction=Direction.HIGHER_IS_BETTER)
        )
    envelope = outcomes.to_envelope(stored(outcomes)[0])

    assert envelope.type == "OutcomeMeasureDefined"
    assert envelope.source == "outcomes"
    assert envelope.stream_id == str(measure_id)
    assert envelope.event_id == event_id_for("outcomes", str(measure_id), 1)
    assert (envelope.actor, envelope.correlation_id) == ("integrator_admin:sam", "c-1")
    assert OutcomeMeasureDefined.model_validate(envelope.data).direction is (
        Direction.HIGHER_IS_BETTER
    )


class _Uncatalogued(Aggregate):
    class Happened(Aggregate.Created):
        note: str

    def __init__(self, note: str) -> None:
        self.note = note


class _Carrier(CouncilApplication):
    service = "carrier"


def test_an_event_outside_the_catalogue_is_carried_under_its_class_name(
    settings: Settings,
) -> None:
    app = open_application(_Carrier, settings)
    try:
        thing = _Uncatalogued(note="kept")
        app.save(thing)
        envelope = app.to_envelope(stored(app)[0])
    finally:
        app.close()

    assert envelope.type == "_UncataloguedHappened"
    assert envelope.schema_version == 1
    assert envelope.data == {"note": "kept"}
    assert envelope.stream_id == str(thing.id)
    assert isinstance(UUID(envelope.stream_id), UUID)
