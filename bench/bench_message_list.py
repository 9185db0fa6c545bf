"""Throughput and latency of Email's `GET /api/messages` on the embedded default (SQLite).

Seeds one mailbox with N messages, serves the Email app with uvicorn on a free loopback port
in a child process, and drives it with concurrent httpx clients for a fixed time. Prints
requests/s and latency percentiles. Run against the current tree:

    .venv/bin/python bench/bench_message_list.py --messages 20000 --seconds 10 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.auth.tokens import issue_hs256_token  # noqa: E402
from VEZEPyCore.db.engine import make_engine  # noqa: E402
from VEZEPyCore.db.migrations import upgrade_to_head  # noqa: E402
from VEZEPyCore.testing import free_port, wait_for_port  # noqa: E402
from VEZEPyEmail.app.main import MIGRATIONS  # noqa: E402
from VEZEPyEmail.db.models import Mailbox, Message  # noqa: E402

ADDRESS = "bench@vezeuniqverse.com"
SECRET = "bench-secret-" + "b" * 40
ISSUER = "http://bench.portal"


async def seed(db_url: str, count: int) -> None:
    await upgrade_to_head(MIGRATIONS, db_url)
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        result = await connection.execute(
            insert(Mailbox).values(address=ADDRESS, display_name="Bench", created_at=now)
        )
        mailbox_id = result.inserted_primary_key[0]  # type: ignore[index]
        rows = [
            {
                "mailbox_id": mailbox_id,
                "folder": "INBOX",
                "subject": f"Message {n}",
                "from_addr": f"sender{n % 50}@example.com",
                "to_addrs": ADDRESS,
                "date": now - timedelta(seconds=n),
                "received_at": now - timedelta(seconds=n),
                "snippet": "Lorem ipsum dolor sit amet " * 4,
                "body_text": "",
                "size": 2048,
                "labels": [],
            }
            for n in range(count)
        ]
        for start in range(0, count, 5000):
            await connection.execute(insert(Message), rows[start : start + 5000])
    await engine.dispose()


async def drive(base_url: str, token: str, seconds: float, concurrency: int) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}"}

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10) as client:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.get("/api/messages", params={"user": ADDRESS, "limit": 50})
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if not (1 <= args.seconds <= 120 and 1 <= args.concurrency <= 64):
        parser.error("--seconds must be 1-120 and --concurrency 1-64")

    with tempfile.TemporaryDirectory(prefix="veze-bench-") as directory:
        db_url = f"sqlite+aiosqlite:///{directory}/email.db"
        asyncio.run(seed(db_url, args.messages))
        port = free_port()
        env = {
            **os.environ,
            "EMAIL_DB_URL": db_url,
            "VEZE_VAR_DIR": directory,
            "VEZE_JWT_SECRET": SECRET,
            "VEZE_JWT_ISS": ISSUER,
            "VEZE_JWT_DEMO": "0",
        }
        env.pop("REDIS_URL", None)
        server = subprocess.Popen(  # noqa: S603 - our own uvicorn, loopback only
            [
                sys.executable,
                "-m",
                "uvicorn",
                "VEZEPyEmail.app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            wait_for_port(port, server)
            token = issue_hs256_token(
                secret=SECRET,
                issuer=ISSUER,
                subject=ADDRESS,
                audience="veze-email",
                scopes=("email.read",),
                ttl_seconds=600,
            )
            latencies = asyncio.run(
                drive(f"http://127.0.0.1:{port}", token, args.seconds, args.concurrency)
            )
        finally:
            server.terminate()
            server.wait(timeout=10)

    latencies.sort()
    count = len(latencies)
    print(f"messages in mailbox : {args.messages}")
    print(f"requests            : {count} in {args.seconds:.0f} s, concurrency {args.concurrency}")
    print(f"throughput          : {count / args.seconds:.0f} requests/s")
    print(f"latency p50         : {statistics.median(latencies) * 1000:.1f} ms")
    print(f"latency p95         : {latencies[int(count * 0.95) - 1] * 1000:.1f} ms")
    print(f"latency p99         : {latencies[int(count * 0.99) - 1] * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
