"""The event envelope: canonical bytes, UTC timestamps, stable ids, strict validation."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from council.kernel.contracts import spec_for
from council.kernel.envelope import (
    EventEnvelope,
    canonical_json,
    event_id_for,
    event_id_text,
    jsonable,
    utc_iso,
)

AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def fields(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_id": event_id_for("provider_registry", "stream-1", 1),
        "type": "ProviderRegistered",
        "schema_version": 1,
        "source": "provider_registry",
        "stream_id": "stream-1",
        "stream_position": 1,
        "occurred_at": AT,
        "recorded_at": AT + timedelta(microseconds=250),
        "correlation_id": "req-1",
        "causation_id": None,
        "actor": "officer@council.example",
        "organisation": "council",
        "data": {"name": "Hillside Kitchen", "organisation_type": "vcse"},
    }
    values.update(changes)
    return values


def envelope(**changes: Any) -> EventEnvelope:
    return EventEnvelope(**fields(**changes))


def error_locations(error: ValidationError) -> list[tuple[int | str, ...]]:
    return [tuple(item["loc"]) for item in error.errors()]


# --- canonical JSON --------------------------------------------------------------------------


def test_same_event_gives_same_bytes() -> None:
    assert envelope().to_json() == envelope().to_json()


def test_bytes_do_not_depend_on_construction_order() -> None:
    forwards = fields()
    backwards = dict(reversed(list(forwards.items())))
    backwards["data"] = dict(reversed(list(forwards["data"].items())))
    assert list(backwards) != list(forwards)
    assert EventEnvelope(**backwards).to_json() == EventEnvelope(**forwards).to_json()
    assert EventEnvelope.model_validate(backwards).to_json() == envelope().to_json()


def test_canonical_form() -> None:
    raw = envelope(data={"b": [1, {"z": "é", "a": None}], "a": 1.5}).to_json()
    text = raw.decode("utf-8")
    assert " " not in text.replace("Hillside Kitchen", "")  # no insignificant whitespace
    assert '"\\u00e9"' in text  # ASCII with escapes: every Python string has canonical bytes
    assert text.startswith('{"actor":')
    assert '"data":{"a":1.5,"b":[1,{"a":null,"z":"\\u00e9"}]}' in text
    assert raw == canonical_json(json.loads(raw))  # already canonical


def test_timestamps_are_encoded_in_utc_with_microseconds() -> None:
    wire = json.loads(envelope().to_json())
    assert wire["occurred_at"] == "2024-05-01T10:00:00.000000+00:00"
    assert wire["recorded_at"] == "2024-05-01T10:00:00.000250+00:00"
    # the same text canonical_json gives a datetime anywhere else (e.g. inside data)
    assert wire["occurred_at"] == jsonable(AT)


def test_round_trip_preserves_the_envelope() -> None:
    original = envelope()
    again = EventEnvelope.from_json(original.to_json())
    assert again == original
    assert again.to_json() == original.to_json()
    assert EventEnvelope.from_json(original.to_json().decode("utf-8")) == original


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # lone surrogates included: they arrive in JSON bodies as \\ud800
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(data=st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_round_trip_is_byte_identical(data: dict[str, Any]) -> None:
    first = envelope(data=data).to_json()
    second = EventEnvelope.from_json(first).to_json()
    assert second == first
    assert EventEnvelope.from_json(second).to_json() == first


def test_jsonable_turns_domain_values_into_json() -> None:
    value = {"id": uuid.UUID(int=1), "at": AT, "amount": Decimal("1.10"), "tags": {"b", "a"}}
    assert jsonable(value) == {
        "id": "00000000-0000-0000-0000-000000000001",
        "at": "2024-05-01T10:00:00.000000+00:00",
        "amount": "1.10",
        "tags": ["a", "b"],
    }


def test_canonical_json_refuses_unknown_values() -> None:
    with pytest.raises(TypeError, match="object"):
        canonical_json({"x": object()})


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["occurred_at", "recorded_at"])
def test_naive_timestamps_are_rejected_naming_the_field(field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        envelope(**{field: datetime(2024, 5, 1, 10, 0)})  # naive on purpose
    assert error_locations(caught.value) == [(field,)]
    assert "timezone" in str(caught.value)


@pytest.mark.parametrize("field", ["occurred_at", "recorded_at"])
def test_naive_timestamps_in_json_are_rejected_naming_the_field(field: str) -> None:
    wire = json.loads(envelope().to_json())
    wire[field] = "2024-05-01T10:00:00"
    with pytest.raises(ValidationError) as caught:
        EventEnvelope.from_json(json.dumps(wire))
    assert error_locations(caught.value) == [(field,)]


def test_offsets_are_converted_to_utc() -> None:
    plus_one = timezone(timedelta(hours=1))
    event = envelope(occurred_at=datetime(2024, 5, 1, 11, 0, tzinfo=plus_one))
    assert event.occurred_at == AT
    assert event.occurred_at.tzinfo == UTC
    assert event.occurred_at.hour == 10
    assert event.to_json() == envelope().to_json()


def test_offsets_in_json_are_converted_to_utc() -> None:
    wire = json.loads(envelope().to_json())
    wire["occurred_at"] = "2024-05-01T11:00:00+01:00"
    event = EventEnvelope.from_json(json.dumps(wire))
    assert event.occurred_at == AT
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event.to_json() == envelope().to_json()


def test_z_suffix_is_accepted() -> None:
    wire = json.loads(envelope().to_json())
    wire["occurred_at"] = "2024-05-01T10:00:00Z"
    assert EventEnvelope.from_json(json.dumps(wire)).to_json() == envelope().to_json()


# --- event ids -------------------------------------------------------------------------------


def test_event_id_is_deterministic() -> None:
    first = event_id_for("outcomes", "measure-1", 3)
    assert first == event_id_for("outcomes", "measure-1", 3)
    assert first.version == 5


def test_event_id_differs_by_position_stream_and_source() -> None:
    ids = {
        event_id_for("outcomes", "measure-1", 1),
        event_id_for("outcomes", "measure-1", 2),
        event_id_for("outcomes", "measure-2", 1),
        event_id_for("provider_registry", "measure-1", 1),
    }
    assert len(ids) == 4


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**9))
def test_event_ids_are_distinct_for_distinct_positions(first: int, second: int) -> None:
    same = event_id_for("outcomes", "s", first) == event_id_for("outcomes", "s", second)
    assert same == (first == second)


# --- unknown types are carried through ------------------------------------------------------


def test_unknown_event_types_are_carried_through() -> None:
    assert spec_for("SomethingNewHappened") is None
    data = {"anything": [1, "two", {"three": None}]}
    event = envelope(type="SomethingNewHappened", schema_version=7, data=data)
    again = EventEnvelope.from_json(event.to_json())
    assert again.type == "SomethingNewHappened"
    assert again.schema_version == 7
    assert again.data == data
    assert again.to_json() == event.to_json()


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"stream_position": 0}, "stream_position"),
        ({"stream_position": -1}, "stream_position"),
        ({"schema_version": 0}, "schema_version"),
        ({"type": ""}, "type"),
        ({"type": "X" * 201}, "type"),
        ({"source": ""}, "source"),
        ({"stream_id": ""}, "stream_id"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"data": ["not", "an", "object"]}, "data"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EventEnvelope.model_validate(fields(**changes))
    assert error_locations(caught.value) == [(field,)]
    assert field in str(caught.value)


def test_extra_fields_are_rejected_as_extra() -> None:
    with pytest.raises(ValidationError) as caught:
        envelope(surprise=1)
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize("field", ["event_id", "type", "source", "stream_id", "occurred_at"])
def test_missing_required_fields_are_named(field: str) -> None:
    values = fields()
    del values[field]
    with pytest.raises(ValidationError) as caught:
        EventEnvelope.model_validate(values)
    assert error_locations(caught.value) == [(field,)]
    assert caught.value.errors()[0]["type"] == "missing"


def test_bad_json_is_rejected() -> None:
    with pytest.raises(ValueError, match="Expecting"):
        EventEnvelope.from_json(b"{not json")


def test_envelopes_are_immutable() -> None:
    event = envelope()
    with pytest.raises(ValidationError):
        event.stream_position = 2  # type: ignore[misc]


def test_lone_surrogate_in_data_still_encodes() -> None:
    # A JSON body may carry "\\ud800"; the relay must still be able to publish the event.
    raw = envelope(data={"name": "\ud800"}).to_json()
    assert b"\\ud800" in raw
    assert EventEnvelope.from_json(raw).to_json() == raw


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=60),
       st.integers(min_value=1, max_value=10**9))
def test_event_id_text_is_the_event_id(source: str, stream_id: str, position: int) -> None:
    assert event_id_text(source, stream_id, position) == str(
        event_id_for(source, stream_id, position))


@pytest.mark.parametrize("text", [
    "2026-05-04T10:00:00.123456+00:00", "2026-05-04T10:00:00+00:00",
    "2026-05-04T11:00:00.5+01:00", "2026-05-04T10:00:00",
])
def test_utc_iso_writes_a_time_as_the_envelope_does(text: str) -> None:
    moment = datetime.fromisoformat(text)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    envelope = EventEnvelope(event_id=uuid.uuid4(), type="T", schema_version=1, source="s",
                             stream_id="x", stream_position=1, occurred_at=moment,
                             recorded_at=moment)
    assert utc_iso(text) == envelope.model_dump(mode="json")["occurred_at"]
