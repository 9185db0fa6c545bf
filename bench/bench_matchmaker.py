"""One matchmaking pass over 10,000 waiting tickets, and how close its pairs are.

Builds a queue of waiting tickets (ratings around 1500 +- 250, waits of 0-60 s, two modes and
three regions). First the pure pairing function alone, several times (wall and CPU time, the
number of pairs, and the mean rating gap of its pairs beside that of a naive first-come
pairing of the same tickets). Then the whole pass as a Game worker runs it, against a real
database holding those tickets: read the waiting tickets, pair, claim every ticket in one
statement and create every match through the match service in one insert, commit (target:
under 50 ms); announcing the matches afterwards (bus events, the match service's own
announcement) is timed on its own. Each database run starts from the same 10,000 waiting
tickets.

    .venv/bin/python bench/bench_matchmaker.py --tickets 10000 --repeat 7
    .venv/bin/python bench/bench_matchmaker.py --db-url postgresql+asyncpg://veze:veze@127.0.0.1:5442/veze_game

SQLite (a temporary file) is the default database; with `--db-url` a fresh PostgreSQL database
is created beside the one named and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.db.engine import make_engine, make_sessionmaker  # noqa: E402
from VEZEPyCore.db.migrations import upgrade_to_head  # noqa: E402
from VEZEPyCore.events.bus import InProcessBus  # noqa: E402
from VEZEPyCore.web.gc_tuning import tune_collector  # noqa: E402
from VEZEPyGame.app.main import MIGRATIONS  # noqa: E402
from VEZEPyGame.app.settings import GameSettings  # noqa: E402
from VEZEPyGame.db.competition import QueueTicket  # noqa: E402
from VEZEPyGame.db.matches import Match  # noqa: E402
from VEZEPyGame.db.models import Player  # noqa: E402
from VEZEPyGame.services.matchmaking.matches_adapter import (  # noqa: E402
    announce_with_match_service,
    start_with_match_service,
)
from VEZEPyGame.services.matchmaking.pairing import (  # noqa: E402
    Pair,
    WaitingTicket,
    pair_first_come,
    pair_tickets,
)
from VEZEPyGame.services.matchmaking.tickets import waiting_tickets  # noqa: E402
from VEZEPyGame.services.matchmaking.worker import Matchmaker, StartedMatch  # noqa: E402

MODES = ("ranked", "casual")
REGIONS = ("eu", "na", "asia")


def make_tickets(count: int, seed: int) -> list[WaitingTicket]:
    rng = random.Random(seed)
    return [
        WaitingTicket(
            ticket_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            player_id=index + 1,
            mode=rng.choice(MODES),
            region=rng.choice(REGIONS),
            rating=rng.gauss(1500, 250),
            waited_seconds=rng.uniform(0, 60),
        )
        for index in range(count)
    ]


def mean_gap(pairs: list[Pair]) -> float:
    return statistics.fmean(pair.gap for pair in pairs) if pairs else float("nan")


def bench_pure(tickets: list[WaitingTicket], repeat: int) -> None:
    window = GameSettings(var_dir=Path(tempfile.gettempdir())).window
    walls, cpus = [], []
    pairs: list[Pair] = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        pairs = pair_tickets(tickets, window)
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    naive = pair_first_come(tickets)
    print(f"pairing pass, {len(tickets):,} waiting tickets, window {window}")
    print(
        f"  wall ms: median {statistics.median(walls):.1f}  best {min(walls):.1f}"
        f"   cpu ms: median {statistics.median(cpus):.1f}  best {min(cpus):.1f}"
        "   (target < 50 ms)"
    )
    print(f"  pairs: {len(pairs):,} (naive first-come: {len(naive):,})")
    print(
        f"  mean rating gap: {mean_gap(pairs):.1f} (naive first-come: {mean_gap(naive):.1f});"
        f" largest {max(p.gap for p in pairs):.1f}"
    )


async def seed(db_url: str, tickets: list[WaitingTicket]) -> None:
    await upgrade_to_head(MIGRATIONS, db_url)
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            insert(Player),
            [{"id": t.player_id, "handle": f"p{t.player_id}", "created_at": now} for t in tickets],
        )
    await engine.dispose()


async def reset_queue(engine: AsyncEngine, tickets: list[WaitingTicket]) -> None:
    """The same waiting tickets again, no matches: every run starts from one state."""
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(delete(QueueTicket))
        await connection.execute(delete(Match))
        await connection.execute(
            insert(QueueTicket),
            [
                {
                    "id": t.ticket_id,
                    "player_id": t.player_id,
                    "mode": t.mode,
                    "region": t.region,
                    "rating": t.rating,
                    "status": "waiting",
                    "bot_fill": True,
                    "created_at": now - timedelta(seconds=t.waited_seconds),
                }
                for t in tickets
            ],
        )


async def bench_database(db_url: str, tickets: list[WaitingTicket], repeat: int) -> None:
    await seed(db_url, tickets)
    engine = make_engine(db_url)
    sessionmaker = make_sessionmaker(engine)
    bus = InProcessBus()
    settings = GameSettings(var_dir=Path(tempfile.gettempdir()))
    matchmaker = Matchmaker(
        sessionmaker=sessionmaker,
        bus=bus,
        start_matches=start_with_match_service,
        settings=settings,
        after_start=lambda ids: announce_with_match_service(sessionmaker, bus, ids),
    )
    # As in a serving process (VEZEPyCore.web.runtime): start-up objects frozen, young
    # collections in larger batches, so the pass's short-lived tuples do not make the
    # collector walk the whole heap.
    tune_collector(settings)
    phases: dict[str, list[tuple[float, float]]] = {
        name: [] for name in ("read", "pair", "claim+start+commit", "pass", "announce")
    }
    started: list[StartedMatch] = []
    try:
        for _ in range(repeat):
            await reset_queue(engine, tickets)
            marks = [(time.perf_counter(), time.process_time())]
            now = datetime.now(UTC)
            async with sessionmaker() as session:
                waiting = await waiting_tickets(session, now=now)
            marks.append((time.perf_counter(), time.process_time()))
            plans = matchmaker.plan(waiting)
            marks.append((time.perf_counter(), time.process_time()))
            started = await matchmaker.start_planned(plans, now=now)
            marks.append((time.perf_counter(), time.process_time()))
            await matchmaker.announce(started)
            marks.append((time.perf_counter(), time.process_time()))
            spans = {"read": (0, 1), "pair": (1, 2), "claim+start+commit": (2, 3)}
            spans |= {"pass": (0, 3), "announce": (3, 4)}
            for name, (first, last) in spans.items():
                wall = (marks[last][0] - marks[first][0]) * 1000
                cpu = (marks[last][1] - marks[first][1]) * 1000
                phases[name].append((wall, cpu))
        async with sessionmaker() as session:
            matches = await session.scalar(select(func.count()).select_from(Match))
    finally:
        await engine.dispose()
    print(
        f"full pass on {engine.dialect.name}, {len(tickets):,} waiting tickets -> "
        f"{len(started):,} matches started ({matches:,} match rows), {repeat} runs:"
    )
    for name, samples in phases.items():
        walls, cpus = [w for w, _ in samples], [c for _, c in samples]
        target = "   (target < 50 ms)" if name == "pass" else ""
        print(
            f"  {name:<19} wall median {statistics.median(walls):7.1f} ms best {min(walls):7.1f}"
            f"   cpu median {statistics.median(cpus):7.1f} ms{target}"
        )
    print("  (read + pair is the pairing decision; the writes grow with the matches started)")


async def with_database(args: argparse.Namespace, tickets: list[WaitingTicket]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        if not args.db_url:
            await bench_database(f"sqlite+aiosqlite:///{directory}/game.db", tickets, args.repeat)
            return
        url = await create_postgres_database(args.db_url)
        try:
            await bench_database(url, tickets, args.repeat)
        finally:
            await drop_postgres_database(url)


async def create_postgres_database(url: str) -> str:
    name = f"bench_mm_{uuid.uuid4().hex[:8]}"
    admin = make_url(url).set(drivername="postgresql")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db-url", default=None, help="default: SQLite in a temporary folder")
    parser.add_argument("--no-database", action="store_true", help="the pure pairing only")
    args = parser.parse_args()
    tickets = make_tickets(args.tickets, args.seed)
    bench_pure(tickets, args.repeat)
    if not args.no_database:
        asyncio.run(with_database(args, tickets))


if __name__ == "__main__":
    main()
