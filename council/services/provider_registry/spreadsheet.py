"""The provider spreadsheet: one set of columns for the directory's CSV export and the CSV import,
so that a file exported imports back unchanged, and the Table Schema that says what each column
holds (identifiers and postcodes are text, headcount and turnover whole numbers, dates ISO 8601).

Two groups of columns, in this order:

- the provider's own details (`DETAIL_COLUMNS`): what an application gives, read by the import;
- the registry's record (`RECORD_COLUMNS`): the id, status and dates the registry assigns and
  the capabilities and standing recorded since. The import accepts these columns, so that an
  exported file is a valid import file, but does not use them: a registration starts as a new
  application, and capabilities and standing are recorded one by one after it.
"""

from __future__ import annotations

from typing import Any

from council.kernel.contracts.provider_registry import OrganisationType, ProviderStatus, SizeBand
from council.platform.tables import Column, data_package

LIST_SEPARATOR = ";"
ADDRESS_LINE_COLUMNS = tuple(f"address_line_{n}" for n in range(1, 5))  # AddressIn: 4 lines
# A cell the export defused (see projections.directory.safe_cell) starts with an apostrophe
# followed by one of these; the import takes the apostrophe off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
DETAIL_COLUMNS: tuple[Column, ...] = (
    Column("name", required=True, description="legal or trading name"),
    Column("organisation_type", required=True, enum=tuple(t.value for t in OrganisationType)),
    Column("description", description="what the provider does"),
    Column("website", description="web address, http:// or https://"),
    Column("companies_house", pattern=r"[0-9]{8}|[A-Z]{2}[0-9]{6}",
           description="Companies House number: 8 characters, leading zeros kept"),
    Column("charity_number", pattern=r"[0-9]{6,7}(-[0-9]{1,2})?|SC0[0-9]{5}",
           description="charity number (England and Wales, or Scotland's SC0...)"),
    Column("ukprn", pattern=r"1[0-9]{7}", description="UK provider reference number"),
    Column("contact_name", description="who to contact"),
    Column("contact_email"),
    Column("contact_phone", description="as given (an export prefixes a leading + with ')"),
    *(Column(c, description=f"postal address, line {c[-1]}") for c in ADDRESS_LINE_COLUMNS),
    Column("town"),
    Column("county", description="county or unitary area"),
    Column("postcode", description="UK postcode, upper case with one space"),
    Column("areas_served", description="areas served, separated by semicolons"),
    Column("headcount", "integer", description="staff headcount (SMEs)"),
    Column("turnover_gbp", "integer", description="annual turnover in whole pounds (SMEs)"),
    Column("members", description="a partnership's member provider ids, separated by "
                                  "semicolons"),
)
RECORD_COLUMNS: tuple[Column, ...] = (
    Column("provider_id", required=True, description="the registry's id for the provider",
           pattern=r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    Column("status", required=True, enum=tuple(s.value for s in ProviderStatus)),
    Column("status_changed_at", "datetime", required=True),
    Column("sme_band", enum=tuple(b.value for b in SizeBand),
           description="size band from headcount and turnover (UK government definition)"),
    Column("categories", description="service categories offered (taxonomy codes), "
                                     "separated by semicolons"),
    Column("category_names", description="the same categories by name"),
    Column("capability_areas", description="areas the capabilities cover"),
    Column("accreditations", description="accreditations, certifications, insurance and "
                                         "checks, with expiry dates"),
    Column("earliest_expiry", "date", description="the first accreditation to expire"),
    Column("quality_ratings", description="the latest rating in each scheme, with its date"),
    Column("registered_at", "datetime", required=True),
    Column("updated_at", "datetime", required=True),
)
COLUMNS: tuple[Column, ...] = (*DETAIL_COLUMNS, *RECORD_COLUMNS)
DETAIL_NAMES: tuple[str, ...] = tuple(c.name for c in DETAIL_COLUMNS)
RECORD_NAMES: tuple[str, ...] = tuple(c.name for c in RECORD_COLUMNS)
NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)


def providers_package(csv_path: str) -> dict[str, Any]:
    """The data package describing the directory's CSV export at `csv_path`."""
    return data_package(
        "providers", "The council's provider directory", csv_path, COLUMNS,
        primary_key=("provider_id",),
        description="One row per provider. The columns up to `members` are the provider's own "
                    "details, the columns POST /providers/import reads; those after it are the "
                    "registry's record. Cells a spreadsheet would run as a formula start with "
                    "an apostrophe.",
    )


def undefused(cell: str) -> str:
    """A cell as it was before the export defused it: `'+44 113` is `+44 113` again."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell
