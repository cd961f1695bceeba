"""The integrator's service layer. Its own event store carries commissioning decisions (coming
with the commissioning work); the network view is a projection of the shared log."""

from __future__ import annotations

from shared.eventstore import CouncilApplication


class Integrator(CouncilApplication):
    service = "integrator"
