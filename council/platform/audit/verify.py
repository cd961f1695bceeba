"""Checking a source's hash chain, record by record, wherever the records come from (the live
log, embedded or Kafka, or an exported bundle), and saying exactly where it first breaks.

A source's events are read in log order. On Kafka they are spread over partitions by stream id,
so the chain is put back together by `sequence`; within one partition (the embedded log has one
per topic, a bundle file is one) sequences only go up, except where a batch was republished
after a crash, which repeats sequences already seen with identical bytes: those are duplicates,
not breaks. Everything else is a break:

- hash mismatch: the bytes do not hash to the `hash` the event carries (it was altered);
- prev_hash mismatch: the event does not link to the one before it (that one was altered and
  re-hashed, or replaced);
- missing sequence: no event carries it (removed);
- out of order: a sequence turns up in a partition after a later one (moved);
- inserted: an event without chain fields among chained ones, an event of another source, or a
  second, different event under a sequence the chain continues without;
- checkpoint problems: a bad signature, a signed hash the chain does not have at that count,
  or a checkpoint beyond the chain's end (events removed from the end).

Where two different events come under one sequence, the genuine one is named: the one the
chain continues from (its successor links to it), or the one a signed checkpoint at that
sequence covers (services sign one after every batch their relay publishes, so a forgery put
at the chain's tip is told from the real event published after it at once).

The services' own event stores are checked against the chains too (council.platform.audit.stores):
each stored event's content must hash to what the log sealed, and every published event must be in
both.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from council.platform.audit.chain import GENESIS, content_hash, split_hash

# Records waiting for an earlier sequence; past this many the earliest missing one is taken as
# gone (on one partition a gap is certain at once, but the wait lets a moved event be reported
# as moved rather than missing, and a partition read ahead of the others wait for them).
MAX_PENDING = 200_000


class Kind(StrEnum):
    HASH_MISMATCH = "hash mismatch"
    PREV_HASH_MISMATCH = "prev_hash mismatch"
    MISSING = "missing sequence"
    OUT_OF_ORDER = "out of order"
    INSERTED = "inserted"
    CONFLICTING = "conflicting duplicate"
    UNCHAINED = "unchained events"
    MALFORMED = "malformed record"
    CHECKPOINT_SIGNATURE = "checkpoint signature bad"
    CHECKPOINT_NOT_IN_CHAIN = "checkpoint hash not in chain"
    CHECKPOINT_BEYOND_END = "checkpoint beyond the end of the chain"
    BUNDLE = "bundle file"
    STORE_EDITED = "stored event differs from the log"
    STORE_MISSING = "missing from the store"
    STORE_EXTRA = "stored but not on the log"
    STORE_UNREADABLE = "store unreadable"


@dataclass(frozen=True)
class Place:
    """Where a record was read: a log topic's partition and offset, or a file's line."""

    container: str
    partition: int | None
    offset: int

    def __str__(self) -> str:
        if self.partition is None:
            return f"{self.container} line {self.offset}"
        return f"{self.container} partition {self.partition} offset {self.offset}"

    def lane(self) -> str:
        return self.container if self.partition is None else f"{self.container} partition " \
            f"{self.partition}"


@dataclass(frozen=True)
class Break:
    kind: Kind
    source: str
    detail: str
    sequence: int | None = None
    event_id: str | None = None
    place: Place | None = None

    def describe(self) -> str:
        subject = self.source
        if self.sequence is not None:
            subject += f" sequence {self.sequence}"
        where = []
        if self.event_id:
            where.append(f"event {self.event_id}")
        if self.place is not None:
            where.append(f"at {self.place}")
        if where:
            subject += f" ({', '.join(where)})"
        return f"{subject}: {self.kind}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "source": self.source, "sequence": self.sequence,
                "event_id": self.event_id, "at": str(self.place) if self.place else None,
                "detail": self.detail}


@dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint whose signature verified: the chain must have `hash` at `count`."""

    count: int
    hash: str
    signed_at: str
    place: Place | str


@dataclass(slots=True)
class _Entry:
    sequence: int
    hash: str
    prev_hash: str
    event_id: str
    place: Place
    raw: bytes | None


