"""Bearer tokens: shown once, stored only as a SHA-256, refused when wrong, malformed or revoked."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from council.platform.identity import TOKEN_PREFIX, Principal, Role, TokenStore
from council.platform.sql import Database


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "identity.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[TokenStore]:
    db = Database.sqlite(db_path)
    try:
        yield TokenStore(db)
    finally:
        db.close()


def secret_of(token: str) -> str:
    prefix, _token_id, secret = token.split("_", 2)
    assert prefix == TOKEN_PREFIX
    return secret


def file_bytes(db_path: Path) -> bytes:
    """Everything SQLite wrote for this database: the main file, its WAL and any journal."""
    return b"".join(p.read_bytes() for p in sorted(db_path.parent.glob(db_path.name + "*")))


def test_a_new_token_is_shown_once_and_only_its_hash_is_stored(
    store: TokenStore, db_path: Path
) -> None:
    issued = store.create(Role.COMMISSIONER, "jo")
    token_id = issued.principal.token_id
    secret = secret_of(issued.token)

    assert issued.token == f"{TOKEN_PREFIX}_{token_id}_{secret}"
    assert len(secret) >= 40  # 32 random bytes, URL-safe base64
    assert issued.principal == Principal(token_id, Role.COMMISSIONER, "jo", None)

    with store.db.transaction() as tx:
        rows = tx.execute("SELECT * FROM api_tokens")
    assert len(rows) == 1
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert digest in rows[0]
    assert not any(isinstance(v, str) and secret in v for v in rows[0])

    store.db.close()  # checkpoint the WAL so the main file holds everything too
    raw = file_bytes(db_path)
    assert digest.encode() in raw  # proves we are reading the bytes that hold the token
    assert secret.encode() not in raw
    assert issued.token.encode() not in raw


def test_each_token_gets_its_own_id_and_secret(store: TokenStore) -> None:
    tokens = [store.create(Role.COUNCIL_STAFF, f"staff-{i}") for i in range(5)]

    assert len({t.principal.token_id for t in tokens}) == 5
    assert len({secret_of(t.token) for t in tokens}) == 5


def test_a_valid_token_authenticates_as_its_principal(store: TokenStore) -> None:
    provider_id = uuid4()
    admin = store.create(Role.INTEGRATOR_ADMIN, "sam")
    provider = store.create(Role.PROVIDER, "hillside", provider_id=provider_id)

    assert store.authenticate(admin.token) == admin.principal
    found = store.authenticate(provider.token)
    assert found == provider.principal
    assert found is not None
    assert found.role is Role.PROVIDER
    assert found.provider_id == provider_id
    assert found.actor == "provider:hillside"
    assert admin.principal.actor == "integrator_admin:sam"


def test_a_secret_containing_underscores_still_authenticates(
    store: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # URL-safe secrets may contain the separator; only the first two underscores split.
    monkeypatch.setattr("council.platform.identity.secrets.token_urlsafe", lambda _n: "a_b__c-d_")
    issued = store.create(Role.REGULATOR, "audit")

    assert issued.token.endswith("_a_b__c-d_")
    assert store.authenticate(issued.token) == issued.principal
    assert store.authenticate(issued.token.removesuffix("_")) is None


def test_a_wrong_secret_is_refused(store: TokenStore) -> None:
    issued = store.create(Role.COMMISSIONER, "jo")
    other = store.create(Role.COMMISSIONER, "kim")
    token_id = issued.principal.token_id

    assert store.authenticate(f"{TOKEN_PREFIX}_{token_id}_{secret_of(other.token)}") is None
    assert store.authenticate(f"{TOKEN_PREFIX}_{token_id}_{secret_of(issued.token)}x") is None
    assert store.authenticate(f"{TOKEN_PREFIX}_{token_id}_{secret_of(issued.token)[:-1]}") is None
    assert store.authenticate(issued.token) == issued.principal  # the right one still works


def test_the_hash_itself_is_not_a_token(store: TokenStore) -> None:
    issued = store.create(Role.COMMISSIONER, "jo")
    digest = hashlib.sha256(secret_of(issued.token).encode()).hexdigest()

    assert store.authenticate(f"{TOKEN_PREFIX}_{issued.principal.token_id}_{digest}") is None


def test_an_unknown_token_id_is_refused(store: TokenStore) -> None:
    issued = store.create(Role.COMMISSIONER, "jo")

    assert store.authenticate(f"{TOKEN_PREFIX}_000000000000_{secret_of(issued.token)}") is None


@pytest.mark.parametrize(
    "make",
    [
        lambda token: "",
        lambda token: "cit",
        lambda token: "cit_",
        lambda token: "cit__",
        lambda token: token.split("_", 2)[0] + "_" + token.split("_", 2)[1],  # no secret
        lambda token: token.split("_", 2)[0] + "_" + token.split("_", 2)[1] + "_",
        lambda token: "cit__" + token.split("_", 2)[2],  # no token id
        lambda token: "xyz" + token.removeprefix("cit"),  # wrong prefix
        lambda token: "CIT" + token.removeprefix("cit"),
        lambda token: "Bearer " + token,
        lambda token: token.replace("_", "-"),
    ],
    ids=["empty", "prefix-only", "prefix-sep", "two-seps", "no-secret", "no-secret-sep",
         "no-id", "wrong-prefix", "upper-prefix", "bearer-word", "no-separators"],
)
def test_a_malformed_token_is_refused(store: TokenStore, make: Callable[[str], str]) -> None:
    issued = store.create(Role.INTEGRATOR_ADMIN, "sam")
    malformed = make(issued.token)

    assert malformed != issued.token
    assert store.authenticate(malformed) is None


def test_a_revoked_token_is_refused(store: TokenStore) -> None:
    issued = store.create(Role.COMMISSIONER, "jo")
    kept = store.create(Role.COMMISSIONER, "kim")

    assert store.revoke(issued.principal.token_id) is True
    assert store.authenticate(issued.token) is None
    assert store.authenticate(kept.token) == kept.principal
    assert store.revoke(issued.principal.token_id) is False  # already revoked
    assert store.revoke("nosuchtoken") is False


def test_revocation_is_durable(store: TokenStore, db_path: Path) -> None:
    issued = store.create(Role.COMMISSIONER, "jo")
    store.revoke(issued.principal.token_id)

    reopened = Database.sqlite(db_path)
    try:
        assert TokenStore(reopened).authenticate(issued.token) is None
    finally:
        reopened.close()


def test_a_provider_token_must_name_its_provider(store: TokenStore) -> None:
    with pytest.raises(ValueError, match="provider token needs"):
        store.create(Role.PROVIDER, "hillside")
    assert store.list() == []


@pytest.mark.parametrize(
    "role", [r for r in Role if r is not Role.PROVIDER], ids=lambda r: r.value
)
def test_only_provider_tokens_are_bound_to_a_provider(store: TokenStore, role: Role) -> None:
    with pytest.raises(ValueError, match="only provider tokens"):
        store.create(role, "someone", provider_id=uuid4())
    assert store.list() == []


def test_list_shows_every_token_but_never_a_secret(store: TokenStore) -> None:
    provider_id = uuid4()
    admin = store.create(Role.INTEGRATOR_ADMIN, "sam")
    provider = store.create(Role.PROVIDER, "hillside", provider_id=provider_id)
    store.revoke(admin.principal.token_id)

    listed = store.list()

    assert {row[:4] for row in listed} == {
        (admin.principal.token_id, "integrator_admin", "sam", None),
        (provider.principal.token_id, "provider", "hillside", str(provider_id)),
    }
    assert len(listed) == 2
    by_id = {row[0]: row for row in listed}
    assert by_id[admin.principal.token_id][5] is not None  # revoked_at
    assert by_id[provider.principal.token_id][5] is None
    text = repr(listed)
    for issued in (admin, provider):
        secret = secret_of(issued.token)
        assert secret not in text
        assert hashlib.sha256(secret.encode()).hexdigest() not in text
