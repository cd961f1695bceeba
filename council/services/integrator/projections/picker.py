"""Choosing providers for a need: the network searched by capability (a category finds the
providers offering it, anything below it, or the broad category above it), area,
organisation type and size, each candidate with its standing (lapsed accreditations,
insurance and safeguarding checks; suspension) and its load (active agreements, committed
budget); and what is committed now, for the award preview
(council.services.integrator.domain.award_preview). Read from the integrator's own read models.

`lineage` is passed in (the taxonomy's: a category and those above it), so these queries keep
to the tables and the caller chooses where the taxonomy comes from.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from council.kernel.money import pounds
from council.platform.sql import Database
from council.services.integrator.domain.award_preview import Held

Lineage = Callable[[str], list[str]]


@dataclass(frozen=True)
class Candidate:
    provider_id: str
    name: str
    organisation_type: str
    size_band: str | None
    status: str
    areas: list[str]
    categories: list[str]
    lapsed: list[str] = field(default_factory=list)  # names of lapsed standing, with kind
    active_agreements: int = 0
    committed: Decimal = Decimal(0)

    @property
    def in_good_standing(self) -> bool:
        return self.status == "approved" and not self.lapsed


@dataclass(frozen=True)
class Search:
    category: str = ""
    area: str = ""
    organisation_type: str = ""
    size: str = ""  # a size band (micro, small, medium) or "large" (no band)
    q: str = ""
    approved_only: bool = True


def _matches(search: Search, lineage: Lineage, categories: list[str], areas: list[str],
             kind: str, band: str | None, name: str) -> bool:
    if search.category and not any(
            search.category in lineage(c) or c in lineage(search.category) for c in categories):
        return False
    if search.area and search.area.casefold() not in {a.casefold() for a in areas}:
        return False
    if search.organisation_type and kind != search.organisation_type:
        return False
    if search.size == "large" and band is not None:
        return False
    if search.size and search.size != "large" and band != search.size:
        return False
    return all(w in name.casefold() for w in search.q.casefold().split())


def candidates(db: Database, search: Search, lineage: Lineage, today: date,
               limit: int = 200) -> list[Candidate]:
    """The providers matching `search`, in good standing first, then least loaded, then by
    name."""
    with db.transaction() as tx:
        where = " WHERE status = 'approved'" if search.approved_only else ""
        providers = tx.execute(
            "SELECT provider_id, name, organisation_type, sme_size_band, status, areas_served"
            f" FROM network_providers{where}")
        offered: dict[str, list[str]] = defaultdict(list)
        for p, category in tx.execute("SELECT provider_id, category FROM network_capabilities"):
            offered[str(p)].append(str(category))
        lapsed: dict[str, list[str]] = defaultdict(list)
        for p, kind, name in tx.execute(
                "SELECT s.provider_id, s.kind, s.name FROM st_accreditations s"
                " WHERE s.removed_reason IS NULL AND s.expires_on IS NOT NULL"
                " AND s.expires_on < ? AND NOT EXISTS (SELECT 1 FROM st_accreditations r"
                "  WHERE r.provider_id = s.provider_id AND r.kind = s.kind"
                "  AND r.name = s.name AND r.removed_reason IS NULL"
                "  AND (r.expires_on IS NULL OR r.expires_on > s.expires_on))",
                (today.isoformat(),)):
            lapsed[str(p)].append(f"{name} ({str(kind).replace('_', ' ')})")
        load: dict[str, tuple[int, int]] = {
            str(p): (int(n), int(total)) for p, n, total in tx.execute(
                "SELECT p.provider_id, COUNT(*), SUM(p.allocation_pence) FROM cm_parties p"
                " JOIN cm_agreements a ON a.agreement_id = p.agreement_id"
                " WHERE a.status = 'active' GROUP BY p.provider_id")}
    found: list[Candidate] = []
    for provider_id, name, kind, band, status, areas in providers:
        key = str(provider_id)
        served = list(json.loads(areas))
        if not _matches(search, lineage, offered.get(key, []), served, str(kind),
                        band, str(name)):
            continue
        held, committed = load.get(key, (0, 0))
        found.append(Candidate(key, str(name), str(kind), band, str(status), served,
                               sorted(set(offered.get(key, []))), sorted(lapsed.get(key, [])),
                               held, pounds(committed)))
    found.sort(key=lambda c: (not c.in_good_standing, c.committed, c.name.casefold()))
    return found[:limit]


def committed_now(db: Database, lineage: Lineage) -> tuple[list[Held], dict[str, str]]:
    """Every party's allocation under an active agreement, counted in its need's category
    and those above it; and each provider's organisation type."""
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT p.provider_id, n.service_area, p.allocation_pence FROM cm_parties p"
            " JOIN cm_agreements a ON a.agreement_id = p.agreement_id"
            " JOIN cm_needs n ON n.need_id = a.need_id WHERE a.status = 'active'")
        kinds = {str(p): str(k) for p, k in tx.execute(
            "SELECT provider_id, organisation_type FROM network_providers")}
    return [Held(str(p), tuple(lineage(str(area))), int(pence)) for p, area, pence in rows], kinds
