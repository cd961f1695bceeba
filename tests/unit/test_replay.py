"""Replay and "as of": the lean fold and the snapshot store against a plain replay.

The oracle is the definition, written out here the simplest way: every record of the log read in
order, its envelope validated, events after the moment passed over, republished duplicates
passed over by stream position, and the rest applied by the integrator's projections one
statement at a time. Random histories (providers, needs, agreements, spend, measures and
measurements, attributions, payments, deliveries with corrections) arrive on the log in a random
order that keeps each stream's order (as loading history late does), with duplicates, in rounds
between which snapshots are taken, so later rounds bring events that belong before them.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest.mock import patch
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from council.kernel.contracts import all_specs
from council.kernel.contracts import integrator as ci
from council.kernel.contracts import outcomes as co
from council.kernel.contracts import provider_registry as pr
from council.kernel.envelope import EventEnvelope, event_id_for
from council.kernel.errors import InfrastructureUnavailable
from council.platform.eventlog import EventLog
from council.platform.eventlog.embedded import EmbeddedEventLog
from council.platform.projection import Projection, _stream_key
from council.platform.replay import parallel, replay, snapshots
from council.platform.replay.fold import (
    BatchingTx,
    ReadModelFile,
    UnreadableRecord,
    entry_of,
    utc_text,
)
from council.platform.replay.readahead import read_ahead
from council.platform.replay.snapshots import SnapshotStore
from council.platform.settings import Settings
from council.platform.sql import Database
from council.services.integrator.projections.asof import (
    SKIPPED,
    as_of_moment,
    build_as_of,
    default_projections,
    folder_for,
    register_snapshots,
    state_as_of,
    unregister_snapshots,
)
from council.services.integrator.projections.market import market_view, network_state
from council.services.integrator.projections.replay import open_snapshots
from council.tools.cli import main
from tests.tables import schema_errors

D = Decimal
SPECS = {spec.data: spec for spec in all_specs()}
TOPICS = ("provider_registry", "integrator", "outcomes")


# ---------------------------------------------------------------------- histories


class History:
    """Events in business-time order; stream positions follow business time."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.planned: list[tuple[datetime, BaseModel]] = []

    def uid(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def at(self, day: date) -> datetime:
        # Some events fall on the first and last microsecond of a day: boundaries of "as of".
        pick = self.rng.random()
        if pick < 0.1:
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        if pick < 0.2:
            return datetime(day.year, day.month, day.day, 23, 59, 59, 999999, tzinfo=UTC)
        return datetime(day.year, day.month, day.day, self.rng.randrange(24),
                        self.rng.randrange(60), tzinfo=UTC)

    def add(self, day: date, data: BaseModel) -> datetime:
        when = self.at(day)
        self.planned.append((when, data))
        return when

    def envelopes(self) -> list[EventEnvelope]:
        positions: dict[tuple[str, str], int] = defaultdict(int)
        found = []
        for when, data in sorted(self.planned, key=lambda p: p[0]):
            spec = SPECS[type(data)]
            stream = str(getattr(data, spec.stream_field))
            positions[(spec.source, stream)] += 1
            position = positions[(spec.source, stream)]
            found.append(EventEnvelope(
                event_id=event_id_for(spec.source, stream, position), type=spec.type,
                schema_version=spec.version, source=spec.source, stream_id=stream,
                stream_position=position, occurred_at=when, recorded_at=when,
                actor=self.rng.choice(["commissioner:jo", "provider:acme", None]),
                data=data.model_dump(mode="json")))
        return found


def random_history(seed: int, providers: int = 6, needs: int = 3) -> list[EventEnvelope]:
    rng = random.Random(seed)
    h = History(rng)
    start = date(2024, 1, 1)

    def day(after: date, most: int = 60) -> date:
        return after + timedelta(days=rng.randint(0, most))

    approved: list[tuple[UUID, date]] = []
    for i in range(providers):
        pid, joined = h.uid(), day(start, 90)
        h.add(joined, pr.ProviderRegistered(
            provider_id=pid, name=f"Provider {i}",
            organisation_type=rng.choice(list(pr.OrganisationType)[:5])))
        h.add(day(joined, 5), pr.ProviderCapabilityAdded(
            provider_id=pid, capability_id="c1", category=rng.choice(["home-care", "youth"])))
        if rng.random() < 0.3:
            h.add(day(joined, 9), pr.AccreditationAdded(
                provider_id=pid, accreditation_id="a1", kind=pr.StandingKind.INSURANCE,
                name="Public liability"))
        if rng.random() < 0.85:
            ok = day(joined + timedelta(days=10), 20)
            h.add(ok, pr.ProviderApproved(provider_id=pid, reason="checks passed",
                                          credentials_id=f"cred-{i}"))
            approved.append((pid, ok))
            if rng.random() < 0.3:
                h.add(day(ok + timedelta(days=100), 200),
                      pr.ProviderSuspended(provider_id=pid, reason="lapsed insurance"))
    measures = []
    for m in range(2):
        mid, defined = h.uid(), day(start, 30)
        h.add(defined, co.OutcomeMeasureDefined(
            measure_id=mid, name=f"Measure {m}", unit="%",
            direction=rng.choice(list(co.Direction)), baseline=D(rng.randint(30, 60)),
            trajectory=[co.TrajectoryPoint(period=f"2024-{q:02d}", target=D(rng.randint(30, 60)))
                        for q in range(3, 13)]))
        measures.append(mid)
        for month in range(3, 13):
            recorded = date(2024, month, 1) + timedelta(days=rng.randint(30, 45))
            h.add(recorded, co.MeasurementRecorded(
                measure_id=mid, measurement_id=f"m{month}", period=f"2024-{month:02d}",
                value=D(rng.randint(20, 70)), source="survey"))
            if rng.random() < 0.3:
                h.add(recorded + timedelta(days=20), co.MeasurementRecorded(
                    measure_id=mid, measurement_id=f"m{month}-r", period=f"2024-{month:02d}",
                    value=D(rng.randint(20, 70)), source="survey", revises=f"m{month}"))
    for n in range(needs):
        need_id, defined = h.uid(), day(start, 120)
        envelope = D(rng.randint(100, 900) * 1000)
        h.add(defined, ci.NeedDefined(
            need_id=need_id, title=f"Need {n}", service_area=rng.choice(["home-care", "youth"]),
            population=ci.Population(description="residents"),
            outcomes=[ci.OutcomeSought(outcome_id="o1", description="better")],
            budget_envelope=envelope, starts_on=defined, ends_on=defined + timedelta(days=700),
            lead_organisation="Northshire"))
        if rng.random() < 0.5:
            h.add(day(defined, 10), ci.NeedContributionPledged(
                need_id=need_id, contribution_id="icb", partner="ICB", amount=envelope / 4))
        candidates = [p for p, ok in approved if ok <= defined + timedelta(days=30)]
        if not candidates or rng.random() < 0.2:
            continue
        decided = defined + timedelta(days=30)
        chosen = rng.sample(candidates, k=min(2, len(candidates)))
        share = (envelope / 2).quantize(D("0.01"))
        h.add(decided, ci.CommissioningDecided(
            need_id=need_id, decision_id="d1", rationale="best mix", decision_maker="Cabinet",
            awards=[ci.Award(award_id=f"a{k}", title=f"Lot {k}",
                             arrangement_type=ci.ArrangementType.GRANT, provider_ids=[p],
                             allocation=share) for k, p in enumerate(chosen)]))
        for k, provider in enumerate(chosen):
            _agreement(h, need_id, decided, provider, share, k, measures)
        if rng.random() < 0.3:
            h.add(day(decided + timedelta(days=200), 100),
                  ci.NeedClosed(need_id=need_id, reason="met"))
    return h.envelopes()


def _agreement(h: History, need_id: UUID, decided: date, provider: UUID, budget: Decimal,
               k: int, measures: list[UUID]) -> None:
    rng = h.rng
    aid = h.uid()
    terms = h.uid()
    h.add(decided + timedelta(days=2), ci.AgreementDrafted(
        agreement_id=aid, need_id=need_id, title=f"Lot {k}",
        arrangement_type=ci.ArrangementType.GRANT,
        parties=[ci.Party(provider_id=provider, allocation=budget)], starts_on=decided,
        ends_on=decided + timedelta(days=365), budget=budget,
        outcomes=[ci.AgreementOutcome(outcome_id="o1")], exit_plan="hand back"))
    live = decided + timedelta(days=10)
    h.add(live, ci.AgreementActivated(agreement_id=aid, activated_on=live))
    h.add(live, co.OutcomeAttributed(terms_id=terms, agreement_id=aid,
                                     measure_id=rng.choice(measures), weight=D("0.5")))
    h.add(live, co.RateCardAgreed(terms_id=terms, agreement_id=aid,
                                  periodicity=co.Periodicity.MONTHLY))
    reports: list[UUID] = []
    for month in range(1, 7):
        when = live + timedelta(days=30 * month)
        h.add(when, ci.SpendRecorded(agreement_id=aid, spend_id=f"s{month}",
                                     provider_id=provider, amount=budget / 20,
                                     period=f"{when.year}-{when.month:02d}"))
        h.add(when + timedelta(days=5), co.PaymentCalculated(
            terms_id=terms, agreement_id=aid, period=f"{when.year}-{when.month:02d}",
            calculation_id=f"c{month}", lines=[], total=D(rng.randint(100, 999))))
        for _ in range(rng.randint(1, 4)):
            delivery = h.uid()
            corrects = rng.choice(reports) if reports and rng.random() < 0.2 else None
            h.add(when, co.DeliveryReported(
                delivery_id=delivery, agreement_id=aid, provider_id=provider,
                activity_type="sessions", quantity=D(rng.randint(1, 20)), unit="session",
                period_start=when - timedelta(days=6), period_end=when,
                idempotency_key=f"k-{delivery}", corrects=corrects, channel=co.Channel.HTTP))
            reports.append(delivery)
        if month == 3 and rng.random() < 0.5:
            h.add(when + timedelta(days=1), ci.AgreementVaried(
                agreement_id=aid, variation_id="v1", kind=ci.VariationKind.GROWTH,
                budget_change=D(5000), new_budget=budget + 5000, reason="demand"))
            budget += 5000
    if rng.random() < 0.4:
        ended = live + timedelta(days=200)
        h.add(ended, ci.AgreementEnded(agreement_id=aid, how=ci.EndingKind.COMPLETED,
                                       ended_on=ended, reason="done", exit_plan_executed=False))


def arrival_order(events: list[EventEnvelope], seed: int,
                  duplicates: float = 0.05) -> list[EventEnvelope]:
    """The events as history loaded late puts them on the log: streams interleaved at random,
    each stream in its own order, some republished (an at-least-once relay)."""
    rng = random.Random(seed)
    last: dict[str, float] = {}
    keyed = []
    for e in events:
        key = _stream_key(e)
        arrives = max(last.get(key, 0.0), rng.random())
        last[key] = arrives
        keyed.append((arrives, len(keyed), e))
    ordered = [e for _, _, e in sorted(keyed, key=lambda k: (k[0], k[1]))]
    found: list[EventEnvelope] = []
    for e in ordered:
        found.append(e)
        if rng.random() < duplicates:
            found.append(e)  # published twice
    return found


# ---------------------------------------------------------------------- the oracle


def plain_replay(db: Database, event_log: EventLog, moment: datetime | None) -> None:
    projections = default_projections()
    with db.transaction() as tx:
        ReadModelFile.prepare(tx, projections)
    topics = {p.name: {event_log.topic_for(s) for s in p.sources} for p in projections}
    seen: dict[str, int] = {}
    for records in event_log.read_all([event_log.topic_for(s) for s in TOPICS]):
        with db.transaction() as tx:
            for record in records:
                event = record.envelope
                if moment is not None and event.occurred_at > moment:
                    continue
                key = _stream_key(event)
                if seen.get(key, 0) >= event.stream_position:
                    continue
                for projection in projections:
                    if record.topic in topics[projection.name]:
                        projection.apply(tx, event)
                seen[key] = event.stream_position


def tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table's rows, sorted (bookkeeping left out)."""
    conn = sqlite3.connect(path)
    try:
        names = [n for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if not n.startswith("projection_")]
        return {n: sorted(conn.execute(f"SELECT * FROM {n}").fetchall(), key=repr)
                for n in names}
    finally:
        conn.close()


def oracle(folder: Path, event_log: EventLog, moment: datetime | None) -> dict[str, Any]:
    path = folder / f"oracle-{len(list(folder.iterdir()))}.sqlite"
    db = Database.sqlite(path)
    plain_replay(db, event_log, moment)
    db.close()
    return tables(path)


def db_path(db: Database) -> Path:
    return db.path


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EmbeddedEventLog]:
    opened = EmbeddedEventLog(tmp_path / "shared-log.sqlite")
    yield opened
    opened.close()


