"""CSV files with their column schema: every CSV the council publishes says, in a Frictionless
Table Schema (https://specs.frictionlessdata.io/table-schema/) wrapped in a data package, what
each column holds. A typed reader (frictionless, pandas with the schema, a spreadsheet's import
wizard) would otherwise guess: a Companies House number `01234567` becomes the integer 1234567,
a postcode district `1E` a number, an ISO date a local one.

Pure descriptions and text; `csv_response` is the one piece that speaks HTTP: the CSV with a
`Link: <...>; rel="describedby"` header pointing at its data package (RFC 8288, as the CSV on the
Web and Frictionless guidance suggest for a schema served beside its file).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi.responses import Response

FieldType = Literal["string", "integer", "number", "date", "datetime", "boolean"]
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
PACKAGE_MEDIA_TYPE = "application/json"
PROFILE = "tabular-data-package"


@dataclass(frozen=True)
class Column:
    """One column of a published CSV, as its Table Schema field says it."""

    name: str
    type: FieldType = "string"
    description: str = ""
    required: bool = False
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    format: str | None = None  # "email", "uri" for strings

    def field(self) -> dict[str, Any]:
        descriptor: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.format:
            descriptor["format"] = self.format
        if self.description:
            descriptor["description"] = self.description
        constraints: dict[str, Any] = {}
        if self.required:
            constraints["required"] = True
        if self.pattern:
            constraints["pattern"] = self.pattern
        if self.enum:
            constraints["enum"] = list(self.enum)
        if constraints:
            descriptor["constraints"] = constraints
        return descriptor


def table_schema(columns: Sequence[Column], primary_key: Sequence[str] = ()) -> dict[str, Any]:
    """The Table Schema of a CSV with these columns, in this order. An empty cell is a missing
    value (never the text ""), so a typed reader gets null, not an error."""
    schema: dict[str, Any] = {
        "fields": [c.field() for c in columns],
        "missingValues": [""],
    }
    if primary_key:
        schema["primaryKey"] = list(primary_key)
    return schema


def data_package(name: str, title: str, path: str, columns: Sequence[Column], *,
                 description: str = "", primary_key: Sequence[str] = (),
                 encoding: str = "utf-8") -> dict[str, Any]:
    """A tabular data package of one CSV resource (`path`, relative to the package's own
    address, or absolute) with its schema inline."""
    resource: dict[str, Any] = {
        "name": name, "path": path, "profile": "tabular-data-resource", "format": "csv",
        "mediatype": "text/csv", "encoding": encoding,
        "dialect": {"delimiter": ",", "quoteChar": "\"", "doubleQuote": True,
                    "lineTerminator": "\r\n", "header": True},
        "schema": table_schema(columns, primary_key),
    }
    if description:
        resource["description"] = description
    return {"profile": PROFILE, "name": name, "title": title, "resources": [resource]}


def csv_text(columns: Sequence[Column], rows: Iterable[Mapping[str, object]]) -> str:
    """RFC 4180 CSV (CRLF line ends, minimal quoting) of these rows, columns in schema order;
    None is an empty cell."""
    out = io.StringIO()
    names = [c.name for c in columns]
    writer = csv.DictWriter(out, fieldnames=names, quoting=csv.QUOTE_MINIMAL,
                            lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({n: "" if row.get(n) is None else row.get(n) for n in names})
    return out.getvalue()


def csv_response(content: str, filename: str, package_url: str) -> Response:
    """The CSV as a download, its data package linked as what describes it."""
    return Response(
        content=content, media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Link": f'<{package_url}>; rel="describedby"; type="{PACKAGE_MEDIA_TYPE}"',
        },
    )
