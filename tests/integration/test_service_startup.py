"""A service's processes start together (council serve: the HTTP process and one per worker
group; council work on other machines) and each creates the tables it needs as it opens. On
PostgreSQL two processes creating the same table at once can fail ("tuple concurrently
updated"), so they must open one at a time and all of them must start."""

from __future__ import annotations

import threading
from pathlib import Path

from council.platform.runtime import Runtime
from council.platform.settings import Settings
from council.services.outcomes.service import SPEC

STARTING = 6


def test_processes_starting_together_on_a_new_schema_all_open(
    postgres_url: str, pg_schema_prefix: str, tmp_path: Path,
) -> None:
    settings = Settings(database_url=postgres_url, schema_prefix=pg_schema_prefix,
                        var_dir=tmp_path, log_url="embedded")
    together = threading.Barrier(STARTING)
    opened: list[Runtime] = []
    failed: list[BaseException] = []

    def start() -> None:
        together.wait()
        try:
            opened.append(Runtime(SPEC, settings))
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=start) for _ in range(STARTING)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert failed == []
        assert len(opened) == STARTING
        assert opened[0].app.recorder.max_notification_id() in (0, None)
    finally:
        for runtime in opened:
            runtime.close()