def moments(events: list[EventEnvelope], rng: random.Random, n: int = 6) -> list[datetime]:
    """Dates and date-times to ask about: before everything, after everything, at and just
    around event times and day ends."""
    times = sorted({e.occurred_at for e in events})
    picked = [times[0] - timedelta(days=1), times[-1] + timedelta(days=1)]
    for _ in range(n):
        t = rng.choice(times)
        picked.append(rng.choice([t, t - timedelta(microseconds=1), as_of_moment(t.date())]))
    return picked


# ---------------------------------------------------------------------- properties


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), rounds=st.integers(1, 4), interval=st.integers(5, 60),
       batch=st.sampled_from([3, 17, 5000]))
def test_as_of_from_snapshots_equals_a_plain_replay(tmp_path_factory: pytest.TempPathFactory,
                                                    seed: int, rounds: int, interval: int,
                                                    batch: int) -> None:
    """Also with tiny batches, so that reads of the index and of the log are cut between
    events of the same moment."""
    with patch.object(snapshots, "BATCH", batch):
        _snapshots_equal_a_plain_replay(tmp_path_factory.mktemp("snap"), seed, rounds, interval)


def _snapshots_equal_a_plain_replay(folder: Path, seed: int, rounds: int,
                                    interval: int) -> None:
    events = random_history(seed)
    arriving = arrival_order(events, seed)
    rng = random.Random(seed)
    log = EmbeddedEventLog(folder / "shared-log.sqlite")
    store = SnapshotStore(folder / "replay", log, default_projections(), interval=interval,
                          skipped=SKIPPED)
    cut = sorted(rng.sample(range(1, len(arriving)), k=rounds - 1)) if rounds > 1 else []
    parts = [arriving[a:b] for a, b in zip([0, *cut], [*cut, len(arriving)], strict=True)]
    try:
        for part in parts:
            log.append(part)
            store.refresh()
            store.checkpoint()
            for moment in moments(events, rng):
                expected = oracle(folder, log, moment)
                with store.as_of(moment) as found:
                    assert tables(db_path(found.db)) == expected, (seed, moment)
                    assert not found.in_log_order
        if len(events) >= 3 * interval:
            assert store.status().snapshots, "the history is long enough for snapshots"
        lean = Database.sqlite(folder / "lean.sqlite")
        build_as_of(lean, log, None, None)
        lean.close()
        assert tables(folder / "lean.sqlite") == oracle(folder, log, None)
    finally:
        store.close()
        log.close()


