"""System mail from other VEZE services into local mailboxes (match summaries from Game).

Only a service token with the dedicated `email.system_mail` scope may call it (the portal
grants it by client credentials to `veze-game-service`, see config/oauth_clients.json); it
delivers to mailboxes of the local domain only, never outwards. The sender is fixed here
(`noreply@<domain>` with the caller's display name), so a service cannot pose as a person.

Delivery is idempotent by Message-ID: a caller that retries after a lost answer sends the same
`message_id`, and the store's duplicate guard files it once (`duplicate: true`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from VEZEPyCore.auth.deps import scope_dependency, verifier_on_state
from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import NotFound
from VEZEPyEmail.app.deps import SettingsDep
from VEZEPyEmail.app.security import normalise_local_address
from VEZEPyEmail.services.delivery.local import deliver_local, local_mailbox_exists

#: Service scope: deliver system mail (notifications) to local mailboxes.
SYSTEM_MAIL_SCOPE = "email.system_mail"
MAX_TEXT_CHARS = 20_000

SystemMailPrincipal = Annotated[
    Principal, Depends(scope_dependency(verifier_on_state, SYSTEM_MAIL_SCOPE))
]

router = APIRouter(prefix="/internal/mail", tags=["internal"])


class SystemMailCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=3, max_length=320)
    subject: str = Field(min_length=1, max_length=200, pattern=r"^[^\r\n\x00]+$")
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    #: RFC 5322 3.6.4 msg-id, chosen by the caller and kept across its retries.
    message_id: str = Field(pattern=r"^<[A-Za-z0-9._%+=-]{1,100}@[A-Za-z0-9.-]{1,100}>$")
    from_name: str = Field("VEZE", min_length=1, max_length=60, pattern=r"^[A-Za-z0-9 .'-]+$")


class SystemMailRead(BaseModel):
    address: str
    message_id: str
    #: False when the recipient's own rules filed it nowhere (discarded or redirected).
    delivered: bool
    duplicate: bool


def build_system_message(body: SystemMailCreate, *, to: str, domain: str) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = f"{body.from_name} <noreply@{domain}>"
    message["To"] = to
    message["Subject"] = body.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = body.message_id
    # RFC 3834: machine-made, so vacation responders and auto-replies leave it alone.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body.text)
    return message.as_bytes()


@router.post(
    "/deliver",
    response_model=SystemMailRead,
    status_code=status.HTTP_201_CREATED,
    summary="Deliver a system message to a local mailbox (service scope email.system_mail)",
    responses={
        200: {"description": "Already delivered (same Message-ID): nothing new stored"},
        400: {"description": "Not an address of the local domain"},
        403: {"description": "The token lacks `email.system_mail`"},
        404: {"description": "No such mailbox"},
    },
)
async def deliver_system_mail(
    body: SystemMailCreate,
    _principal: SystemMailPrincipal,
    request: Request,
    settings: SettingsDep,
    response: Response,
) -> SystemMailRead:
    """Store a plain-text message from `noreply@<domain>` in the recipient's mailbox."""
    address = normalise_local_address(body.to, settings.mail_domain)
    state = request.app.state
    if not await local_mailbox_exists(state, address):
        raise NotFound(f"no mailbox {address}")
    delivered = await deliver_local(
        state,
        raw=build_system_message(body, to=address, domain=settings.mail_domain),
        envelope_from=f"noreply@{settings.mail_domain}",
        recipients=[address],
    )
    duplicate = bool(delivered) and all(item.duplicate for item in delivered)
    if duplicate:
        response.status_code = status.HTTP_200_OK
    return SystemMailRead(
        address=address,
        message_id=body.message_id,
        delivered=bool(delivered),
        duplicate=duplicate,
    )
