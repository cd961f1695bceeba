"""Assembly of the integrator service (used by `council serve integrator`)."""

from __future__ import annotations

from services.integrator import api, projections
from services.integrator.application import Integrator
from shared.web import ServiceSpec

SPEC = ServiceSpec(
    name="integrator",
    application=Integrator,
    projections=projections.projections,
    routers=[api.router],
)
