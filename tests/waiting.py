"""Waiting for what happens in the background (relays, read models, other processes): poll
until it has happened, and fail with the last value seen if it does not. Tests never assert on
time; the deadline only bounds how long a broken test takes to say so."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

DEADLINE_SECONDS = 60.0  # generous: the machine may be busy with other work


def eventually(read: Callable[[], Any], until: Callable[[Any], bool],
               deadline: float = DEADLINE_SECONDS, every: float = 0.02) -> Any:
    """Poll `read` until `until(value)` holds and return that value."""
    give_up = time.monotonic() + deadline
    value = read()
    while not until(value):
        if time.monotonic() > give_up:
            pytest.fail(f"not reached within {deadline} s; last value: {value!r}")
        time.sleep(every)
        value = read()
    return value
