"""Replaying the shared log into the integrator's network state: `council audit replay`, and the
snapshot store that serves every `?as_of=` view of the running service.

- A full replay reads the whole log from its beginning (embedded or Kafka, whichever is
  configured) into a fresh read model, with or without an "as of" moment: it trusts nothing but
  the log. A long log is folded in two processes (council.platform.replay.parallel).
- "As of" a moment, by default, goes through the snapshot store under var/replay/ (see
  council.platform.replay.snapshots): it is brought up to date with the log, takes the snapshots it
  lacks, then copies the latest one at or before the moment and applies only the events it lacks.
  The tests check that both give the same answer as the live projection gave on the date.

The integrator service keeps its store up to date in the background (SnapshotWorker) and
registers it, so its as-of views (state_as_of) use it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from council.platform.eventlog import EventLog, open_event_log
from council.platform.replay import IN_TWO_FROM, replay
from council.platform.replay.fold import FoldCount, ReadModelFile
from council.platform.replay.readahead import read_ahead
from council.platform.replay.snapshots import SnapshotStore
from council.platform.settings import Settings
from council.platform.sql import Database
from council.platform.tables import Column, data_package
from council.services.integrator.projections.asof import (
    SKIPPED,
    as_of_moment,
    default_projections,
    folder_for,
    register_snapshots,
    unregister_snapshots,
)
from council.services.integrator.projections.market import (
    MarketView,
    NetworkState,
    market_view,
    network_state,
)

log = structlog.get_logger("replay")

SNAPSHOT_INTERVAL = 50_000  # events between snapshots: a view as of a date applies at most this
REFRESH_EVERY_S = 5.0
Progress = Callable[[str, int, int], None]


def snapshot_folder(settings: Settings) -> Path:
    """Where the snapshot store of the configured log lives: one folder per log (address and
    topic prefix), so an embedded and a Kafka log never mix."""
    where = settings.log_url
    if not where.startswith("kafka://"):
        where = f"embedded:{Path(settings.var_dir).resolve()}:{where}"
    kind = "kafka" if where.startswith("kafka://") else "embedded"
    digest = hashlib.sha256(f"{where}|{settings.topic_prefix}".encode()).hexdigest()[:12]
    return Path(settings.var_dir) / "replay" / f"{kind}-{digest}"


def reads_ahead(settings: Settings) -> bool:
    """Whether the snapshot store's first indexing of a long log is worth a reader process:
    Kafka's fetches cost about as much to decode as indexing the records; the embedded log's
    rows are cheap. (A full replay takes two processes on either: see full_replay.)"""
    return settings.log_url.startswith("kafka://")


def open_snapshots(settings: Settings, event_log: EventLog,
                   interval: int = SNAPSHOT_INTERVAL) -> SnapshotStore:
    bulk = partial(read_ahead, settings, url=event_log.url) if reads_ahead(settings) else None
    return SnapshotStore(snapshot_folder(settings), event_log, default_projections(),
                         interval=interval, skipped=SKIPPED, bulk_reader=bulk)


class SnapshotWorker:
    """Keeps the service's snapshot store up to date with the log, in the background, and
    registers it for the service's as-of views."""

    def __init__(self, settings: Settings, views_log: EventLog,
                 interval: int = SNAPSHOT_INTERVAL) -> None:
        self.event_log = open_event_log(settings)
        try:
            self.store = open_snapshots(settings, self.event_log, interval)
        except BaseException:
            self.event_log.close()
            raise
        register_snapshots(views_log, self.store)

    def run(self, stop: threading.Event, idle_wait: float = 0.05) -> None:
        try:
            while not stop.is_set():
                try:
                    self.store.refresh()
                    self.store.checkpoint(stop=stop)
                except Exception as exc:  # the next round tries again; views replay meanwhile
                    log.error("snapshots_failed", error=str(exc))
                stop.wait(max(idle_wait, REFRESH_EVERY_S))
        finally:
            unregister_snapshots(self.store)
            self.store.close()
            self.event_log.close()


# ---------------------------------------------------------------------- replay


@dataclass
class Replayed:
    """A read model rebuilt from the log, and how."""

    db: Database
    log_url: str
    as_of: datetime | None
    how: str
    count: FoldCount
    seconds: float


