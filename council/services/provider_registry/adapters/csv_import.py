"""Provider applications from a spreadsheet: a CSV file parsed into rows of NewProvider. Pure: no
I/O, nothing stored; `POST /providers/import` hands the rows to ProviderRegistry.register_many.

The file
--------
- UTF-8 text (a byte order mark, as Excel's "CSV UTF-8" writes, is allowed), columns separated by
  commas, cells quoted with double quotes where they hold a comma, a quote or a line break.
- The first row is the header naming the columns, in any order. Headings are matched ignoring
  case, surrounding spaces, and spaces or hyphens for underscores ("Contact email" is
  `contact_email`). `name` and `organisation_type` are required; any other column may be left out.
  A heading that is not one of the columns below is an error for the whole file, as is a column
  named twice.
- Every later row is one application. Rows are numbered as a spreadsheet shows them: the header
  is row 1, the first application row 2. Rows whose cells are all empty are skipped.
- An empty cell (or one of spaces only) means "not given".
- At most 10,000 application rows and 20,000 characters a cell.

The columns
-----------
| column | what it holds |
|---|---|
| `name` | the provider's legal or trading name (required) |
| `organisation_type` | one of `public_body`, `vcse`, `sme`, `large_private`, |
| | `community_group`, `partnership` (required) |
| `description` | what the provider does |
| `website` | its web address, starting `http://` or `https://` |
| `companies_house` | Companies House number, 8 characters (`01234567`, `SC123456`) |
| `charity_number` | charity number (`1234567`, `1234567-1`, `SC012345`) |
| `ukprn` | UK provider reference number (1 then 7 digits) |
| `contact_name` | who to contact |
| `contact_email`, `contact_phone` | how to reach them |
| `address_line_1` to `address_line_4`, `town`, `county` | postal address |
| `postcode` | UK postcode; required once any cell of the address is given |
| `areas_served` | areas served, separated by semicolons (`Leeds; Bradford`) |
| `headcount` | staff headcount: for an `sme`, and only for one (with `turnover_gbp`) |
| `turnover_gbp` | annual turnover in whole pounds: for an `sme`, and only for one |
| `members` | for a `partnership`: the provider ids of at least two members already |
| | registered (not rows of the same file), separated by semicolons |

Identifiers and postcodes are normalised as the API does (`ab1 2cd` is `AB1 2CD`).

The directory's CSV export (`GET /directory/providers.csv`) writes these columns in these names,
then the registry's record (`provider_id`, `status`, dates, categories, standing): those are
accepted here and not used, so an exported file imports as it is. A cell the export defused
with an apostrophe (`'+44 113 496 0000`, a spreadsheet would read `+44` as a formula) is read
without it. The columns and their types are in
council/services/provider_registry/spreadsheet.py.

What comes back
---------------
`parse_providers_csv` returns the rows that are valid applications, as (row number, NewProvider),
and the rows that are not, as (row number, column, reason): one entry per bad row, naming its
first problem in column order and listing the others after it. A problem with the file itself (not
UTF-8, no header, unknown or missing columns, too many rows, broken quoting) raises
ImportFileError, and nothing of the file is used.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from council.kernel.contracts.provider_registry import OrganisationType
from council.services.provider_registry.application import IDENTIFIER_NAMES
from council.services.provider_registry.domain.commands import NewProvider
from council.services.provider_registry.spreadsheet import (
    ADDRESS_LINE_COLUMNS,
    DETAIL_NAMES,
    LIST_SEPARATOR,
    RECORD_NAMES,
    undefused,
)

MAX_ROWS = 10_000
MAX_CELL_CHARS = 20_000

IDENTIFIER_COLUMNS = ("companies_house", "charity_number", "ukprn")
CONTACT_COLUMNS = {"contact_name": "name", "contact_email": "email", "contact_phone": "phone"}
# The columns an application is read from: the provider spreadsheet's details, which the
# directory's CSV export writes in the same names.
COLUMNS: tuple[str, ...] = DETAIL_NAMES
# The export's other columns (the registry's record) are accepted and not used, so an exported
# file imports as it is.
IGNORED_COLUMNS: tuple[str, ...] = RECORD_NAMES
REQUIRED_COLUMNS = ("name", "organisation_type")

# Reasons in a spreadsheet user's words where pydantic's would show a regular expression.
_PATTERN_REASONS = {
    "website": "not a web address (it should start http:// or https://)",
    "contact_email": "not a valid email address",
    "contact_phone": "not a valid phone number (7 to 20 digits, spaces, brackets or dashes, "
                     "optionally starting +)",
}
# Fields the registry names that span columns, by the column a refusal is shown in.
_FIELD_COLUMNS = {"sme_size": "headcount"}


class ImportFileError(ValueError):
    """The file as a whole cannot be read as provider applications; no row of it is used."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class ParsedFile:
    """The applications of one file: rows to register and rows already refused."""

    rows: list[tuple[int, NewProvider]] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # row, column, reason

    @property
    def total(self) -> int:
        """How many application rows the file has (blank rows aside)."""
        return len(self.rows) + len(self.rejected)


