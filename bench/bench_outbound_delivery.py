"""Outbound delivery: remote messages delivered per second, and how long each attempt takes.

Queues N messages (one remote recipient each, spread over a few remote domains) with the
service's own `enqueue_outbound`, then starts the Email app's real outbound worker (DKIM
signing, routing, SMTP client) and times it until every queue row is `sent`. The "remote MX"
is a local aiosmtpd `Sink` in a process of its own (no TLS: the client's opportunistic STARTTLS
is not exercised); the service reaches it through its static MX override map
(`EMAIL_MX_OVERRIDES`), as tests do, so no DNS is involved.

Prints the enqueue rate, the delivery rate (messages/s from the worker's start to the last
`sent`), and the attempt latency (DKIM signing plus the SMTP transaction, per recipient) at
p50/p95/max, plus how many attempts failed.

    .venv/bin/python bench/bench_outbound_delivery.py [--messages 1000] [--size 10240]
        [--domains 4] [--db-url postgresql+asyncpg://...]

`--db-url` must name an empty database (migrated here); the default is a fresh SQLite file.
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.testing import free_port, wait_for_port  # noqa: E402
from VEZEPyEmail.app.main import create_app  # noqa: E402
from VEZEPyEmail.app.settings import EmailSettings  # noqa: E402
from VEZEPyEmail.db.models import OutboundTask  # noqa: E402
from VEZEPyEmail.services.outbound.queue import enqueue_outbound  # noqa: E402

SENDER = "bench@vezeuniqverse.com"
WAIT_SECONDS = 600.0


def message(n: int, recipient: str, size: int) -> bytes:
    head = (
        f"From: Bench <{SENDER}>\r\nTo: <{recipient}>\r\nSubject: outbound {n}\r\n"
        f"Message-ID: <outbound-{n}@vezeuniqverse.com>\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again.\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def remote_mx(port: int) -> subprocess.Popen[bytes]:
    """aiosmtpd's Sink handler (accepts and discards) on 127.0.0.1:port, in its own process."""
    command = [
        sys.executable, "-m", "aiosmtpd", "-n",
        "-c", "aiosmtpd.handlers.Sink",
        "-l", f"127.0.0.1:{port}",
        "-s", "0",  # no SIZE limit advertised
    ]  # fmt: skip
    process = subprocess.Popen(command)  # noqa: S603 - our own interpreter, loopback only
    wait_for_port(port, process)
    return process


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def status_counts(app: Any) -> dict[str, int]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(OutboundTask.status, func.count()).group_by(OutboundTask.status)
        )
    return {status: int(count) for status, count in rows.all()}


def timed(attempt: Callable[..., Awaitable[Any]], into: list[float]) -> Callable[..., Any]:
    async def wrapper(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return await attempt(*args)
        finally:
            into.append(time.perf_counter() - started)

    return wrapper


async def measure(args: argparse.Namespace, folder: Path, port: int) -> None:
    domains = [f"remote{index}.example" for index in range(args.domains)]
    db_url = args.db_url or f"sqlite+aiosqlite:///{folder / 'email.db'}"
    settings = EmailSettings.model_validate(
        {
            "VEZE_ENV": "test",
            "VEZE_VAR_DIR": str(folder),
            "VEZE_JWT_SECRET": "bench-secret-" + "o" * 40,
            "EMAIL_DB_URL": db_url,
            "EMAIL_SMTP_ENABLED": False,
            "EMAIL_OUTBOUND_WORKER": False,  # started by hand once everything is queued
            "EMAIL_MX_OVERRIDES": ",".join(f"{domain}=127.0.0.1:{port}" for domain in domains),
            "EMAIL_OUTBOUND_POLL": 0.2,
            "EMAIL_OUTBOUND_SMTP_TIMEOUT": 30,
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        started = time.perf_counter()
        for n in range(args.messages):
            recipient = f"user{n}@{domains[n % len(domains)]}"
            await enqueue_outbound(
                app.state,
                raw=message(n, recipient, args.size),
                envelope_from=SENDER,
                recipients=[recipient],
            )
        enqueue_seconds = time.perf_counter() - started

        worker = app.state.outbound_worker
        latencies: list[float] = []
        worker._attempt = timed(worker._attempt, latencies)  # measuring only
        started = time.perf_counter()
        worker.start()
        try:
            deadline = started + WAIT_SECONDS
            while True:
                counts = await status_counts(app)
                if counts.get("sent", 0) + counts.get("failed", 0) >= args.messages:
                    break
                if time.perf_counter() > deadline:
                    raise SystemExit(f"not delivered within {WAIT_SECONDS:.0f} s: {counts}")
                await asyncio.sleep(0.05)
            deliver_seconds = time.perf_counter() - started
        finally:
            await worker.stop()

    sent = counts.get("sent", 0)
    print(
        f"\n{args.messages} messages of {args.size} bytes to {args.domains} remote domains "
        f"({'PostgreSQL' if args.db_url else 'SQLite'}), remote MX: aiosmtpd Sink"
    )
    print(f"enqueue:  {args.messages / enqueue_seconds:8.1f} messages/s (one commit each)")
    print(
        f"delivery: {sent / deliver_seconds:8.1f} messages/s "
        f"({sent} sent, {counts.get('failed', 0)} failed, {len(latencies)} attempts, "
        f"{deliver_seconds:.1f} s)"
    )
    print(
        f"attempt latency: p50 {percentile(latencies, 0.50) * 1000:.1f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms, mean {statistics.fmean(latencies) * 1000:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--size", type=int, default=10240, help="bytes per message")
    parser.add_argument("--domains", type=int, default=4)
    parser.add_argument("--db-url", default="", help="an empty database (default: SQLite)")
    args = parser.parse_args()
    if not (1 <= args.messages <= 100_000 and 256 <= args.size <= 10_000_000):
        parser.error("--messages must be 1-100000 and --size 256-10000000")
    if not 1 <= args.domains <= 100:
        parser.error("--domains must be 1-100")
    os.environ.pop("REDIS_URL", None)  # the local queue loop, not a stream
    os.environ.pop("VEZE_REDIS_URL", None)
    port = free_port()
    mx = remote_mx(port)
    try:
        with tempfile.TemporaryDirectory(prefix="veze-outbound-") as folder:
            asyncio.run(measure(args, Path(folder), port))
    finally:
        mx.terminate()
        mx.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
