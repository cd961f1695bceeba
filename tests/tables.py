"""Checking a published CSV against its data package with the Frictionless Framework's own
validator (`frictionless`), as a third-party reader would: the file is written where the
package's resource says it is, and every type and constraint error is reported."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

from frictionless import Package, Resource, Schema, validate


def schema_errors(package: dict[str, Any], text: str, tmp_path: Path) -> list[str]:
    """Frictionless's errors for the CSV `text` read with the package's one resource; [] when
    it conforms."""
    descriptor = copy.deepcopy(package)
    (resource,) = descriptor["resources"]
    name = f"{resource['name']}.csv"
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(text, encoding="utf-8", newline="")
    resource["path"] = name
    (tmp_path / "datapackage.json").write_text(json.dumps(descriptor), encoding="utf-8")
    report = validate(str(tmp_path / "datapackage.json"))
    return [f"{e.type}: {e.message}" for task in report.tasks for e in task.errors] + [
        f"{e.type}: {e.message}" for e in report.errors
    ]


def typed_rows(package: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """The rows as a typed reader reads them with the package's schema."""
    (resource,) = package["resources"]
    schema = Schema.from_descriptor(resource["schema"])
    with Resource(text.encode(), format="csv", schema=schema) as read:
        return [row.to_dict() for row in read.row_stream]


def header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text, newline="")))


def assert_package(package: dict[str, Any]) -> None:
    """The package is a valid tabular data package by Frictionless's own profile checks."""
    errors = Package.validate_descriptor(package).flatten(["type", "message"])
    assert not errors, errors


__all__ = ["assert_package", "header", "schema_errors", "typed_rows"]
