"""One message: detail, raw source, attachments, and the changes a mail client makes.

Every route loads the message with its mailbox and answers 404 unless the token speaks for
that mailbox, so another user's message ids are indistinguishable from missing ones.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.events.bus import EventBus
from VEZEPyEmail.app.deps import BlobsDep, BusDep, ConnectionDep, MessageIdPath, SessionDep
from VEZEPyEmail.app.security import MAILBOX_REFUSALS, ReadPrincipal
from VEZEPyEmail.services.messages import actions, detail, service
from VEZEPyEmail.services.messages.schemas import (
    FlagsUpdate,
    FolderTarget,
    MessageDeleteRead,
    MessageDetailRead,
    MessageRead,
)
from VEZEPyEmail.streaming.events import publish_mail_event

router = APIRouter(prefix="/api/messages", tags=["messages"], responses=MAILBOX_REFUSALS)


@router.get("/{message_id}", response_model=MessageDetailRead, summary="Read one message")
async def get_message_detail(
    message_id: MessageIdPath, principal: ReadPrincipal, connection: ConnectionDep, blobs: BlobsDep
) -> MessageDetailRead:
    """Headers, plain text, sanitised HTML (remote images marked) and the attachment list."""
    owned = await detail.load_owned(connection, message_id=message_id, principal=principal)
    return await detail.read_detail(blobs, owned)


@router.get(
    "/{message_id}/raw",
    response_class=Response,
    summary="Download the message source (.eml)",
    responses={200: {"content": {"message/rfc822": {}}}},
)
async def get_message_raw(
    message_id: MessageIdPath, principal: ReadPrincipal, connection: ConnectionDep, blobs: BlobsDep
) -> Response:
    owned = await detail.load_owned(connection, message_id=message_id, principal=principal)
    raw = await detail.raw_bytes(blobs, owned.row)
    return Response(
        raw,
        media_type="message/rfc822",
        headers=detail.attachment_headers(f"message-{message_id}.eml"),
    )


@router.get(
    "/{message_id}/attachments/{index}",
    response_class=Response,
    summary="Download one attachment",
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def get_attachment(
    message_id: MessageIdPath,
    index: int,
    principal: ReadPrincipal,
    connection: ConnectionDep,
    blobs: BlobsDep,
) -> Response:
    owned = await detail.load_owned(connection, message_id=message_id, principal=principal)
    item = await detail.read_attachment(blobs, owned, index)
    return Response(
        item.data, media_type=item.content_type, headers=detail.attachment_headers(item.filename)
    )


async def _owned_mailbox(
    session: AsyncSession, principal: Principal, message_id: int
) -> detail.OwnedMessage:
    return await detail.load_owned(
        await session.connection(), message_id=message_id, principal=principal
    )


async def _read_back(session: AsyncSession, message_id: int) -> MessageRead:
    message, _address = await service.get_message(await session.connection(), message_id=message_id)
    return message


async def _updated(bus: EventBus, address: str, message: MessageRead, folder: str) -> None:
    await publish_mail_event(
        bus,
        address,
        "message.updated",
        id=message.id,
        folder=folder,
        unread=message.unread,
        flags=message.flags,
    )


@router.post("/{message_id}/move", response_model=MessageRead, summary="Move to another folder")
async def move_message(
    message_id: MessageIdPath,
    body: FolderTarget,
    principal: ReadPrincipal,
    session: SessionDep,
    bus: BusDep,
) -> MessageRead:
    owned = await _owned_mailbox(session, principal, message_id)
    folder = await actions.move_message(
        session, message_id=message_id, mailbox_id=owned.row["mailbox_id"], folder=body.folder
    )
    await session.commit()
    message = await _read_back(session, message_id)
    await _updated(bus, owned.address, message, folder)
    return message


@router.post(
    "/{message_id}/copy",
    response_model=MessageRead,
    status_code=201,
    summary="Copy into another folder",
)
async def copy_message(
    message_id: MessageIdPath,
    body: FolderTarget,
    principal: ReadPrincipal,
    session: SessionDep,
    bus: BusDep,
) -> MessageRead:
    owned = await _owned_mailbox(session, principal, message_id)
    copy_id = await actions.copy_message(
        session, message_id=message_id, mailbox_id=owned.row["mailbox_id"], folder=body.folder
    )
    await session.commit()
    message = await _read_back(session, copy_id)
    await publish_mail_event(
        bus,
        owned.address,
        "message.created",
        id=copy_id,
        folder=body.folder.strip(),
        subject=message.subject,
        **{"from": message.from_},
    )
    return message


@router.post("/{message_id}/flags", response_model=MessageRead, summary="Add or remove flags")
async def change_flags(
    message_id: MessageIdPath,
    body: FlagsUpdate,
    principal: ReadPrincipal,
    session: SessionDep,
    bus: BusDep,
) -> MessageRead:
    owned = await _owned_mailbox(session, principal, message_id)
    await actions.change_flags(
        session, message_id=message_id, add=list(body.add), remove=list(body.remove)
    )
    await session.commit()
    message = await _read_back(session, message_id)
    await _updated(bus, owned.address, message, str(owned.row["folder"]))
    return message


@router.delete(
    "/{message_id}",
    response_model=MessageDeleteRead,
    summary="Delete: move to Trash, or purge when already in Trash",
)
async def delete_message(
    message_id: MessageIdPath, principal: ReadPrincipal, session: SessionDep, bus: BusDep
) -> MessageDeleteRead:
    owned = await _owned_mailbox(session, principal, message_id)
    purged = await actions.delete_message(session, message_id=message_id)
    await session.commit()
    if purged:
        await publish_mail_event(bus, owned.address, "message.removed", id=message_id)
        return MessageDeleteRead(id=message_id, purged=True, folder=None)
    message = await _read_back(session, message_id)
    await _updated(bus, owned.address, message, "Trash")
    return MessageDeleteRead(id=message_id, purged=False, folder="Trash")
