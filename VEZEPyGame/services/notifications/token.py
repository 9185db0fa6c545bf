"""The Game service's own access token, by client credentials (RFC 6749 section 4.4).

Game is the portal's confidential client `veze-game-service`; the token carries only the
scope asked for and is cached until shortly before it expires.
"""

from __future__ import annotations

import asyncio
import time

from VEZEPyCore.errors import UpstreamUnavailable
from VEZEPyCore.services.calls import call_service, refusal
from VEZEPyCore.services.http import ServiceClients
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.services.registry import PORTAL

CLIENT_ID = "veze-game-service"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path
#: Fetch a new token this long before the cached one expires.
TOKEN_MARGIN_SECONDS = 30.0


class ServiceTokenSource:
    def __init__(self, *, settings: GameSettings, clients: ServiceClients, scope: str) -> None:
        self._settings = settings
        self._clients = clients
        self._scope = scope
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Drop the cached token (the receiver refused it: expired early, or keys rotated)."""
        self._token = None

    async def token(self) -> str:
        async with self._lock:
            if self._token is not None and time.monotonic() < self._expires_at:
                return self._token
            secret = self._settings.client_secret(CLIENT_ID)
            if not secret:
                raise UpstreamUnavailable(f"no client secret for {CLIENT_ID}")
            response = await call_service(
                await self._clients.client(PORTAL),
                "POST",
                TOKEN_PATH,
                service="portal",
                deadline_seconds=self._settings.http_timeout_seconds,
                data={"grant_type": "client_credentials", "scope": self._scope},
                auth=(CLIENT_ID, secret),
            )
            if response.status_code != 200:
                raise refusal(response, service="portal")
            body = response.json()
            self._token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 60))
            self._expires_at = time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, 1.0)
            return self._token
