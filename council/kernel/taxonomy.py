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

    def lineage(self, code: str) -> list[str]:
        """`code` and every term above it, nearest first (an unknown code alone)."""
        found = [code]
        parent = self.terms[code].parent if code in self.terms else None
        while parent is not None and parent in self.terms and parent not in found:
            found.append(parent)
            parent = self.terms[parent].parent
        return found

    def top(self, code: str) -> str:
        """The top-level category `code` belongs to: itself if it is one (or is unknown)."""
        return self.lineage(code)[-1]

    def tree_order(self) -> list[str]:
        """Every code, each top-level category followed by the terms below it, in file order."""
        below: dict[str | None, list[str]] = {}
        for term in self.terms.values():
            parent = term.parent if term.parent in self.terms else None
            below.setdefault(parent, []).append(term.code)
        found: list[str] = []

        def walk(code: str) -> None:
            found.append(code)
            for child in below.get(code, []):
                if child not in found:
                    walk(child)

        for code in below.get(None, []):
            walk(code)
        return found


@cache
def taxonomy() -> Taxonomy:
    raw = json.loads(
        resources.files("council.kernel").joinpath("taxonomy.json").read_text()
    )
    terms = {t["code"]: Term(t["code"], t["name"], t["description"], t.get("parent"))
             for t in raw["terms"]}
    meta = raw["taxonomy"]
    return Taxonomy(meta["id"], meta["name"], meta["description"], meta["version"], terms)
