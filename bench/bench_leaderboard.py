"""Leaderboard latency through the service layer (`Leaderboards`) with a million entries.

Seeds one season's ranked board with N entries (players with scores around 1500), then times,
for random players: submit, top 100, around-me (5 either side) and my rank, each a call of
`Leaderboards`. Submit (`Leaderboards.submit`) is what a match result pays for the leaderboard:
the SQL record (entry and score buckets: two statements, written in the result's transaction),
that transaction's commit, and with Redis the push of the written rows in one round trip after
the commit (no SQL read afterwards). A real result shares the commit with the rest of the
result; here the commit is the record's alone and counted in full. The same write is then run
again with its three parts timed apart. Prints p50/p95/p99 per operation on SQL alone and on
Redis (the sorted set built from SQL by the service's own rebuild, whose time is printed too),
and what a commit waits for (SQLite's `synchronous`, PostgreSQL's `fsync`): a development
PostgreSQL run with fsync off does not pay the disk flush a real one does.
Targets: p95 under 50 ms on SQL and under 5 ms on Redis.

    .venv/bin/python bench/bench_leaderboard.py --entries 1000000 --ops 500
    .venv/bin/python bench/bench_leaderboard.py --db-url postgresql+asyncpg://... --redis-url redis://...

SQLite (a temporary file) is the default database. Redis is `--redis-url`, else a private
throwaway `redis-server` started for the run: a million-member rebuild pushed into a Redis that
others share stalls them (and timed out there on a loaded day). `--no-redis` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as redis_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.db.engine import make_engine  # noqa: E402
from VEZEPyCore.db.migrations import upgrade_to_head  # noqa: E402
from VEZEPyCore.testing import redis_server  # noqa: E402
from VEZEPyGame.app.main import MIGRATIONS  # noqa: E402
from VEZEPyGame.services.leaderboards.service import Leaderboards  # noqa: E402
from VEZEPyGame.services.leaderboards.sql_store import GameCount  # noqa: E402
from VEZEPyGame.services.leaderboards.standings import Board, Outcome  # noqa: E402

SEASON_ID = 1
MODE = "ranked"
OUTCOMES: tuple[Outcome, ...] = ("win", "loss", "draw")
#: The score buckets the service keeps beside the entries (it ranks with them).
BUCKETS = (
    "INSERT INTO leaderboard_score_counts (season_id, mode, score, players)"
    " SELECT season_id, mode, score, count(*) FROM leaderboard_entries"
    " GROUP BY season_id, mode, score"
)


Row = tuple[Any, ...]


def sqlite_time(value: datetime) -> str:
    """How SQLAlchemy stores a datetime in SQLite (UTC, no offset)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def rows(count: int, seed: int) -> tuple[list[Row], list[Row]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    players: list[Row] = [(i, f"p{i}", now) for i in range(1, count + 1)]
    entries: list[Row] = [
        (SEASON_ID, MODE, i, round(rng.gauss(1500, 200)), 10, 5, 4, 1, now)
        for i in range(1, count + 1)
    ]
    return players, entries


def seed_sqlite(path: str, count: int, seed: int) -> None:
    players, entries = rows(count, seed)
    now = datetime.now(UTC)
    connection = sqlite3.connect(path)
    try:
        connection.execute(
            "INSERT INTO seasons (id, number, name, starts_at, ends_at)"
            " VALUES (?, 1, 'Bench', ?, ?)",
            (SEASON_ID, sqlite_time(now), sqlite_time(now + timedelta(days=90))),
        )
        connection.executemany(
            "INSERT INTO players (id, handle, created_at) VALUES (?, ?, ?)",
            [(i, h, sqlite_time(t)) for i, h, t in players],
        )
        connection.executemany(
            "INSERT INTO leaderboard_entries (season_id, mode, player_id, score, games, wins,"
            " losses, draws, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*e[:-1], sqlite_time(e[-1])) for e in entries],
        )
        connection.execute(BUCKETS)
        connection.commit()
        connection.execute("ANALYZE")
    finally:
        connection.close()


async def seed_postgres(url: str, count: int, seed: int) -> None:
    players, entries = rows(count, seed)
    now = datetime.now(UTC)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "INSERT INTO seasons (id, number, name, starts_at, ends_at)"
            " VALUES ($1, 1, 'Bench', $2, $3)",
            SEASON_ID,
            now,
            now + timedelta(days=90),
        )
        await connection.copy_records_to_table(
            "players", records=players, columns=["id", "handle", "created_at"]
        )
        await connection.copy_records_to_table(
            "leaderboard_entries",
            records=entries,
            columns=[
                "season_id",
                "mode",
                "player_id",
                "score",
                "games",
                "wins",
                "losses",
                "draws",
                "updated_at",
            ],
        )
        await connection.execute(BUCKETS)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def create_postgres_database(url: str) -> str:
    name = f"bench_lb_{uuid.uuid4().hex[:8]}"
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    return f"p50 {at(0.50):7.2f} ms   p95 {at(0.95):7.2f} ms   p99 {at(0.99):7.2f} ms"


