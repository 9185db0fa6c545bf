"""Calls to the Email service's message API on behalf of the caller.

The caller's own bearer token is forwarded, so Email decides what it may read: Game adds no
privilege of its own. Every failure becomes an `AppError` a client can act on: Email down is
502, Email too slow is 504 (every call has a deadline, so nothing waits forever),
Email's own 4xx answers keep their status and reason, and Email's 5xx is 502.
"""

from __future__ import annotations

from VEZEPyCore.contracts.email import MessageList
from VEZEPyCore.errors import UpstreamUnavailable
from VEZEPyCore.services.calls import call_service, refusal
from VEZEPyCore.services.http import ServiceClients
from VEZEPyGame.services.registry import EMAIL

MESSAGES_PATH = "/api/messages"


class EmailClient:
    def __init__(self, clients: ServiceClients, *, deadline_seconds: float) -> None:
        self._clients = clients
        self._deadline_seconds = deadline_seconds

    async def list_messages(self, *, token: str, user: str, limit: int, offset: int) -> MessageList:
        """Email's `GET /api/messages` for `user`, as the holder of `token`."""
        response = await call_service(
            await self._clients.client(EMAIL),
            "GET",
            MESSAGES_PATH,
            service="email",
            deadline_seconds=self._deadline_seconds,
            params={"user": user, "limit": limit, "offset": offset},
            headers={"Authorization": f"Bearer {token}"},
        )
        if not response.is_success:
            raise refusal(response, service="email")
        try:
            return MessageList.model_validate(response.json())
        except ValueError as exc:  # not JSON, or not the contract's shape
            raise UpstreamUnavailable("the email service sent an unexpected response") from exc
