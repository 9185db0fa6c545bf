"""The brief's chain: a client calls Game `GET /email/mail`, Game calls Email `/api/messages`.

Both apps run their real lifespans (migrations, verifiers); Game reaches Email in-process
through `ASGITransport`, as the design asks for tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
from fastapi import FastAPI

from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"
WELCOME_SUBJECT = "Welcome to VEZE UniQVerse"
MESSAGE_FIELDS = {
    "id",
    "subject",
    "from_",
    "date",
    "snippet",
    "labels",
    "flags",
    "size",
    "spam_score",
    "unread",
}

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
Minter = Callable[..., str]
Clients = tuple[httpx.AsyncClient, httpx.AsyncClient]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def game_and_email(
    running: Running, game_settings: GameSettings, email_settings: EmailSettings
) -> AsyncIterator[Clients]:
    """Both services running, Game's calls to `email` routed to the in-process Email app."""
    email_app = create_email_app(email_settings)
    game_app = create_game_app(game_settings)
    async with running(email_app) as email, running(game_app) as game:
        game_app.state.clients.mount("email", email_app)
        yield game, email


async def provision(email: httpx.AsyncClient, mint: Minter, *addresses: str) -> None:
    admin = bearer(mint("svc:portal", audience="veze-email", scopes=("email.admin",)))
    for address in addresses:
        response = await email.post("/api/mailboxes", json={"address": address}, headers=admin)
        assert response.status_code == 201, response.text


def assert_only_the_welcome_mail(body: dict[str, object], user: str) -> None:
    assert body["user"] == user
    messages = body["messages"]
    assert isinstance(messages, list) and len(messages) == 1
    (welcome,) = messages
    assert set(welcome) == MESSAGE_FIELDS
    assert welcome["subject"] == WELCOME_SUBJECT
    assert welcome["unread"] is True


async def test_demo_token_reads_mail_through_game(
    running: Running, game_settings: GameSettings, email_settings: EmailSettings, mint: Minter
) -> None:
    demo_on = {"jwt_demo": True}
    async with game_and_email(
        running, game_settings.model_copy(update=demo_on), email_settings.model_copy(update=demo_on)
    ) as (game, email):
        await provision(email, mint, ALICE)
        response = await game.get("/email/mail", params={"user": ALICE}, headers=bearer("demo"))

    assert response.status_code == 200, response.text
    assert_only_the_welcome_mail(response.json(), ALICE)


async def test_demo_token_is_refused_when_demo_is_off(
    running: Running, game_settings: GameSettings, email_settings: EmailSettings, mint: Minter
) -> None:
    async with game_and_email(running, game_settings, email_settings) as (game, email):
        await provision(email, mint, ALICE)
        response = await game.get("/email/mail", params={"user": ALICE}, headers=bearer("demo"))
    assert response.status_code == 401


async def test_user_token_reads_own_mail_exactly_as_email_returns_it(
    running: Running, game_settings: GameSettings, email_settings: EmailSettings, mint: Minter
) -> None:
    token = mint(
        ALICE, audience=["veze-game", "veze-email"], scopes=("game.read_mail", "email.read")
    )
    async with game_and_email(running, game_settings, email_settings) as (game, email):
        await provision(email, mint, ALICE)
        through_game = await game.get("/email/mail", params={"user": ALICE}, headers=bearer(token))
        from_email = await email.get("/api/messages", params={"user": ALICE}, headers=bearer(token))
        past_the_end = await game.get(
            "/email/mail", params={"user": ALICE, "offset": 1}, headers=bearer(token)
        )

    assert through_game.status_code == 200, through_game.text
    assert_only_the_welcome_mail(through_game.json(), ALICE)
    assert through_game.json() == from_email.json()
    # Offset reached Email: skipping the only message leaves none.
    assert past_the_end.json() == {"user": ALICE, "messages": []}


async def test_user_token_cannot_read_another_users_mail_through_game(
    running: Running, game_settings: GameSettings, email_settings: EmailSettings, mint: Minter
) -> None:
    alice = bearer(
        mint(ALICE, audience=["veze-game", "veze-email"], scopes=("game.read_mail", "email.read"))
    )
    async with game_and_email(running, game_settings, email_settings) as (game, email):
        await provision(email, mint, ALICE, BOB)
        response = await game.get("/email/mail", params={"user": BOB}, headers=alice)

    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "detail": "this token may not read that mailbox",
    }


async def test_emails_refusals_come_back_with_their_reason(
    running: Running, game_settings: GameSettings, email_settings: EmailSettings, mint: Minter
) -> None:
    both = ["veze-game", "veze-email"]
    alice = bearer(mint(ALICE, audience=both, scopes=("game.read_mail", "email.read")))
    game_only = bearer(mint(ALICE, audience="veze-game", scopes=("game.read_mail", "email.read")))
    no_email_scope = bearer(mint(ALICE, audience=both, scopes=("game.read_mail",)))
    async with game_and_email(running, game_settings, email_settings) as (game, _email):
        foreign = await game.get("/email/mail", params={"user": "alice@example.com"}, headers=alice)
        unprovisioned = await game.get("/email/mail", params={"user": ALICE}, headers=alice)
        wrong_audience = await game.get("/email/mail", params={"user": ALICE}, headers=game_only)
        missing_scope = await game.get(
            "/email/mail", params={"user": ALICE}, headers=no_email_scope
        )

    assert foreign.status_code == 400
    assert "vezeuniqverse.com" in foreign.json()["detail"]
    assert unprovisioned.status_code == 404
    assert unprovisioned.json()["detail"] == f"no mailbox for {ALICE}"
    # The token is Game's alone: Email rejects it, and says so with its RFC 6750 challenge.
    assert wrong_audience.status_code == 401
    assert wrong_audience.headers["www-authenticate"].startswith("Bearer")
    assert missing_scope.status_code == 403
    assert missing_scope.json() == {
        "error": "insufficient_scope",
        "detail": "missing scope: email.read",
    }
