"""Mailbox provisioning, called by the portal with its service token."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from VEZEPyEmail.app.deps import BusDep, SessionDep, SettingsDep
from VEZEPyEmail.app.security import AdminPrincipal, normalise_local_address
from VEZEPyEmail.services.mailboxes import service
from VEZEPyEmail.services.mailboxes.schemas import MailboxCreate, MailboxRead
from VEZEPyEmail.streaming.events import publish_mail_event

router = APIRouter(prefix="/api/mailboxes", tags=["mailboxes"])


@router.post(
    "",
    response_model=MailboxRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a mailbox (idempotent: 200 when it already exists)",
)
async def create_mailbox(
    body: MailboxCreate,
    _principal: AdminPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    bus: BusDep,
    response: Response,
) -> MailboxRead:
    address = normalise_local_address(body.address, settings.mail_domain)
    result = await service.ensure_mailbox(
        session,
        address=address,
        display_name=body.display_name.strip(),
        domain=settings.mail_domain,
    )
    await session.commit()
    if result.created:
        await publish_mail_event(bus, address, "message.created", folder="INBOX")
    else:
        response.status_code = status.HTTP_200_OK
    return MailboxRead(
        address=result.mailbox.address,
        display_name=result.mailbox.display_name,
        created_at=result.mailbox.created_at,
        created=result.created,
    )
