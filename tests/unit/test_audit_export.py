"""Signed checkpoints, the export bundle and `council audit`, on the embedded log: a forged
checkpoint fails, an exported bundle verifies with the command and with the standard tools its
README names, and an edited, deleted, moved or inserted line in it fails at that event."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from council.kernel.contracts.audit import AuditCheckpointSigned
from council.platform.audit.checkpoints import envelope_of, sign
from council.platform.audit.keys import key_id, load_signing_key, public_pem
from council.platform.audit.verify import Kind, Place
from council.platform.settings import Settings
from council.services.integrator.adapters.evidence_bundle import (
    ExportRefused,
    export_bundle,
    verify_bundle,
)
from council.tools.cli import main
from tests.unit.audit_support import (
    REGISTRY,
    EmbeddedLogFile,
    Trail,
    kinds,
    only_break,
    parsed,
    resealed,
)


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[Trail]:
    built = Trail(Settings(var_dir=tmp_path / "var", log_url="embedded",
                           audit_checkpoint_every=5, audit_checkpoint_seconds=3600))
    yield built
    built.close()


def publish(trail: Trail, providers: int = 12) -> None:
    trail.register(providers)
    trail.relay(batch_size=7).drain()


def append_checkpoint(trail: Trail, checkpoint: AuditCheckpointSigned) -> None:
    trail.log().append([envelope_of(checkpoint)])


# --- checkpoints ------------------------------------------------------------------------------


def test_checkpoints_are_signed_every_so_many_events(trail: Trail) -> None:
    from council.platform.audit.checkpoints import CheckpointWriter

    writer = CheckpointWriter.for_service(trail.settings, REGISTRY, trail.db, trail.log())
    assert writer.write() is None  # nothing published yet
    trail.register(2)  # 3 events
    trail.relay().drain()
    first = writer.write()
    assert first is not None
    assert first.count == 3  # the first is due at once
    trail.register(2, reviewed_every=0)  # 2 more: fewer than every=5
    trail.relay().drain()
    assert writer.write() is None
    assert writer.write(force=True) is not None  # forced: anything new is signed
    trail.register(5, reviewed_every=0)
    trail.relay().drain()
    later = writer.write()
    assert later is not None
    assert later.count == 10
    report = trail.verify()
    assert report.intact
    assert report.chains[0].checkpoints == 3


def test_a_checkpoint_is_a_statement_openssl_can_check(trail: Trail, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    publish(trail)
    signed = trail.checkpoint()
    assert signed is not None
    from council.platform.audit.checkpoints import statement

    (tmp_path / "key.pem").write_bytes(public_pem(trail.public_key))
    (tmp_path / "statement.json").write_bytes(statement(signed))
    (tmp_path / "signature").write_bytes(base64.b64decode(signed.signature))
    command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "key.pem", "-rawin",
               "-in", "statement.json", "-sigfile", "signature"]
    assert subprocess.run(command, cwd=tmp_path, capture_output=True).returncode == 0
    (tmp_path / "statement.json").write_bytes(statement(signed).replace(b'"count":', b'"count":1'))
    assert subprocess.run(command, cwd=tmp_path, capture_output=True).returncode != 0


def test_a_forged_checkpoint_fails(trail: Trail) -> None:
    publish(trail)
    genuine = trail.checkpoint()
    assert genuine is not None
    # The same signature over a different statement: a checkpoint claiming fewer events.
    append_checkpoint(trail, genuine.model_copy(update={"count": 3, "hash": "ab" * 32}))
    broken = only_break(trail.verify())
    assert (broken.kind, broken.sequence) == (Kind.CHECKPOINT_SIGNATURE, 3)
    assert "does not match its content" in broken.detail


def test_a_checkpoint_signed_by_another_key_fails(trail: Trail) -> None:
    publish(trail)
    stranger = Ed25519PrivateKey.generate()
    from council.platform.audit.chain import ChainTip

    events = [parsed(v) for v in EmbeddedLogFile(trail.settings).values()]
    append_checkpoint(trail, sign(stranger, REGISTRY, ChainTip(len(events), events[-1]["hash"])))
    broken = only_break(trail.verify())
    assert broken.kind is Kind.CHECKPOINT_SIGNATURE
    assert f"signed by key {key_id(stranger.public_key())}, not the trusted key" in broken.detail


def test_pinned_checkpoints_catch_a_log_cut_back_with_its_checkpoints(
    trail: Trail, tmp_path: Path
) -> None:
    publish(trail)
    trail.checkpoint()
    kept = tmp_path / "kept.ndjson"
    audit = EmbeddedLogFile(trail.settings, "audit")
    kept.write_bytes(b"\n".join(audit.values()) + b"\n")
    log_file = EmbeddedLogFile(trail.settings)
    last = len(log_file.values()) - 1
    log_file.delete(last)
    audit.delete(0)  # and the checkpoint that would have told
    assert trail.verify().intact  # nothing on the log says anything is missing...
    broken = only_break(trail.verify(pins=[kept]))  # ...but the regulator kept one
    assert (broken.kind, broken.sequence) == (Kind.CHECKPOINT_BEYOND_END, last + 1)
    assert "pinned" in broken.detail


# --- the bundle -------------------------------------------------------------------------------


def export(trail: Trail, out: Path, **options: object) -> Path:
    export_bundle(trail.log(), out, load_signing_key(trail.settings), sources=(REGISTRY,),
                  **options)  # type: ignore[arg-type]
    return out


@pytest.fixture
def bundle(trail: Trail, tmp_path: Path) -> Path:
    publish(trail)
    trail.checkpoint()
    publish(trail, 4)
    trail.checkpoint()
    return export(trail, tmp_path / "bundle")


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def write_lines(path: Path, values: list[bytes]) -> None:
    path.write_bytes(b"".join(v + b"\n" for v in values))


def test_an_exported_bundle_holds_the_log_and_verifies(trail: Trail, bundle: Path) -> None:
    events = lines(bundle / "events" / f"{REGISTRY}.ndjson")
    assert events == EmbeddedLogFile(trail.settings).values()  # the exact bytes, in order
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["chains"][REGISTRY]["events"] == len(events)
    assert manifest["checkpoints"] == 2
    assert sorted(p.name for p in (bundle / "checkpoints").iterdir()) == sorted(
        f"{REGISTRY}-{n}.{ext}" for n in (16, 22) for ext in ("json", "sig"))
    report = verify_bundle(bundle, key=trail.public_key)
    assert report.intact, report.breaks
    assert report.checkpoints == 2
    assert report.chains[0].events == len(events)


def readme_commands(bundle: Path) -> list[str]:
    text = (bundle / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [b for b in blocks if not b.startswith("council ")]


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # -e: a block of several commands fails if any of them does, as a reader would see.
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", command], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_readme_commands_verify_the_bundle_with_standard_tools(
    trail: Trail, bundle: Path
) -> None:
    for tool in ("openssl", "sha256sum", "python3"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    commands = readme_commands(bundle)
    assert len(commands) == 5
    for command in commands:
        done = run(command, bundle)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert run(commands[0], bundle).stdout.strip() == key_id(trail.public_key)


@pytest.mark.parametrize(("index", "damage"), [
    (1, lambda b: (b / "manifest.json").write_text(
        (b / "manifest.json").read_text().replace('"events": 22', '"events": 21'))),
    (1, lambda b: (b / "events" / f"{REGISTRY}.ndjson").write_bytes(
        (b / "events" / f"{REGISTRY}.ndjson").read_bytes().replace(b"Provider 3", b"Provider 8"))),
    (2, lambda b: write_lines(b / "events" / f"{REGISTRY}.ndjson",
                              lines(b / "events" / f"{REGISTRY}.ndjson")[1:])),
    (2, lambda b: (b / "events" / f"{REGISTRY}.ndjson").write_bytes(
        (b / "events" / f"{REGISTRY}.ndjson").read_bytes().replace(b"Provider 3", b"Provider 8"))),
    (3, lambda b: (b / "checkpoints" / f"{REGISTRY}-16.json").write_bytes(
        (b / "checkpoints" / f"{REGISTRY}-16.json").read_bytes().replace(b'"count":16',
                                                                        b'"count":15'))),
], ids=["manifest edited", "event edited (digests)", "event deleted (chain)",
        "event edited (chain)", "checkpoint edited"])
def test_the_readme_commands_fail_on_a_damaged_bundle(bundle: Path, index: int,
                                                      damage: object) -> None:
    for tool in ("openssl", "sha256sum", "python3"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    command = readme_commands(bundle)[index]
    assert run(command, bundle).returncode == 0
    damage(bundle)  # type: ignore[operator]
    assert run(command, bundle).returncode != 0


def chain_break(report: object) -> object:
    breaks = [b for b in report.breaks if b.kind is not Kind.BUNDLE]  # type: ignore[attr-defined]
    assert breaks, "no chain break"
    return min(breaks, key=lambda b: b.sequence or 0)


def test_an_edited_line_in_a_bundle_fails_at_that_event(trail: Trail, bundle: Path) -> None:
    path = bundle / "events" / f"{REGISTRY}.ndjson"
    values = lines(path)
    values[6] = values[6].replace(b"Provider", b"Pr0vider", 1)
    write_lines(path, values)
    report = verify_bundle(bundle, key=trail.public_key)
    broken = chain_break(report)
    assert (broken.kind, broken.sequence, broken.place) == (  # type: ignore[attr-defined]
        Kind.HASH_MISMATCH, 7, Place(f"events/{REGISTRY}.ndjson", None, 7))
    assert Kind.BUNDLE in kinds(report)  # and its digest no longer matches the manifest


def test_a_deleted_line_in_a_bundle_fails_as_missing(trail: Trail, bundle: Path) -> None:
    path = bundle / "events" / f"{REGISTRY}.ndjson"
    values = lines(path)
    write_lines(path, values[:3] + values[4:])
    broken = chain_break(verify_bundle(bundle, key=trail.public_key))
    assert (broken.kind, broken.sequence) == (Kind.MISSING, 4)  # type: ignore[attr-defined]


def test_the_last_line_deleted_from_a_bundle_fails(trail: Trail, bundle: Path) -> None:
    path = bundle / "events" / f"{REGISTRY}.ndjson"
    write_lines(path, lines(path)[:-1])
    report = verify_bundle(bundle, key=trail.public_key)
    assert Kind.CHECKPOINT_BEYOND_END in kinds(report)
    assert any(b.kind is Kind.MISSING and b.sequence == 22 for b in report.breaks)


def test_swapped_lines_in_a_bundle_fail_as_out_of_order(trail: Trail, bundle: Path) -> None:
    path = bundle / "events" / f"{REGISTRY}.ndjson"
    values = lines(path)
    values[8], values[9] = values[9], values[8]
    write_lines(path, values)
    broken = chain_break(verify_bundle(bundle, key=trail.public_key))
    assert (broken.kind, broken.sequence) == (Kind.OUT_OF_ORDER, 9)  # type: ignore[attr-defined]
    assert broken.place == Place(f"events/{REGISTRY}.ndjson", None, 10)  # type: ignore[attr-defined]


def test_an_inserted_line_in_a_bundle_fails_as_inserted(trail: Trail, bundle: Path) -> None:
    path = bundle / "events" / f"{REGISTRY}.ndjson"
    values = lines(path)
    forged = parsed(values[10])
    forged["actor"] = "someone:else"
    forged["event_id"] = "00000000-0000-4000-8000-000000000001"
    write_lines(path, [*values[:10], resealed(forged), *values[10:]])
    broken = chain_break(verify_bundle(bundle, key=trail.public_key))
    assert (broken.kind, broken.sequence, broken.event_id) == (  # type: ignore[attr-defined]
        Kind.INSERTED, 11, forged["event_id"])


def test_a_bundle_re_signed_with_another_key_fails(trail: Trail, bundle: Path) -> None:
    """Someone without the council's key re-signs an altered bundle with their own: its
    checkpoints no longer verify, and against the pinned council key nothing does."""
    stranger = Ed25519PrivateKey.generate()
    (bundle / "public-key.pem").write_bytes(public_pem(stranger.public_key()))
    (bundle / "manifest.sig").write_bytes(stranger.sign((bundle / "manifest.json").read_bytes()))
    alone = verify_bundle(bundle)  # trusting the bundle's own key
    assert Kind.CHECKPOINT_SIGNATURE in kinds(alone)
    assert "trusting the bundle's own public key" in alone.notes[0]
    pinned = verify_bundle(bundle, key=trail.public_key)
    problems = " ".join(b.detail for b in pinned.breaks if b.kind is Kind.BUNDLE)
    assert "not the pinned key" in problems
    assert "manifest.sig does not verify" in problems


def test_an_export_is_refused_when_the_log_does_not_verify(trail: Trail, tmp_path: Path) -> None:
    publish(trail)
    log_file = EmbeddedLogFile(trail.settings)
    log_file.delete(3)
    with pytest.raises(ExportRefused, match="missing sequence"):
        export(trail, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    assert not list(tmp_path.glob(".refused.partial-*"))


def test_an_export_needs_a_new_or_empty_directory(trail: Trail, tmp_path: Path) -> None:
    publish(trail, 2)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    with pytest.raises(ExportRefused, match="not an empty directory"):
        export(trail, tmp_path / "used")


def test_a_range_of_a_chain_exports_and_verifies(trail: Trail, tmp_path: Path) -> None:
    from datetime import datetime

    publish(trail)
    events = [parsed(v) for v in EmbeddedLogFile(trail.settings).values()]
    since = datetime.fromisoformat(events[4]["recorded_at"])
    until = datetime.fromisoformat(events[9]["recorded_at"])
    out = export(trail, tmp_path / "range", since=since, until=until)
    chain = json.loads((out / "manifest.json").read_text())["chains"][REGISTRY]
    assert (chain["first_sequence"], chain["last_sequence"]) == (5, 10)
    assert chain["first_prev_hash"] == events[3]["hash"]
    assert verify_bundle(out, key=trail.public_key).intact


# --- the command line -------------------------------------------------------------------------


@pytest.fixture
def configured(trail: Trail, monkeypatch: pytest.MonkeyPatch) -> Trail:
    monkeypatch.setenv("COUNCIL_VAR_DIR", str(trail.settings.var_dir))
    monkeypatch.setenv("COUNCIL_LOG_URL", "embedded")
    publish(trail)
    trail.checkpoint()
    return trail


def test_council_audit_verify_says_intact_or_names_the_first_break(
    configured: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify", "--source", REGISTRY]) == 0
    out = capsys.readouterr().out
    assert "intact" in out
    assert "16 events" in out
    assert "1 checkpoint matches" in out
    EmbeddedLogFile(configured.settings).delete(7)
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "BROKEN" in out
    assert f"first broken link: {REGISTRY} sequence 8" in out
    assert "missing sequence" in out
    assert main(["audit", "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["intact"] is False
    assert report["breaks"][0]["sequence"] == 8


def test_council_audit_export_then_verify_the_bundle(
    configured: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "for-the-regulator"
    assert main(["audit", "export", "--out", str(out)]) == 0
    assert "exported to" in capsys.readouterr().out
    key = tmp_path / "council.pem"
    assert main(["audit", "public-key"]) == 0
    key.write_text(capsys.readouterr().out)
    assert main(["audit", "verify", "--bundle", str(out), "--public-key", str(key)]) == 0
    assert "intact" in capsys.readouterr().out
    assert main(["audit", "export", "--out", str(out)]) == 1  # not over an existing bundle
    assert "not an empty directory" in capsys.readouterr().err


def test_council_audit_checkpoint_signs_each_chain_now(
    configured: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    configured.register(1)
    configured.relay().drain()
    assert main(["audit", "checkpoint"]) == 0
    out = capsys.readouterr().out
    assert f"{REGISTRY}" in out
    assert "18 events" in out
    assert main(["audit", "checkpoint"]) == 0
    assert "nothing new" in capsys.readouterr().out


def test_a_configured_key_file_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COUNCIL_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("COUNCIL_AUDIT_SIGNING_KEY_FILE", str(tmp_path / "missing.pem"))
    assert main(["audit", "public-key"]) == 2
    assert "COUNCIL_AUDIT_SIGNING_KEY_FILE" in capsys.readouterr().err


def test_the_default_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    first = load_signing_key(settings)
    again = load_signing_key(settings)
    assert key_id(first.public_key()) == key_id(again.public_key())
    assert (tmp_path / "audit-signing-key.pem").stat().st_mode & 0o077 == 0


def test_a_running_service_signs_its_chain_and_again_as_it_stops(tmp_path: Path) -> None:
    """The checkpoint writer runs beside the relay in every service; stopping the service
    publishes what was stored and signs where the chain then ends."""
    from council.platform.runtime import Runtime
    from council.services.provider_registry.service import SPEC

    settings = Settings(var_dir=tmp_path, log_url="embedded", relay_interval=0.01,
                        audit_checkpoint_every=1000, audit_checkpoint_seconds=3600)
    audit = EmbeddedLogFile(settings, "audit")
    trail = Trail(settings)
    runtime = Runtime(SPEC, settings)
    runtime.start()
    try:
        trail.register(3)  # 4 events, into the store the service's relay reads
        for _ in range(400):  # the first checkpoint is due as soon as anything is published
            if audit.values():
                break
            time.sleep(0.05)
        trail.register(2)  # 3 more
    finally:
        runtime.close()
    try:
        counts = [json.loads(v)["data"]["count"] for v in audit.values()]
        assert counts[0] >= 1
        assert counts[-1] == 7  # at shutdown: every event the service published
        report = trail.verify()
        assert report.intact
        assert report.chains[0].last_checkpoint == 7
    finally:
        trail.close()
