"""The subject key vault: one random AES-256 key per data subject, and nothing else about them.

Service users named in delivery reports are data subjects. Each gets a random subject id (the
pseudonym on the shared log) and a random 256-bit data key, kept here, in the outcomes
service's database: on PostgreSQL a table beside its event store (schema
`<prefix>_outcomes`), on SQLite a file of its own (`var/outcomes_vault.sqlite`, rollback journal
and `secure_delete`, so a deleted key's bytes are overwritten in the file rather than left in
free pages or a write-ahead log). Erasing a subject deletes its key: everything sealed with it,
in the store, on the log, in read models and exports, can never be read again.

- **The reference is never stored.** A subject is found again by `lookup`, an HMAC-SHA256 of
  its reference (an NHS number, or a provider's own case reference qualified by the provider)
  under a key derived from the deployment's personal-data secret: NHS numbers are few enough
  to guess, so an unkeyed hash would be no protection. Erasure deletes the lookup with the key,
  so the subject id left on the log can no longer be linked to the reference by anyone, the
  council included; the same person reported afterwards is a new subject.
- **Keys are wrapped.** Data keys are stored encrypted (AES-256-GCM) under a second key derived
  from the secret, so a copy of the database alone reads nothing.
- **The secret** is 32 random bytes in COUNCIL_PERSONAL_DATA_SECRET_FILE (unset:
  `<var_dir>/personal-data-secret`, made on first use, readable by its owner only). Every
  outcomes process of a deployment must share it; losing it loses every subject's data.
- **Erased subjects leave a tombstone** (subject id and when), so a read can say "erased"
  rather than "missing", and a repeated erasure is recognised.

Nothing here caches keys beyond one call: an erasure made by another process (the CLI, another
instance) takes effect on the next read.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from council.platform.settings import Settings
from council.platform.sql import Database

DEFAULT_SECRET_FILE = "personal-data-secret"  # noqa: S105  # a file name
VAULT_DATABASE = "outcomes_vault"  # the SQLite file's name under var_dir
SECRET_BYTES = 32
_CHUNK = 500  # values per IN (...) list

_TABLES = (
    "CREATE TABLE IF NOT EXISTS data_subject_keys ("
    " subject_id TEXT PRIMARY KEY, lookup TEXT NOT NULL UNIQUE, key_id TEXT NOT NULL UNIQUE,"
    " wrapped_key TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS data_subject_erasures ("
    " subject_id TEXT PRIMARY KEY, erased_at TEXT NOT NULL)",
)


class VaultProblem(ValueError):
    """The personal-data secret cannot be used (the message names the file and the setting)."""


@dataclass(frozen=True)
class SubjectKey:
    """A data subject's key, unwrapped (held only for the call that needs it)."""

    subject_id: UUID
    key_id: UUID
    key: bytes

    def __repr__(self) -> str:  # never the key itself, should it reach a log or a traceback
        return f"SubjectKey(subject_id={self.subject_id}, key_id={self.key_id})"


# ---------------------------------------------------------------------- the secret


def secret_file(settings: Settings) -> Path:
    return settings.personal_data_secret_file or settings.var_dir / DEFAULT_SECRET_FILE


def load_secret(settings: Settings) -> bytes:
    """The deployment's personal-data secret; the default file is made if it does not exist.
    A configured file must exist: a secret is never silently replaced (every sealed record
    would be lost)."""
    path = secret_file(settings)
    if not path.exists():
        if settings.personal_data_secret_file is not None:
            raise VaultProblem(
                f"COUNCIL_PERSONAL_DATA_SECRET_FILE={path} does not exist (make one with "
                f"`head -c 32 /dev/urandom > {path}` and keep it as safe as the database)")
        _generate(path)
    try:
        secret = path.read_bytes()
    except OSError as exc:
        raise VaultProblem(f"personal-data secret {path}: cannot read it: {exc}") from None
    if len(secret) != SECRET_BYTES:
        raise VaultProblem(f"personal-data secret {path} must be exactly {SECRET_BYTES} bytes, "
                           f"not {len(secret)}")
    return secret


