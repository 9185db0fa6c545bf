"""Gauges read from the database when Prometheus scrapes, not kept in step by the code.

A queue's depth and its oldest item's age are facts of the database (several workers and
replicas share one queue), so a service registers an async hook that reads them; `/metrics`
awaits every hook before it renders. A hook that fails or is slow leaves its gauges at their
last value and counts the failure, so one bad query never blanks the whole scrape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger(__name__)

ScrapeHook = Callable[[], Awaitable[None]]
SCRAPE_HOOK_TIMEOUT_SECONDS = 2.0


class ScrapeHooks:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._hooks: dict[str, ScrapeHook] = {}
        self._failures = Counter(
            "veze_metrics_scrape_hook_failures",
            "Scrape-time metric collections that failed or timed out, by collection.",
            ["hook"],
            registry=registry,
        )

    def add(self, name: str, hook: ScrapeHook) -> None:
        self._hooks[name] = hook
        self._failures.labels(name)

    def remove(self, name: str) -> None:
        self._hooks.pop(name, None)

    async def run(self) -> None:
        await asyncio.gather(*(self._run_one(name, hook) for name, hook in self._hooks.items()))

    async def _run_one(self, name: str, hook: ScrapeHook) -> None:
        try:
            await asyncio.wait_for(hook(), SCRAPE_HOOK_TIMEOUT_SECONDS)
        except Exception:  # a scrape reports what it can; this collection's gauges go stale
            self._failures.labels(name).inc()
            log.warning("metrics collection %s failed", name, exc_info=True)


def scrape_hooks(app: FastAPI) -> ScrapeHooks:
    """The app's hooks, created with its metrics registry on first use."""
    hooks: ScrapeHooks | None = getattr(app.state, "scrape_hooks", None)
    if hooks is None:
        hooks = ScrapeHooks(app.state.metrics_registry)
        app.state.scrape_hooks = hooks
    return hooks


async def collect_before_scrape(app: FastAPI) -> None:
    hooks: ScrapeHooks | None = getattr(app.state, "scrape_hooks", None)
    if hooks is not None:
        await hooks.run()
