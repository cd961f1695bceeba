"""The envelope every event wears on the shared log: the integration contract between services.

The same event must always have the same bytes (regulators hash them), so encoding is canonical
JSON: sorted keys, no insignificant whitespace, UTF-8, timestamps in UTC with microseconds.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

# Namespace for deterministic event ids: the same stored event always gets the same id, so a
# relay that publishes it twice (at-least-once) produces a duplicate consumers can recognise.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a52-3b0e-4c55-9a57-3c1e2b9d7f10")


def event_id_for(source: str, stream_id: str, position: int) -> uuid.UUID:
    """The stable id of the event at `position` in `stream_id` of service `source`."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}/{stream_id}/{position}")


def event_id_text(source: str, stream_id: str, position: int) -> str:
    """`str(event_id_for(...))`, without building the UUID (the relay's hot path)."""
    digest = bytearray(hashlib.sha1(  # noqa: S324 - uuid5 is SHA-1 by definition
        EVENT_ID_NAMESPACE.bytes + f"{source}/{stream_id}/{position}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return uuid_text(digest.hex())


def uuid_text(hex_: str) -> str:
    """A UUID's 32 lowercase hex digits as its canonical text (str(UUID(hex_)))."""
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a timezone")
    return value.astimezone(UTC)


_SHA256 = r"^[0-9a-f]{64}$"


def _absent(value: Any) -> bool:
    return value is None


class EventEnvelope(BaseModel):
    """One event on the shared log. `data` is the event's own payload, described by the catalogue;
    events whose type a reader does not know are carried through untouched, never dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str = Field(min_length=1, max_length=200)
    schema_version: int = Field(ge=1)
    source: str = Field(min_length=1, max_length=100, description="service that recorded it")
    stream_id: str = Field(min_length=1, max_length=200)
    stream_position: int = Field(ge=1)
    occurred_at: datetime
    recorded_at: datetime
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    organisation: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    # The audit chain (council.platform.audit.chain), set by the outbox relay as it publishes:
    # absent on events built in a service and on logs written before the chain, and then left out of
    # the bytes, so those keep the exact encoding they always had.
    sequence: int | None = Field(
        default=None, ge=1, exclude_if=_absent,
        description="1-based position of the event in its source's published sequence",
    )
    prev_hash: str | None = Field(
        default=None, pattern=_SHA256, exclude_if=_absent,
        description="`hash` of the event before it in its source's sequence (64 zeros for the "
        "first)",
    )
    hash: str | None = Field(
        default=None, pattern=_SHA256, exclude_if=_absent,
        description="SHA-256 (hex) of the canonical JSON of this envelope without `hash`",
    )

    _utc_times = field_validator("occurred_at", "recorded_at")(_utc)

    @field_serializer("occurred_at", "recorded_at", when_used="json")
    def _iso_utc(self, value: datetime) -> str:
        # Same text as canonical_json gives a datetime: UTC offset, always with microseconds.
        return value.isoformat(timespec="microseconds")

    def to_json(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> EventEnvelope:
        # json.loads, not pydantic's parser: it accepts the \\ud800-style escapes our own
        # canonical encoding may write for a lone surrogate that arrived in a request.
        return cls.model_validate(json.loads(raw))


def utc_iso(text: str) -> str:
    """An ISO date-time given as text, as the envelope writes its times (UTC, with
    microseconds); a time without a zone is taken as UTC. Most stored times already are."""
    if len(text) == 32 and text.endswith("+00:00") and text[19] == ".":
        return text
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return _utc(value).isoformat(timespec="microseconds")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__} as canonical JSON")


def canonical_json(value: Any) -> bytes:
    """Stable bytes for a JSON-able value: sorted keys, compact separators, ASCII with \\u
    escapes (any Python string encodes, even a lone surrogate from a JSON body)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_default
    ).encode("utf-8")


def jsonable(value: Any) -> Any:
    """Turn domain values (UUID, datetime, Decimal, tuples) into plain JSON values."""
    return json.loads(canonical_json(value))