def _generate(path: Path) -> None:
    """Write a new secret atomically: processes starting together end up with one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
    try:
        with os.fdopen(fd, "wb") as out:  # mkstemp creates it readable by its owner only
            out.write(secrets.token_bytes(SECRET_BYTES))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"council personal data: " + purpose).derive(secret)


# ---------------------------------------------------------------------- the store


class _ShreddingSqlite(Database):
    """An SQLite database whose deleted rows are overwritten in the file: a rollback journal
    (deleted once each transaction commits) rather than a write-ahead log that would keep old
    pages, and `secure_delete` so freed space is zeroed."""

    def _sqlite_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            fresh = not self.path.exists()
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA synchronous=FULL")
            if fresh:
                os.chmod(self.path, 0o600)
            self._local.conn = conn
        return conn


def vault_database(settings: Settings) -> Database:
    if settings.uses_postgres:
        assert settings.database_url is not None
        return Database(settings.database_url, schema=settings.schema_of("outcomes"))
    return _ShreddingSqlite.sqlite(settings.sqlite_path(VAULT_DATABASE))


class SubjectVault:
    """Data subjects' keys, found by subject id or by the lookup of their reference."""

    def __init__(self, db: Database, secret: bytes) -> None:
        self.db = db
        self._lookup_key = _derive(secret, b"subject lookup")
        self._wrapping = AESGCM(_derive(secret, b"key wrapping"))
        with db.transaction() as tx:
            for ddl in _TABLES:
                tx.execute(ddl)

    @classmethod
    def for_settings(cls, settings: Settings) -> SubjectVault:
        return cls(vault_database(settings), load_secret(settings))

    def close(self) -> None:
        self.db.close()

    def lookup_of(self, reference: str) -> str:
        """The keyed hash a subject is found by (`reference` already qualified and
        normalised, e.g. `nhs:9434765919`)."""
        return hmac.new(self._lookup_key, reference.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def new_key() -> SubjectKey:
        """A new subject's id and key (not yet stored: see `add`)."""
        return SubjectKey(uuid4(), uuid4(), AESGCM.generate_key(bit_length=256))

    # ------------------------------------------------------------------ reading

    def by_lookup(self, lookups: Iterable[str]) -> dict[str, SubjectKey]:
        found: dict[str, SubjectKey] = {}
        for chunk in _chunks(sorted(set(lookups))):
            found.update(self._select("lookup", chunk))
        return found

    def by_subject(self, subject_ids: Iterable[UUID]) -> dict[UUID, SubjectKey]:
        found: dict[UUID, SubjectKey] = {}
        for chunk in _chunks(sorted({str(s) for s in subject_ids})):
            found.update({k.subject_id: k for k in self._select("subject_id", chunk).values()})
        return found

    def erased(self, subject_ids: Iterable[UUID]) -> set[UUID]:
        """Which of these subjects were erased."""
        gone: set[UUID] = set()
        for chunk in _chunks(sorted({str(s) for s in subject_ids})):
            with self.db.reading() as tx:
                rows = tx.execute(
                    "SELECT subject_id FROM data_subject_erasures WHERE subject_id IN"
                    f" ({','.join('?' * len(chunk))})", chunk)
            gone.update(UUID(r[0]) for r in rows)
        return gone

    def _select(self, column: str, values: list[str]) -> dict[str, SubjectKey]:
        """Keys whose `column` is one of `values`, by lookup."""
        with self.db.reading() as tx:
            rows = tx.execute(
                f"SELECT subject_id, lookup, key_id, wrapped_key FROM data_subject_keys"
                f" WHERE {column} IN ({','.join('?' * len(values))})", values)
        return {lookup: self._unwrap(UUID(subject), UUID(key_id), wrapped)
                for subject, lookup, key_id, wrapped in rows}

    # ------------------------------------------------------------------ writing

    def add(self, staged: dict[str, SubjectKey]) -> dict[str, SubjectKey]:
        """Store new subjects (lookup -> key) in one transaction, committed before anything is
        sealed with them. Returns the vault's key for each lookup: ours, or the key of a
        subject another writer stored first (whatever was sealed with ours must be sealed
        again)."""
        if not staged:
            return {}
        now = datetime.now(UTC).isoformat()
        with self.db.transaction() as tx:
            tx.executemany(
                "INSERT INTO data_subject_keys (subject_id, lookup, key_id, wrapped_key,"
                " created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (lookup) DO NOTHING",
                [(str(k.subject_id), lookup, str(k.key_id), self._wrap(k), now)
                 for lookup, k in sorted(staged.items())],
            )
        holders: dict[str, str] = {}  # lookup -> the subject id stored for it
        for chunk in _chunks(sorted(staged)):
            with self.db.transaction() as tx:
                holders.update(tx.execute(
                    "SELECT lookup, subject_id FROM data_subject_keys WHERE lookup IN"
                    f" ({','.join('?' * len(chunk))})", chunk))
        kept = {lookup: key for lookup, key in staged.items()
                if holders.get(lookup) == str(key.subject_id)}
        return {**kept, **self.by_lookup(set(staged) - set(kept))}

    def forget(self, subject_id: UUID) -> bool:
        """Erase a subject: delete its key and lookup, leave a tombstone. True if a key was
        deleted now (False: already erased, or never known)."""
        with self.db.transaction() as tx:
            known = tx.execute("SELECT 1 FROM data_subject_keys WHERE subject_id = ?",
                               (str(subject_id),))
            tx.execute("DELETE FROM data_subject_keys WHERE subject_id = ?", (str(subject_id),))
            if known:
                tx.execute(
                    "INSERT INTO data_subject_erasures (subject_id, erased_at) VALUES (?, ?)"
                    " ON CONFLICT (subject_id) DO NOTHING",
                    (str(subject_id), datetime.now(UTC).isoformat()))
        return bool(known)

    # ------------------------------------------------------------------ wrapping

    def _wrap(self, key: SubjectKey) -> str:
        nonce = secrets.token_bytes(12)
        return (nonce + self._wrapping.encrypt(nonce, key.key, _wrap_aad(key))).hex()

    def _unwrap(self, subject_id: UUID, key_id: UUID, wrapped: str) -> SubjectKey:
        raw = bytes.fromhex(wrapped)
        shell = SubjectKey(subject_id, key_id, b"")
        try:
            key = self._wrapping.decrypt(raw[:12], raw[12:], _wrap_aad(shell))
        except InvalidTag:
            raise VaultProblem(
                f"the key of data subject {subject_id} does not unwrap: the personal-data "
                "secret is not the one it was stored with") from None
        return SubjectKey(subject_id, key_id, key)


def _wrap_aad(key: SubjectKey) -> bytes:
    return f"council:subject-key:{key.subject_id}:{key.key_id}".encode()


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i:i + _CHUNK] for i in range(0, len(values), _CHUNK)]