@contextmanager
def replayed(settings: Settings, as_of: str | None = None, *, full: bool = False,
             rebuild_snapshots: bool = False, interval: int = SNAPSHOT_INTERVAL,
             progress: Progress | None = None) -> Iterator[Replayed]:
    """The network's read model rebuilt from the configured log, for the block's duration:
    everything, or as it stood at `as_of` (from snapshots unless `full`)."""
    moment = as_of_moment(as_of) if as_of is not None else None
    began = time.perf_counter()
    event_log = open_event_log(settings)
    try:
        if moment is None or full:
            with full_replay(settings, event_log, moment, progress) as (db, count):
                yield Replayed(db, event_log.url, moment, "full replay of the log", count,
                               time.perf_counter() - began)
            return
        store = open_snapshots(settings, event_log, interval)
        try:
            if rebuild_snapshots:
                store.reset()
            store.refresh(progress)
            store.checkpoint(progress)
            with store.as_of(moment) as found:
                if found.in_log_order:
                    how = "replay of the indexed log in log order (a stream goes back in time)"
                elif found.snapshot is not None:
                    how = f"from the snapshot of {found.snapshot[:10]} (end of day, UTC)"
                else:
                    how = "no snapshot at or before it: events applied from the index"
                yield Replayed(found.db, event_log.url, moment, how, found.count,
                               time.perf_counter() - began)
        finally:
            store.close()
    finally:
        event_log.close()


@contextmanager
def full_replay(settings: Settings, event_log: EventLog, moment: datetime | None = None,
                progress: Progress | None = None,
                in_two_from: int | None = IN_TWO_FROM) -> Iterator[tuple[Database, FoldCount]]:
    """The whole log (read through `event_log`) folded into a fresh read model, for the
    block's duration; a long log in two processes (see council.platform.replay.parallel)."""
    folder = Path(tempfile.mkdtemp(prefix="council-replay-"))
    try:
        projections = default_projections()
        model = ReadModelFile(folder / "views.sqlite", projections)
        try:
            count = replay(event_log, folder_for(event_log, projections), model.transaction,
                           moment, progress=progress, in_two_from=in_two_from)
        except BaseException:
            model.close()
            raise
        db = model.database()
        try:
            yield db, count
        finally:
            db.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------- reporting


def _money(amount: Decimal) -> str:
    return f"£{amount:,.2f}"


def report(db: Database, at: datetime | None = None) -> tuple[NetworkState, MarketView]:
    """The network state and the market view as at `at` (the "as of" moment; by default now),
    which decides the market's current, partial quarter and which performance figures are still
    provisional."""
    return network_state(db, at.date() if at else None), market_view(db, at)


def as_json(done: Replayed, state: NetworkState, market: MarketView) -> dict[str, Any]:
    return {
        "as_of": done.as_of.isoformat() if done.as_of else None,
        "log": done.log_url,
        "replay": {"how": done.how, "records_read": done.count.read,
                   "events_applied": done.count.applied, "duplicates": done.count.duplicates,
                   "later_than_as_of": done.count.later, "seconds": round(done.seconds, 3)},
        "network_state": state.model_dump(mode="json"),
        "market": market.model_dump(mode="json"),
    }


_MONEY = "pounds, to the penny"
NETWORK_COLUMNS: tuple[Column, ...] = (
    Column("provider_id", required=True), Column("provider_name"),
    Column("organisation_type", required=True), Column("status"),
    Column("agreement_id", description="empty for a provider with no active agreement"),
    Column("agreement_title"), Column("need_id"), Column("need_title"), Column("service_area"),
    Column("arrangement_type"), Column("starts_on", "date"), Column("ends_on", "date"),
    Column("agreement_budget", "number", description=_MONEY),
    Column("allocation", "number", description=f"the provider's share of the budget, {_MONEY}"),
    Column("spent", "number", description=f"paid to the provider under it, {_MONEY}"),
    Column("rag", enum=("green", "amber", "red"), description="performance, by the council's "
           "published rule"),
    Column("provider_committed", "number", description=_MONEY),
    Column("provider_spent_to_date", "number", description=_MONEY),
)
CSV_COLUMNS = tuple(c.name for c in NETWORK_COLUMNS)


