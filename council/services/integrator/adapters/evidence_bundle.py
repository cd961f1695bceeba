"""The export bundle a regulator takes away, and its verification.

`council audit export --out DIR` writes, from the configured log, a directory that proves itself
with standard tools (its README.md says how):

    README.md                   how to verify it (sha256sum, openssl, python3)
    manifest.json, manifest.sig what the bundle holds (counts, chain ends, each file's SHA-256),
                                signed with the deployment's key
    SHA256SUMS                  the same digests, for `sha256sum -c`
    public-key.pem              the deployment's Ed25519 public key
    events/<source>.ndjson      each source's events, the exact bytes from the log, one per
                                line, in sequence order (republished duplicates once)
    checkpoints.ndjson          the signed checkpoints over those chains, as on the log
    checkpoints/<source>-<count>.json / .sig   each checkpoint's signed statement and raw
                                signature, for `openssl pkeyutl -verify`
    ocds-releases.json          the commissioning as an OCDS 1.1 release package, built from the
                                integrator's events in the bundle

The log must verify first: a bundle is only made from an intact chain.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from council.platform.audit.chain import GENESIS, split_hash
from council.platform.audit.checkpoints import statement
from council.platform.audit.keys import (
    KeyProblem,
    key_id,
    public_pem,
    read_public_key,
    signature_valid,
)
from council.platform.audit.trail import CheckpointBook, Progress, settle_unchained, verify_log
from council.platform.audit.verify import Break, ChainChecker, Kind, Place, Report, first_break
from council.platform.eventlog import EventLog, LogRecord
from council.platform.settings import SERVICE_NAMES

FORMAT = "council-audit-bundle/1"
MANIFEST, SIGNATURE, SUMS, PUBLIC_KEY = "manifest.json", "manifest.sig", "SHA256SUMS", \
    "public-key.pem"
CHECKPOINTS, OCDS = "checkpoints.ndjson", "ocds-releases.json"
_UNLISTED = frozenset({MANIFEST, SIGNATURE, SUMS})


class ExportRefused(ValueError):
    """The bundle cannot be made (an unusable --out, or a log that does not verify)."""


@dataclass
class _Range:
    """Which events of one chain go into the bundle: a contiguous run of sequences, from the
    first recorded at or after `since` to the last recorded at or before `until`."""

    since: datetime | None
    until: datetime | None
    out: IO[bytes]
    first: int = 0
    anchor: str = GENESIS
    last: int = 0
    tip: str = GENESIS
    events: int = 0
    cut: int = 0  # bytes written up to the last event kept

    def keep(self, sequence: int, raw: bytes) -> None:
        split = split_hash(raw)
        assert split is not None  # the checker has read its hash already
        digest = split[0]
        if self.since is not None or self.until is not None:
            recorded = datetime.fromisoformat(str(json.loads(raw)["recorded_at"]))
            if not self.first and self.since is not None and recorded < self.since:
                return
            if self.until is not None and recorded > self.until:
                if self.first:
                    self.out.write(raw + b"\n")  # kept only if something later is in range
                return
        if not self.first:
            self.first = sequence
            self.anchor = str(json.loads(raw)["prev_hash"])
        self.out.write(raw + b"\n")
        self.cut = self.out.tell()
        self.last, self.tip = sequence, digest
        self.events = self.last - self.first + 1


@dataclass
class BundleSummary:
    path: Path
    events: dict[str, int] = field(default_factory=dict)
    checkpoints: int = 0
    ocds_releases: int = 0
    key_id: str = ""


def export_bundle(event_log: EventLog, out: Path, signing_key: Ed25519PrivateKey, *,
                  sources: Sequence[str] = SERVICE_NAMES, since: datetime | None = None,
                  until: datetime | None = None, allow_unchained: bool = False,
                  progress: Progress | None = None) -> BundleSummary:
    """Write the bundle to `out` (a new or empty directory), all or nothing."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportRefused(f"--out {out} exists and is not an empty directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        summary = _write(event_log, work, signing_key, sources, since, until, allow_unchained,
                         progress)
        if out.exists():
            out.rmdir()
        os.replace(work, out)
        out.chmod(0o755)  # mkdtemp made it private to us; the bundle is for taking away
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    summary.path = out
    return summary


