"""The shared event log port: the one interface both adapters (embedded file, Kafka) implement.

A log is a set of topics, one per source service, each split into partitions; an event's
partition is chosen by its stream id, so one stream's events stay in order. A reader's position
is the next offset it wants from each partition ("topic:partition" -> offset): readers track
their own positions (and store them with their read models), never relying on a broker's
consumer groups.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol
from uuid import UUID

from pydantic_core import from_json

from council.kernel.envelope import EventEnvelope
from council.platform.eventlog.findings import LogFinding

LogPosition = dict[str, int]


class Appendable(Protocol):
    """What the log needs of an event to append it: an EventEnvelope, or an event the relay
    has sealed into the audit chain (council.platform.audit.chain.SealedEvent), whose bytes are
    final."""

    @property
    def source(self) -> str: ...
    @property
    def stream_id(self) -> str: ...
    @property
    def event_id(self) -> UUID | str: ...
    def to_json(self) -> bytes: ...


def partition_key(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


@dataclass(frozen=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    value: bytes = field(repr=False)

    @property
    def partition_key(self) -> str:
        return partition_key(self.topic, self.partition)

    @cached_property
    def fields(self) -> dict[str, Any]:
        """The envelope as plain JSON, not yet validated: enough to see its type."""
        return json_object(self.value)

    @property
    def type(self) -> str:
        return str(self.fields.get("type", ""))

    @cached_property
    def envelope(self) -> EventEnvelope:
        return EventEnvelope.model_validate(self.fields)  # = EventEnvelope.from_json


def json_object(value: bytes | str) -> dict[str, Any]:
    """A record's JSON object, parsed by pydantic-core (much quicker than the json module:
    every read model parses every record it reads; keys cached, as every record has the
    same), or by the json module for what only it reads (a lone surrogate escape, \\ud800,
    which canonical JSON may carry). ValueError saying why if it is not one."""
    try:
        found = from_json(value, cache_strings="keys")
    except ValueError:
        try:
            found = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(found, dict):
        raise ValueError("not a JSON object")
    return found


def advance(position: LogPosition, records: Sequence[LogRecord]) -> LogPosition:
    """The position after having read `records` from `position`."""
    last: dict[tuple[str, int], int] = {}  # keyed by tuple: a key's text made once, not per record
    for record in records:
        last[record.topic, record.partition] = record.offset
    moved = dict(position)
    for (topic, partition), offset in last.items():
        moved[partition_key(topic, partition)] = offset + 1
    return moved


class EventLog(ABC):
    """Append-only, partitioned, replayable: the integration contract between services."""

    def __init__(self, topic_prefix: str = "council") -> None:
        self.topic_prefix = topic_prefix

    def topic_for(self, source: str) -> str:
        return f"{self.topic_prefix}.{source}"

    @abstractmethod
    def append(self, envelopes: Sequence[Appendable]) -> None:
        """Durably append a batch; when this returns every event is stored. Each event goes to
        its source's topic, partitioned by stream id."""

    @abstractmethod
    def read(self, topics: Sequence[str], position: LogPosition, limit: int) -> list[LogRecord]:
        """Up to `limit` records after `position`, each partition's records in offset order.
        Empty means nothing more is available right now."""

    @abstractmethod
    def ping(self) -> None:
        """Raise InfrastructureUnavailable (naming the URL) if the log cannot be reached."""

    @property
    @abstractmethod
    def url(self) -> str: ...

    def close(self) -> None:  # noqa: B027 - adapters without resources need nothing here
        """Release connections."""

    def end_position(self, topics: Sequence[str]) -> LogPosition | None:
        """Where each partition of `topics` ends now (the offset the next record gets), when the
        adapter can tell; None when it cannot. For progress figures only: a broker may answer
        low (see the Kafka adapter)."""
        return None

    def findings(self, topics: Sequence[str], position: LogPosition) -> list[LogFinding]:
        """What is wrong between a reader's `position` in `topics` and the log as this adapter
        last read it (see council.platform.eventlog.findings): partitions it is past the end of, or
        that are gone; topics of an unexpected partition count. Adapters that cannot tell: []."""
        return []

    def follow(
        self,
        topics: Sequence[str],
        position: LogPosition,
        stop: threading.Event,
        idle_wait: float = 0.05,
        limit: int = 1000,
    ) -> Iterator[list[LogRecord]]:
        """Batches of new records as they arrive, until `stop` is set."""
        while not stop.is_set():
            records = self.read(topics, position, limit)
            if records:
                position = advance(position, records)
                yield records
            else:
                stop.wait(idle_wait)

    def read_all(self, topics: Sequence[str], position: LogPosition | None = None,
                 limit: int = 5000) -> Iterator[list[LogRecord]]:
        """Batches of everything available from `position` (default: the beginning)."""
        position = dict(position or {})
        while records := self.read(topics, position, limit):
            position = advance(position, records)
            yield records
