"""Records of the audit machinery itself, on the `<prefix>.audit` topic: signed checkpoints over
each source's hash chain (see council.platform.audit)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from council.kernel.contracts.catalogue import published

SOURCE = "audit"
CHECKPOINT = "AuditCheckpointSigned"


@published(SOURCE, CHECKPOINT, stream_field="chain")
class AuditCheckpointSigned(BaseModel):
    """A signed statement that a source's audit chain held `count` events, the last with `hash`.

    The signature is Ed25519 over the canonical JSON of every other field (sorted keys, no
    whitespace), so a regulator can check it with standard tools and pin it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain: str = Field(min_length=1, max_length=100, description="the source whose chain it is")
    count: int = Field(ge=1, description="events in the chain: the last one's sequence")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="the `hash` of event `count`")
    signed_at: str = Field(
        pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$", description="when (UTC)")
    key_id: str = Field(
        pattern=r"^[0-9a-f]{16}$",
        description="first 16 hex digits of the SHA-256 of the raw Ed25519 public key")
    signature: str = Field(description="base64 of the 64-byte Ed25519 signature")
