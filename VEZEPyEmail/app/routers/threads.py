"""Conversations: every message of one thread in the caller's mailbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from VEZEPyEmail.app.deps import ConnectionDep, SettingsDep
from VEZEPyEmail.app.security import (
    MAILBOX_REFUSALS,
    ReadPrincipal,
    authorize_mailbox,
    normalise_local_address,
)
from VEZEPyEmail.services.messages.service import mailbox_id_for
from VEZEPyEmail.services.threads import service
from VEZEPyEmail.services.threads.schemas import ThreadRead

router = APIRouter(prefix="/api/threads", tags=["threads"], responses=MAILBOX_REFUSALS)


@router.get(
    "/{thread_id:path}",
    response_model=ThreadRead,
    summary="A conversation's messages in your mailbox, oldest first",
)
async def get_thread(
    thread_id: Annotated[
        str,
        Path(
            min_length=1,
            max_length=998,
            description="The thread_id of a message (percent-encoded; angle brackets optional)",
        ),
    ],
    principal: ReadPrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    user: Annotated[
        str | None, Query(max_length=320, description="Mailbox address (default: the token's own)")
    ] = None,
    include_trash: Annotated[bool, Query(description="Also list messages in Trash")] = False,
) -> ThreadRead:
    """Another user's conversation is a 404, like a missing one."""
    address = normalise_local_address(user or principal.address or "", settings.mail_domain)
    authorize_mailbox(principal, address)
    mailbox_id = await mailbox_id_for(connection, address=address)
    normalised = service.normalise_thread_id(thread_id)
    messages = await service.thread_messages(
        connection, mailbox_id=mailbox_id, thread_id=normalised, include_trash=include_trash
    )
    return ThreadRead(user=address, thread_id=normalised, messages=messages)
