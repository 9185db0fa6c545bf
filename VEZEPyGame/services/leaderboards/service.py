"""The leaderboard service: writes go to SQL (the record), reads to Redis when it is ready.

Without Redis every call is answered from SQL. With Redis, a board is copied into a sorted
set the first time it is read (in the background; SQL answers meanwhile), and each counted
result is copied after its SQL commit. `reconcile` re-copies recently changed rows so a crash
between a commit and its copy heals by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from VEZEPyCore.tasks import cancel_and_wait
from VEZEPyGame.services.leaderboards import sql_store
from VEZEPyGame.services.leaderboards.redis_store import DEFAULT_PREFIX, RedisBoards
from VEZEPyGame.services.leaderboards.sql_store import GameCount
from VEZEPyGame.services.leaderboards.standings import Board, Neighbourhood, Outcome, Standing

log = logging.getLogger(__name__)

REBUILD_PAGE = 5000
REBUILD_LOCK_SECONDS = 300
MAX_LIMIT = 100
MAX_SPAN = 25
#: Committed results whose Redis push has not run yet, kept at most (see `committed`).
MAX_PENDING_PUSHES = 10_000


class Leaderboards:
    def __init__(
        self,
        engine: AsyncEngine,
        redis_client: redis_asyncio.Redis | None,
        *,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self._engine = engine
        self._client = redis_client
        self._redis = RedisBoards(redis_client, prefix=prefix) if redis_client is not None else None
        self._rebuilds: dict[Board, asyncio.Task[None]] = {}
        #: Rows of committed results waiting for their push, by match id (`after_commit`).
        self._committed: OrderedDict[str, tuple[Board, list[Standing]]] = OrderedDict()

    @classmethod
    def from_url(
        cls, engine: AsyncEngine, redis_url: str | None, *, prefix: str = DEFAULT_PREFIX
    ) -> Leaderboards:
        client = (
            redis_asyncio.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
            if redis_url
            else None
        )
        return cls(engine, client, prefix=prefix)

    @property
    def engine(self) -> AsyncEngine:
        """The database the boards are recorded in (benchmarks time its transactions)."""
        return self._engine

    @property
    def uses_redis(self) -> bool:
        return self._redis is not None

    async def close(self) -> None:
        await asyncio.gather(*(cancel_and_wait(task) for task in self._rebuilds.values()))
        self._rebuilds.clear()
        if self._client is not None:
            await self._client.aclose()

    # -- reads ---------------------------------------------------------------------------------

    async def top(self, board: Board, *, limit: int, offset: int = 0) -> list[Standing]:
        limit = max(1, min(limit, MAX_LIMIT))
        if self._redis is not None:
            try:
                cached = await self._redis.top(board, limit=limit, offset=offset)
            except RedisError:
                log.warning("leaderboard read from Redis failed; answering from SQL")
                cached = None
            if cached is not None:
                return cached
            self._schedule_rebuild(board)
        async with self._engine.connect() as connection:
            return await sql_store.top(connection, board, limit=limit, offset=offset)

    async def neighbourhood(
        self, board: Board, player_id: int, *, span: int = 5
    ) -> Neighbourhood | None:
        """The player's rank with `span` players either side; None without an entry."""
        span = max(0, min(span, MAX_SPAN))
        if self._redis is not None:
            try:
                cached = await self._redis.neighbourhood(board, player_id, span=span)
            except RedisError:
                log.warning("leaderboard read from Redis failed; answering from SQL")
                cached = None
            if cached is False:
                return None
            if isinstance(cached, Neighbourhood):
                return cached
            self._schedule_rebuild(board)
        async with self._engine.connect() as connection:
            return await sql_store.neighbourhood(connection, board, player_id, span=span)

    async def standing(self, board: Board, player_id: int) -> Standing | None:
        found = await self.neighbourhood(board, player_id, span=0)
        return found.me if found is not None else None

    # -- writes --------------------------------------------------------------------------------

    async def record(
        self,
        connection: AsyncConnection,
        board: Board,
        games: Sequence[GameCount],
        *,
        now: datetime,
    ) -> list[Standing]:
        """Count games in SQL, inside the caller's transaction; the entries as written, which
        the caller hands to `push` once its transaction has committed."""
        return await sql_store.record_outcomes(connection, board, games, now=now)

    async def push(self, board: Board, rows: Sequence[Standing]) -> None:
        """Copy committed entries into Redis: one round trip (a script that keeps only copies
        newer than Redis holds). A failure is logged; the reconcile pass repairs it."""
        if self._redis is None or not rows:
            return
        try:
            await self._redis.push(board, rows)
        except RedisError:
            log.warning("could not copy leaderboard entries to Redis", exc_info=True)

    def committed(self, key: str, board: Board, rows: Sequence[Standing]) -> None:
        """Rows whose transaction has just committed (see `after_commit`); `push_committed`
        sends them. Bounded: a result whose push never comes is repaired by the reconcile."""
        if self._redis is None:
            return
        self._committed[key] = (board, list(rows))
        while len(self._committed) > MAX_PENDING_PUSHES:
            self._committed.popitem(last=False)

    async def push_committed(self, key: str) -> bool:
        """Push the rows committed under `key`; False when there are none here."""
        found = self._committed.pop(key, None)
        if found is None:
            return False
        await self.push(*found)
        return True

    async def copy(self, board: Board, player_ids: Sequence[int]) -> None:
        """Read these players' committed entries from SQL and push them (no-op without Redis):
        for a result whose rows this process did not write."""
        if self._redis is None or not player_ids:
            return
        async with self._engine.connect() as connection:
            rows = await sql_store.rows_for(connection, board, player_ids)
        await self.push(board, rows)

    async def submit(self, board: Board, *, player_id: int, score: int, outcome: Outcome) -> None:
        """Count one game for a player in its own transaction, then push it to Redis. Results
        of matches do not come this way (they count inside the result's transaction); this is
        the same write for callers with no transaction of their own (tests, benchmarks)."""
        async with self._engine.begin() as connection:
            rows = await self.record(
                connection, board, [GameCount(player_id, score, outcome)], now=datetime.now(UTC)
            )
        await self.push(board, rows)

    # -- keeping Redis in step -----------------------------------------------------------------

    async def rebuild(self, board: Board) -> bool:
        """Copy a whole board from SQL to Redis; False when another worker is already at it."""
        if self._redis is None:
            return False
        if not await self._redis.try_lock_rebuild(board, seconds=REBUILD_LOCK_SECONDS):
            return False
        try:
            after = 0
            while True:
                async with self._engine.connect() as connection:
                    page = await sql_store.rows_after(
                        connection, board, after_player_id=after, limit=REBUILD_PAGE
                    )
                if not page:
                    break
                await self._redis.push(board, page)
                after = page[-1].player_id
            await self._redis.mark_ready(board)
            return True
        finally:
            await self._redis.unlock_rebuild(board)

    async def reconcile(self, board: Board, *, since: datetime) -> int:
        """Re-copy the rows changed since `since` (version-checked, so harmless if current)."""
        if self._redis is None:
            return 0
        async with self._engine.connect() as connection:
            rows = await sql_store.rows_changed_since(
                connection, board, since=since, limit=REBUILD_PAGE
            )
        return await self._redis.push(board, rows)

    async def wait_for_rebuilds(self) -> None:
        """Let scheduled rebuilds finish (tests, benchmarks)."""
        await asyncio.gather(*self._rebuilds.values(), return_exceptions=True)

    def _schedule_rebuild(self, board: Board) -> None:
        task = self._rebuilds.get(board)
        if task is not None and not task.done():
            return
        self._rebuilds[board] = asyncio.create_task(
            self._rebuild_quietly(board), name=f"leaderboard-rebuild-{board.season_id}"
        )

    async def _rebuild_quietly(self, board: Board) -> None:
        try:
            await self.rebuild(board)
        except Exception:
            log.exception("leaderboard rebuild failed for %s", board)


def reconcile_since(now: datetime, interval_seconds: float) -> datetime:
    """Look back two intervals, so a pass that ran late still overlaps the previous one."""
    return now - timedelta(seconds=2 * interval_seconds)
