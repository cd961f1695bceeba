"""The official Open Referral UK 3.0 API definition and schemas (tests/schemas/oruk, vendored
unchanged) as validators: an answer is checked against the response schema openapi.json declares
for its path, and for fields the profile does not declare (the schemas leave
additionalProperties open, so a field outside the profile would pass them silently)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parent / "schemas" / "oruk"
SCHEMA_BASE = "https://openreferraluk.org/specifications/3.0/schema/"


@cache
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / "openapi.json").read_text())
    return document


@cache
def registry() -> Registry[Any]:
    found: Registry[Any] = Registry()
    for path in sorted((ROOT / "schema").glob("*.json")):
        contents = json.loads(path.read_text())
        found = found.with_resource(
            SCHEMA_BASE + path.name,
            Resource.from_contents(contents, default_specification=DRAFT202012),
        )
    return found


def schema_named(name: str) -> dict[str, Any]:
    """One of the profile's schemas by file name (`service`, `address`, ...)."""
    contents: dict[str, Any] = registry().contents(SCHEMA_BASE + f"{name}.json")
    return contents


def response_schema(template: str) -> dict[str, Any]:
    """The schema of a 200 answer to GET `template` (a path of openapi.json, "/services/{id}")."""
    operation = openapi()["paths"][template]["get"]
    schema: dict[str, Any] = operation["responses"]["200"]["content"]["application/json"][
        "schema"]
    return schema


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, registry=registry(), format_checker=FormatChecker())


def schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in validator(schema).iter_errors(instance)]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = registry().contents(schema["$ref"])
    return schema


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    schema = _resolve(schema)
    found = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        found.update(_properties(part))
    return found


def undeclared(instance: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Every field in `instance` that `schema` (following $ref and allOf) does not declare."""
    schema = _resolve(schema)
    found: list[str] = []
    if isinstance(instance, dict):
        declared = _properties(schema)
        for key, value in instance.items():
            if key not in declared:
                found.append(f"{where}/{key}")
            else:
                found += undeclared(value, declared[key], f"{where}/{key}")
    elif isinstance(instance, list):
        items = schema.get("items", {})
        for i, item in enumerate(instance):
            found += undeclared(item, items, f"{where}/{i}")
    return found


def blanks(instance: Any, where: str = "") -> list[str]:
    """Every empty string, empty list or null in `instance` (absent values are left out), but
    a page's `contents`, which is empty past the last page."""
    found: list[str] = []
    if isinstance(instance, dict):
        for key, value in instance.items():
            if value in ("", None, []) and not (key == "contents" and where == ""):
                found.append(f"{where}/{key}")
            found += blanks(value, f"{where}/{key}")
    elif isinstance(instance, list):
        for i, item in enumerate(instance):
            found += blanks(item, f"{where}/{i}")
    return found


def problems_with(instance: Any, template: str) -> list[str]:
    """Schema errors, undeclared fields and blank values of a GET `template` answer."""
    schema = response_schema(template)
    return (schema_errors(instance, schema)
            + [f"not in the UK profile: {p}" for p in undeclared(instance, schema)]
            + [f"blank: {p}" for p in blanks(instance)])
