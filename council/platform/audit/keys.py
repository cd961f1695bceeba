"""The deployment's checkpoint signing key (Ed25519).

COUNCIL_AUDIT_SIGNING_KEY_FILE names a PEM private key (PKCS#8, as `openssl genpkey -algorithm
ed25519` writes). Unset, the key is `<var_dir>/audit-signing-key.pem`, generated on first use.
The private key never leaves the deployment: exports and `council audit public-key` carry only
the public half; a regulator pins that (or its key id) and verifies checkpoints against it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from council.platform.settings import Settings

DEFAULT_KEY_FILE = "audit-signing-key.pem"


class KeyProblem(ValueError):
    """The signing key or a public key cannot be used (message names the file and setting)."""


def key_file(settings: Settings) -> Path:
    return settings.audit_signing_key_file or settings.var_dir / DEFAULT_KEY_FILE


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The deployment's signing key; the default file is generated if it does not exist yet.
    A configured file must exist: a deployment's key is never silently replaced."""
    path = key_file(settings)
    if not path.exists():
        if settings.audit_signing_key_file is not None:
            raise KeyProblem(
                f"COUNCIL_AUDIT_SIGNING_KEY_FILE={path} does not exist (create one with "
                f"`openssl genpkey -algorithm ed25519 -out {path}`)")
        _generate(path)
    return _read_private(path)


def _generate(path: Path) -> None:
    """Write a new key atomically: several processes starting together end up with one key (the
    first link wins; the others find it complete)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        with os.fdopen(fd, "wb") as out:  # mkstemp creates it readable by its owner only
            out.write(pem)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def _read_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyProblem(f"audit signing key {path}: cannot read it: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"audit signing key {path} is not an Ed25519 key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def read_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key (or, for convenience, a private key's public half)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyProblem(f"public key {path}: {exc.strerror or exc}") from None
    try:
        if b"PRIVATE KEY" in raw:
            return _read_private(path).public_key()
        key = serialization.load_pem_public_key(raw)
    except (ValueError, TypeError) as exc:
        raise KeyProblem(f"public key {path}: not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyProblem(f"public key {path} is not an Ed25519 key")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint: the first 16 hex digits of the SHA-256 of the raw public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signature_valid(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
