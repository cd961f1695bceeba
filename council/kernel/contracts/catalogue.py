"""The catalogue's register: each published event type's data schema, version, topic and stream
field, filled in as the contract modules are imported (their `@published` models)."""

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