def test_a_late_event_makes_later_snapshots_stale(tmp_path: Path,
                                                  log: EmbeddedEventLog) -> None:
    events = random_history(7, providers=8, needs=4)
    early = [e for e in events if e.type != "ProviderSuspended"]
    late = [e for e in events if e.type == "ProviderSuspended"]
    assert late
    store = SnapshotStore(tmp_path / "replay", log, default_projections(), interval=20,
                          skipped=SKIPPED)
    log.append(early)
    store.refresh()
    assert store.checkpoint() >= 2
    before = store.status().snapshots
    first_late = min(e.occurred_at for e in late)
    log.append(late)  # history loaded late: dated before some snapshots
    store.refresh()
    after = store.status().snapshots
    assert [s.boundary for s in after] == [
        s.boundary for s in before if s.boundary < first_late.isoformat()]
    assert all(not s.file.exists() for s in before if s not in after)
    store.checkpoint()
    assert len(store.status().snapshots) >= len(after)
    lost = store.status().snapshots[-1]
    lost.file.unlink()  # a snapshot file gone (deleted by hand, or by another process)
    with store.as_of(datetime(2030, 1, 1, tzinfo=UTC)) as found:
        assert found.snapshot is not None
        assert found.snapshot < lost.boundary
        assert tables(db_path(found.db)) == oracle(tmp_path, log, None)
    assert lost not in store.status().snapshots
    for moment in moments(events, random.Random(1), 8):
        with store.as_of(moment) as found:
            assert tables(db_path(found.db)) == oracle(tmp_path, log, moment)
    store.close()


