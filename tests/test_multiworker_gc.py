"""A serving process tunes the garbage collector at start-up; tests keep the defaults."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from VEZEPyCore.settings import CoreSettings
from VEZEPyCore.web.gc_tuning import YOUNG_THRESHOLD, tune_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_a_serving_process_freezes_start_up_and_collects_young_objects_in_batches(
    restored_collector: None,
) -> None:
    tune_collector(CoreSettings(environment="development"))
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert gc.get_freeze_count() > 0


def test_tests_keep_the_collector_as_it_was(restored_collector: None) -> None:
    before = gc.get_threshold()
    tune_collector(CoreSettings(environment="test"))
    assert gc.get_threshold() == before
