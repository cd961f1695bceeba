"""Reading problem details (RFC 9457, see council.platform.problems) in tests: the fields at fault
and what is said of each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def loc_of(error: dict[str, Any]) -> list[Any]:
    """Where an error is, as a list (["body", "trajectory", 0, "period"])."""
    return [int(part) if part.isdigit() else part for part in error["field"].split(".")]


def assert_errors(response: Any, expected: Sequence[tuple[Sequence[Any], str]]) -> None:
    """The answer is 422 with exactly these errors: (where, pydantic's kind of error)."""
    assert response.status_code == 422, response.text
    found = [(loc_of(e), e.get("type")) for e in response.json()["errors"]]
    assert found == [(list(loc), kind) for loc, kind in expected], response.text
    assert all(e["message"] for e in response.json()["errors"])
