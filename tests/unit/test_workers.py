"""How a service's processes set up the garbage collector (council.platform.workers.tune_gc)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from council.platform.workers import GC_THRESHOLDS, rare_collections, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_a_service_process_collects_rarely_and_leaves_its_start_up_objects_alone() -> None:
    gc.unfreeze()
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] >= 10_000  # a batch of reports is not scanned every few hundred
    assert gc.get_freeze_count() > 0
    assert gc.isenabled()  # cycles are still collected


@pytest.mark.usefixtures("restored_gc")
def test_rare_collections_for_a_block_put_everything_back() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    with rare_collections():
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