def test_a_stream_going_back_in_time_is_replayed_in_log_order(tmp_path: Path,
                                                              log: EmbeddedEventLog) -> None:
    events = random_history(11)
    provider = next(e for e in events if e.type == "ProviderRegistered")
    stream = [e for e in events if e.stream_id == provider.stream_id]
    back = stream[0].occurred_at - timedelta(days=3)  # dated before the stream's first event
    wrong = EventEnvelope(
        event_id=event_id_for("provider_registry", provider.stream_id, len(stream) + 1),
        type="ProviderRejected", schema_version=1, source="provider_registry",
        stream_id=provider.stream_id, stream_position=len(stream) + 1, occurred_at=back,
        recorded_at=back, data={"provider_id": provider.stream_id, "reason": "late entry"})
    store = SnapshotStore(tmp_path / "replay", log, default_projections(), interval=15,
                          skipped=SKIPPED)
    log.append(events)
    store.refresh()
    store.checkpoint()
    log.append([wrong])
    with store.as_of(back + timedelta(days=1)) as found:
        assert found.in_log_order
        assert tables(db_path(found.db)) == oracle(tmp_path, log, back + timedelta(days=1))
    with store.as_of(back - timedelta(microseconds=1)) as found:
        assert not found.in_log_order  # before it, snapshots still hold
        assert tables(db_path(found.db)) == oracle(tmp_path, log,
                                                   back - timedelta(microseconds=1))
    assert all(s.boundary < utc_text(back) for s in store.status().snapshots)
    store.close()


