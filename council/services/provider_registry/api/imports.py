"""HTTP entry point: provider applications imported from a spreadsheet (CSV).

The file is read whole before anything is stored: a problem with the file itself is refused
(422, 415 for a body that is not CSV, 413 over the size limit) with nothing written. Otherwise
every application row is either registered (the provider and its identifier claims in one
transaction) or reported with the column and the reason, each row exactly once.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from council.platform.identity import COUNCIL_WRITERS, Principal, acting_as, require
from council.services.provider_registry.adapters.csv_import import (
    COLUMNS,
    IGNORED_COLUMNS,
    MAX_ROWS,
    ImportFileError,
    column_of,
    parse_providers_csv,
)
from council.services.provider_registry.api.providers import registry_of

router = APIRouter(tags=["imports"])

IMPORT_PATH = "/providers/import"
MAX_IMPORT_BYTES = 8 * 1024 * 1024  # the body limit set for IMPORT_PATH in service.SPEC
CSV_TYPES = frozenset({"text/csv", "application/csv"})
UTF8 = frozenset({"utf-8", "utf8", "us-ascii"})

Writer = Annotated[Principal, Depends(require(*COUNCIL_WRITERS))]


class Accepted(BaseModel):
    row: int = Field(description="row number as a spreadsheet shows it (the header is row 1)")
    provider_id: UUID


class Rejected(BaseModel):
    row: int = Field(description="row number as a spreadsheet shows it (the header is row 1)")
    field: str = Field(description="the column at fault; empty when the row as a whole is")
    reason: str


class ImportResult(BaseModel):
    rows: int = Field(description="application rows in the file (blank rows aside)")
    accepted: list[Accepted]
    rejected: list[Rejected]


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(
        422,
        detail=[{"type": "value_error", "loc": ["body"], "msg": message}],
    )


async def csv_body(request: Request) -> bytes:
    """The request body, once its content type says it is CSV in UTF-8."""
    content_type = request.headers.get("content-type", "")
    media, *params = [part.strip().lower() for part in content_type.split(";")]
    charset = next((p.partition("=")[2].strip('"') for p in params if p.startswith("charset=")),
                   "utf-8")
    if media not in CSV_TYPES or charset not in UTF8:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"send the file as the request body with Content-Type: text/csv (UTF-8); "
                   f"got {content_type or 'no Content-Type'!r}",
        )
    return await request.body()


_DESCRIPTION = f"""Register many providers' applications from a CSV file sent as the request
body (`Content-Type: text/csv`, UTF-8, at most {MAX_IMPORT_BYTES // (1024 * 1024)} MiB and
{MAX_ROWS:,} rows). The header row names the columns: `name` and `organisation_type` are
required; the others are {", ".join(f"`{c}`" for c in COLUMNS[2:])}. `areas_served` and
`members` take several values separated by semicolons; empty cells are not given. The
directory's CSV export (`GET /directory/providers.csv`) imports as it is: its further columns,
the registry's record ({", ".join(f"`{c}`" for c in IGNORED_COLUMNS)}), are accepted and not
used.

Every row is either registered (status `applied`) or reported with the column and reason; a
problem with the file itself is refused with 422 and nothing is registered."""


@router.post(
    IMPORT_PATH, response_model=ImportResult, description=_DESCRIPTION,
    openapi_extra={"requestBody": {"required": True, "content": {
        "text/csv": {"schema": {"type": "string"},
                     "example": "name,organisation_type,postcode\n"
                                "Leeds Lunch Club,vcse,LS1 4AP\n"}}}},
    responses={413: {"description": "the file is over the size limit"},
               415: {"description": "the body is not UTF-8 CSV"},
               422: {"description": "the file cannot be read as applications"}},
)
def import_providers(
    request: Request, principal: Writer, body: Annotated[bytes, Depends(csv_body)]
) -> ImportResult:
    """Import provider applications from a spreadsheet."""
    try:
        parsed = parse_providers_csv(body)
    except ImportFileError as exc:
        raise _unprocessable(exc.message) from None
    with acting_as(request, principal):
        report = registry_of(request).register_many(parsed.rows)
    refused = [(row, column_of(field, reason), reason) for row, field, reason in report.rejected]
    rejected = [*parsed.rejected, *refused]
    return ImportResult(
        rows=parsed.total,
        accepted=[Accepted(row=row, provider_id=pid) for row, pid in sorted(report.accepted)],
        rejected=[Rejected(row=row, field=field, reason=reason)
                  for row, field, reason in sorted(rejected)],
    )
