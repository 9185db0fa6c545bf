"""Garbage-collector settings for a serving process: fewer, cheaper collections.

A service holds many long-lived objects (its modules, routes, schemas, models) and, with
thousands of open streams, thousands of objects per connection. CPython's default first
threshold (700 allocations) runs young collections so often that full collections follow
every few seconds, each walking every tracked object: with 1,000 SSE streams on one Email
process that was about 0.75 s of stopped world per full collection (bench/bench_sse_fanout.py).

At start-up everything alive is moved to the permanent generation (`gc.freeze`, never walked
again; freed by reference counting as usual) and the first threshold is raised, so young
objects are collected in larger, rarer batches. Cyclic garbage is still collected.
Tests (environment "test") keep the defaults: they build hundreds of apps in one process.
"""

from __future__ import annotations

import gc

from VEZEPyCore.settings import CoreSettings

#: Allocations (minus deallocations) between young collections; CPython's default is 700.
YOUNG_THRESHOLD = 50_000


def tune_collector(settings: CoreSettings) -> None:
    if settings.environment == "test":
        return
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
