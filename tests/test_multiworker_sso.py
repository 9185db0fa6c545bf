"""Single sign-on refresh across two workers of one service (ADR 0019).

Two Email apps on two ports share one database, one secrets folder and, when it is set, one
Redis: two uvicorn workers as far as a browser can tell (cookies are per host, not per port).
Access tokens live 30 s, inside the 60 s refresh margin, so every request refreshes. The
portal rotates refresh tokens and revokes the family when a rotated-out one comes back.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest

from VEZEPyCore.testing import free_port, serve_app
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyUniQVerse.app.main import create_app as create_portal_app
from VEZEPyUniQVerse.app.settings import PortalSettings

PASSWORD = "quiet-lantern-orchard-73"
COOKIE = "veze_email_session"


@dataclass
class TwoWorkers:
    portal: str
    workers: tuple[str, str]
    browser: httpx.AsyncClient

    async def sign_in(self) -> None:
        await self.browser.get(f"{self.portal}/signup")
        csrf = self.browser.cookies.get("veze_portal_csrf", domain="127.0.0.1")
        handle = "mw" + secrets.token_hex(3)
        signed_up = await self.browser.post(
            f"{self.portal}/signup",
            data={"handle": handle, "display_name": handle, "password": PASSWORD,
                  "confirm": PASSWORD, "csrf_token": csrf or ""},
        )  # fmt: skip
        assert signed_up.status_code == 303, signed_up.text
        response = await self.browser.get(f"{self.workers[0]}/ui/inbox")
        for _ in range(8):  # the sign-in round trip through the portal
            if response.status_code not in (302, 303):
                break
            response = await self.browser.get(
                httpx.URL(str(response.url)).join(response.headers["location"])
            )
        assert response.status_code == 200, response.text
        assert self.cookie() is not None

    def cookie(self) -> str | None:
        return self.browser.cookies.get(COOKIE, domain="127.0.0.1")

    async def inbox_with(self, worker: int, cookie: str) -> httpx.Response:
        """The inbox from one worker, sent with a given session cookie (an in-flight request)."""
        async with httpx.AsyncClient(timeout=15) as lone:
            return await lone.get(
                f"{self.workers[worker]}/ui/inbox", headers={"Cookie": f"{COOKIE}={cookie}"}
            )


@pytest.fixture
async def two_workers(
    portal_settings: PortalSettings, email_settings: EmailSettings
) -> AsyncIterator[object]:
    async with AsyncExitStack() as stack:

        async def start(redis_url: str | None) -> TwoWorkers:
            ports = {"portal": free_port(), "email": free_port(), "email2": free_port()}
            urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            shared = {
                "service_urls": {"portal": urls["portal"], "email": urls["email"]},
                "public_urls": {"portal": urls["portal"], "email": urls["email"]},
                "jwt_iss": urls["portal"],
            }
            portal = create_portal_app(
                portal_settings.model_copy(update={**shared, "access_token_ttl_seconds": 30})
            )
            await stack.enter_async_context(serve_app(portal, port=ports["portal"]))
            email_changes = {
                **shared,
                "jwks_url": f"{urls['portal']}/.well-known/jwks.json",
                "redis_url": redis_url,
            }
            for name in ("email", "email2"):
                app = create_email_app(email_settings.model_copy(update=email_changes))
                await stack.enter_async_context(serve_app(app, port=ports[name]))
            browser = await stack.enter_async_context(httpx.AsyncClient(timeout=15))
            return TwoWorkers(urls["portal"], (urls["email"], urls["email2"]), browser)

        yield start


async def test_two_workers_refreshing_one_session_hand_out_one_new_session(
    two_workers: object, redis_url: str
) -> None:
    world: TwoWorkers = await two_workers(redis_url)  # type: ignore[operator]
    await world.sign_in()
    old = world.cookie()
    assert old is not None

    # Both workers get the old cookie (two requests in flight from one page): one refreshes,
    # the other hands out the very same new session instead of presenting the old token again.
    first = await world.inbox_with(0, old)
    second = await world.inbox_with(1, old)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    renewed = first.cookies.get(COOKIE)
    assert renewed is not None and renewed != old
    handed = second.cookies.get(COOKIE)
    assert handed is not None
    # The same session (tokens included); only the signing timestamp may differ.
    assert handed.rsplit(".", 2)[0] == renewed.rsplit(".", 2)[0]

    # At once on both workers, several rounds: never a reuse, the session survives.
    world.browser.cookies.set(COOKIE, renewed, domain="127.0.0.1")
    for _ in range(3):
        pages = await asyncio.gather(
            *(world.browser.get(f"{world.workers[n % 2]}/ui/inbox") for n in range(6))
        )
        assert [page.status_code for page in pages] == [200] * 6
    after = await world.browser.get(f"{world.workers[1]}/ui/inbox")
    assert after.status_code == 200 and world.cookie() not in (None, old, renewed)


async def test_without_shared_refresh_the_second_worker_trips_reuse_detection(
    two_workers: object,
) -> None:
    # The failure the shared refresh exists for (ADR 0019), shown with it absent: this is why
    # several workers need Redis.
    world: TwoWorkers = await two_workers(None)  # type: ignore[operator]
    await world.sign_in()
    old = world.cookie()
    assert old is not None
    assert (await world.inbox_with(0, old)).status_code == 200
    second = await world.inbox_with(1, old)
    assert second.status_code == 303 and second.headers["location"].startswith("/auth/login")