def parse_providers_csv(data: bytes) -> ParsedFile:
    """Read a CSV file of provider applications (see the module docstring for its columns)."""
    records = _records(_text(data))
    _, header = next(records, (1, []))
    if not any(cell.strip() for cell in header):
        raise ImportFileError(
            "the file is empty: expected a header row naming the columns, e.g. "
            "name,organisation_type"
        )
    columns = _columns(header)
    parsed = ParsedFile()
    for row, cells in records:
        if not any(cell.strip() for cell in cells):
            continue
        if parsed.total >= MAX_ROWS:
            raise ImportFileError(
                f"the file has more than {MAX_ROWS:,} rows of applications; split it into "
                "files of at most that many"
            )
        _parse_row(row, cells, columns, parsed)
    if not parsed.total:
        raise ImportFileError("the file has a header row but no applications below it")
    return parsed


def column_of(field_path: str, reason: str) -> str:
    """The CSV column a registry refusal is about, from the field it names (InvalidInput.field):
    `identifiers.ukprn` is `ukprn`, `sme_size` is `headcount`. The one refusal that names no
    field, an identifier already registered to another provider (409 in the API), is placed by
    the identifier its reason starts with ("" when none does)."""
    if field_path:
        last = field_path.split(".")[-1]
        last = _FIELD_COLUMNS.get(last, last)
        return last if last in COLUMNS else field_path
    for scheme, name in IDENTIFIER_NAMES.items():
        if reason.startswith(f"{name} "):
            return scheme
    return ""


# --------------------------------------------------------------------------- the file


def _text(data: bytes) -> str:
    if data.startswith(b"PK\x03\x04"):
        raise ImportFileError("this is a spreadsheet workbook (.xlsx), not CSV: save it from your "
                              "spreadsheet as \"CSV UTF-8\"")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ImportFileError(f"the file is not text (a NUL byte on line {line}); save it from "
                              "your spreadsheet as \"CSV UTF-8\"")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save "
            "it from your spreadsheet as \"CSV UTF-8\""
        ) from None


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of each record; a quoted line break stays inside its row."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    row = 0
    while True:
        row += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = str(exc)
            if problem == "unexpected end of data":
                problem = "a quoted cell (starting with \") is never closed"
            raise ImportFileError(f"row {row} cannot be read as CSV: {problem}") from None
        yield row, cells


def _normal_heading(heading: str) -> str:
    return re.sub(r"[\s-]+", "_", heading.strip().lower())