async def timed(operation: Callable[[], Awaitable[object]], ops: int) -> list[float]:
    samples = []
    for _ in range(ops):
        began = time.perf_counter()
        await operation()
        samples.append(time.perf_counter() - began)
    return samples


async def durability(engine: AsyncEngine) -> str:
    """What a commit waits for on this database: the figures mean little without it."""
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            fsync = await connection.scalar(text("SHOW fsync"))
            synchronous = await connection.scalar(text("SHOW synchronous_commit"))
            return f"fsync={fsync}, synchronous_commit={synchronous}"
        level = await connection.scalar(text("PRAGMA synchronous"))
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return f"synchronous={names.get(int(level or 0), level)}"


async def measure(label: str, boards: Leaderboards, count: int, ops: int, seed: int) -> None:
    board = Board(SEASON_ID, MODE)
    rng = random.Random(seed)

    def game() -> GameCount:
        return GameCount(rng.randint(1, count), round(rng.gauss(1500, 200)), rng.choice(OUTCOMES))

    async def submit() -> None:
        counted = game()
        await boards.submit(
            board, player_id=counted.player_id, score=counted.score, outcome=counted.outcome
        )

    parts: dict[str, list[float]] = {"record": [], "commit": [], "push": []}

    async def submit_in_parts() -> None:
        # What `Leaderboards.submit` does, with its three parts timed on their own.
        began = time.perf_counter()
        async with boards.engine.connect() as connection:
            async with connection.begin() as transaction:
                rows = await boards.record(connection, board, [game()], now=datetime.now(UTC))
                recorded = time.perf_counter()
                await transaction.commit()
            committed = time.perf_counter()
        await boards.push(board, rows)
        pushed = time.perf_counter()
        parts["record"].append(recorded - began)
        parts["commit"].append(committed - recorded)
        parts["push"].append(pushed - committed)

    async def top() -> None:
        assert len(await boards.top(board, limit=100)) == min(100, count)

    async def around() -> None:
        assert await boards.neighbourhood(board, rng.randint(1, count), span=5) is not None

    async def rank() -> None:
        assert await boards.standing(board, rng.randint(1, count)) is not None

    await top()  # warm the pool (and the caches the database keeps)
    print(f"{label} ({count:,} entries, {ops} calls each; {await durability(boards.engine)})")
    for name, operation in (
        ("submit", submit),
        ("top 100", top),
        ("around-me", around),
        ("my rank", rank),
    ):
        print(f"  {name:<10} {percentiles(await timed(operation, ops))}")
        if name == "submit":
            await timed(submit_in_parts, ops)
            print("    the same write again, in its parts:")
            for part, samples in parts.items():
                print(f"    {part:<8} {percentiles(samples)}")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db_url = args.db_url or f"sqlite+aiosqlite:///{directory}/game.db"
        postgres = make_url(db_url).get_backend_name() == "postgresql"
        if postgres:
            db_url = await create_postgres_database(db_url)
        try:
            await upgrade_to_head(MIGRATIONS, db_url)
            began = time.perf_counter()
            if postgres:
                await seed_postgres(db_url, args.entries, args.seed)
            else:
                seed_sqlite(make_url(db_url).database or "", args.entries, args.seed)
            print(f"seeded {args.entries:,} entries in {time.perf_counter() - began:.1f} s")
            engine = make_engine(db_url)
            try:
                sql = Leaderboards(engine, None)
                await measure(f"SQL ({engine.dialect.name})", sql, args.entries, args.ops, 1)
                with ExitStack() as stack:
                    redis_url = args.redis_url
                    if redis_url is None and not args.no_redis:
                        redis_url = stack.enter_context(redis_server())
                    await measure_redis(engine, redis_url, args)
            finally:
                await engine.dispose()
        finally:
            if postgres:
                await drop_postgres_database(db_url)


async def measure_redis(
    engine: AsyncEngine, redis_url: str | None, args: argparse.Namespace
) -> None:
    if not redis_url:
        print("Redis: skipped (--no-redis)")
        return
    prefix = f"bench:lb:{uuid.uuid4().hex[:8]}"
    client = redis_asyncio.Redis.from_url(redis_url)
    fast = Leaderboards(engine, client, prefix=prefix)
    try:
        began = time.perf_counter()
        assert await fast.rebuild(Board(SEASON_ID, MODE))
        print(f"Redis board rebuilt from SQL in {time.perf_counter() - began:.1f} s")
        await measure("Redis", fast, args.entries, args.ops, 2)
    finally:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            # UNLINK frees the million-member set off Redis's main thread: DEL would stall
            # everyone else sharing this Redis.
            await client.unlink(*keys)
        await fast.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db-url", default=None, help="default: SQLite in a temporary folder")
    parser.add_argument("--redis-url", default=None, help="default: a private redis-server")
    parser.add_argument("--no-redis", action="store_true", help="SQL only")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