def _write(event_log: EventLog, work: Path, key: Ed25519PrivateKey, sources: Sequence[str],
           since: datetime | None, until: datetime | None, allow_unchained: bool,
           progress: Progress | None) -> BundleSummary:
    public = key.public_key()
    (work / "events").mkdir()
    ranges: dict[str, _Range] = {}
    for source in sources:
        ranges[source] = _Range(since, until, (work / "events" / f"{source}.ndjson").open("wb"))
    try:
        report, book = verify_log(event_log, sources=sources, key=public,
                                  allow_unchained=allow_unchained, progress=progress,
                                  keep=lambda source: ranges[source].keep)
    finally:
        for chosen in ranges.values():
            chosen.out.truncate(chosen.cut)
            chosen.out.close()
    if not report.intact:
        broken = first_break(report.breaks)
        assert broken is not None
        raise ExportRefused(f"the log does not verify, so no bundle was made: {broken.describe()}"
                            f" ({len(report.breaks)} breaks; see `council audit verify`)")
    summary = BundleSummary(work, key_id=key_id(public))
    summary.checkpoints = _write_checkpoints(work, book, ranges)
    (work / PUBLIC_KEY).write_bytes(public_pem(public))
    if "integrator" in ranges:
        summary.ocds_releases = _write_ocds(work, event_log)
    chains = {}
    for source, chosen in ranges.items():
        summary.events[source] = chosen.events
        chains[source] = {
            "file": f"events/{source}.ndjson", "events": chosen.events,
            "first_sequence": chosen.first or None, "first_prev_hash": chosen.anchor,
            "last_sequence": chosen.last or None, "last_hash": chosen.tip,
        }
    unchained = {c.source: c.unchained for c in report.chains if c.unchained}
    (work / "README.md").write_text(readme(chains, summary), encoding="utf-8")
    files = {name: _digest(work / name) for name in _files(work)}
    manifest = {
        "format": FORMAT,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "log": {"url": event_log.url, "topic_prefix": event_log.topic_prefix},
        "key_id": summary.key_id,
        "range": {"since": since.isoformat() if since else None,
                  "until": until.isoformat() if until else None},
        "chains": chains,
        "checkpoints": summary.checkpoints,
        "unchained_events_not_exported": unchained,
        "files": files,
    }
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (work / MANIFEST).write_bytes(body)
    (work / SIGNATURE).write_bytes(key.sign(body))
    (work / SUMS).write_text("".join(f"{entry['sha256']}  {name}\n"
                                     for name, entry in files.items()))
    return summary


def _write_checkpoints(work: Path, book: CheckpointBook, ranges: dict[str, _Range]) -> int:
    """The verified checkpoints over the exported runs, as read from the log and as statement
    and signature files for openssl."""
    (work / "checkpoints").mkdir()
    written = 0
    with (work / CHECKPOINTS).open("wb") as out:
        for checkpoint, raw in sorted(book.valid, key=lambda v: (v[0].chain, v[0].count)):
            chosen = ranges.get(checkpoint.chain)
            if chosen is None or not chosen.first <= checkpoint.count <= chosen.last:
                continue
            out.write(raw + b"\n")
            stem = work / "checkpoints" / f"{checkpoint.chain}-{checkpoint.count}"
            stem.with_suffix(".json").write_bytes(statement(checkpoint))
            stem.with_suffix(".sig").write_bytes(base64.b64decode(checkpoint.signature))
            written += 1
    return written