def network_package(csv_path: str) -> dict[str, Any]:
    """The data package of the network state's CSV (as_csv) at `csv_path`."""
    return data_package(
        "network-state", "The council's provider network: providers and active agreements",
        csv_path, NETWORK_COLUMNS, primary_key=(),
        description="One row per provider and active agreement; a provider with none has one "
                    "row with the agreement's columns empty.")


def as_csv(state: NetworkState) -> str:
    """One row per provider and active agreement (a provider with none: one row, no agreement)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in state.providers:
        head = [p.provider_id, p.name or "", p.organisation_type, p.status or ""]
        tail = [p.committed, p.spent_to_date]
        if not p.active_agreements:
            writer.writerow([*head, *[""] * 12, *tail])
        for a in p.active_agreements:
            writer.writerow([
                *head, a.agreement_id, a.title, a.need_id, a.need_title or "",
                a.service_area or "", a.arrangement_type.value, a.starts_on, a.ends_on,
                a.agreement_budget, a.allocation, a.spent,
                a.performance.rag.value if a.performance and a.performance.rag else "", *tail,
            ])
    return out.getvalue()


def as_text(done: Replayed, state: NetworkState, market: MarketView, top: int = 15) -> str:
    """A readable summary: totals, who holds the committed spend, the largest providers, the
    service categories with their concentration, and the gaps."""
    t = state.totals
    when = (f"as of {done.as_of.isoformat()}" if done.as_of else "now (every event on the log)")
    lines = [
        f"Network state {when}",
        f"  replayed from {done.log_url}: {done.how}; {done.count.read:,} records read,"
        f" {done.count.applied:,} events applied; {done.seconds:.1f} s in all",
        "",
        "Totals",
        f"  {'open needs':<24}{t.open_needs:>6,}    {'pooled budget':<15}"
        f"{_money(t.pooled_budget):>20}",
        f"  {'active agreements':<24}{t.active_agreements:>6,}    {'committed':<15}"
        f"{_money(t.committed):>20}",
        f"  {'providers holding them':<24}{t.providers_with_active_agreements:>6,}    "
        f"{'spent to date':<15}{_money(t.spent_to_date):>20}",
        "",
        "Committed spend by organisation type",
    ]
    lines += [f"  {s.organisation_type:<16} {_money(s.committed):>18} {s.share_pct:>7}%"
              f"  {s.providers:>4} providers" for s in market.committed_by_organisation_type]
    approved = sum(1 for p in state.providers if p.status == "approved")
    ranked = sorted(state.providers, key=lambda p: (-p.committed, (p.name or "").casefold()))
    lines += ["", f"Providers: {len(state.providers):,} shown ({approved:,} approved);"
                  f" the {min(top, len(ranked))} with most committed"]
    lines.append(f"  {'provider':<38} {'type':<15} {'active':>6} {'committed':>16}"
                 f" {'spent to date':>16}")
    lines += [f"  {(p.name or str(p.provider_id))[:38]:<38} {p.organisation_type:<15}"
              f" {len(p.active_agreements):>6} {_money(p.committed):>16}"
              f" {_money(p.spent_to_date):>16}" for p in ranked[:top]]
    if len(ranked) > top:
        lines.append(f"  ... and {len(ranked) - top:,} more (--format csv lists every one)")
    lines += ["", "Service categories (rolled up: each includes those below it): approved"
                  " providers, committed, concentration (HHI 0-10,000, rated per top-level"
                  " category)"]
    lines += [f"  {('' if c.is_market else '  ') + c.category:<28} {c.active_providers:>4}"
              f" {_money(c.committed):>18}  {'' if c.hhi is None else c.hhi:>9}"
              f" {c.concentration or ''}" for c in market.categories]
    gaps = market.gaps
    lines += ["", f"Gaps: {len(gaps.needs_without_active_agreement)} open needs without an"
                  f" active agreement; {len(gaps.outcomes_not_covered)} outcomes not covered;"
                  f" {len(gaps.supply_gaps)} areas and categories with no approved provider"]
    lines += [f"  {g.title} ({g.service_area}, {g.stage.value})"
              for g in gaps.needs_without_active_agreement]
    lines += [f"  no provider: {g.category} in {g.area}" for g in gaps.supply_gaps]
    return "\n".join(lines) + "\n"
