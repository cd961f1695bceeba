"""Who is doing what, and why: the context of the command being handled.

Entry points (HTTP requests, CLI commands, projection workers) set it; the event store stamps it
on every event recorded while it is set, so each event records its actor and correlation id
without the domain model knowing about requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

import structlog


def new_correlation_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class CommandContext:
    actor: str = "system"
    organisation: str | None = None
    correlation_id: str = field(default_factory=new_correlation_id)
    causation_id: str | None = None


_current: ContextVar[CommandContext | None] = ContextVar("council_command", default=None)


def current_context() -> CommandContext:
    ctx = _current.get()
    return ctx if ctx is not None else CommandContext()


@contextmanager
def command_context(ctx: CommandContext) -> Iterator[CommandContext]:
    """Run a block as `ctx`; log lines inside it carry the correlation id and actor."""
    token = _current.set(ctx)
    with structlog.contextvars.bound_contextvars(
        correlation_id=ctx.correlation_id, actor=ctx.actor
    ):
        try:
            yield ctx
        finally:
            _current.reset(token)


def caused_by(ctx: CommandContext, event_id: str) -> CommandContext:
    """The context for work triggered by an event: same correlation, caused by that event."""
    return replace(ctx, causation_id=event_id)