def _write_ocds(work: Path, event_log: EventLog) -> int:
    """The integrator's exported events as an OCDS release package; providers are named from
    the registry's events (in the bundle if exported, else on the log)."""
    from council.kernel.envelope import EventEnvelope
    from council.services.integrator.api.ocds import OcdsSettings
    from council.services.integrator.projections.ocds_releases import (
        provider_ids_in,
        release_package,
        releases_for,
    )

    events = [EventEnvelope.from_json(line) for line in _lines(work / "events/integrator.ndjson")]
    registry = work / "events" / "provider_registry.ndjson"
    if registry.exists():
        records: Iterable[LogRecord] = (
            LogRecord("bundle", 0, n, line) for n, line in enumerate(_lines(registry)))
    else:
        topic = event_log.topic_for("provider_registry")
        records = (r for batch in event_log.read_all([topic]) for r in batch)
    names = provider_names(records, set(provider_ids_in(events)))
    settings = OcdsSettings()
    releases = releases_for(events, names, settings.ocid_prefix)
    package = release_package(
        releases, uri="urn:council-integrator:audit-export:ocds-releases",
        publisher=settings.publisher,
        published_date=None if releases else datetime.now(UTC), license_url=settings.license,
        publication_policy=settings.publication_policy)
    (work / OCDS).write_text(json.dumps(package, indent=2, sort_keys=True) + "\n",
                             encoding="utf-8")
    return len(releases)


def provider_names(records: Iterable[LogRecord], wanted: set[Any]) -> dict[Any, str]:
    """Providers' current names, from registry events, by the integrator's network projection
    (built in a scratch database)."""
    from council.platform.eventlog.embedded import EmbeddedEventLog
    from council.platform.projection import ProjectionRunner
    from council.platform.sql import Database
    from council.services.integrator.projections.network import NetworkProjection, get_provider

    with tempfile.TemporaryDirectory(prefix="council-ocds-") as scratch:
        db = Database.sqlite(Path(scratch) / "views.sqlite")
        unused = EmbeddedEventLog(Path(scratch) / "unused-log.sqlite")
        try:
            runner = ProjectionRunner(NetworkProjection(), db, unused)
            batch: list[LogRecord] = []
            for record in records:
                batch.append(record)
                if len(batch) == 2000:
                    runner.apply_batch(batch, {})
                    batch = []
            if batch:
                runner.apply_batch(batch, {})
            found = {}
            for provider_id in wanted:
                provider = get_provider(db, provider_id)
                if provider is not None:
                    found[provider_id] = provider.name
            return found
        finally:
            unused.close()
            db.close()


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as lines:
        for line in lines:
            yield line.rstrip(b"\n")


def _files(work: Path) -> list[str]:
    return sorted(str(p.relative_to(work)) for p in work.rglob("*")
                  if p.is_file() and str(p.relative_to(work)) not in _UNLISTED)


def _digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size}


# --------------------------------------------------------------------------- verifying


def verify_bundle(bundle: Path, *, key: Ed25519PublicKey | None = None,
                  pins: Iterable[Path] = (), allow_unchained: bool = False,
                  progress: Progress | None = None) -> Report:
    """Check a bundle: the manifest's signature, every file's digest, each chain and the
    checkpoints. `key` is the pinned public key; without one the bundle's own is used (and the
    report says so)."""
    bundle = Path(bundle)
    report = Report()
    manifest_bytes = _read(bundle / MANIFEST)
    if manifest_bytes is None:
        report.breaks.append(Break(Kind.BUNDLE, "bundle", f"{bundle} has no {MANIFEST}"))
        return report
    try:
        manifest = json.loads(manifest_bytes)
        chains: dict[str, Any] = dict(manifest["chains"])
        files: dict[str, Any] = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        report.breaks.append(Break(Kind.BUNDLE, "bundle", f"{MANIFEST} is unreadable: {exc}"))
        return report
    key = _bundle_key(bundle, key, report)
    if key is not None:
        report.key_id = key_id(key)
        signature = _read(bundle / SIGNATURE) or b""
        if not signature_valid(key, signature, manifest_bytes):
            report.breaks.append(Break(Kind.BUNDLE, "bundle", (
                f"{SIGNATURE} does not verify {MANIFEST} with key {report.key_id}: the manifest "
                "was altered, or was not signed by this key")))
    _check_files(bundle, files, report)
    book = CheckpointBook(key)
    for path in pins:
        book.add_pinned(path)
    if (bundle / CHECKPOINTS).exists():
        for number, line in enumerate(_lines(bundle / CHECKPOINTS), 1):
            book.add(line, Place(CHECKPOINTS, None, number))
    for source, chain in chains.items():
        _check_chain(bundle, source, chain, book, report, progress)
    report.breaks.extend(book.breaks)
    report.checkpoints = len(book.valid)
    settle_unchained(report, allow_unchained)
    return report