# ---------------------------------------------------------------------- the pieces


def test_skipped_types_change_nothing_in_their_projection(tmp_path: Path) -> None:
    """What is skipped before validation must be what the projection ignores anyway."""
    pid, aid = UUID(int=1), UUID(int=2)
    samples = {
        "AccreditationAdded": pr.AccreditationAdded(
            provider_id=pid, accreditation_id="a", kind=pr.StandingKind.INSURANCE, name="PL"),
        "AccreditationRemoved": pr.AccreditationRemoved(provider_id=pid, accreditation_id="a",
                                                        reason="error"),
        "QualityRatingRecorded": pr.QualityRatingRecorded(
            provider_id=pid, rating_id="r", scheme="CQC", rating="good",
            rated_on=date(2024, 1, 1)),
        "ConflictOfInterestDeclared": pr.ConflictOfInterestDeclared(
            provider_id=pid, declaration_id="d", declared_by="cllr", interest="family",
            declared_on=date(2024, 1, 1)),
        "ProviderCredentialsRotated": pr.ProviderCredentialsRotated(
            provider_id=pid, credentials_id="c2", revoked_credentials_id="c1"),
        "RateCardAgreed": co.RateCardAgreed(
            terms_id=UUID(int=3), agreement_id=aid, periodicity=co.Periodicity.QUARTERLY,
            delivery_rates=[co.DeliveryRateTerm(activity_type="x", rate=D(1))]),
    }
    assert set(samples) == set().union(*SKIPPED.values())
    base = random_history(3)
    projections = {p.name: p for p in default_projections()}
    for name, types in SKIPPED.items():
        for kind in types:
            path = tmp_path / f"{name}-{kind}.sqlite"
            db = Database.sqlite(path)
            plain_replay(db, _log_of(tmp_path / f"{kind}.log", base), None)
            before = tables(path)
            data = samples[kind].model_dump(mode="json")
            spec = SPECS[type(samples[kind])]
            now = datetime(2025, 1, 1, tzinfo=UTC)
            event = EventEnvelope(event_id=UUID(int=9), type=kind, schema_version=1,
                                  source=spec.source, stream_id=str(data[spec.stream_field]),
                                  stream_position=99, occurred_at=now, recorded_at=now,
                                  data=data)
            with db.transaction() as tx:
                projections[name].apply(tx, event)
            db.close()
            assert tables(path) == before, (name, kind)


def _log_of(path: Path, events: list[EventEnvelope]) -> EmbeddedEventLog:
    log = EmbeddedEventLog(path)
    log.append(events)
    return log


@given(ops=st.lists(st.tuples(st.sampled_from(["insert", "upsert", "update", "delete",
                                                "select", "many"]),
                              st.integers(0, 5), st.integers(0, 9)), max_size=40))
def test_batched_writes_have_the_effect_of_one_by_one(ops: list[tuple[str, int, int]]) -> None:
    statements = {
        "insert": "INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING",
        "upsert": "INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = t.v + "
                  "excluded.v",
        "update": "UPDATE t SET v = v * 2 + ? WHERE k = ?",
        "delete": "DELETE FROM t WHERE k = ? AND v >= ?",
        "select": "SELECT COALESCE(SUM(v), 0) FROM t WHERE k <= ? OR v = ?",
    }

    def run(batched: bool) -> tuple[list[Any], list[Any]]:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)")

        class Plain:
            def execute(self, sql: str, params: Any = ()) -> list[Any]:
                return conn.execute(sql, tuple(params)).fetchall()

            def executemany(self, sql: str, rows: Any) -> None:
                conn.executemany(sql, rows)

        tx: Any = BatchingTx(Plain()) if batched else Plain()
        answers = []
        for kind, a, b in ops:
            if kind == "many":
                tx.executemany(statements["upsert"], [(a, b), (a + 1, b)])
            else:
                params = (b, a) if kind == "update" else (a, b)
                answers.append(tx.execute(statements[kind], params))
        if batched:
            tx.flush()
        return answers, conn.execute("SELECT * FROM t ORDER BY k").fetchall()

    assert run(batched=True) == run(batched=False)


