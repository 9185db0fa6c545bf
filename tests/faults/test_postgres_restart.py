"""PostgreSQL restarted under a running service: fast 503s, a pool that heals, no lost write.

The Email service runs against a private PostgreSQL cluster this test owns (never the shared
one). A writer keeps provisioning mailboxes while the cluster is stopped (`fast`, then
`immediate`, which is a crash with recovery) and started again. During each outage every request
is answered quickly with 503 and the JSON error shape; the first request after the restart
succeeds without any action (pool_pre_ping replaces the dead connections); every write that was
acknowledged is still there at the end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from tests.faults.servers import PrivatePostgres, eventually, private_postgres
from VEZEPyCore.db.engine import database_unavailable
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
#: No request may take longer than this while the database is away ("fast", not a hang).
FAST_SECONDS = 8.0


@dataclass
class Writes:
    acknowledged: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    slowest: float = 0.0
    count: int = 0


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        # CI runs as root (.ci/run makes its own cluster the same way); a developer may not.
        pytest.skip("a private cluster is made with `runuser -u postgres`, which needs root")
    with private_postgres() as server:
        yield server


async def _writer(
    client: httpx.AsyncClient, headers: dict[str, str], writes: Writes, stop: asyncio.Event
) -> None:
    """Provision one mailbox after another; record what was acknowledged and how fast."""
    while not stop.is_set():
        address = f"w{writes.count}@vezeuniqverse.com"
        writes.count += 1
        started = time.monotonic()
        response = await client.post("/api/mailboxes", json={"address": address}, headers=headers)
        writes.slowest = max(writes.slowest, time.monotonic() - started)
        writes.statuses.append(response.status_code)
        if response.status_code in (200, 201):
            writes.acknowledged.append(address)
        else:
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "database_unavailable"
            await asyncio.sleep(0.05)  # a client backing off a little, as Retry-After asks


async def test_requests_fail_fast_during_a_postgres_restart_and_recover_by_themselves(
    postgres: PrivatePostgres,
    email_settings: EmailSettings,
    running: Running,
    mint: Callable[..., str],
) -> None:
    settings = email_settings.model_copy(update={"db_url": postgres.url, "redis_url": None})
    admin = {"Authorization": f"Bearer {mint('svc:portal', scopes=('email.admin',))}"}
    reader = {"Authorization": f"Bearer {mint('w0@vezeuniqverse.com', scopes=('email.read',))}"}
    listing = "/api/messages?user=w0@vezeuniqverse.com"
    writes = Writes()
    stop = asyncio.Event()
    app = create_app(settings)
    async with running(app) as client:
        writer = asyncio.create_task(_writer(client, admin, writes, stop))
        for mode in ("fast", "immediate"):
            before = len(writes.acknowledged)

            async def progressed(mark: int = before) -> bool:
                return len(writes.acknowledged) >= mark + 5

            await eventually(progressed, seconds=30, what="writes before the outage")
            await asyncio.to_thread(postgres.stop, mode)

            started = time.monotonic()
            response = await client.get(listing, headers=reader)
            assert time.monotonic() - started < FAST_SECONDS
            assert response.status_code == 503, response.text
            assert response.json() == {
                "error": "database_unavailable",
                "detail": "the database is unavailable; try again shortly",
            }
            assert response.headers["Retry-After"] == "5"
            ready = await client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"].startswith("error")
            outage_statuses = len(writes.statuses)

            async def refused_a_write(mark: int = outage_statuses) -> bool:
                return 503 in writes.statuses[mark:]

            await eventually(refused_a_write, seconds=30, what="a write refused with 503")

            await asyncio.to_thread(postgres.start)
            # The pool heals by itself: the very first request after the restart succeeds.
            response = await client.get(listing, headers=reader)
            assert response.status_code == 200, response.text
            assert (await client.get("/ready")).status_code == 200
            after = len(writes.acknowledged)

            async def resumed(mark: int = after) -> bool:
                return len(writes.acknowledged) >= mark + 5

            await eventually(resumed, seconds=30, what="writes after the restart")
        stop.set()
        await asyncio.wait_for(writer, 30)

        assert set(writes.statuses) <= {200, 201, 503}  # never a 500
        assert writes.slowest < FAST_SECONDS
        async with app.state.sessionmaker() as session:
            stored = set((await session.scalars(select(Mailbox.address))).all())
    missing = [address for address in writes.acknowledged if address not in stored]
    assert missing == [], f"acknowledged writes lost: {missing[:5]}"


async def test_a_long_statement_and_an_idle_transaction_are_ended_by_the_server(
    postgres: PrivatePostgres, email_settings: EmailSettings, running: Running
) -> None:
    settings = email_settings.model_copy(
        update={
            "db_url": postgres.url,
            "redis_url": None,
            "db_statement_timeout_seconds": 0.2,
            "db_idle_in_transaction_timeout_seconds": 0.5,
        }
    )
    app = create_app(settings)
    async with running(app):
        engine = app.state.engine
        async with engine.connect() as connection:
            assert await connection.scalar(text("SHOW statement_timeout")) == "200ms"
            with pytest.raises(DBAPIError) as slow:
                await connection.execute(text("SELECT pg_sleep(30)"))
        assert database_unavailable(slow.value)  # a 503 "try again shortly", not a 500

        # A transaction left open and idle (a bug holding its locks): the server ends it.
        async with engine.connect() as idle:
            await idle.begin()
            pid = await idle.scalar(text("SELECT pg_backend_pid()"))

            async def ended() -> bool:
                async with engine.connect() as watcher:
                    alive = await watcher.scalar(
                        text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                        {"pid": pid},
                    )
                return bool(alive == 0)

            await eventually(ended, seconds=30, what="the idle transaction's end")
            with pytest.raises(DBAPIError) as gone:
                await idle.execute(text("SELECT 1"))
        assert database_unavailable(gone.value)
        async with engine.connect() as connection:  # the pool hands out a working one again
            assert await connection.scalar(text("SELECT 1")) == 1
