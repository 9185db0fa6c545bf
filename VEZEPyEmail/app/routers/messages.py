"""The brief's message API: list, mark read, star, label, and the HTML row partial.

The list has a fast lane in front of FastAPI's dependency solving (ADR 0021): a plain page
requested with a good bearer is answered from the inline reader straight away; every other
request (and every refusal) goes through the declared route below.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

from VEZEPyCore.auth import scopes
from VEZEPyCore.auth.deps import bearer_token
from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.auth.tokens import TokenVerifier
from VEZEPyCore.errors import AppError, NotFound
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


#: The list's query bounds: the route declares them and its fast lane keeps to them.
USER_LENGTH = (3, 320)
LIMIT_RANGE = (1, 200)
OFFSET_RANGE = (0, 1_000_000)
FOLDER_LENGTH = (1, 128)
CURSOR_MAX_LENGTH = 200
DEFAULT_LIMIT = 50
DEFAULT_FOLDER = "INBOX"


async def list_messages(
    request: Request,
    principal: ReadPrincipal,
    settings: SettingsDep,
    user: Annotated[
        str,
        Query(min_length=USER_LENGTH[0], max_length=USER_LENGTH[1], description="Mailbox address"),
    ],
    limit: Annotated[int, Query(ge=LIMIT_RANGE[0], le=LIMIT_RANGE[1])] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=OFFSET_RANGE[0], le=OFFSET_RANGE[1])] = 0,
    q: Annotated[str | None, Query(max_length=service.MAX_QUERY_LENGTH)] = None,
    folder: Annotated[
        str, Query(min_length=FOLDER_LENGTH[0], max_length=FOLDER_LENGTH[1])
    ] = DEFAULT_FOLDER,
    cursor: Annotated[
        str | None,
        Query(max_length=CURSOR_MAX_LENGTH, description="next_cursor of the previous page"),
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


_PAGE_PARAMETERS = frozenset({"user", "limit", "offset", "folder", "cursor"})


def _whole_number(text: str, bounds: tuple[int, int]) -> int | None:
    """`text` as an int within `bounds`, if it is written the one plain way (else None)."""
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
        return None
    value = int(text)
    return value if bounds[0] <= value <= bounds[1] else None


def _within(text: str, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= len(text) <= bounds[1]


def _plain_page_query(query_string: bytes) -> dict[str, Any] | None:
    """The arguments of a plain folder page, or None for anything the lane leaves to the
    route: a search, an unknown or repeated parameter, a value the route would refuse."""
    # Decoded as Starlette decodes `request.query_params`, so both read the same values.
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    given = dict(pairs)
    if len(given) != len(pairs) or not given.keys() <= {
        "user",
        "limit",
        "offset",
        "folder",
        "cursor",
    }:
        return None
    user = given.get("user")
    folder = given.get("folder", DEFAULT_FOLDER)
    cursor = given.get("cursor")
    limit = _whole_number(given["limit"], LIMIT_RANGE) if "limit" in given else DEFAULT_LIMIT
    offset = _whole_number(given["offset"], OFFSET_RANGE) if "offset" in given else 0
    if (
        user is None
        or not _within(user, USER_LENGTH)
        or not _within(folder, FOLDER_LENGTH)
        or folder == "*"
        or (cursor is not None and len(cursor) > CURSOR_MAX_LENGTH)
        or limit is None
        or offset is None
    ):
        return None
    return {"user": user, "folder": folder, "limit": limit, "offset": offset, "cursor": cursor}


async def _fast_lane(request: Request) -> Response | None:
    """The answer to a plain page asked with a good bearer, or None to let the route answer.

    The same checks as the route's dependencies (bearer, signature and claims, `email.read`,
    the mailbox's owner or `email.admin`) and the same `page_json`; it never refuses by
    itself, so every error still comes from the declared route.
    """
    fast: FastMessageList | None = request.app.state.fast_message_list
    if fast is None or "authorization" not in request.headers:
        return None
    arguments = _plain_page_query(request.scope["query_string"])
    if arguments is None:
        return None
    verifier: TokenVerifier = request.app.state.verifier
    try:
        token = bearer_token(request)
        if token is None:
            return None
        principal = await verifier.verify(token)
        if not principal.has_scopes(scopes.EMAIL_READ):
            return None
        address = normalise_local_address(
            arguments.pop("user"), request.app.state.settings.mail_domain
        )
        if not can_access(principal, address):
            return None
        body = fast.page_json(address=address, **arguments)
    except AppError:
        return None
    return Response(body, media_type="application/json")


class _MessageListRoute(APIRoute):
    """`GET /api/messages` with the fast lane in front of its dependencies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        declared = super().get_route_handler()

        async def handler(request: Request) -> Response:
            answer = await _fast_lane(request)
            return answer if answer is not None else await declared(request)

        return handler


router.add_api_route(
    "",
    list_messages,
    methods=["GET"],
    response_model=MessagePage,
    # No next page: exactly the contract's shape (Game's proxy validates against it).
    response_model_exclude_none=True,
    summary="List or search a mailbox's messages, newest first",
    route_class_override=_MessageListRoute,
)


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
