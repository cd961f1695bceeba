"""Assembly of the outcomes service (used by `council serve outcomes`)."""

from __future__ import annotations

from shared.web import ServiceSpec

from services.outcomes import api, projections
from services.outcomes.application import Outcomes

SPEC = ServiceSpec(
    name="outcomes",
    application=Outcomes,
    projections=projections.projections,
    routers=[api.router],
)
