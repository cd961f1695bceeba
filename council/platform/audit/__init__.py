"""The tamper-evident audit trail: the hash chain the outbox relay puts on every published event
(chain), signed checkpoints over each chain (keys, checkpoints), `council audit verify` (verify)
and the export bundle a regulator takes away (export)."""
