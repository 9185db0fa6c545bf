"""The brief's message API: list, mark read, star, label, and the HTML row partial."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import NotFound
from VEZEPyCore.web.templates import render
from VEZEPyEmail.app.deps import BusDep, ConnectionDep, MessageIdPath, SessionDep, SettingsDep
from VEZEPyEmail.app.security import (
    MAILBOX_REFUSALS,
    ReadPrincipal,
    authorize_mailbox,
    can_access,
    normalise_local_address,
)
from VEZEPyEmail.services.messages import service
from VEZEPyEmail.services.messages.fast_list import FastMessageList
from VEZEPyEmail.services.messages.schemas import (
    LabelsUpdate,
    MessagePage,
    MessageRead,
    ReadUpdate,
    StarUpdate,
)
from VEZEPyEmail.streaming.events import publish_mail_event

router = APIRouter(prefix="/api/messages", tags=["messages"], responses=MAILBOX_REFUSALS)


@router.get(
    "",
    response_model=MessagePage,
    # No next page: exactly the contract's shape (Game's proxy validates against it).
    response_model_exclude_none=True,
    summary="List or search a mailbox's messages, newest first",
)
async def list_messages(
    request: Request,
    principal: ReadPrincipal,
    settings: SettingsDep,
    user: Annotated[str, Query(min_length=3, max_length=320, description="Mailbox address")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    q: Annotated[str | None, Query(max_length=service.MAX_QUERY_LENGTH)] = None,
    folder: Annotated[str, Query(min_length=1, max_length=128)] = "INBOX",
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
) -> MessagePage | Response:
    address = normalise_local_address(user, settings.mail_domain)
    authorize_mailbox(principal, address)
    query = q.strip() if q else None
    fast: FastMessageList | None = request.app.state.fast_message_list
    if fast is not None and not query and folder != "*":
        body = fast.page_json(
            address=address, folder=folder, limit=limit, offset=offset, cursor=cursor
        )
        return Response(body, media_type="application/json")
    # Opened here, not as a dependency: the fast path above needs no pooled connection.
    async with request.app.state.engine.connect() as connection:
        messages, next_cursor = await service.list_page(
            connection,
            address=address,
            folder=folder,
            limit=limit,
            offset=offset,
            query=query,
            cursor=cursor,
        )
    return MessagePage(user=address, messages=messages, next_cursor=next_cursor)


async def _change(
    session: SessionDep,
    bus: BusDep,
    principal: Principal,
    message_id: int,
    values: dict[str, Any],
) -> MessageRead:
    address = await service.owner_of(session, message_id=message_id)
    if not can_access(principal, address):
        raise NotFound("no such message")  # do not reveal other people's message ids
    await service.update_message(session, message_id=message_id, values=values)
    await session.commit()
    message, _ = await service.get_message(await session.connection(), message_id=message_id)
    await publish_mail_event(
        bus, address, "message.updated", id=message_id, unread=message.unread, flags=message.flags
    )
    return message


@router.post("/{message_id}/read", response_model=MessageRead, summary="Mark read or unread")
async def mark_read(
    message_id: MessageIdPath,
    principal: ReadPrincipal,
    session: SessionDep,
    bus: BusDep,
    body: ReadUpdate | None = None,
) -> MessageRead:
    read = body.read if body is not None else True
    return await _change(session, bus, principal, message_id, {"seen": read})


@router.post("/{message_id}/star", response_model=MessageRead, summary="Flag or unflag")
async def star_message(
    message_id: MessageIdPath,
    principal: ReadPrincipal,
    session: SessionDep,
    bus: BusDep,
    body: StarUpdate | None = None,
) -> MessageRead:
    starred = body.starred if body is not None else True
    return await _change(session, bus, principal, message_id, {"flagged": starred})


@router.post("/{message_id}/labels", response_model=MessageRead, summary="Replace the labels")
async def set_labels(
    message_id: MessageIdPath,
    body: LabelsUpdate,
    principal: ReadPrincipal,
    session: SessionDep,
    bus: BusDep,
) -> MessageRead:
    return await _change(session, bus, principal, message_id, {"labels": body.labels})


@router.get(
    "/{message_id}/row",
    response_class=HTMLResponse,
    summary="The message's row in the inbox list (HTML partial)",
)
async def message_row(
    message_id: MessageIdPath, principal: ReadPrincipal, connection: ConnectionDep, request: Request
) -> HTMLResponse:
    message, address = await service.get_message(connection, message_id=message_id)
    if not can_access(principal, address):
        raise NotFound("no such message")
    return render(request, "_message_row.html", {"message": message})
