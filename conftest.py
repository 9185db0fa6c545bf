"""Fixtures shared by every test in the repository.

Tests run against real servers: a real Redis (the one in `REDIS_URL`, or a throwaway
`redis-server` started here) and, when `*_DB_URL` points at PostgreSQL, a fresh database on that
server per test. Without those variables each test gets its own SQLite files.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from VEZEPyCore.auth.tokens import issue_hs256_token
from VEZEPyCore.security.ratelimit import RedisRateLimiter
from VEZEPyCore.testing import redis_server

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TEST_SECRET = "test-secret-" + "x" * 40
TEST_ISSUER = "http://portal.test"
DB_ENV = {"portal": "UNI_DB_URL", "game": "GAME_DB_URL", "email": "EMAIL_DB_URL"}

Minter = Callable[..., str]
DatabaseFactory = Callable[[str], Awaitable[str]]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, every worker after the first gets a Redis server of its own.

    Pub/sub channels are server-wide (not per database number), so two workers sharing CI's
    Redis would see each other's mail and match events; rate-limit counters would collide too.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    configured = os.environ.get("REDIS_URL") or os.environ.get("VEZE_REDIS_URL")
    if worker == "gw0" or not configured:
        return
    server = redis_server()
    url = server.__enter__()

    def stop_server() -> None:
        server.__exit__(None, None, None)

    config.add_cleanup(stop_server)
    os.environ["REDIS_URL"] = url
    os.environ.pop("VEZE_REDIS_URL", None)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    configured = os.environ.get("REDIS_URL") or os.environ.get("VEZE_REDIS_URL")
    if configured:
        yield configured
        return
    with redis_server() as url:
        yield url


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Each test starts with no rate-limit counters in a shared Redis (CI's second pass).

    The limits are shared by design (every worker sees them), so counters one test leaves
    behind for "alice" at 127.0.0.1 would refuse the next test's log-ins.
    """
    configured = os.environ.get("REDIS_URL") or os.environ.get("VEZE_REDIS_URL")
    if configured:
        client = redis.Redis.from_url(configured)
        try:
            keys = list(client.scan_iter(match=f"{RedisRateLimiter.PREFIX}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[DatabaseFactory]:
    """`await database_url("email")`: a fresh, empty database URL for that service."""
    created: list[tuple[str, str]] = []

    async def make(service: str) -> str:
        configured = os.environ.get(DB_ENV[service], "")
        if configured and make_url(configured).get_backend_name() == "postgresql":
            name = f"t_{service}_{uuid.uuid4().hex[:12]}"
            connection = await asyncpg.connect(_asyncpg_dsn(configured))
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()
            created.append((configured, name))
            return make_url(configured).set(database=name).render_as_string(hide_password=False)
        return f"sqlite+aiosqlite:///{tmp_path / f'{service}-{uuid.uuid4().hex[:6]}.db'}"

    yield make
    for configured, name in created:
        await _drop_database(configured, name)


async def _drop_database(configured: str, name: str) -> None:
    """Best-effort cleanup of a test database on a throwaway server.

    FORCE cannot end a backend of another role (an autovacuum worker, say): then the drop is
    retried a few times, and a database that still cannot go is left to the server's end.
    """
    for _attempt in range(3):
        connection = await asyncpg.connect(_asyncpg_dsn(configured))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
            await asyncio.sleep(0.5)
        finally:
            await connection.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium under Playwright (VEZEPyCore.testing_browser), closed after the test."""
    from VEZEPyCore.testing_browser import chromium

    async with chromium() as launched:
        yield launched


@pytest.fixture
def mint() -> Minter:
    """Mint a real HS256 token signed with the test secret."""

    def make(
        subject: str,
        *,
        audience: str | list[str] = "veze-email",
        scopes: tuple[str, ...] = ("email.read",),
        ttl_seconds: int = 300,
        issuer: str = TEST_ISSUER,
        secret: str = TEST_SECRET,
        **claims: object,
    ) -> str:
        return issue_hs256_token(
            secret=secret,
            issuer=issuer,
            subject=subject,
            audience=audience,
            scopes=scopes,
            ttl_seconds=ttl_seconds,
            extra_claims=dict(claims),
        )

    return make


@asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client,
    ):
        yield client


@pytest.fixture
def running() -> Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """`async with running(app) as client`: the app's lifespan plus an in-process client."""
    return _running


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    path = tmp_path / "var"
    path.mkdir()
    return path


def _common_settings(var_dir: Path) -> dict[str, Any]:
    """Settings every test service gets: the test signer, no demo, no leaked service URLs."""
    return {
        "environment": "test",
        "var_dir": var_dir,
        "jwt_secret": TEST_SECRET,
        "jwt_iss": TEST_ISSUER,
        "jwt_demo": False,
        "jwks_url": None,
        "service_urls": {},
        "asgi_services": frozenset(),
    }


@pytest.fixture
async def email_settings(database_url: DatabaseFactory, var_dir: Path) -> object:
    from VEZEPyEmail.app.settings import EmailSettings

    # SMTP listeners stay off unless a test turns them on with ports of its own.
    return EmailSettings(
        db_url=await database_url("email"), smtp_enabled=False, **_common_settings(var_dir)
    )


@pytest.fixture
async def game_settings(database_url: DatabaseFactory, var_dir: Path) -> object:
    from VEZEPyGame.app.settings import GameSettings

    return GameSettings(db_url=await database_url("game"), **_common_settings(var_dir))


@pytest.fixture
async def portal_settings(database_url: DatabaseFactory, var_dir: Path) -> object:
    from VEZEPyUniQVerse.app.settings import PortalSettings

    return PortalSettings(db_url=await database_url("portal"), **_common_settings(var_dir))
