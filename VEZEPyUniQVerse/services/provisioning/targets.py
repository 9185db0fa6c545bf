"""Calls to the services a new account gets resources in: its mailbox and its player.

Both endpoints are idempotent (201 created, 200 already there), which is what lets the worker
retry a task whose outcome it never heard: a second call changes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx

from VEZEPyCore.auth import scopes
from VEZEPyCore.errors import UpstreamUnavailable
from VEZEPyCore.services.calls import call_service
from VEZEPyCore.services.http import ServiceClients
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.services.provisioning.service import create_mailbox, error_detail
from VEZEPyUniQVerse.services.provisioning.tokens import service_token


async def provision_target(app_state: Any, *, target: str, handle: str, display_name: str) -> bool:
    """Create `handle`'s resource in `target`; True if this call created it.

    Raises `UpstreamUnavailable`/`UpstreamTimeout` (or `SigningKeyMissing`) when it did not
    succeed, for the worker to record and retry.
    """
    settings: PortalSettings = app_state.settings
    clients: ServiceClients = app_state.clients
    if target == "email":
        outcome = await create_mailbox(
            await clients.client("email"),
            token=await service_token(
                app_state, audience=settings.email_aud, scopes=[scopes.EMAIL_ADMIN]
            ),
            address=f"{handle}@{settings.mail_domain}",
            display_name=display_name,
            timeout_seconds=settings.http_timeout_seconds,
        )
        return outcome.created
    if target == "game":
        return await create_player(
            await clients.client("game"),
            token=await service_token(
                app_state, audience=settings.game_aud, scopes=[scopes.GAME_ADMIN]
            ),
            handle=handle,
            display_name=display_name,
            timeout_seconds=settings.http_timeout_seconds,
        )
    raise ValueError(f"unknown provisioning target {target!r}")


async def create_player(
    game: httpx.AsyncClient, *, token: str, handle: str, display_name: str, timeout_seconds: float
) -> bool:
    """`POST /api/players` on Game: 201 created, 200 already there; anything else fails."""
    response = await call_service(
        game,
        "POST",
        "/api/players",
        service="game",
        deadline_seconds=timeout_seconds,
        json={"handle": handle, "display_name": display_name},
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code not in (200, 201):
        raise UpstreamUnavailable(
            f"the game service refused the player: HTTP {response.status_code} "
            f"{error_detail(response)}".rstrip()
        )
    return response.status_code == 201