def test_records_with_fields_this_version_does_not_know_are_read() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    envelope = EventEnvelope(event_id=UUID(int=5), type="ProviderRejected", schema_version=1,
                             source="provider_registry", stream_id="p", stream_position=1,
                             occurred_at=now, recorded_at=now,
                             data={"provider_id": str(UUID(int=6)), "reason": "x\ud800y"})
    fields = json.loads(envelope.to_json())
    chain = {"sequence": 7, "prev_hash": "ab" * 32, "hash": "cd" * 32}
    fields.update(chain, signed_by="a newer producer's field")
    raw = json.dumps(fields, sort_keys=True)
    entry = entry_of("council.provider_registry", raw)
    assert entry.stream == "provider_registry/p"
    assert entry.position == 1
    assert entry.envelope() == envelope.model_copy(update=chain)
    with pytest.raises(ValueError, match="occurred_at"):
        entry_of("t", raw.replace("+00:00", ""))


def test_read_ahead_reads_what_the_log_holds(tmp_path: Path, log: EmbeddedEventLog) -> None:
    events = arrival_order(random_history(13), 13)
    log.append(events)
    settings = Settings(var_dir=tmp_path, log_url="embedded")
    topics = [log.topic_for(s) for s in TOPICS]
    assert [r for b in read_ahead(settings, topics, batch=50) for r in b] == [
        r for b in log.read_all(topics) for r in b]
    read_in_bulk: list[int] = []

    def reader(topics: Any, position: Any) -> Iterator[Any]:
        for records in read_ahead(settings, topics, position, url=log.url):
            read_in_bulk.append(len(records))
            yield records

    bulk = SnapshotStore(tmp_path / "bulk", log, default_projections(), interval=30,
                         skipped=SKIPPED, bulk_reader=reader, bulk_from=1)
    plain = SnapshotStore(tmp_path / "plain", log, default_projections(), interval=30,
                          skipped=SKIPPED)
    with patch.object(snapshots, "BATCH", 50):  # a full first batch: the rest in bulk
        assert bulk.refresh() == plain.refresh() == len(events)
    assert sum(read_in_bulk) == len(events) - 50
    bulk.checkpoint()
    plain.checkpoint()
    assert [(s.boundary, s.events) for s in bulk.status().snapshots] == [
        (s.boundary, s.events) for s in plain.status().snapshots]
    indexed = ("cache_events", "cache_position", "cache_streams")
    assert [tables(bulk.index.path)[t] for t in indexed] == [
        tables(plain.index.path)[t] for t in indexed]
    bulk.close()
    plain.close()
    with pytest.raises(InfrastructureUnavailable, match="reading"):
        list(read_ahead(Settings(var_dir=tmp_path / "none", log_url="kafka://127.0.0.1:1"),
                        topics))
    with pytest.raises(InfrastructureUnavailable, match="not embedded://"):  # another log
        list(read_ahead(Settings(var_dir=tmp_path / "other", log_url="embedded"), topics,
                        url=log.url))


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), batch=st.sampled_from([7, 60, 5000]),
       piece=st.sampled_from([1, 5, 128]), depth=st.sampled_from([1, 3, 16]),
       pipe=st.sampled_from([4096, 1 << 20]), in_the_past=st.booleans())
def test_a_replay_in_two_processes_equals_a_plain_replay(
        tmp_path_factory: pytest.TempPathFactory, seed: int, batch: int, piece: int,
        depth: int, pipe: int, in_the_past: bool) -> None:
    """The child folds (variations read the agreement's rows: reads cross the pipe), this
    process runs the statements; duplicates, with and without a moment, pieces of any size,
    one or many ahead, through a pipe that holds them or not even one (a write then waits
    while the child may be waiting for the rows of a read)."""
    folder = tmp_path_factory.mktemp("two")
    events = random_history(seed, providers=8, needs=4)
    log = EmbeddedEventLog(folder / "shared-log.sqlite")
    log.append(arrival_order(events, seed))
    moment = moments(events, random.Random(seed), 1)[-1] if in_the_past else None
    try:
        for in_two_from in (0, None):  # two processes, then one (the same code)
            path = folder / f"model-{in_two_from}.sqlite"
            model = ReadModelFile(path, default_projections())
            with patch.object(parallel, "PIECE", piece), patch.object(parallel, "DEPTH", depth), \
                    patch.object(parallel, "PIPE_BYTES", pipe):
                count = replay(log, folder_for(log, default_projections()), model.transaction,
                               moment, batch=batch, in_two_from=in_two_from)
            model.close()
            assert tables(path) == oracle(folder, log, moment), (seed, in_two_from)
            assert count.read == sum(1 for b in log.read_all(
                [log.topic_for(s) for s in TOPICS]) for _ in b)
    finally:
        log.close()


