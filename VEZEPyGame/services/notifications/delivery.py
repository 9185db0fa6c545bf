"""Handing one composed summary to the Email service's system-mail endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from VEZEPyCore.errors import AppError, UpstreamUnavailable
from VEZEPyCore.services.calls import call_service, refusal
from VEZEPyCore.services.http import ServiceClients
from VEZEPyGame.services.notifications.token import ServiceTokenSource
from VEZEPyGame.services.registry import EMAIL

DELIVER_PATH = "/internal/mail/deliver"
SYSTEM_MAIL_SCOPE = "email.system_mail"
FROM_NAME = "VEZE Game"


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    text: str
    message_id: str


class PermanentFailure(AppError):
    """Email will never take this mail (not a local address, invalid): retrying cannot help.

    A missing mailbox (404) is retried: provisioning may still be creating it.
    """

    status_code, code = 422, "undeliverable"


class SystemMailSender:
    def __init__(
        self, *, clients: ServiceClients, tokens: ServiceTokenSource, deadline_seconds: float
    ) -> None:
        self._clients = clients
        self._tokens = tokens
        self._deadline_seconds = deadline_seconds

    async def send(self, mail: OutgoingMail) -> None:
        """Deliver, or raise: `PermanentFailure` for a refusal that stays, anything else retries.

        Idempotent: Email files a repeated Message-ID once.
        """
        for attempt in range(2):
            response = await call_service(
                await self._clients.client(EMAIL),
                "POST",
                DELIVER_PATH,
                service="email",
                deadline_seconds=self._deadline_seconds,
                json={
                    "to": mail.to,
                    "subject": mail.subject,
                    "text": mail.text,
                    "message_id": mail.message_id,
                    "from_name": FROM_NAME,
                },
                headers={"Authorization": f"Bearer {await self._tokens.token()}"},
            )
            if response.is_success:
                return
            if response.status_code == 401 and attempt == 0:
                self._tokens.forget()  # expired or signed with a rotated key: fetch a new one
                continue
            if response.status_code in (400, 422):
                error = refusal(response, service="email")
                raise PermanentFailure(error.detail)
            raise refusal(response, service="email")
        raise UpstreamUnavailable("the email service refused the game's token")
