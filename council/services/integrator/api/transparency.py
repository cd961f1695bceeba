"""The Local Government Transparency Code 2015 registers, as CSV with their Frictionless data
packages: spend over £500 in a quarter and the contracts register over £5,000, read from the
integrator's read models (council.services.integrator.projections.registers).

Published for anyone, as the Code intends: no token, any web page (CORS: the service's
`public_prefixes`), read-only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from council.kernel.periods import QUARTERLY, Period, today_or_now
from council.platform.runtime import Runtime
from council.platform.tables import csv_response, csv_text
from council.services.integrator.projections.registers import (
    CONTRACT_COLUMNS,
    SPEND_COLUMNS,
    contracts_package,
    contracts_register,
    spend_package,
    spend_register,
)

PREFIX = "/transparency"
router = APIRouter(prefix=PREFIX, tags=["transparency code (public)"])

Quarter = Annotated[str | None, Query(
    pattern=r"^[0-9]{4}-Q[1-4]$", examples=["2025-Q2"],
    description="the calendar quarter, 2025-Q2 for April to June 2025; by default the latest "
                "quarter that has ended")]
_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}, "headers": {"Link": {
    "description": "the CSV's data package (rel=describedby)", "schema": {"type": "string"}}}}}


@router.get("/spend.csv", response_class=Response, responses=_CSV)
def spend_csv(request: Request, quarter: Quarter = None) -> Response:
    """Each payment to a provider (or credit recovered from one) of more than £500 recorded in
    the quarter, in the Code's columns: date incurred, department, beneficiary, purpose,
    amount, irrecoverable VAT, merchant category."""
    runtime: Runtime = request.app.state.runtime
    # The Code asks for a quarter once it is over: by default the latest one that is.
    chosen = Period.parse(quarter) if quarter else Period.containing(
        Period.containing(today_or_now(None), QUARTERLY).first - timedelta(days=1), QUARTERLY)
    rows = spend_register(runtime.views, chosen)
    return csv_response(csv_text(SPEND_COLUMNS, rows), f"spend-over-500-{chosen.label}.csv",
                        str(request.url_for("spend_csv_package")))


@router.get("/spend.datapackage.json")
def spend_csv_package(request: Request) -> JSONResponse:
    """The data package (Table Schema) of /transparency/spend.csv."""
    return JSONResponse(spend_package(str(request.url_for("spend_csv"))))


@router.get("/contracts.csv", response_class=Response, responses=_CSV)
def contracts_csv(request: Request) -> Response:
    """The contracts register: every agreement signed or in force worth more than £5,000, in
    the Code's columns."""
    runtime: Runtime = request.app.state.runtime
    rows = contracts_register(runtime.views)
    return csv_response(csv_text(CONTRACT_COLUMNS, rows), "contracts-over-5000.csv",
                        str(request.url_for("contracts_csv_package")))


@router.get("/contracts.datapackage.json")
def contracts_csv_package(request: Request) -> JSONResponse:
    """The data package (Table Schema) of /transparency/contracts.csv."""
    return JSONResponse(contracts_package(str(request.url_for("contracts_csv"))))
