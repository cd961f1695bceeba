"""Web pages for the council's integrator teams, served by the integrator under /ui.

Server-rendered (Jinja2) from the integrator's read models, with forms that run the
integrator's commands (and the provider registry's, over its HTTP API); an entry point that
only translates, like the HTTP API beside it. See README, "Web pages".
"""

from __future__ import annotations

from fastapi import APIRouter

from council.services.integrator.web.routes import (
    audit,
    auth,
    commissioning,
    compare,
    evidence,
    home,
    lessons,
    market,
    missing,
    network,
    outcomes,
    partners,
    picking,
    providers,
    static,
    terms,
    verify,
)

router = APIRouter()
router.include_router(auth.root)
for module in (auth, home, network, providers, commissioning, terms, picking, lessons, outcomes,
               partners, market, audit, verify, compare, evidence, static, missing):
    router.include_router(module.routes)
