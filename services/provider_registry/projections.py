"""Read models of the provider registry. Its directory and search views arrive with the full
onboarding lifecycle; until then the registry reads its providers from its own aggregates."""

from __future__ import annotations

from collections.abc import Sequence

from shared.projection import Projection


def projections() -> Sequence[Projection]:
    return ()
