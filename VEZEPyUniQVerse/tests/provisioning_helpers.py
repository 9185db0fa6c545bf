"""Helpers for the provisioning queue tests (also used by `tests/test_provisioning_retry.py`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from VEZEPyCore.auth.tokens import JWKSCache, TokenVerifier
from VEZEPyCore.settings import CoreSettings
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import ProvisioningTask
from VEZEPyUniQVerse.services.provisioning.queue import enqueue_account
from VEZEPyUniQVerse.tests.helpers import with_changes

T = TypeVar("T")

#: Upper bound for any wait in these tests; a pass normally takes a fraction of it.
WAIT_SECONDS = 30.0
POLL_INTERVAL_SECONDS = 0.01


def fast_settings(settings: PortalSettings, **changes: Any) -> PortalSettings:
    """Back-off of a few hundredths of a second, so retries happen within a test."""
    values: dict[str, Any] = {
        "provisioning_initial_backoff_seconds": 0.02,
        "provisioning_max_backoff_seconds": 0.1,
        "provisioning_poll_seconds": 0.05,
        "provisioning_lease_seconds": 30.0,
    }
    values.update(changes)
    return with_changes(settings, **values)


async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    *,
    what: str,
    timeout: float = WAIT_SECONDS,
) -> T:
    """Poll `probe` until it returns something truthy (returned); fail after `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = await probe()
                if value:
                    return value
                await asyncio.sleep(POLL_INTERVAL_SECONDS)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}") from None


@asynccontextmanager
async def trusting_portal(
    service_app: FastAPI, portal_app: FastAPI, *, audience: str
) -> AsyncIterator[None]:
    """Make a running Game or Email verify the portal's signed tokens as `VEZE_JWKS_URL` does:
    through the portal's own `/.well-known/jwks.json`, reached in-process instead of by port.
    The HS256 test secret stays accepted (the tests mint their user tokens with it)."""
    settings: CoreSettings = service_app.state.settings
    portal = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=portal_app), base_url="http://portal.in-process"
    )
    service_app.state.verifier = TokenVerifier(
        issuer=settings.jwt_iss,
        audience=audience,
        secret=settings.hs256_secret(),
        jwks=JWKSCache("/.well-known/jwks.json", portal),
        demo=settings.jwt_demo,
        mail_domain=settings.mail_domain,
        leeway_seconds=settings.jwt_leeway_seconds,
    )
    try:
        yield
    finally:
        await portal.aclose()


async def tasks(app: FastAPI, handle: str | None = None) -> dict[tuple[str, str], ProvisioningTask]:
    """The app's provisioning tasks by (handle, target)."""
    statement = select(ProvisioningTask)
    if handle is not None:
        statement = statement.where(ProvisioningTask.handle == handle)
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(statement)
        return {(row.handle, row.target): row for row in rows}


async def enqueue(app: FastAPI, *handles: str) -> None:
    """Queue accounts the way sign-up does: in one transaction, committed."""
    async with app.state.sessionmaker() as session:
        for handle in handles:
            await enqueue_account(session, handle=handle, display_name=handle.title())
        await session.commit()


@dataclass
class RecordingTarget:
    """A stand-in Email and Game: answers like them (201, then 200) and records every call.

    `hold` makes calls wait until it is set (a target that takes its time); `started` is set
    when a call arrives.
    """

    name: str = "target"
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    hold: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    created: set[tuple[str, str]] = field(default_factory=set)

    def app(self, label: str | None = None) -> FastAPI:
        """An ASGI app recording under `label` (say, which portal called)."""
        app = FastAPI()
        who = label or self.name

        async def answer(kind: str, key: str, request: Request) -> Response:
            self.calls.append((who, kind, key))
            self.started.set()
            if self.hold is not None:
                await self.hold.wait()
            if not request.headers.get("authorization", "").startswith("Bearer "):
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            fresh = (kind, key) not in self.created
            self.created.add((kind, key))
            return JSONResponse({"address": key, "handle": key}, status_code=201 if fresh else 200)

        @app.post("/api/mailboxes")
        async def create_mailbox(request: Request) -> Response:
            body = await request.json()
            return await answer("email", str(body["address"]).partition("@")[0], request)

        @app.post("/api/players")
        async def create_player(request: Request) -> Response:
            body = await request.json()
            return await answer("game", str(body["handle"]), request)

        return app

    def per_task(self) -> Counter[tuple[str, str]]:
        """How often each (target, handle) was called."""
        return Counter((kind, key) for _who, kind, key in self.calls)
