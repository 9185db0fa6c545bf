"""Assemble the home dashboard from Email, Game and the portal's own provisioning queue.

Every panel is fetched concurrently under its own deadline and fails on its own: a service
that is down or slow turns its panel into a plain sentence, never the whole page into an
error. Calls carry a token minted for the signed-in person, so each service applies its own
rules to them exactly as it would to their own client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.auth import scopes
from VEZEPyCore.errors import AppError
from VEZEPyCore.services.http import ServiceClients
from VEZEPyUniQVerse.app.security import SigningKeyMissing
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.hub.schemas import (
    Dashboard,
    MailItem,
    MailPanel,
    MatchesPanel,
    MatchItem,
    Panel,
    ProvisioningItem,
    ProvisioningPanel,
    QueuePanel,
    QueueState,
    RatingItem,
    RatingPanel,
)
from VEZEPyUniQVerse.services.hub.tokens import user_token
from VEZEPyUniQVerse.services.hub.upstream import call_json
from VEZEPyUniQVerse.services.provisioning.queue import provisioning_status

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Panel)

LATEST_MESSAGES = 5
RECENT_MATCHES = 5
MAIL_DOWN = "Mail is unavailable right now."
GAME_DOWN = "The game is unavailable right now."
NO_PLAYER = "Your player profile is not ready yet."


async def build_dashboard(app_state: Any, db: AsyncSession, *, user: User) -> Dashboard:
    settings = app_state.settings
    deadline: float = settings.http_timeout_seconds
    clients: ServiceClients = app_state.clients
    address = f"{user.handle}@{settings.mail_domain}"

    async def mail() -> MailPanel:
        token = await user_token(
            app_state, user=user, audience=settings.email_aud, scopes=[scopes.EMAIL_READ]
        )
        folders, page = await asyncio.gather(
            call_json(
                clients, "email", "GET", "/api/folders", token=token, deadline_seconds=deadline
            ),
            call_json(
                clients,
                "email",
                "GET",
                "/api/messages",
                token=token,
                deadline_seconds=deadline,
                params={"user": address, "limit": LATEST_MESSAGES},
            ),
        )
        return MailPanel(
            key="mail", title="Mail", unread=inbox_unread(folders), messages=mail_items(page)
        )

    game_token: asyncio.Task[str] | None = None

    async def game(method: str, path: str, **request: Any) -> Any:
        nonlocal game_token
        if game_token is None:  # one token for the three game panels
            game_token = asyncio.ensure_future(
                user_token(
                    app_state, user=user, audience=settings.game_aud, scopes=[scopes.GAME_PLAY]
                )
            )
        token = await asyncio.shield(game_token)
        return await call_json(
            clients, "game", method, path, token=token, deadline_seconds=deadline, **request
        )

    async def rating() -> RatingPanel:
        ratings, standing = await asyncio.gather(
            game("GET", "/api/ratings/me"),
            game("GET", "/api/leaderboards/ranked/me", params={"span": 0}, missing_ok=True),
        )
        rank = standing["me"]["rank"] if isinstance(standing, dict) else None
        return RatingPanel(
            key="rating",
            title="Rating",
            ratings=[RatingItem.model_validate(item) for item in ratings],
            rank=rank,
        )

    async def matches() -> MatchesPanel:
        body = await game("GET", "/api/matches", params={"limit": RECENT_MATCHES})
        return MatchesPanel(
            key="matches",
            title="Recent matches",
            matches=[MatchItem.model_validate(item) for item in body["matches"]],
        )

    async def queue() -> QueuePanel:
        body = await game("GET", "/api/queue")
        ticket = body.get("ticket")
        return QueuePanel(
            key="queue",
            title="Queue",
            ticket=QueueState.model_validate(ticket) if ticket else None,
        )

    async def provisioning() -> ProvisioningPanel:
        tasks = await provisioning_status(db, handle=user.handle)
        return ProvisioningPanel(
            key="provisioning",
            title="Your services",
            tasks=[
                ProvisioningItem(target=task.target, status=task.status, last_error=task.last_error)
                for task in tasks
            ],
        )

    mail_panel, rating_panel, matches_panel, queue_panel = await asyncio.gather(
        guarded(mail, MailPanel(key="mail", title="Mail"), deadline=deadline, down=MAIL_DOWN),
        guarded(
            rating, RatingPanel(key="rating", title="Rating"), deadline=deadline, down=GAME_DOWN
        ),
        guarded(
            matches,
            MatchesPanel(key="matches", title="Recent matches"),
            deadline=deadline,
            down=GAME_DOWN,
        ),
        guarded(queue, QueuePanel(key="queue", title="Queue"), deadline=deadline, down=GAME_DOWN),
    )
    # The database session is not shared with the concurrent calls above: it runs after them.
    provisioning_panel = await guarded(
        provisioning,
        ProvisioningPanel(key="provisioning", title="Your services"),
        deadline=deadline,
        down="Provisioning status is unavailable right now.",
    )
    return Dashboard(
        mail=mail_panel,
        rating=rating_panel,
        matches=matches_panel,
        queue=queue_panel,
        provisioning=provisioning_panel,
    )


async def guarded(fetch: Callable[[], Awaitable[P]], empty: P, *, deadline: float, down: str) -> P:
    """`fetch()`, or `empty` marked unavailable with `down` when it fails or overruns."""
    try:
        async with asyncio.timeout(deadline + 0.5):  # a backstop over the per-call deadlines
            return await fetch()
    except AppError as exc:
        message = NO_PLAYER if exc.status_code == 404 and down == GAME_DOWN else down
        if isinstance(exc, SigningKeyMissing):
            message = down
        log.info("dashboard panel %s unavailable: %s", empty.key, exc.detail)
        return empty.model_copy(update={"ok": False, "message": message})
    except (TimeoutError, ValueError, KeyError, TypeError) as exc:
        log.info("dashboard panel %s unavailable: %r", empty.key, exc)
        return empty.model_copy(update={"ok": False, "message": down})


def inbox_unread(folders: Any) -> int:
    for folder in folders.get("folders", []):
        if folder.get("special_use") == "inbox" or folder.get("name") == "INBOX":
            return int(folder.get("unread", 0))
    return 0


def mail_items(page: Any) -> list[MailItem]:
    return [
        MailItem(
            id=item["id"],
            subject=item.get("subject") or "(no subject)",
            sender=item.get("from_") or "",
            date=item.get("date"),
            unread=bool(item.get("unread")),
        )
        for item in page.get("messages", [])
    ]
