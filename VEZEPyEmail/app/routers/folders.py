"""Folders of a mailbox: list with counts, create, rename, delete (messages go to Trash)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyCore.web.openapi import refusal
from VEZEPyEmail.app.deps import BusDep, ConnectionDep, SessionDep, SettingsDep
from VEZEPyEmail.app.security import (
    MAILBOX_REFUSALS,
    ReadPrincipal,
    authorize_mailbox,
    normalise_local_address,
)
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.folders import service
from VEZEPyEmail.services.folders.schemas import (
    FolderCreate,
    FolderDeleteRead,
    FolderList,
    FolderRead,
    FolderUpdate,
)
from VEZEPyEmail.services.messages.service import mailbox_id_for
from VEZEPyEmail.streaming.events import publish_mail_event

router = APIRouter(
    prefix="/api/folders",
    tags=["folders"],
    responses={
        **MAILBOX_REFUSALS,
        409: refusal("A folder of that name already exists"),
    },
)

UserQuery = Annotated[
    str | None,
    Query(max_length=320, description="Mailbox address (default: the token's own)"),
]


async def _mailbox(
    connection: AsyncConnection, principal: Principal, settings: EmailSettings, user: str | None
) -> tuple[str, int]:
    """The address and id of the mailbox the caller names (their own by default), or 403/404."""
    address = normalise_local_address(user or principal.address or "", settings.mail_domain)
    authorize_mailbox(principal, address)
    return address, await mailbox_id_for(connection, address=address)


@router.get("", response_model=FolderList, summary="List folders with total and unread counts")
async def list_folders(
    principal: ReadPrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    user: UserQuery = None,
) -> FolderList:
    address, mailbox_id = await _mailbox(connection, principal, settings, user)
    folders = await service.list_folders(connection, mailbox_id=mailbox_id)
    return FolderList(user=address, folders=folders)


@router.post(
    "",
    response_model=FolderRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a folder",
)
async def create_folder(
    body: FolderCreate,
    principal: ReadPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    bus: BusDep,
    user: UserQuery = None,
) -> FolderRead:
    await begin_as_writer(session)  # SQLite: read-then-write under a concurrent create fails
    address, mailbox_id = await _mailbox(await session.connection(), principal, settings, user)
    folder = await service.create_folder(session, mailbox_id=mailbox_id, name=body.name)
    await session.commit()
    await publish_mail_event(bus, address, "folder.created", folder=folder.name)
    return folder


@router.patch("/{name:path}", response_model=FolderRead, summary="Rename a folder")
async def rename_folder(
    name: str,
    body: FolderUpdate,
    principal: ReadPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    bus: BusDep,
    user: UserQuery = None,
) -> FolderRead:
    address, mailbox_id = await _mailbox(await session.connection(), principal, settings, user)
    folder = await service.rename_folder(
        session, mailbox_id=mailbox_id, name=name, new_name=body.name
    )
    await session.commit()
    await publish_mail_event(bus, address, "folder.renamed", folder=name, name=folder.name)
    return folder


@router.delete(
    "/{name:path}",
    response_model=FolderDeleteRead,
    summary="Delete a folder (its messages move to Trash)",
)
async def delete_folder(
    name: str,
    principal: ReadPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    bus: BusDep,
    user: UserQuery = None,
) -> FolderDeleteRead:
    address, mailbox_id = await _mailbox(await session.connection(), principal, settings, user)
    moved = await service.delete_folder(session, mailbox_id=mailbox_id, name=name)
    await session.commit()
    for message_id in moved:
        await publish_mail_event(bus, address, "message.updated", id=message_id, folder="Trash")
    await publish_mail_event(bus, address, "folder.removed", folder=name)
    return FolderDeleteRead(name=service.validate_name(name), moved_to_trash=len(moved))
