"""What the command-line tools share: a service's spec by its name, and a progress bar."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TextIO

from council.platform.eventstore import CouncilApplication


def service_spec(service: str):  # type: ignore[no-untyped-def]
    """A service's spec (services.<name>.service.SPEC), named on the command line."""
    return importlib.import_module(f"council.services.{service}.service").SPEC


def service_applications(sources: Sequence[str]) -> dict[str, type[CouncilApplication]]:
    """Each named service's application class (its event store's shape)."""
    return {source: service_spec(source).application for source in sources}


def progress_bar(stream: TextIO) -> Callable[[str, int, int], None]:
    """A progress bar on a terminal; a line per quarter otherwise (logs, CI)."""
    tty = stream.isatty()
    shown: dict[str, int] = {}

    def show(phase: str, done: int, total: int) -> None:
        pct = done * 100 // total if total else 100
        if tty:
            filled = pct * 30 // 100
            stream.write(f"\r  {phase:<30} [{'#' * filled}{'.' * (30 - filled)}] {pct:3d}%"
                         f"  {done}/{total}")
            if done >= total:
                stream.write("\n")
        elif pct // 25 > shown.get(phase, -1):
            shown[phase] = pct // 25
            stream.write(f"  {phase}: {pct}% ({done}/{total})\n")
        stream.flush()

    return show
