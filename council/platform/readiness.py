"""What /ready and /metrics say about a service's background work beyond its store and log:
events parked by its read models and workers, what its readers found wrong with the log, and
whether each worker is alive and moving.

All of it is read from the databases (and the log) rather than from the workers' memory: the
work runs in child processes (council.platform.workers), and a parked event or a finding is kept
where the worker keeps its position anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from council.platform import parking
from council.platform.eventlog.findings import findings
from council.platform.sql import Database

SHOWN_IN_CHECK = 3  # parked items or findings named in the one-line check


def parked_by_projection(db: Database) -> dict[str, dict[str, Any]]:
    """Per projection (or worker) with anything parked: how many, and the first few."""
    found: dict[str, dict[str, Any]] = {}
    for item in parking.parked(db):
        entry = found.setdefault(item.projection, {"count": 0, "items": []})
        entry["count"] += 1
        if len(entry["items"]) < parking.SHOWN:
            entry["items"].append(item.summary())
    return found


def parked_check(parked: dict[str, dict[str, Any]]) -> str:
    """'ok', or a line naming what is parked and why (what /ready's checks say)."""
    if not parked:
        return "ok"
    total = sum(entry["count"] for entry in parked.values())
    named = [f"{name} {item['type'] or 'record'} {_what(item)} ({item['reason']})"
             for name, entry in parked.items() for item in entry["items"]][:SHOWN_IN_CHECK]
    more = f"; and {total - len(named)} more" if total > len(named) else ""
    return (f"{total} parked (not applied; `council projections retry` after a fix): "
            + "; ".join(named) + more)


def _what(item: dict[str, Any]) -> str:
    """A parked event by its id; other work (or a record that is no event) by its item."""
    return str((item["event_id"] if item["partition"] else None) or item["item"])


def log_findings(*databases: Database) -> list[dict[str, Any]]:
    return [f for db in databases for f in findings(db)]


def findings_check(found: list[dict[str, Any]]) -> str:
    if not found:
        return "ok"
    named = [f"{f['reader']}: {f['finding']}" for f in found[:SHOWN_IN_CHECK]]
    more = f"; and {len(found) - len(named)} more" if len(found) > len(named) else ""
    return ("the log went back or changed (`council log acknowledge` once looked into): "
            + "; ".join(named) + more)


@dataclass
class _Seen:
    position: Any
    since: float


@dataclass
class ProgressWatch:
    """Whether each read model moves while it is behind: one behind the log whose position has
    not changed for `stall_s` is stalled (a worker stuck, or dead where nothing restarts it).
    Positions are compared between calls (each /ready or scrape)."""

    stall_s: float
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stalled(self, name: str, position: Any, behind: int) -> bool:
        now = self.clock()
        with self._lock:
            seen = self._seen.get(name)
            if seen is None or seen.position != position or behind == 0:
                self._seen[name] = _Seen(position, now)
                return False
            return now - seen.since >= self.stall_s