def _bundle_key(bundle: Path, pinned: Ed25519PublicKey | None,
                report: Report) -> Ed25519PublicKey | None:
    try:
        own: Ed25519PublicKey | None = read_public_key(bundle / PUBLIC_KEY)
    except KeyProblem as exc:
        own = None
        report.breaks.append(Break(Kind.BUNDLE, "bundle", str(exc)))
    if pinned is None:
        if own is not None:
            report.notes.append(
                f"trusting the bundle's own public key {key_id(own)}: compare it with the key "
                "the council published, or pin that with --public-key")
        return own
    if own is not None and key_id(own) != key_id(pinned):
        report.breaks.append(Break(Kind.BUNDLE, "bundle", (
            f"{PUBLIC_KEY} is key {key_id(own)}, not the pinned key {key_id(pinned)}")))
    return pinned


def _check_files(bundle: Path, files: dict[str, Any], report: Report) -> None:
    for name, entry in sorted(files.items()):
        path = bundle / name
        if not path.is_file():
            report.breaks.append(Break(Kind.BUNDLE, "bundle", f"{name} is listed in the "
                                       "manifest but missing"))
        elif _digest(path)["sha256"] != entry.get("sha256"):
            report.breaks.append(Break(Kind.BUNDLE, "bundle", (
                f"{name}: its SHA-256 is not the manifest's {str(entry.get('sha256'))[:12]}...: "
                "the file was changed after export")))
    for name in _files(bundle):
        if name not in files:
            report.breaks.append(Break(Kind.BUNDLE, "bundle", f"{name} is not in the manifest"))


def _check_chain(bundle: Path, source: str, chain: dict[str, Any], book: CheckpointBook,
                 report: Report, progress: Progress | None) -> None:
    name = str(chain.get("file") or f"events/{source}.ndjson")
    first = int(chain.get("first_sequence") or 1)
    checker = ChainChecker(source, book.chain(source), first_sequence=first,
                           anchor=str(chain.get("first_prev_hash") or GENESIS), max_pending=1)
    total = int(chain.get("events") or 0)
    path = bundle / name
    if path.is_file():
        for number, line in enumerate(_lines(path), 1):
            checker.process(line, Place(name, None, number))
            if progress is not None and (number % 5000 == 0 or number == total):
                progress(f"verifying {source}", number, max(total, number))
    summary = checker.finish()
    report.chains.append(summary)
    report.breaks.extend(checker.breaks)
    last = chain.get("last_sequence")
    if last is not None and summary.last_sequence < int(last):
        report.breaks.append(Break(Kind.MISSING, source, (
            f"the manifest lists sequences up to {last} but {name} ends at "
            f"{summary.last_sequence}: events were removed from its end"),
            summary.last_sequence + 1))
    elif last is not None and summary.tip != chain.get("last_hash"):
        report.breaks.append(Break(Kind.HASH_MISMATCH, source, (
            f"the manifest says the last event hashes to {str(chain.get('last_hash'))[:12]}..., "
            f"{name} ends with {summary.tip[:12]}..."), summary.last_sequence))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


# --------------------------------------------------------------------------- README

HASH_CHECK = r'''python3 - <<'EOF'
import hashlib, json, sys
for source, chain in json.load(open("manifest.json"))["chains"].items():
    want, n = (chain["first_sequence"], chain["first_prev_hash"]), 0
    for n, line in enumerate(open(chain["file"], "rb"), 1):
        event = json.loads(line)
        carried = event.pop("hash")
        body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        if hashlib.sha256(body).hexdigest() != carried:
            sys.exit(f"{chain['file']} line {n}: the event does not hash to its hash")
        if (event["sequence"], event["prev_hash"]) != want:
            sys.exit(f"{chain['file']} line {n}: does not follow the event before it")
        want = (event["sequence"] + 1, carried)
    if n != chain["events"] or (n and carried != chain["last_hash"]):
        sys.exit(f"{chain['file']}: does not end with the manifest's last event")
    print(f"{source}: {n} events chained" + (f", last hash {carried}" if n else ""))
EOF'''

