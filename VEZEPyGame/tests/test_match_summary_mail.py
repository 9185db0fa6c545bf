"""A finished match puts a summary in the opted-in player's INBOX, through an Email outage.

Portal, Game and Email run their real lifespans in this process. Game gets its own token from
the portal by client credentials (`veze-game-service`, scope `email.system_mail`) and calls
Email's system-mail endpoint, which verifies it through the portal's JWKS. Email starts out
unreachable: the summary waits in the outbox with its error, and arrives once Email is back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.db.models import Player
from VEZEPyGame.db.notifications import SummaryMail
from VEZEPyGame.services.matches.service import create_match
from VEZEPyGame.services.notifications.summary import rating_move
from VEZEPyGame.tests.conftest import Running
from VEZEPyGame.tests.store_helpers import Minter, create_players, metric, player_token
from VEZEPyUniQVerse.app.main import create_app as create_portal_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.tests.helpers import dead_url
from VEZEPyUniQVerse.tests.provisioning_helpers import trusting_portal, wait_for

DOMAIN = "vezeuniqverse.com"
GAME_PUBLIC = "https://game.example"

pytestmark = pytest.mark.timeout(60)


@dataclass
class Platform:
    game_app: FastAPI
    email_app: FastAPI
    game: httpx.AsyncClient
    email: httpx.AsyncClient


@pytest.fixture
async def platform(
    portal_settings: PortalSettings,
    game_settings: GameSettings,
    email_settings: EmailSettings,
    running: Running,
    mint: Minter,
) -> AsyncIterator[Platform]:
    game_app = create_game_app(
        game_settings.model_copy(
            update={
                "service_urls": {"email": dead_url()},  # Email is down to begin with
                "public_urls": {"game": GAME_PUBLIC},
                "summary_mail_initial_backoff_seconds": 0.05,
                "summary_mail_max_backoff_seconds": 0.2,
                "summary_mail_poll_seconds": 0.1,
            }
        )
    )
    email_app = create_email_app(email_settings)
    portal_app = create_portal_app(portal_settings)
    async with AsyncExitStack() as stack:
        email = await stack.enter_async_context(running(email_app))
        await stack.enter_async_context(running(portal_app))
        game = await stack.enter_async_context(running(game_app))
        await stack.enter_async_context(
            trusting_portal(email_app, portal_app, audience=email_settings.email_aud)
        )
        game_app.state.clients.mount("portal", portal_app)
        admin = {"Authorization": "Bearer " + mint("svc:portal", scopes=("email.admin",))}
        for handle in ("alice", "bob"):
            created = await email.post(
                "/api/mailboxes", json={"address": f"{handle}@{DOMAIN}"}, headers=admin
            )
            assert created.status_code == 201, created.text
        await create_players(game, mint, "alice", "bob")
        yield Platform(game_app, email_app, game, email)


async def inbox(platform: Platform, mint: Minter, handle: str) -> list[dict[str, object]]:
    address = f"{handle}@{DOMAIN}"
    response = await platform.email.get(
        "/api/messages",
        params={"user": address},
        headers={"Authorization": "Bearer " + mint(address)},
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, object]] = response.json()["messages"]
    return messages


async def outbox(app: FastAPI) -> list[SummaryMail]:
    async with app.state.sessionmaker() as session:
        return list(await session.scalars(select(SummaryMail).order_by(SummaryMail.id)))


async def test_finished_match_mails_the_opted_in_player_after_an_email_outage(
    platform: Platform, mint: Minter
) -> None:
    game, game_app = platform.game, platform.game_app
    opt_in = await game.put(
        "/api/players/me/notifications",
        json={"match_summary_mail": True},
        headers=player_token(mint, "alice"),
    )
    assert opt_in.json() == {"match_summary_mail": True}
    async with game_app.state.sessionmaker() as session:
        ids = {p.handle: p.id for p in await session.scalars(select(Player))}
        await session.execute(
            update(Player).where(Player.handle == "bob").values(display_name="Bob")
        )
        match = await create_match(
            session, mode="casual", first_player_id=ids["alice"], second_player_id=ids["bob"]
        )
        await session.commit()

    resigned = await game.post(f"/api/matches/{match.id}/resign", headers=player_token(mint, "bob"))
    assert resigned.status_code == 200, resigned.text

    async def failed_once() -> list[SummaryMail] | None:
        rows = await outbox(game_app)
        return rows if rows and rows[0].attempts >= 1 and rows[0].last_error else None

    (row,) = await wait_for(failed_once, what="a failed first delivery")  # bob did not opt in
    assert row.status == "pending" and row.address == f"alice@{DOMAIN}"
    assert "unreachable" in (row.last_error or "")
    assert await metric(game, "veze_summary_mail_waiting") == 1
    assert await metric(game, "veze_summary_mail_deliveries_total", outcome="retry") >= 1

    game_app.state.clients.mount("email", platform.email_app)  # Email is back
    game_app.state.summary_mail_worker.wakeup.set()

    async def summary_arrived() -> list[dict[str, object]] | None:
        found = [m for m in await inbox(platform, mint, "alice") if "Bob" in str(m["subject"])]
        return found or None

    (summary,) = await wait_for(summary_arrived, what="the summary in alice's inbox")
    assert summary["subject"] == "You won against Bob · VEZE Connect Four"
    detail = await platform.email.get(
        f"/api/messages/{summary['id']}",
        headers={"Authorization": "Bearer " + mint(f"alice@{DOMAIN}")},
    )
    body = detail.json()
    assert body["folder"] == "INBOX"
    assert body["from_"].endswith(f"<noreply@{DOMAIN}>")
    assert "Result:   you won by resignation" in body["text"]
    assert "Opponent: Bob" in body["text"]
    assert f"Watch the replay: {GAME_PUBLIC}/ui/matches/{match.id}" in body["text"]
    # The rating line comes from the ratings capability's history, when it recorded the match.
    async with game_app.state.engine.connect() as connection:
        move = await rating_move(connection, match_id=match.id, player_id=ids["alice"])
    if move is None:
        assert "Rating:" not in body["text"]
    else:
        assert f"Rating:   {move.before} -> {move.after} (+{move.change})" in body["text"]
    assert [m["subject"] for m in await inbox(platform, mint, "bob")] == [
        "Welcome to VEZE UniQVerse"
    ]
    (row,) = await outbox(game_app)
    assert row.status == "sent"
    assert await metric(game, "veze_summary_mail_waiting") == 0
    assert await metric(game, "veze_summary_mail_deliveries_total", outcome="sent") == 1

    # A delivery whose answer was lost is sent again: Email files the Message-ID once.
    async with game_app.state.sessionmaker.begin() as session:
        await session.execute(update(SummaryMail).values(status="pending"))
    game_app.state.summary_mail_worker.wakeup.set()

    async def resent() -> bool:
        return [r.status for r in await outbox(game_app)] == ["sent"]

    await wait_for(resent, what="the repeated delivery")
    summaries = [m for m in await inbox(platform, mint, "alice") if "Bob" in str(m["subject"])]
    assert len(summaries) == 1


async def test_system_mail_needs_the_dedicated_scope_and_a_local_mailbox(
    platform: Platform, mint: Minter
) -> None:
    mail = {
        "to": f"alice@{DOMAIN}",
        "subject": "Hello",
        "text": "Hi",
        "message_id": "<x-1@game.vezeuniqverse.com>",
    }
    send_scope = {"Authorization": "Bearer " + mint("svc:x", scopes=("email.send", "email.admin"))}
    system = {"Authorization": "Bearer " + mint("svc:x", scopes=("email.system_mail",))}

    refused = await platform.email.post("/internal/mail/deliver", json=mail, headers=send_scope)
    remote = await platform.email.post(
        "/internal/mail/deliver", json={**mail, "to": "eve@example.org"}, headers=system
    )
    unknown = await platform.email.post(
        "/internal/mail/deliver", json={**mail, "to": f"carol@{DOMAIN}"}, headers=system
    )
    injected = await platform.email.post(
        "/internal/mail/deliver",
        json={**mail, "subject": "Hi\r\nBcc: eve@example.org"},
        headers=system,
    )
    first = await platform.email.post("/internal/mail/deliver", json=mail, headers=system)
    again = await platform.email.post("/internal/mail/deliver", json=mail, headers=system)

    assert refused.status_code == 403
    assert remote.status_code == 400
    assert unknown.status_code == 404
    assert injected.status_code == 422
    assert first.status_code == 201 and first.json()["duplicate"] is False
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert [m["subject"] for m in await inbox(platform, mint, "alice")].count("Hello") == 1
