"""One matchmaking pairing pass over 10,000 waiting tickets, and how close its pairs are.

Builds a queue of waiting tickets (ratings around 1500 +- 250, waits of 0-60 s, two modes and
three regions), runs the pure pairing pass several times and prints its wall and CPU time
(target: under 50 ms), the number of pairs, and the mean rating gap of its pairs beside that
of a naive first-come pairing of the same tickets. Then one full database pass (read the
waiting tickets, pair, claim and start each match in a savepoint, 64 per transaction) on
SQLite over the first 1,000 tickets, for the cost per started match.

    .venv/bin/python bench/bench_matchmaker.py --tickets 10000 --repeat 7
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

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.db.engine import make_engine, make_sessionmaker  # noqa: E402
from VEZEPyCore.db.migrations import upgrade_to_head  # noqa: E402
from VEZEPyCore.events.bus import InProcessBus  # noqa: E402
from VEZEPyGame.app.main import MIGRATIONS  # noqa: E402
from VEZEPyGame.app.settings import GameSettings  # noqa: E402
from VEZEPyGame.db.competition import QueueTicket  # noqa: E402
from VEZEPyGame.db.models import Player  # noqa: E402
from VEZEPyGame.services.matchmaking.pairing import (  # noqa: E402
    Pair,
    WaitingTicket,
    pair_first_come,
    pair_tickets,
)
from VEZEPyGame.services.matchmaking.start import MatchRequest  # noqa: E402
from VEZEPyGame.services.matchmaking.worker import Matchmaker  # noqa: E402

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


async def bench_database(tickets: list[WaitingTicket]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db_url = f"sqlite+aiosqlite:///{directory}/game.db"
        await upgrade_to_head(MIGRATIONS, db_url)
        engine = make_engine(db_url)
        now = datetime.now(UTC)
        async with engine.begin() as connection:
            await connection.execute(
                insert(Player),
                [
                    {"id": t.player_id, "handle": f"p{t.player_id}", "created_at": now}
                    for t in tickets
                ],
            )
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
                        "created_at": now - timedelta(seconds=t.waited_seconds),
                    }
                    for t in tickets
                ],
            )

        async def start(session: object, request: MatchRequest) -> str:
            return uuid.uuid4().hex

        settings = GameSettings(var_dir=Path(directory), matchmaker_bot_after_seconds=0)
        matchmaker = Matchmaker(
            sessionmaker=make_sessionmaker(engine),
            bus=InProcessBus(),
            start_match=start,
            settings=settings,
        )
        began = time.perf_counter()
        started = await matchmaker.run_pass()
        elapsed = time.perf_counter() - began
        await engine.dispose()
    print(
        f"full pass on SQLite, {len(tickets):,} tickets (read, pair, claim and start"
        f" {len(started):,} matches):"
        f" {elapsed * 1000:.0f} ms, {elapsed / max(len(started), 1) * 1e6:.0f} us per match"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-tickets",
        type=int,
        default=1000,
        help="tickets for the full database pass (0 skips it)",
    )
    args = parser.parse_args()
    tickets = make_tickets(args.tickets, args.seed)
    bench_pure(tickets, args.repeat)
    if args.database_tickets:
        asyncio.run(bench_database(tickets[: args.database_tickets]))


if __name__ == "__main__":
    main()
