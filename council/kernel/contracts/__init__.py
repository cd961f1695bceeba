"""The event catalogue: every event type that crosses the shared log, its data schema, version
and topic. Producers and consumers both import these models; the AsyncAPI document is generated
from them (see council.kernel.asyncapi)."""

from __future__ import annotations

from council.kernel.contracts.catalogue import CATALOGUE, EventSpec, published

__all__ = ["CATALOGUE", "EventSpec", "all_specs", "published", "spec_for"]


def spec_for(type_: str) -> EventSpec | None:
    _load_all()
    return CATALOGUE.get(type_)


def all_specs() -> list[EventSpec]:
    _load_all()
    return sorted(CATALOGUE.values(), key=lambda s: (s.source, s.type))


def _load_all() -> None:
    from council.kernel.contracts import audit, integrator, outcomes, provider_registry  # noqa: F401