@dataclass
class ChainSummary:
    source: str
    events: int = 0  # distinct chained events
    records: int = 0  # records read, duplicates included
    duplicates: int = 0
    unchained: int = 0
    first_sequence: int = 1
    last_sequence: int = 0
    tip: str = GENESIS
    checkpoints: int = 0  # checkpoints matched against this chain
    last_checkpoint: int = 0
    stored: int | None = None  # events matched against the service's store (None: not checked)
    unpublished: int = 0  # stored events the relay had not yet published when verify began

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


_EVENT_ID_MEMBER = b',"event_id":'


def _envelope_fields(raw: bytes) -> dict[str, Any] | None:
    """The envelope's members from `event_id` on (the chain fields among them), parsed without
    `data`, which can be most of an event: keys are sorted, and every top-level member from
    `event_id` on is a scalar, so the last `,"event_id":` is the envelope's own. Whether the
    whole record is well formed is the hash's business (it covers every byte)."""
    at = raw.rfind(_EVENT_ID_MEMBER)
    if at < 0 or not raw.startswith(b"{"):
        return None
    try:
        tail = json.loads(b"{" + raw[at + 1 :])
    except ValueError:
        return None
    return tail if isinstance(tail, dict) else None


def _short(digest: str) -> str:
    return f"{digest[:12]}..."


