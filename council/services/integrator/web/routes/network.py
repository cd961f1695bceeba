"""The network overview: who is in the council's provider network, by type, category and area,
what they hold under active agreements, with search and filters; now or as of a date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from council.kernel.contracts.provider_registry import OrganisationType, ProviderStatus
from council.services.integrator.domain import NetworkProvider, NetworkSummary
from council.services.integrator.projections.market import ProviderState, network_state
from council.services.integrator.projections.network import list_providers, network_summary
from council.services.integrator.projections.overview import network_by_area, provider_areas
from council.services.integrator.web.listing import (
    COLUMNS,
    Order,
    as_csv,
    as_xlsx,
    network_package,
    page_of,
    rows_of,
)
from council.services.integrator.web.pages import AsOf, SignedIn, not_found, router
from council.services.integrator.web.render import (
    SECURITY_HEADERS,
    categories,
    page,
    server_ms,
    words,
)
from council.services.integrator.web.views import read_models

routes = router()

def _choice(value: str, allowed: list[str]) -> str:
    return value if value in allowed else ""


@dataclass(frozen=True)
class _Filters:
    q: str
    organisation_type: str
    status: str
    category: str
    area: str

    @classmethod
    def of(cls, request: Request) -> _Filters:
        params = request.query_params
        return cls(params.get("q", "").strip(),
                   _choice(params.get("organisation_type", ""),
                           [k.value for k in OrganisationType]),
                   _choice(params.get("status", ""), [s.value for s in ProviderStatus]),
                   params.get("category", "").strip(), params.get("area", "").strip())

    def keep(self, p: NetworkProvider, areas: dict[str, set[str]]) -> bool:
        return (all(w in p.name.casefold() for w in self.q.casefold().split())
                and (not self.organisation_type
                     or p.organisation_type.value == self.organisation_type)
                and (not self.status or p.status.value == self.status)
                and (not self.category or any(c.category == self.category
                                              for c in p.capabilities))
                and (not self.area or self.area in areas.get(str(p.provider_id), set())))

    def query(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


@routes.get("/network", response_class=HTMLResponse)
def network(request: Request, viewer: SignedIn, as_of: AsOf) -> HTMLResponse:
    params = request.query_params
    filters = _Filters.of(request)
    order = Order.of(params.get("sort", ""), params.get("dir", ""))
    with read_models(request, as_of.moment) as db:
        state = network_state(db, as_of.day)
        summary = network_summary(db)
        everyone = list_providers(db, 5000)
        areas = provider_areas(db)
        by_area = network_by_area(db, state)
    held = {str(p.provider_id): p for p in state.providers}
    rows = order.apply(rows_of([p for p in everyone if filters.keep(p, areas)], held))
    kept = {**filters.query(), **({"as_of": as_of.text} if as_of.moment else {})}
    return page(
        request, "network.html", viewer, section="network", as_of=as_of, state=state,
        paged=page_of(rows, params.get("page", "1")), matched=len(rows), order=order,
        columns={k: heading for k, (heading, _) in COLUMNS.items()}, kept=kept,
        query=lambda **more: urlencode({**kept, **{k: v for k, v in more.items() if v}}),
        by_area=by_area, by_type=_by_type(everyone, held), by_category=_by_category(summary),
        areas=sorted({a for found in areas.values() for a in found}, key=str.casefold),
        organisation_types=[k.value for k in OrganisationType],
        statuses=[s.value for s in ProviderStatus], categories=categories(),
        registered=len(everyone), approved=summary.providers_by_status.get("approved", 0),
        filters=vars(filters), filtered=bool(filters.query()),
    )


@routes.get("/network/providers.datapackage.json", name="network_export_package")
def export_package(request: Request, viewer: SignedIn) -> JSONResponse:
    """The Frictionless data package (Table Schema) of the network list's CSV export."""
    return JSONResponse(network_package("providers.csv"))


# After the data package, which this pattern would otherwise take.
@routes.get("/network/providers.{kind}")
def export(kind: str, request: Request, viewer: SignedIn, as_of: AsOf) -> Response:
    """The providers shown, every page of them in the order chosen, as CSV or Excel."""
    if kind not in ("csv", "xlsx"):
        return not_found(request, viewer, f"export as .{kind} (CSV or Excel: .csv, .xlsx)")
    params = request.query_params
    filters = _Filters.of(request)
    with read_models(request, as_of.moment) as db:
        state = network_state(db, as_of.day)
        everyone = list_providers(db, 5000)
        areas = provider_areas(db)
    held = {str(p.provider_id): p for p in state.providers}
    rows = Order.of(params.get("sort", ""), params.get("dir", "")).apply(
        rows_of([p for p in everyone if filters.keep(p, areas)], held))
    stamp = as_of.day.isoformat() if as_of.day else date.today().isoformat()
    name = f"network-providers-{stamp}.{kind}"
    if kind == "csv":
        body, media = as_csv(rows, words), "text/csv; charset=utf-8"
    else:
        body = as_xlsx(rows, words, f"Providers in the network, {stamp}")
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"',
               "Server-Timing": f'app;dur={server_ms(request):.1f};desc="export"'}
    if kind == "csv":  # what each column holds, for typed readers (RFC 8288 describedby)
        headers["Link"] = (f'<{request.url_for("network_export_package").path}>; '
                           'rel="describedby"; type="application/json"')
    return Response(body, media_type=media, headers=headers)



def _by_type(everyone: list[NetworkProvider], held: dict[str, ProviderState],
             ) -> list[dict[str, Any]]:
    """Per organisation type: how many registered, approved, incubating, holding agreements,
    and what they hold."""
    found = []
    for kind in OrganisationType:
        mine = [p for p in everyone if p.organisation_type is kind]
        holders = [held[str(p.provider_id)] for p in mine if str(p.provider_id) in held
                   and held[str(p.provider_id)].active_agreements]
        found.append({
            "kind": kind.value, "registered": len(mine),
            "approved": sum(p.status is ProviderStatus.APPROVED for p in mine),
            "incubating": sum(p.status is ProviderStatus.INCUBATING for p in mine),
            "holding": len(holders),
            "committed": sum((h.committed for h in holders), Decimal("0.00")),
            "spent": sum((held[str(p.provider_id)].spent_to_date for p in mine
                          if str(p.provider_id) in held), Decimal("0.00")),
        })
    return found


def _by_category(summary: NetworkSummary) -> list[tuple[str, dict[str, int], int]]:
    """Active providers per service category, by organisation type."""
    matrix = summary.active_providers_by_category_and_organisation_type
    return [(code, matrix[code], summary.active_providers_by_category.get(code, 0))
            for code in sorted(matrix, key=lambda c: words(c).casefold())]
