"""Telemetry ingestion: `POST /telemetry/bulk` batches through the whole app, end to end.

Starts the Game app in this process (real lifespan; SQLite in a temporary folder, or with
`--pg-url` a throwaway database created on that PostgreSQL server and dropped afterwards),
provisions players, and has them send batches of moves and page views concurrently through
httpx's ASGI transport (rate limits raised out of the way). Prints events stored per second and
the p50/p95/p99 latency of a batch (parse, validate, one transaction with the fair-play rules).
Target: 2,500 events/s from one sender on the embedded default. On the shared 2-core
development machine one sender measured 2,500-6,300 events/s (p99 30-90 ms, by load); eight
senders on SQLite about 3,200 events/s, queueing on SQLite's single writer (p99 above a
second), and 4,700-6,000 on PostgreSQL (p99 about 110-250 ms).

    .venv/bin/python bench/bench_telemetry.py --batches 400 --batch-size 50 --concurrency 8
    .venv/bin/python bench/bench_telemetry.py --pg-url postgresql://veze:veze@127.0.0.1:5442/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.auth.tokens import issue_hs256_token  # noqa: E402
from VEZEPyGame.app.main import create_app  # noqa: E402
from VEZEPyGame.app.settings import GameSettings  # noqa: E402

SECRET = "bench-secret-" + "x" * 40
ISSUER = "http://bench.local"


def token(handle: str, *scopes: str) -> dict[str, str]:
    value = issue_hs256_token(
        secret=SECRET,
        issuer=ISSUER,
        subject=f"{handle}@vezeuniqverse.com",
        audience="veze-game",
        scopes=list(scopes),
        ttl_seconds=3600,
        extra_claims={"preferred_username": handle},
    )
    return {"Authorization": f"Bearer {value}"}


def batch(size: int) -> dict[str, object]:
    match_id = uuid.uuid4().hex
    now = datetime.now(UTC).isoformat()
    events: list[dict[str, object]] = [{"type": "page_view", "ts": now, "path": "/ui/play"}]
    events += [
        {"type": "move", "ts": now, "match_id": match_id, "column": i % 7, "think_ms": 900}
        for i in range(size - 1)
    ]
    return {"events": events}


async def throwaway_database(server_url: str) -> tuple[str, str]:
    """A fresh database on the server: (its SQLAlchemy URL, its name)."""
    name = f"bench_telemetry_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = make_url(server_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False), name


async def drop_database(server_url: str, name: str) -> None:
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def run(args: argparse.Namespace) -> None:
    database: tuple[str, str] | None = None
    if args.pg_url:
        database = await throwaway_database(args.pg_url)
    try:
        await measure(args, db_url=database[0] if database else "")
    finally:
        if database is not None:
            await drop_database(args.pg_url, database[1])


async def measure(args: argparse.Namespace, *, db_url: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = GameSettings.model_validate(
            {
                "VEZE_ENV": "test",
                "VEZE_VAR_DIR": folder,
                "VEZE_JWT_SECRET": SECRET,
                "VEZE_JWT_ISS": ISSUER,
                "GAME_DB_URL": db_url,
                "GAME_TELEMETRY_BATCHES_PER_MINUTE": 10_000,
                "GAME_TELEMETRY_FLOOD_EVENTS": 1_000_000,
                "GAME_SUMMARY_WORKER": False,
            }
        )
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench"
            ) as client,
        ):
            admin = token("svc", "game.admin")
            handles = [f"player{i}" for i in range(args.players)]
            for handle in handles:
                await client.post("/api/players", json={"handle": handle}, headers=admin)
            headers = {handle: token(handle, "game.play") for handle in handles}
            body = batch(args.batch_size)
            latencies: list[float] = []
            queue: asyncio.Queue[str] = asyncio.Queue()
            for index in range(args.batches):
                queue.put_nowait(handles[index % len(handles)])

            async def sender() -> None:
                while not queue.empty():
                    handle = queue.get_nowait()
                    started = time.perf_counter()
                    response = await client.post(
                        "/telemetry/bulk", json=body, headers=headers[handle]
                    )
                    latencies.append(time.perf_counter() - started)
                    assert response.status_code == 202, response.text

            started = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(args.concurrency)))
            elapsed = time.perf_counter() - started
    events = args.batches * args.batch_size
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"database: {'PostgreSQL' if 'postgresql' in settings.db_url else 'SQLite'}")
    print(f"{args.batches} batches of {args.batch_size} events, {args.concurrency} senders")
    print(f"events stored per second: {events / elapsed:,.0f}")
    print(
        f"batch latency: p50 {quantiles[49] * 1000:.1f} ms, p95 {quantiles[94] * 1000:.1f} ms, "
        f"p99 {quantiles[98] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--players", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pg-url", default="", help="a PostgreSQL server to bench on instead")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