class ChainChecker:
    """Checks one source's chain from its records, fed in log order with `process`, then
    `finish`. Breaks are collected in `breaks`; `keep`, if given, receives each event's exact
    bytes in sequence order, once (the export writes them); `also`, if given, every other
    distinct event read (a second, different one under a sequence already linked, or one with
    no chain fields from before the chain), so a check of the stores sees every event."""

    def __init__(self, source: str, checkpoints: dict[int, list[CheckpointRef]] | None = None,
                 keep: Callable[[int, bytes], None] | None = None, first_sequence: int = 1,
                 anchor: str = GENESIS, max_pending: int = MAX_PENDING,
                 also: Callable[[int | None, bytes, Place], None] | None = None) -> None:
        self.source = source
        self.checkpoints = checkpoints or {}
        self.keep = keep
        self.also = also
        self.first = first_sequence
        self.anchor = anchor  # prev_hash of the first sequence
        self.max_pending = max_pending
        self.want = first_sequence
        self.breaks: list[Break] = []
        self.summary = ChainSummary(source, first_sequence=first_sequence)
        # What is known of each linked sequence (index sequence - first): its hash and place.
        self._hashes = bytearray()
        self._partitions = array("l")
        self._offsets = array("q")
        self._gaps: set[int] = set()
        self._container = ""
        self._pending: dict[int, _Entry] = {}
        self._conflicts: dict[int, tuple[_Entry, _Entry]] = {}
        # sequence -> (its event, the next one, which does not link to it, what it expected)
        self._mislinked: dict[int, tuple[_Entry | None, _Entry, str]] = {}
        self._lanes: dict[str, int] = {}
        self._first_unchained: Place | None = None
        self._latest: _Entry | None = None  # the last event linked (a conflict may name it)
        self._resync: int | None = None  # a sequence linked after a gap: nothing to link to

    # ------------------------------------------------------------------ reading

    def process(self, raw: bytes, place: Place) -> None:
        self.summary.records += 1
        self._container = place.container
        obj = _envelope_fields(raw)
        if obj is None:
            self._break(Kind.MALFORMED, "not an event envelope", place=place)
            return
        event_id = str(obj.get("event_id"))
        sequence = obj.get("sequence")
        lane = place.lane()
        if sequence is None:
            if lane in self._lanes:
                self._break(Kind.INSERTED, "an event without chain fields among chained ones",
                            None, event_id, place)
            else:
                self.summary.unchained += 1
                self._first_unchained = self._first_unchained or place
                if self.also is not None:
                    self.also(None, raw, place)
            return
        if obj.get("source") != self.source:
            self._break(Kind.INSERTED, f"an event of source {obj.get('source')!r} in "
                        f"{self.source}'s chain", sequence, event_id, place)
            return
        split = split_hash(raw)
        prev = obj.get("prev_hash")
        if type(sequence) is not int or sequence < 1 or split is None or not isinstance(prev, str):
            self._break(Kind.MALFORMED, "its chain fields (sequence, prev_hash, hash) are not "
                        "valid", None, event_id, place)
            return
        claimed, body = split
        if hashlib.sha256(body).hexdigest() != claimed:
            self._hash_mismatch(raw, claimed, sequence, event_id, place)
        entry = _Entry(sequence, claimed, prev, event_id, place, raw if self.keep else None)
        known = self._known(sequence)
        if known is not None:
            if known == claimed:
                self.summary.duplicates += 1  # a republished duplicate
            else:
                if self.also is not None:
                    self.also(sequence, raw, place)
                self._conflict(entry)
            return
        last = self._lanes.get(lane, 0)
        if sequence <= last or sequence < self.want:
            self._break(Kind.OUT_OF_ORDER, f"it comes after sequence {last} in {lane}",
                        sequence, event_id, place)
            if sequence < self.want:
                return  # the chain already went on without it (reported as missing)
        else:
            self._lanes[lane] = sequence
        self._accept(entry)

    def _hash_mismatch(self, raw: bytes, claimed: str, sequence: int, event_id: str,
                       place: Place) -> None:
        try:
            by_content = content_hash(json.loads(raw))
        except (ValueError, AttributeError):
            by_content = "not JSON"
        if by_content == claimed:
            detail = "its content is as sealed but its bytes are not the canonical encoding"
        else:
            detail = (f"its content hashes to {_short(by_content)} but it carries hash "
                      f"{_short(claimed)}: it was altered after it was sealed")
        self._break(Kind.HASH_MISMATCH, detail, sequence, event_id, place)

    def _known(self, sequence: int) -> str | None:
        """The hash already seen under `sequence`, if any."""
        if sequence in self._pending:
            return self._pending[sequence].hash
        index = sequence - self.first
        if 0 <= index < len(self._partitions) and sequence not in self._gaps:
            return self._hashes[index * 32 : index * 32 + 32].hex()
        return None

    def place_of(self, sequence: int) -> Place | None:
        """Where the event linked under `sequence` was read."""
        return self._place_of(sequence)

    def _place_of(self, sequence: int) -> Place | None:
        index = sequence - self.first
        if 0 <= index < len(self._partitions) and sequence not in self._gaps:
            partition = self._partitions[index]
            return Place(self._container, None if partition < 0 else partition,
                         self._offsets[index])
        return None

    def _conflict(self, second: _Entry) -> None:
        sequence = second.sequence
        first = self._pending.get(sequence)
        if first is None and self._latest is not None and self._latest.sequence == sequence:
            first = self._latest
        if first is None:
            mislinked = self._mislinked.get(sequence)
            if mislinked is not None and mislinked[1].prev_hash == second.hash:
                # The successor links to this one, not to the one linked before it arrived.
                prior = mislinked[0]
                del self._mislinked[sequence]
                self._adopt(second)
                self._break(Kind.INSERTED, _genuine(sequence, second, "the chain continues "
                                                    "from it"),
                            sequence, prior.event_id if prior else None,
                            prior.place if prior else None)
                return
            # Its successor is linked already, not to this one: this one was put in.
            self._break(Kind.INSERTED, f"a second, different event under sequence {sequence}; "
                        f"the genuine one is at {self._place_of(sequence)}: the chain continues "
                        "from it", sequence, second.event_id, second.place)
            return
        self._conflicts[sequence] = (first, second)

    def _accept(self, entry: _Entry) -> None:
        if entry.sequence > self.want:
            self._pending[entry.sequence] = entry
            if len(self._pending) > self.max_pending:
                self._skip_gap()
            return
        self._link(entry)
        self._drain()

    def _drain(self) -> None:
        while self.want in self._pending:
            self._link(self._pending.pop(self.want))

    def _skip_gap(self) -> None:
        nearest = min(self._pending)
        missing = (f"sequence {self.want}" if nearest == self.want + 1
                   else f"sequences {self.want} to {nearest - 1}")
        self._break(Kind.MISSING, f"{missing} not found; the next is at "
                    f"{self._pending[nearest].place}", self.want)
        for gap in range(self.want, nearest):
            self._gaps.add(gap)
            self._store(gap, GENESIS, None)
        self.want = nearest
        self._resync = nearest
        self._drain()

    # ------------------------------------------------------------------ linking

    def _link(self, entry: _Entry) -> None:
        sequence = entry.sequence
        before = sequence - 1
        conflict = self._conflicts.pop(before, None)
        if conflict is not None:
            self._resolve(conflict, entry)
        elif self._resync != sequence:
            expected = self.anchor if sequence == self.first else self._known(before)
            if expected is not None and entry.prev_hash != expected:
                # Decided at the end: the event it does link to may still turn up (read from
                # another partition after this one), making the one linked so far the forgery.
                prior = self._latest if self._latest and self._latest.sequence == before else None
                self._mislinked[before] = (prior, entry, expected)
        self._check_points(sequence, entry)
        self._store(sequence, entry.hash, entry.place)
        self._latest = entry
        self.want = sequence + 1
        self.summary.events += 1
        self.summary.last_sequence = sequence
        self.summary.tip = entry.hash
        if self.keep is not None and entry.raw is not None:
            self.keep(sequence, entry.raw)

    def _check_points(self, sequence: int, entry: _Entry) -> None:
        for checkpoint in self.checkpoints.get(sequence, ()):
            if checkpoint.hash != entry.hash:
                self._break(Kind.CHECKPOINT_NOT_IN_CHAIN, (
                    f"the checkpoint signed {checkpoint.signed_at} ({checkpoint.place}) has "
                    f"hash {_short(checkpoint.hash)} for event {sequence}, the chain has "
                    f"{_short(entry.hash)}: events up to {sequence} are not the ones signed"),
                    sequence, entry.event_id, entry.place)
            else:
                self.summary.checkpoints += 1
                self.summary.last_checkpoint = max(self.summary.last_checkpoint, sequence)

    def _mislink_break(self, before: int, successor: _Entry, expected: str) -> None:
        self._break(Kind.PREV_HASH_MISMATCH, (
            f"its prev_hash {_short(successor.prev_hash)} is not the hash {_short(expected)} of "
            f"sequence {before}"
            + (f" (at {self._place_of(before)})" if successor.sequence != self.first else "")
            + f": sequence {before} was altered and re-hashed or replaced, or events were "
            "removed or inserted between them"), successor.sequence, successor.event_id,
            successor.place)

    def _adopt(self, replacement: _Entry) -> None:
        """A later-read event under a linked sequence is the chain's: its hash replaces the
        one linked, and that sequence's checkpoints are checked against it instead."""
        sequence = replacement.sequence
        self._store(sequence, replacement.hash, replacement.place, replace=True)
        self.breaks = [b for b in self.breaks if not (
            b.kind is Kind.CHECKPOINT_NOT_IN_CHAIN and b.sequence == sequence)]
        self._check_points(sequence, replacement)

    def _resolve(self, conflict: tuple[_Entry, _Entry], successor: _Entry) -> None:
        """Two different events came under one sequence; the chain continues from one of them
        (the one its successor links to): the other was inserted."""
        first, second = conflict
        before = successor.sequence - 1
        if successor.prev_hash == second.hash:
            self._adopt(second)
            self._break(Kind.INSERTED, _genuine(before, second, "the chain continues from it"),
                        before, first.event_id, first.place)
        elif successor.prev_hash == first.hash:
            self._break(Kind.INSERTED, _genuine(before, first, "the chain continues from it"),
                        before, second.event_id, second.place)
        elif (genuine := self._signed(conflict)) is not None:
            self._mislinked[before] = (genuine, successor, genuine.hash)  # links to neither
        else:
            self._break(Kind.CONFLICTING, f"two different events under sequence {before} (at "
                        f"{first.place} and {second.place}) and sequence {successor.sequence} "
                        "links to neither", before, second.event_id, second.place)

    def _signed(self, conflict: tuple[_Entry, _Entry]) -> _Entry | None:
        """Of two events under one sequence, the one a signed checkpoint at that sequence
        covers (the other was put in); reported, and None if no checkpoint tells them apart."""
        first, second = conflict
        signed = {c.hash for c in self.checkpoints.get(first.sequence, ())}
        if (first.hash in signed) == (second.hash in signed):
            return None
        genuine, forged = (first, second) if first.hash in signed else (second, first)
        if genuine is second:
            self._adopt(second)
        self._break(Kind.INSERTED, _genuine(first.sequence, genuine, "a signed checkpoint "
                                            "covers it"),
                    first.sequence, forged.event_id, forged.place)
        return genuine

    def _store(self, sequence: int, digest: str, place: Place | None,
               replace: bool = False) -> None:
        raw = bytes.fromhex(digest)
        if replace:
            index = sequence - self.first
            self._hashes[index * 32 : index * 32 + 32] = raw
            if place is not None:
                self._partitions[index] = -1 if place.partition is None else place.partition
                self._offsets[index] = place.offset
            return
        self._hashes += raw
        if place is None:
            self._partitions.append(-1)
            self._offsets.append(0)
        else:
            self._partitions.append(-1 if place.partition is None else place.partition)
            self._offsets.append(place.offset)

    # ------------------------------------------------------------------ the end

    def finish(self) -> ChainSummary:
        while self._pending:
            self._skip_gap()
        for sequence, (first, second) in sorted(self._conflicts.items()):
            if self._signed((first, second)) is None:
                self._break(Kind.CONFLICTING, f"two different events under sequence {sequence} "
                            f"(at {first.place} and {second.place}) and neither a later event "
                            "nor a signed checkpoint says which is the chain's", sequence,
                            second.event_id, second.place)
        self._conflicts.clear()
        for before, (_, successor, expected) in sorted(self._mislinked.items()):
            self._mislink_break(before, successor, expected)
        self._mislinked.clear()
        end = self.want - 1
        for count in sorted(c for c in self.checkpoints if c > end):
            for checkpoint in self.checkpoints[count]:
                self._break(Kind.CHECKPOINT_BEYOND_END, (
                    f"the checkpoint signed {checkpoint.signed_at} ({checkpoint.place}) covers "
                    f"{count} events but the chain ends at {end}: events were removed from its "
                    "end"), count)
        if self.summary.unchained:
            self._break(Kind.UNCHAINED, (
                f"{self.summary.unchained} events before sequence {self.first} (the first at "
                f"{self._first_unchained}) carry no chain fields: published before the audit "
                "chain, they are not tamper-evident"))
        return self.summary

    def _break(self, kind: Kind, detail: str, sequence: int | None = None,
               event_id: str | None = None, place: Place | None = None) -> None:
        self.breaks.append(Break(kind, self.source, detail, sequence, event_id, place))