class Counting(Projection):
    """Statements with no parameters, issued many times: each must run (a projection of the
    tests, pickled to the replay's second process by reference to this module)."""

    name = "tests.counting"
    sources = ("provider_registry",)

    def create(self, tx: Any) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS counted (n INTEGER NOT NULL)")
        tx.execute("INSERT INTO counted (n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM counted)")

    def drop(self, tx: Any) -> None:
        tx.execute("DROP TABLE IF EXISTS counted")

    def apply(self, tx: Any, event: EventEnvelope) -> None:
        if event.type == "ProviderRejected":
            raise ValueError(f"refused {event.stream_id}")
        tx.execute("UPDATE counted SET n = n + 1")


def test_a_replay_in_two_processes_runs_every_statement_and_fails_with_its_reason(
        tmp_path: Path, log: EmbeddedEventLog) -> None:
    events = [e for e in random_history(23) if e.source == "provider_registry"]
    log.append(events)
    projections = [Counting()]
    model = ReadModelFile(tmp_path / "counted.sqlite", projections)
    count = replay(log, folder_for(log, projections), model.transaction, batch=5,
                   in_two_from=0)
    assert model.conn.execute("SELECT n FROM counted").fetchall() == [(len(events),)]
    assert count.applied == len(events)
    model.close()

    now = datetime(2025, 1, 1, tzinfo=UTC)
    wrong = EventEnvelope(event_id=UUID(int=7), type="ProviderRejected", schema_version=1,
                          source="provider_registry", stream_id="p", stream_position=1,
                          occurred_at=now, recorded_at=now, data={})
    log.append([wrong])
    model = ReadModelFile(tmp_path / "refused.sqlite", projections)
    with pytest.raises(ValueError, match="refused p") as refused:
        replay(log, folder_for(log, projections), model.transaction, in_two_from=0)
    assert "second process" in "".join(refused.value.__notes__)
    model.close()

    bad = EmbeddedEventLog(tmp_path / "bad" / "shared-log.sqlite")
    bad.append(events[:3])
    bad._conn().execute(  # a record that is not an envelope: named, as in one process
        'INSERT INTO log_records (topic, "offset", stream_id, event_id, value)'
        " VALUES ('council.provider_registry', 3, 's', 'e', x'7b7d')")
    for in_two_from in (0, None):
        model = ReadModelFile(":memory:", projections)
        with pytest.raises(UnreadableRecord, match=r"council\.provider_registry:0@3: "):
            replay(bad, folder_for(bad, projections), model.transaction,
                   in_two_from=in_two_from)
        model.close()
    bad.close()


def test_a_replay_in_two_processes_fails_when_the_log_cannot_be_read(
        tmp_path: Path, log: EmbeddedEventLog) -> None:
    log.append(random_history(29))

    class Failing(EmbeddedEventLog):
        def read(self, topics: Any, position: Any, limit: int) -> list[Any]:
            if sum(position.values()) > 20:
                raise InfrastructureUnavailable("the log went away")
            return super().read(topics, position, limit)

    failing = Failing(log.path)
    model = ReadModelFile(":memory:", default_projections())
    with pytest.raises(InfrastructureUnavailable, match="went away"):
        replay(failing, folder_for(failing, default_projections()), model.transaction,
               batch=10, in_two_from=0)
    model.close()
    failing.close()


# ---------------------------------------------------------------------- as-of views and CLI


