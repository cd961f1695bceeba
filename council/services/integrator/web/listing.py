"""The network list as people work with it: sorted by any column, a page at a time, and
exported as shown (every matching row, in the order chosen) as CSV or Excel."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from council.platform.tables import Column, data_package
from council.services.integrator.domain import NetworkProvider
from council.services.integrator.projections.market import ProviderState

PER_PAGE = 25
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class NetworkRow:
    provider_id: str
    name: str
    organisation_type: str
    size_band: str | None
    status: str
    categories: list[str]  # codes
    areas: list[str]
    active_agreements: int
    committed: Decimal
    spent_to_date: Decimal

    @property
    def spent_under_ended_only(self) -> bool:
        """Paid in the past under agreements since ended, holding nothing now: why "0
        agreements, £0 committed" can sit beside a sum spent."""
        return self.active_agreements == 0 and self.spent_to_date > 0


def rows_of(providers: list[NetworkProvider], held: dict[str, ProviderState]) -> list[NetworkRow]:
    found: list[NetworkRow] = []
    for p in providers:
        h = held.get(str(p.provider_id))
        found.append(NetworkRow(
            str(p.provider_id), p.name, p.organisation_type.value, p.sme_size_band,
            p.status.value, sorted({c.category for c in p.capabilities}), list(p.areas_served),
            len(h.active_agreements) if h else 0, h.committed if h else ZERO,
            h.spent_to_date if h else ZERO))
    return found


# Column key -> (heading, how rows sort by it). Ties fall back to the name.
COLUMNS: dict[str, tuple[str, Callable[[NetworkRow], Any]]] = {
    "name": ("Provider", lambda r: r.name.casefold()),
    "type": ("Type", lambda r: r.organisation_type),
    "status": ("Status", lambda r: r.status),
    "active": ("Active agreements", lambda r: r.active_agreements),
    "committed": ("Committed", lambda r: r.committed),
    "spent": ("Spent to date", lambda r: r.spent_to_date),
}


@dataclass(frozen=True)
class Order:
    sort: str = "name"
    descending: bool = False

    @classmethod
    def of(cls, sort: str, direction: str) -> Order:
        return cls(sort if sort in COLUMNS else "name", direction == "desc")

    def apply(self, rows: list[NetworkRow]) -> list[NetworkRow]:
        by_name = sorted(rows, key=lambda r: (r.name.casefold(), r.provider_id))
        return sorted(by_name, key=COLUMNS[self.sort][1], reverse=self.descending)


@dataclass(frozen=True)
class Paged:
    rows: list[NetworkRow]
    page: int
    pages: int
    first: int  # 1-based number of the first row shown
    total: int


def page_of(rows: list[NetworkRow], asked: str) -> Paged:
    pages = max(1, -(-len(rows) // PER_PAGE))
    try:
        number = min(max(1, int(asked)), pages)
    except ValueError:
        number = 1
    start = (number - 1) * PER_PAGE
    return Paged(rows[start:start + PER_PAGE], number, pages, start + 1, len(rows))


UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# The export's columns as its Table Schema states them, so a typed reader keeps each as it is.
NETWORK_COLUMNS = (
    Column("Provider", required=True, description="the provider's name"),
    Column("Provider id", required=True, pattern=UUID_PATTERN,
           description="the registry's id of the provider"),
    Column("Organisation type", description="in words, e.g. Voluntary or community group"),
    Column("Size", description="SME size band where known (micro, small, medium, large)"),
    Column("Status", description="its standing in the registry, in words"),
    Column("Service categories", description="the categories it delivers, separated by '; '"),
    Column("Areas served", description="the areas it serves, separated by '; '"),
    Column("Active agreements", "integer", required=True,
           description="agreements in force naming it as a party"),
    Column("Committed (£)", "number", required=True,
           description="pounds, 2 places: its allocations under its active agreements"),
    Column("Spent to date (£)", "number", required=True,
           description="pounds, 2 places: everything recorded as spent with it, under any "
                       "agreement, ended ones included"),
)
HEADINGS = [column.name for column in NETWORK_COLUMNS]


def network_package(csv_path: str) -> dict[str, Any]:
    """The data package describing the network list's CSV export (at `csv_path`)."""
    return data_package(
        "network-providers", "Providers in the council's network", csv_path, NETWORK_COLUMNS,
        description="The providers the network list shows, as filtered and ordered when "
                    "exported. The file starts with a UTF-8 byte order mark (for Excel).",
        encoding="utf-8-sig")


def _record(row: NetworkRow, words: Callable[[str], str]) -> list[Any]:
    return [row.name, row.provider_id, words(row.organisation_type), row.size_band or "",
            words(row.status), "; ".join(words(c) for c in row.categories),
            "; ".join(row.areas), row.active_agreements, row.committed, row.spent_to_date]


def as_csv(rows: list[NetworkRow], words: Callable[[str], str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADINGS)
    for row in rows:
        writer.writerow([f"{v:.2f}" if isinstance(v, Decimal) else v
                         for v in _record(row, words)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the mark Excel needs to read UTF-8


def as_xlsx(rows: list[NetworkRow], words: Callable[[str], str], title: str) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Providers"
    sheet.append(HEADINGS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(_record(row, words))
    for column in ("I", "J"):
        for cell in sheet[column][1:]:
            cell.number_format = "£#,##0.00"
    sheet.freeze_panes = "A2"
    book.properties.title = title
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
