"""Structured logs (structlog) with the correlation id of the work in hand on every line.

Lines are JSON (one object a line, for a log collector) unless stderr is a terminal, where they
are readable ``time [level] event key=value`` lines instead; ``COUNCIL_LOG_FORMAT`` (``json``,
``console`` or ``auto``) overrides the choice. Per-event and per-batch lines (a read model
applying events, the relay publishing a batch, a checkpoint signed per batch) are logged at
debug level: ``COUNCIL_LOG_LEVEL=debug`` shows them.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog
from structlog.typing import Processor

LogFormat = Literal["auto", "json", "console"]


class _Stderr:
    """Whatever sys.stderr is when a line is written (a test may have swapped it since)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _on_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def chosen_format(fmt: str = "auto") -> Literal["json", "console"]:
    """The format lines are written in: as asked, or on a terminal readable, else JSON."""
    if fmt in ("json", "console"):
        return fmt  # type: ignore[return-value]
    return "console" if _on_terminal() else "json"


def _renderers(fmt: Literal["json", "console"]) -> list[Processor]:
    if fmt == "json":
        return [structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(sort_keys=True)]
    # A plain traceback: the default one prints each frame's local variables, which may hold
    # tokens or service users' personal data.
    return [structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.dev.ConsoleRenderer(colors=_on_terminal(),
                                          exception_formatter=structlog.dev.plain_traceback)]


def configure_logging(service: str, level: str = "info", fmt: str = "auto") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    # Libraries' own debug lines (a Kafka client's every request, bytes and all) say nothing
    # about the council's work: debug is for ours.
    logging.basicConfig(stream=sys.stderr, level=max(numeric, logging.INFO), format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            *_renderers(chosen_format(fmt)),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