def _columns(header: Sequence[str]) -> list[str | None]:
    """The column each position holds; None for a position without a heading."""
    columns: list[str | None] = [_normal_heading(h) or None for h in header]
    known = (*COLUMNS, *IGNORED_COLUMNS)
    unknown = [header[i].strip() for i, c in enumerate(columns) if c and c not in known]
    if unknown:
        hint = ""
        if len(header) == 1 and any(sep in header[0] for sep in ";\t"):
            hint = " (columns must be separated by commas)"
        raise ImportFileError(
            f"unknown column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}{hint}; the columns are: {', '.join(COLUMNS)}"
        )
    named = [c for c in columns if c]
    twice = sorted({c for c in named if named.count(c) > 1})
    if twice:
        raise ImportFileError(f"column{'s' if len(twice) > 1 else ''} named more than once: "
                              f"{', '.join(twice)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in named]
    if missing:
        raise ImportFileError(f"required column{'s' if len(missing) > 1 else ''} missing: "
                              f"{', '.join(missing)}")
    return columns


# --------------------------------------------------------------------------- one row


def _parse_row(
    row: int, cells: Sequence[str], columns: Sequence[str | None], parsed: ParsedFile
) -> None:
    values: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for position, cell in enumerate(cells):
        value = cell.strip()
        column = columns[position] if position < len(columns) else None
        if column is None:
            if value:
                problems.append(("", f"a value in column {_letters(position)}, which has no "
                                     "heading"))
            continue
        if column in IGNORED_COLUMNS:
            continue
        value = undefused(value)
        if len(value) > MAX_CELL_CHARS:
            problems.append((column, f"over {MAX_CELL_CHARS:,} characters"))
        elif value:
            values[column] = value
    if not problems:
        try:
            parsed.rows.append((row, NewProvider.model_validate(_application(values))))
            return
        except ValidationError as exc:
            problems = [_problem(error, values) for error in exc.errors()]
    order = {c: i for i, c in enumerate(("", *COLUMNS))}
    problems.sort(key=lambda p: order.get(p[0], len(order)))
    (column, reason), others = problems[0], problems[1:]
    if others:
        reason += "; also " + "; ".join(f"{c}: {r}" if c else r for c, r in others)
    parsed.rejected.append((row, column, reason))


def _application(values: dict[str, str]) -> dict[str, Any]:
    """The JSON a NewProvider is validated from: only what the row gives."""
    data: dict[str, Any] = {
        k: values[k] for k in ("name", "organisation_type", "description", "website")
        if k in values
    }
    identifiers = {k: values[k] for k in IDENTIFIER_COLUMNS if k in values}
    if identifiers:
        data["identifiers"] = identifiers
    contact = {key: values[column] for column, key in CONTACT_COLUMNS.items() if column in values}
    if contact:
        data["contact"] = contact
    address: dict[str, Any] = {
        k: values[k] for k in ("town", "county", "postcode") if k in values
    }
    lines = [values[k] for k in ADDRESS_LINE_COLUMNS if k in values]
    if lines:
        address["lines"] = lines
    if address:
        data["address"] = address
    for column in ("areas_served", "members"):
        if column in values:
            data[column] = _list(values[column])
    size = {k: values[k] for k in ("headcount", "turnover_gbp") if k in values}
    if size:
        data["sme_size"] = size
    return data


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]


def _column(loc: tuple[int | str, ...], values: dict[str, str]) -> str:
    """The CSV column an error location in the NewProvider JSON points at."""
    head = str(loc[0]) if loc else ""
    rest = [str(part) for part in loc[1:]]
    if head == "identifiers" and rest:
        return rest[0]
    if head == "contact" and rest:
        return f"contact_{rest[0]}"
    if head == "sme_size" and rest:
        return rest[0]
    if head == "address" and rest:
        if rest[0] == "lines":
            given = [c for c in ADDRESS_LINE_COLUMNS if c in values]
            index = int(rest[1]) if len(rest) > 1 and rest[1].isdigit() else 0
            return given[index] if index < len(given) else ADDRESS_LINE_COLUMNS[0]
        return rest[0]
    return head


def _problem(error: ErrorDetails, values: dict[str, str]) -> tuple[str, str]:
    column = _column(tuple(error["loc"]), values)
    kind = error["type"]
    if kind == "missing":
        if column == "postcode":
            return column, "required when any part of the address is given"
        if column in ("headcount", "turnover_gbp"):
            other = "turnover_gbp" if column == "headcount" else "headcount"
            return column, f"required along with {other} (an SME gives both)"
        return column, "required"
    if kind == "string_pattern_mismatch" and column in _PATTERN_REASONS:
        return column, _PATTERN_REASONS[column]
    if kind == "enum" and column == "organisation_type":
        return column, (f"{values.get(column, '')!r} is not an organisation type; one of: "
                        f"{', '.join(t.value for t in OrganisationType)}")
    if kind in ("int_parsing", "int_from_float"):
        return column, f"{values.get(column, '')!r} is not a whole number"
    if kind == "uuid_parsing" and column == "members":
        return column, f"{error['input']!r} is not a provider id"
    if kind == "too_long" and column in ("areas_served", "members"):
        return column, f"more than {error.get('ctx', {}).get('max_length')} entries"
    message = error["msg"]
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    return column, message[:1].lower() + message[1:]


def _letters(position: int) -> str:
    """A spreadsheet column letter: 0 is A, 26 is AA."""
    letters = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters
