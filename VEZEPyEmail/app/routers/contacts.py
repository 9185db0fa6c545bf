"""Address autocompletion for composing (scope `email.read`): the caller's own mail only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from VEZEPyCore.errors import Forbidden
from VEZEPyEmail.app.deps import ConnectionDep, SettingsDep
from VEZEPyEmail.app.security import MAILBOX_REFUSALS, ReadPrincipal, normalise_local_address
from VEZEPyEmail.services.contacts import service
from VEZEPyEmail.services.contacts.schemas import ContactList
from VEZEPyEmail.services.messages.service import mailbox_id_for

router = APIRouter(prefix="/api/contacts", tags=["contacts"], responses=MAILBOX_REFUSALS)


@router.get("", response_model=ContactList, summary="Suggest addresses seen in the caller's mail")
async def list_contacts(
    principal: ReadPrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=100, description="Prefix of an address or name")] = "",
    limit: Annotated[int, Query(ge=1, le=service.MAX_RESULTS)] = 10,
) -> ContactList:
    """Prefix match on the address or a word of the name; most frequent first."""
    if not principal.address:
        raise Forbidden("this token speaks for no mailbox")
    address = normalise_local_address(principal.address, settings.mail_domain)
    mailbox_id = await mailbox_id_for(connection, address=address)
    contacts = await service.suggest(
        connection, mailbox_id=mailbox_id, own=address, query=q, limit=limit
    )
    return ContactList(contacts=contacts)
