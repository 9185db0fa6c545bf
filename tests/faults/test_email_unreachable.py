"""Email away, then back on its port: Game and the portal fail fast and recover by themselves.

What is already covered elsewhere and not repeated here: Game's proxy answering 502/504 for a
closed port or a silent peer (`VEZEPyGame/tests/test_email_proxy.py`), the portal's mail panel
degrading and timing out (`VEZEPyUniQVerse/tests/test_hub.py`), provisioning retried until
Email is back (`tests/test_provisioning_retry.py`) and the match-summary mail sent after an
Email outage (`VEZEPyGame/tests/test_match_summary_mail.py`).

What these add: the same running Game and portal processes, over real sockets, first with Email
down and then with Email started on the port they were configured with. No restart and no
operator action in between: the failures are quick and clear, the queued provisioning reaches
Email, and the same pages and proxy answer with the mail once it is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx
from sqlalchemy import func, select

from tests.faults.servers import eventually
from VEZEPyCore.testing import free_port, serve_app
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.main import create_app as create_portal_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.tests.hub_support import Platform, provisioned, sign_up
from VEZEPyUniQVerse.tests.provisioning_helpers import fast_settings

ALICE = "alice@vezeuniqverse.com"
#: The services' HTTP timeout here is far above FAST_SECONDS, so an answer within FAST_SECONDS
#: was not a wait for a timeout, whatever the machine's load.
HTTP_TIMEOUT_SECONDS = 60.0
FAST_SECONDS = 10.0
UNAVAILABLE = "Mail is unavailable right now."


async def test_game_mail_proxy_fails_fast_then_serves_once_email_is_back(
    game_settings: GameSettings, email_settings: EmailSettings, mint: Callable[..., str]
) -> None:
    email_port = free_port()
    email_url = f"http://127.0.0.1:{email_port}"
    game_app = create_game_app(
        game_settings.model_copy(
            update={
                "service_urls": {"email": email_url},
                "http_timeout_seconds": HTTP_TIMEOUT_SECONDS,
            }
        )
    )
    email_app = create_email_app(email_settings)
    token = mint(
        ALICE, audience=["veze-game", "veze-email"], scopes=("game.read_mail", "email.read")
    )
    admin = {"Authorization": f"Bearer {mint('svc:portal', scopes=('email.admin',))}"}
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        serve_app(game_app) as game_url,
        httpx.AsyncClient(base_url=game_url, timeout=20) as game,
    ):
        started = time.monotonic()
        down = await game.get("/email/mail", params={"user": ALICE}, headers=headers)
        assert time.monotonic() - started < FAST_SECONDS
        assert down.status_code == 502
        assert down.json()["error"] == "upstream_unavailable"

        async with (
            serve_app(email_app, port=email_port),
            httpx.AsyncClient(base_url=email_url, timeout=20) as email,
        ):
            created = await email.post("/api/mailboxes", json={"address": ALICE}, headers=admin)
            assert created.status_code == 201, created.text
            # The same Game process, no restart: its pooled client reaches Email again.
            back = await game.get("/email/mail", params={"user": ALICE}, headers=headers)
            assert back.status_code == 200, back.text
            assert [m["subject"] for m in back.json()["messages"]] != []

        # And when Email goes away again, the next call fails as fast as the first.
        started = time.monotonic()
        again = await game.get("/email/mail", params={"user": ALICE}, headers=headers)
        assert time.monotonic() - started < FAST_SECONDS
        assert again.status_code == 502


async def test_portal_home_and_provisioning_recover_when_email_comes_back(
    portal_settings: PortalSettings, email_settings: EmailSettings, game_settings: GameSettings
) -> None:
    ports = {name: free_port() for name in ("portal", "email", "game")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    shared = {"service_urls": dict(urls), "public_urls": dict(urls), "jwt_iss": urls["portal"]}
    by_jwks = {**shared, "jwks_url": f"{urls['portal']}/.well-known/jwks.json"}
    portal_app = create_portal_app(
        fast_settings(portal_settings, **shared, http_timeout_seconds=HTTP_TIMEOUT_SECONDS)
    )
    game_app = create_game_app(game_settings.model_copy(update=by_jwks))
    email_app = create_email_app(email_settings.model_copy(update=by_jwks))
    plat = Platform(
        portal=urls["portal"],
        email=urls["email"],
        game=urls["game"],
        portal_app=portal_app,
        email_app=None,
    )
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serve_app(portal_app, port=ports["portal"]))
        await stack.enter_async_context(serve_app(game_app, port=ports["game"]))
        # Email is not running: sign-up still works, the mailbox waits in the queue.
        person = await sign_up(stack, plat, "outage", wait_for=("game",))
        started = time.monotonic()
        home = await person.client.get("/home")
        assert time.monotonic() - started < FAST_SECONDS
        assert home.status_code == 200
        assert UNAVAILABLE in home.text

        # Email starts on the port the portal was configured with; nobody touches the portal.
        await stack.enter_async_context(serve_app(email_app, port=ports["email"]))
        await provisioned(portal_app, person.handle, ("email",))

        async def mail_panel_back() -> bool:
            page = await person.client.get("/home")
            return page.status_code == 200 and UNAVAILABLE not in page.text

        await eventually(mail_panel_back, seconds=30, what="the mail panel after Email returned")
        async with email_app.state.sessionmaker() as session:
            mailboxes = await session.scalar(
                select(func.count()).select_from(Mailbox).where(Mailbox.address == person.address)
            )
            welcome = await session.scalar(
                select(func.count())
                .select_from(Message)
                .join(Mailbox, Mailbox.id == Message.mailbox_id)
                .where(Mailbox.address == person.address)
            )
        assert mailboxes == 1  # queued provisioning delivered once
        assert welcome == 1  # one welcome mail, not one per retry
