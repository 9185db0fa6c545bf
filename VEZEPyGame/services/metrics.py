"""The game's Prometheus metrics: matches started and finished, the matchmaking queue.

Counters follow the match hooks (after each commit, so a rolled-back start or result is never
counted); the wait histogram is observed by the matchmaker for every ticket it matches. The
queue's size and its oldest ticket's wait are read from the database when `/metrics` is scraped
(VEZEPyCore.observability.scrape): every Game worker shares one queue.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select

from VEZEPyCore.observability.scrape import scrape_hooks
from VEZEPyGame.db.competition import TICKET_WAITING, QueueTicket
from VEZEPyGame.db.matches import Match

MODES = ("ranked", "casual", "bot")
QUEUE_MODES = ("ranked", "casual")
RESULTS = ("first", "second", "draw")
STREAMS = ("match", "queue")
WAIT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class GameMetrics:
    def __init__(self, app: FastAPI) -> None:
        registry = app.state.metrics_registry
        self.matches_started = Counter(
            "veze_matches_started",
            "Matches created, by mode (ranked, casual, bot).",
            ["mode"],
            registry=registry,
        )
        self.matches_finished = Counter(
            "veze_matches_finished",
            "Matches ended, by mode and result (first, second, draw).",
            ["mode", "result"],
            registry=registry,
        )
        self.wait = Histogram(
            "veze_matchmaking_wait_seconds",
            "How long a ticket waited before the matchmaker matched it, by mode.",
            ["mode"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.queue_size = Gauge(
            "veze_matchmaking_queue_size",
            "Tickets waiting for a match now, by mode.",
            ["mode"],
            registry=registry,
        )
        self.oldest_wait = Gauge(
            "veze_matchmaking_oldest_wait_seconds",
            "How long the longest-waiting ticket has waited, by mode (0 when none waits).",
            ["mode"],
            registry=registry,
        )
        self.sse_clients = Gauge(
            "veze_sse_clients_connected",
            "Live event streams (SSE) open now, by stream (match, queue).",
            ["stream"],
            registry=registry,
        )
        # Every series exists (at 0) before its first event, so rate() sees the first one.
        for mode in MODES:
            self.matches_started.labels(mode)
            for result in RESULTS:
                self.matches_finished.labels(mode, result)
        for stream in STREAMS:
            self.sse_clients.labels(stream)
        for mode in QUEUE_MODES:
            self.wait.labels(mode)
            self.queue_size.labels(mode)
            self.oldest_wait.labels(mode)

        hooks = app.state.match_hooks
        hooks.after_started.append(self._started)
        hooks.after_finished.append(self._finished)

        async def collect_queue() -> None:
            async with app.state.sessionmaker() as session:
                rows = (
                    await session.execute(
                        select(
                            QueueTicket.mode,
                            func.count(QueueTicket.id),
                            func.min(QueueTicket.created_at),
                        )
                        .where(QueueTicket.status == TICKET_WAITING)
                        .group_by(QueueTicket.mode)
                    )
                ).all()
            waiting = {mode: (count, oldest) for mode, count, oldest in rows}
            now = datetime.now(UTC)
            for mode in QUEUE_MODES:
                count, oldest = waiting.get(mode, (0, None))
                self.queue_size.labels(mode).set(count)
                if oldest is not None and oldest.tzinfo is None:
                    oldest = oldest.replace(tzinfo=UTC)  # an aggregate skips the type's fix-up
                age = (now - oldest).total_seconds() if oldest is not None else 0.0
                self.oldest_wait.labels(mode).set(max(age, 0.0))

        scrape_hooks(app).add("matchmaking_queue", collect_queue)

    async def counted_stream(
        self, stream: str, events: AsyncGenerator[dict[str, Any], None]
    ) -> AsyncIterator[dict[str, Any]]:
        """`events`, counted in `veze_sse_clients_connected` while the client stays."""
        connected = self.sse_clients.labels(stream)
        connected.inc()
        try:
            # aclosing: a client that leaves closes the inner stream (its bus subscription) too.
            async with aclosing(events) as inner:
                async for event in inner:
                    yield event
        finally:
            connected.dec()

    def observe_wait(self, mode: str, seconds: float) -> None:
        if mode in QUEUE_MODES:
            self.wait.labels(mode).observe(max(seconds, 0.0))

    async def _started(self, match: Match) -> None:
        if match.mode in MODES:
            self.matches_started.labels(match.mode).inc()

    async def _finished(self, match: Match) -> None:
        if match.mode in MODES and match.result in RESULTS:
            self.matches_finished.labels(match.mode, match.result).inc()


def install_game_metrics(app: FastAPI) -> None:
    """After `install_matches` (the hooks) and before `install_competition` (the matchmaker)."""
    app.state.game_metrics = GameMetrics(app)