def test_state_as_of_uses_the_registered_store(tmp_path: Path, log: EmbeddedEventLog) -> None:
    events = random_history(5)
    log.append(arrival_order(events, 5))
    settings = Settings(var_dir=tmp_path, log_url="embedded")
    store = open_snapshots(settings, log, interval=25)
    register_snapshots(log, store)
    try:
        store.refresh()
        assert store.checkpoint()
        moment = events[len(events) * 2 // 3].occurred_at
        with state_as_of(log, None, moment) as db:
            fast = (network_state(db), market_view(db), tables(db_path(db)))
        assert store.status().events == len(events)
    finally:
        unregister_snapshots(store)
        store.close()
    with state_as_of(log, None, moment) as db:  # no store: a full replay
        assert (network_state(db), market_view(db), tables(db_path(db))) == fast


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_replay_prints_and_writes_the_network_state(
        tmp_path: Path, log: EmbeddedEventLog, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNCIL_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("COUNCIL_DATABASE_URL", raising=False)
    monkeypatch.delenv("COUNCIL_LOG_URL", raising=False)
    events = random_history(9, providers=8)
    log.append(arrival_order(events, 9))
    day = events[len(events) // 2].occurred_at.date().isoformat()
    reference = Database.sqlite(tmp_path / "reference.sqlite")
    plain_replay(reference, log, as_of_moment(day))
    expected_state = network_state(reference).model_dump(mode="json")
    # The market as at the as-of moment, which ends its current (partial) quarter.
    expected_market = market_view(reference, as_of_moment(day)).model_dump(mode="json")
    reference.close()

    code, out, err = _cli(["audit", "replay", "--as-of", day, "--format", "json"], capsys)
    assert code == 0, err
    answer = json.loads(out)
    assert answer["network_state"] == expected_state
    assert answer["market"] == expected_market
    assert answer["as_of"] == as_of_moment(day).isoformat()
    assert "indexing the log" in err

    code, out, err = _cli(["audit", "replay", "--as-of", day, "--full", "--json",
                           str(tmp_path / "s.json"), "--csv", str(tmp_path / "s.csv")], capsys)
    assert code == 0, err
    assert out == ""
    assert json.loads((tmp_path / "s.json").read_text())["network_state"] == expected_state
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    assert {r["provider_id"] for r in rows} == {p["provider_id"]
                                                for p in expected_state["providers"]}
    held = [r for r in rows if r["agreement_id"]]
    assert len(held) == sum(len(p["active_agreements"]) for p in expected_state["providers"])
    # Its data package is beside it, and frictionless finds the CSV conforms to it.
    package = json.loads((tmp_path / "s.datapackage.json").read_text())
    assert package["resources"][0]["path"] == "s.csv"
    assert schema_errors(package, (tmp_path / "s.csv").read_text(), tmp_path / "check") == []

    code, out, _ = _cli(["audit", "replay"], capsys)
    assert code == 0
    assert out.startswith("Network state now (every event on the log)")
    assert "Committed spend by organisation type" in out
    assert "Gaps:" in out

    code, _, err = _cli(["audit", "replay", "--json", str(tmp_path / "no" / "s.json")], capsys)
    assert code == 2
    assert "--json: cannot write" in err

    code, _, err = _cli(["audit", "replay", "--as-of", "last spring"], capsys)
    assert code == 2
    assert "--as-of" in err
    assert "not an ISO date" in err


def test_the_integrator_service_keeps_a_store_for_its_as_of_views(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from council.platform.identity import Role, TokenStore
    from council.platform.runtime import create_service_app
    from council.platform.sql import open_database
    from council.services.integrator.projections.asof import snapshots_for
    from council.services.integrator.service import SPEC

    settings = Settings(var_dir=tmp_path, log_url="embedded")
    events = random_history(17)
    writer = EmbeddedEventLog(tmp_path / "shared-log.sqlite")
    writer.append(arrival_order(events, 17))
    writer.close()
    day = events[len(events) // 2].occurred_at.date().isoformat()
    reference = Database.sqlite(tmp_path / "reference.sqlite")
    reader = EmbeddedEventLog(tmp_path / "shared-log.sqlite")
    plain_replay(reference, reader, as_of_moment(day))
    reader.close()
    expected = network_state(reference).model_dump(mode="json")
    reference.close()
    tokens = TokenStore(open_database(settings, "identity"))
    staff = {"Authorization": f"Bearer {tokens.create(Role.COUNCIL_STAFF, 'jo').token}"}
    tokens.db.close()
    with TestClient(create_service_app(SPEC, settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        store = snapshots_for(runtime.event_log)
        assert store is not None
        answer = client.get("/network/state", params={"as_of": day}, headers=staff)
        assert answer.status_code == 200
        assert answer.json() == expected
        assert store.status().events == len(events)  # indexed by the view or the worker
    assert snapshots_for(runtime.event_log) is None  # forgotten when the service stops


def test_two_stores_on_one_folder_index_each_event_once(tmp_path: Path,
                                                        log: EmbeddedEventLog) -> None:
    """As two processes sharing var/ would (the service and `council audit replay`)."""
    import threading

    events = random_history(19, providers=10, needs=5)
    arriving = arrival_order(events, 19)
    stores = [SnapshotStore(tmp_path / "replay", EmbeddedEventLog(log.path),
                            default_projections(), interval=40, skipped=SKIPPED)
              for _ in range(2)]
    failures: list[BaseException] = []

    def keep_up(store: SnapshotStore, rounds: int) -> None:
        try:
            for _ in range(rounds):
                store.refresh()
                store.checkpoint()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=keep_up, args=(s, 30)) for s in stores]
    for thread in threads:
        thread.start()
    for i in range(0, len(arriving), 25):
        log.append(arriving[i:i + 25])
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    for store in stores:
        store.refresh()
    assert stores[0].status().events == len(events)
    for moment in moments(events, random.Random(19)):
        with stores[1].as_of(moment) as found:
            assert tables(db_path(found.db)) == oracle(tmp_path, log, moment)
    for store in stores:
        store.event_log.close()
        store.close()