CHECKPOINT_SIGNATURES = r'''bad=0; for sig in checkpoints/*.sig; do
  openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin \
    -in "${sig%.sig}.json" -sigfile "$sig" >/dev/null || { echo "BAD: $sig"; bad=1; }
done; [ $bad = 0 ] && echo "every checkpoint signature verifies"'''

CHECKPOINT_HASHES = r'''python3 - checkpoints/*.json <<'EOF'
import json, sys
chains = {}
for path in sys.argv[1:]:
    signed = json.load(open(path))
    if signed["chain"] not in chains:
        events = map(json.loads, open(f"events/{signed['chain']}.ndjson", "rb"))
        chains[signed["chain"]] = {e["sequence"]: e["hash"] for e in events}
    if chains[signed["chain"]].get(signed["count"]) != signed["hash"]:
        sys.exit(f"{path}: event {signed['count']} is not the one signed")
    print(f"{path}: event {signed['count']} is the one signed {signed['signed_at']}")
EOF'''

MANIFEST_SIGNATURE = ("openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin "
                      "-in manifest.json -sigfile manifest.sig")
FILE_DIGESTS = "sha256sum -c SHA256SUMS"
KEY_ID = ("openssl pkey -pubin -in public-key.pem -outform DER | tail -c 32 | sha256sum | "
          "cut -c1-16")


def readme(chains: dict[str, dict[str, Any]], summary: BundleSummary) -> str:
    rows = "\n".join(
        f"| {source} | {c['events']:,} | {_number(c['first_sequence'])} to "
        f"{_number(c['last_sequence'])} | `{c['last_hash'][:16]}...` |"
        for source, c in chains.items())
    return f"""# Council Integrator audit trail export

Every event each service published to the shared log, as the exact bytes on the log, with the
signed checkpoints over them. Each event carries `sequence` (its place in its source's chain),
`prev_hash` (the `hash` of the event before it; 64 zeros before the first) and `hash`: the
SHA-256 of the event's canonical JSON without `hash` (keys sorted, no whitespace, ASCII with
`\\u` escapes). Altering, removing, reordering or inserting an event breaks the chain.
Checkpoints are Ed25519 signatures, by the council's key `{summary.key_id}`, over a chain's
length and last hash.

| source | events | sequences | last hash |
|---|---|---|---|
{rows}

Checkpoints: {summary.checkpoints}. OCDS 1.1 releases (commissioning): {summary.ocds_releases},
in `{OCDS}`, derived from the integrator's events here (the events are the evidence).

## Verify with standard tools

Run these in this directory; each fails loudly (non-zero exit) on a problem.

### 1. The public key is the council's

Compare its id with the one the council published:

```sh
{KEY_ID}
```

### 2. The manifest is the one the council signed, and every file is as listed in it

```sh
{MANIFEST_SIGNATURE}
{FILE_DIGESTS}
```

### 3. Every event hashes to its `hash`, each follows the one before it, and each chain
starts and ends where the (signed) manifest says

```sh
{HASH_CHECK}
```

### 4. Every checkpoint is signed by the council's key, over an event that is in the chain

```sh
{CHECKPOINT_SIGNATURES}
```

```sh
{CHECKPOINT_HASHES}
```

A checkpoint you kept from an earlier export (its line of `checkpoints.ndjson`) must still
match the log: `council audit verify --pin kept.ndjson` checks that for you.

Or all of it at once, with the Council Integrator command line:

```sh
council audit verify --bundle . --public-key the-councils-published-key.pem
```

Files: `events/<source>.ndjson` one event per line in sequence order; `checkpoints.ndjson` the
checkpoint events as on the log; `checkpoints/<source>-<count>.json` the exact bytes each
signature covers and `.sig` the raw 64-byte signature; `manifest.json` counts, chain ends and
SHA-256 of every file, signed in `manifest.sig`; `public-key.pem` the council's public key.
"""


def _number(value: int | None) -> str:
    return f"{value:,}" if value else "-"
