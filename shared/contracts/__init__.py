"""The event catalogue: every event type that crosses the shared log, its data schema, version
and topic. Producers and consumers both import these models; the AsyncAPI document is generated
from them (see shared.asyncapi)."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel


@dataclass(frozen=True)
class EventSpec:
    type: str
    version: int
    source: str
    data: builtins.type[BaseModel]  # `type` here would mean the field above
    summary: str
    stream_field: str


CATALOGUE: dict[str, EventSpec] = {}


M = TypeVar("M", bound=type[BaseModel])


def published(
    source: str, type_: str, *, stream_field: str, version: int = 1
) -> Callable[[M], M]:
    """Class decorator: register a pydantic model as the data schema of an event type.
    `stream_field` names the field that carries the id of the stream (aggregate) it belongs to."""

    def register(model: M) -> M:
        if type_ in CATALOGUE:
            raise ValueError(f"event type {type_} registered twice")
        summary = (model.__doc__ or type_).strip().splitlines()[0]
        CATALOGUE[type_] = EventSpec(type_, version, source, model, summary, stream_field)
        return model

    return register


def spec_for(type_: str) -> EventSpec | None:
    _load_all()
    return CATALOGUE.get(type_)


def all_specs() -> list[EventSpec]:
    _load_all()
    return sorted(CATALOGUE.values(), key=lambda s: (s.source, s.type))


def _load_all() -> None:
    from shared.contracts import audit, integrator, outcomes, provider_registry  # noqa: F401