def _genuine(sequence: int, genuine: _Entry, why: str) -> str:
    return (f"another event under sequence {sequence}, event {genuine.event_id} at "
            f"{genuine.place}, is the genuine one ({why}): this one was put in")


STORE_KINDS = frozenset({Kind.STORE_EDITED, Kind.STORE_MISSING, Kind.STORE_EXTRA,
                         Kind.STORE_UNREADABLE})


def first_break(breaks: list[Break]) -> Break | None:
    """The earliest break in chain order (unchained events and file problems come first); at
    one sequence, the log's own before a store's, and a store's with no place in the chain
    last."""
    def order(b: Break) -> tuple[float, bool]:
        stored = b.kind in STORE_KINDS
        at: float = b.sequence if b.sequence is not None else (float("inf") if stored else 0)
        return at, stored

    ordered = sorted(breaks, key=order)
    return ordered[0] if ordered else None


@dataclass
class Report:
    """What a verification found."""

    chains: list[ChainSummary] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)
    checkpoints: int = 0  # checkpoints whose signature verified
    key_id: str | None = None
    notes: list[str] = field(default_factory=list)
    accepted: list[Break] = field(default_factory=list)  # allowed by the caller (unchained)

    @property
    def intact(self) -> bool:
        return not self.breaks

    @property
    def events(self) -> int:
        return sum(c.events for c in self.chains)

    def as_json(self) -> dict[str, Any]:
        return {
            "intact": self.intact, "events": self.events, "checkpoints": self.checkpoints,
            "key_id": self.key_id, "chains": [c.as_json() for c in self.chains],
            "breaks": [b.as_json() for b in self.breaks], "notes": self.notes,
            "accepted": [b.as_json() for b in self.accepted],
        }
