"""The portal's password check, as the submission listeners call it.

AUTH PLAIN/LOGIN (RFC 4954) carry a handle and a password; only the portal holds password
hashes, so Email asks `POST /internal/auth/verify` with a service token it gets by client
credentials (RFC 6749 section 4.4) as `veze-email-service`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from VEZEPyEmail.app.settings import EmailSettings

CLIENT_ID = "veze-email-service"
#: The portal's scope for this call (defined in the portal: VEZEPyUniQVerse/services/internal_auth).
VERIFY_PASSWORD_SCOPE = "portal.verify_password"  # noqa: S105 - a scope name
VERIFY_PATH = "/internal/auth/verify"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path
#: Refresh the service token this long before it expires.
TOKEN_MARGIN_SECONDS = 30


#: The portal's error code for a wrong handle or password (a bad service token is another).
INVALID_CREDENTIALS = "invalid_credentials"


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


class PortalUnavailable(Exception):
    """The portal could not be asked (network, 5xx, refused service token)."""


class PortalThrottled(PortalUnavailable):
    """The portal refused the check for now (HTTP 429)."""


@dataclass(frozen=True)
class VerifiedAccount:
    handle: str
    email: str


class PortalPasswordClient:
    def __init__(self, *, settings: EmailSettings, clients: Any) -> None:
        self._settings = settings
        self._clients = clients
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def _http(self) -> httpx.AsyncClient:
        client: httpx.AsyncClient = await self._clients.client("portal")
        return client

    async def _service_token(self, *, refresh: bool = False) -> str:
        async with self._lock:
            if not refresh and self._token and time.monotonic() < self._expires_at:
                return self._token
            secret = self._settings.client_secret(CLIENT_ID)
            if not secret:
                raise PortalUnavailable(f"no client secret for {CLIENT_ID}")
            http = await self._http()
            try:
                response = await http.post(
                    TOKEN_PATH,
                    data={"grant_type": "client_credentials", "scope": VERIFY_PASSWORD_SCOPE},
                    auth=(CLIENT_ID, secret),
                )
            except httpx.HTTPError as exc:
                raise PortalUnavailable(f"token endpoint unreachable: {exc!r}") from exc
            if response.status_code != 200:
                raise PortalUnavailable(f"token endpoint said {response.status_code}")
            body = response.json()
            self._token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 60))
            self._expires_at = time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, 1.0)
            return self._token

    async def verify(self, *, handle: str, password: str, ip: str) -> VerifiedAccount | None:
        """The account when `password` opens `handle`, None when it does not."""
        http = await self._http()
        for attempt in range(2):
            token = await self._service_token(refresh=attempt > 0)
            try:
                response = await http.post(
                    VERIFY_PATH,
                    json={"handle": handle, "password": password, "remote_ip": ip},
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.HTTPError as exc:
                raise PortalUnavailable(f"portal unreachable: {exc!r}") from exc
            if response.status_code == 200:
                body = response.json()
                return VerifiedAccount(handle=str(body["handle"]), email=str(body["email"]))
            if response.status_code == 429:
                raise PortalThrottled("the portal throttled this login")
            if response.status_code == 401 and _error_code(response) == INVALID_CREDENTIALS:
                return None
            if response.status_code == 401 and attempt == 0:
                continue  # the service token may have expired or rotated: fetch a new one
            break
        raise PortalUnavailable(f"password check failed with {response.status_code}")
