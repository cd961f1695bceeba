"""Assembly of the outcomes service (used by `council serve outcomes`)."""

from __future__ import annotations

from services.outcomes import api, projections
from services.outcomes.application import Outcomes
from shared.web import ServiceSpec

SPEC = ServiceSpec(
    name="outcomes",
    application=Outcomes,
    projections=projections.projections,
    routers=[api.router],
)
