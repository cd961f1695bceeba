"""Read your own writes: after a command, wait (briefly) until the read model a page reads has
applied its event, so the page that follows shows the change.

Commands are stored at once, but reach the read models through the relay and the shared log,
moments later. The wait watches the projection's position for the changed stream (kept beside
its rows, in the same transaction), so it ends as soon as the change is readable; if the log
is slow it gives up and the page says the view may lag.
"""

from __future__ import annotations

import time

from council.platform.runtime import Runtime

WAIT_SECONDS = 5.0


def applied(runtime: Runtime, projection: str, source: str, stream_id: str) -> int:
    """How far into the stream the projection has applied (0: nothing of it yet)."""
    with runtime.views.transaction() as tx:
        rows = tx.execute(
            "SELECT position FROM projection_stream WHERE projection = ? AND stream_id = ?",
            (projection, f"{source}/{stream_id}"))
    return int(rows[0][0]) if rows else 0


def wait_applied(runtime: Runtime, projection: str, source: str, stream_id: str,
                 position: int, timeout: float = WAIT_SECONDS) -> bool:
    """True once `projection` has applied the stream up to `position`; False on time out."""
    deadline = time.monotonic() + timeout
    while applied(runtime, projection, source, stream_id) < position:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_caught_up(runtime: Runtime, timeout: float = 120) -> None:
    """Wait until every read model has applied everything now on the shared log (for the
    bench and tests: pages wait only for their own change)."""
    event_log = runtime.event_log
    topics = sorted({t for r in runtime.runners for t in r.topics})
    end: dict[str, int] = {}
    for batch in event_log.read_all(topics):
        end.update({r.partition_key: r.offset + 1 for r in batch})
    deadline = time.monotonic() + timeout
    while not all(runner.position().get(key) == offset for runner in runtime.runners
                  for key, offset in end.items() if key.rsplit(":", 1)[0] in runner.topics):
        if time.monotonic() > deadline:
            raise TimeoutError("the read models did not catch up with the shared log")
        time.sleep(0.05)
