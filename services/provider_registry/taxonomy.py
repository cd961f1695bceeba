"""The service-category taxonomy providers' capabilities are recorded against, shipped as data
(taxonomy.json) so councils can extend it without code changes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Term:
    code: str
    name: str
    description: str
    parent: str | None = None


@dataclass(frozen=True)
class Taxonomy:
    id: str
    name: str
    description: str
    version: str
    terms: dict[str, Term]

    def has(self, code: str) -> bool:
        return code in self.terms

    def under(self, code: str) -> set[str]:
        """`code` and every term below it."""
        found = {code}
        for term in self.terms.values():
            if term.parent in found and term.code not in found:
                found |= self.under(term.code)
        return found


@cache
def taxonomy() -> Taxonomy:
    raw = json.loads(
        resources.files("services.provider_registry").joinpath("taxonomy.json").read_text()
    )
    terms = {t["code"]: Term(t["code"], t["name"], t["description"], t.get("parent"))
             for t in raw["terms"]}
    meta = raw["taxonomy"]
    return Taxonomy(meta["id"], meta["name"], meta["description"], meta["version"], terms)
