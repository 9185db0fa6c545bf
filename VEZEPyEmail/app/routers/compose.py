"""Composing over HTTP: drafts, sending, and reply/forward prefills.

Drafts and sending need `email.send`; prefills only read (`email.read`). From is always the
token's own address. Ids of another user's drafts or messages answer 404. A draft keeps its id
across `PUT`s (autosave), and is purged when sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import NotFound
from VEZEPyCore.security.ratelimit import RateLimiter
from VEZEPyEmail.app.deps import (
    BlobsDep,
    BusDep,
    ConnectionDep,
    MessageIdPath,
    SessionDep,
    SettingsDep,
)
from VEZEPyEmail.app.security import ReadPrincipal, SendPrincipal
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.compose import drafts, flows, service
from VEZEPyEmail.services.compose.build import Composition, build_message, render
from VEZEPyEmail.services.compose.errors import ComposeInvalid
from VEZEPyEmail.services.compose.schemas import (
    ComposeLimitsRead,
    ComposeRead,
    DraftRead,
    MessageCompose,
    SendRead,
)
from VEZEPyEmail.services.compose.service import Sender
from VEZEPyEmail.services.compose.source import StoredMessage, load_message
from VEZEPyEmail.services.store.blobs import BlobStore
from VEZEPyEmail.services.uploads.store import UploadStore
from VEZEPyEmail.streaming.events import publish_mail_event

#: Beyond the services' 1 MiB default: a message's text and HTML bodies may each hold
#: `MAX_TEXT` characters; the message itself is then held to `max_message_bytes`.
COMPOSE_BODY_CEILING = 64 * 1024 * 1024
router = APIRouter(tags=["compose"], max_body_size=COMPOSE_BODY_CEILING)

MessageId = MessageIdPath
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such draft or message of the caller's"},
    422: {"description": "A field is invalid: `field` names it (e.g. `to[1]`, `attachments`)"},
}


def _uploads(request: Request) -> UploadStore:
    store: UploadStore = request.app.state.uploads
    return store


async def _rate_limit(request: Request, settings: EmailSettings, address: str) -> None:
    limiter: RateLimiter = request.app.state.send_limiter
    decision = await limiter.hit(
        f"send:{address}",
        limit=settings.send_rate_limit,
        window_seconds=settings.send_rate_window_seconds,
    )
    decision.raise_if_refused("messages sent")


async def _own_draft(
    connection: ConnectionDep, blobs: BlobStore, principal: Principal, draft_id: int
) -> StoredMessage:
    draft = await load_message(connection, blobs, message_id=draft_id, principal=principal)
    if not draft.row["draft"] or draft.address != (principal.address or "").lower():
        raise NotFound("no such draft")
    return draft


async def _draft_message(
    request: Request,
    connection: AsyncConnection,
    blobs: BlobStore,
    principal: Principal,
    body: MessageCompose,
    settings: EmailSettings,
) -> tuple[Sender, bytes]:
    """The caller's mailbox and the draft's raw bytes (From is always the caller)."""
    sender = await service.sender_of(connection, principal=principal, settings=settings)
    composition = await service.compose(
        connection,
        blobs,
        _uploads(request),
        principal=principal,
        sender=sender,
        body=body,
        settings=settings,
        for_sending=False,
    )
    return sender, _draft_bytes(composition, settings)


def _draft_bytes(composition: Composition, settings: EmailSettings) -> bytes:
    raw = render(
        build_message(composition, date=datetime.now(UTC), message_id=None, include_bcc=True)
    )
    if len(raw) > settings.max_message_bytes:
        raise ComposeInvalid(
            "attachments",
            f"attachments: the draft would exceed {settings.max_message_bytes} bytes",
            code="message_too_large",
        )
    return raw


async def _draft_read(
    request: Request, draft_id: int, body: MessageCompose, owner: str
) -> DraftRead:
    return DraftRead(
        id=draft_id,
        to=body.to,
        cc=body.cc,
        bcc=body.bcc,
        subject=body.subject,
        text=body.text,
        html=body.html,
        attachments=await service.upload_reads(
            _uploads(request), owner=owner, ids=body.attachments
        ),
        in_reply_to=body.in_reply_to,
        forward_of=body.forward_of,
    )


@router.get("/api/compose/limits", response_model=ComposeLimitsRead, summary="Limits of composing")
async def get_compose_limits(principal: ReadPrincipal, settings: SettingsDep) -> ComposeLimitsRead:
    """So a composer can say "too big" before uploading, not after."""
    return ComposeLimitsRead(
        max_message_bytes=settings.max_message_bytes,
        upload_max_bytes=min(settings.upload_max_bytes, settings.max_message_bytes),
        max_recipients=settings.max_recipients,
        upload_ttl_seconds=settings.upload_ttl_seconds,
        send_rate_limit=settings.send_rate_limit,
        send_rate_window_seconds=settings.send_rate_window_seconds,
    )


@router.post(
    "/api/drafts",
    response_model=DraftRead,
    status_code=status.HTTP_201_CREATED,
    summary="Save a new draft",
    responses=ERRORS,
)
async def create_draft(
    request: Request,
    body: MessageCompose,
    principal: SendPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    blobs: BlobsDep,
    bus: BusDep,
) -> DraftRead:
    """Stored as a message in Drafts with \\Draft; attachments are embedded, so the uploads
    may expire. Recipients may be empty; each given address must be valid."""
    connection = await session.connection()
    sender, raw = await _draft_message(request, connection, blobs, principal, body, settings)
    draft_id = await drafts.create_draft(
        session, blobs, mailbox_id=sender.mailbox_id, raw=raw, address=sender.address
    )
    await session.commit()
    await publish_mail_event(
        bus, sender.address, "message.created", id=draft_id, folder=drafts.DRAFTS
    )
    return await _draft_read(request, draft_id, body, sender.address)


@router.get(
    "/api/drafts/{draft_id}", response_model=DraftRead, summary="Read a draft", responses=ERRORS
)
async def get_draft(
    request: Request,
    draft_id: MessageId,
    principal: SendPrincipal,
    connection: ConnectionDep,
    blobs: BlobsDep,
) -> DraftRead:
    """The editable fields; attachments come back as fresh uploads of the caller."""
    draft = await _own_draft(connection, blobs, principal, draft_id)
    return await service.draft_fields(draft, _uploads(request))


@router.put(
    "/api/drafts/{draft_id}",
    response_model=DraftRead,
    summary="Replace a draft (autosave); the id stays the same",
    responses=ERRORS,
)
async def replace_draft(
    request: Request,
    draft_id: MessageId,
    body: MessageCompose,
    principal: SendPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    blobs: BlobsDep,
    bus: BusDep,
) -> DraftRead:
    connection = await session.connection()
    await _own_draft(connection, blobs, principal, draft_id)
    sender, raw = await _draft_message(request, connection, blobs, principal, body, settings)
    await drafts.replace_draft(
        session, blobs, draft_id=draft_id, mailbox_id=sender.mailbox_id, raw=raw
    )
    await session.commit()
    await publish_mail_event(
        bus, sender.address, "message.updated", id=draft_id, folder=drafts.DRAFTS
    )
    return await _draft_read(request, draft_id, body, sender.address)


@router.delete(
    "/api/drafts/{draft_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Discard a draft",
    responses=ERRORS,
)
async def delete_draft(
    draft_id: MessageId,
    principal: SendPrincipal,
    session: SessionDep,
    blobs: BlobsDep,
    bus: BusDep,
) -> Response:
    draft = await _own_draft(await session.connection(), blobs, principal, draft_id)
    await drafts.remove_draft(session, draft_id=draft_id)
    await session.commit()
    await publish_mail_event(bus, draft.address, "message.removed", id=draft_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/drafts/{draft_id}/send",
    response_model=SendRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a saved draft",
    responses={**ERRORS, 429: {"description": "Too many messages sent; see Retry-After"}},
)
async def send_draft(
    request: Request,
    draft_id: MessageId,
    principal: SendPrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    blobs: BlobsDep,
) -> SendRead:
    """As `POST /api/send` with the draft's fields; the draft is purged once sent."""
    draft = await _own_draft(connection, blobs, principal, draft_id)
    sender = await service.sender_of(connection, principal=principal, settings=settings)
    await _rate_limit(request, settings, sender.address)
    composition = service.composition_of_draft(draft, sender)
    await connection.rollback()  # no read transaction held open across the deliveries
    return await flows.send_composition(
        request.app.state,
        composition=composition,
        sender=sender,
        fields=service.composition_fields(composition),
        draft_id=draft_id,
    )


@router.post(
    "/api/send",
    response_model=SendRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a message",
    responses={**ERRORS, 429: {"description": "Too many messages sent; see Retry-After"}},
)
async def send_message(
    request: Request,
    body: MessageCompose,
    principal: SendPrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    blobs: BlobsDep,
) -> SendRead:
    """Local recipients get it now (`delivered`), remote ones through the outbound queue
    (`queued`, DKIM-signed on the way out); a copy lands in the sender's Sent folder. An
    unknown local recipient is refused (422) before anything is sent."""
    sender = await service.sender_of(connection, principal=principal, settings=settings)
    await _rate_limit(request, settings, sender.address)
    composition = await service.compose(
        connection,
        blobs,
        _uploads(request),
        principal=principal,
        sender=sender,
        body=body,
        settings=settings,
        for_sending=True,
    )
    await connection.rollback()
    return await flows.send_composition(
        request.app.state,
        composition=composition,
        sender=sender,
        fields=service.request_fields(body),
        used_uploads=list(body.attachments),
    )


@router.get(
    "/api/messages/{message_id}/reply",
    response_model=ComposeRead,
    summary="Prefilled fields of a reply (not saved)",
    responses=ERRORS,
)
async def reply_prefill(
    message_id: MessageId,
    principal: ReadPrincipal,
    connection: ConnectionDep,
    blobs: BlobsDep,
    reply_all: Annotated[
        bool, Query(alias="all", description="Reply to all: add the other recipients")
    ] = False,
) -> ComposeRead:
    """ "Re: " once, the original quoted under "On <date>, <sender> wrote:"; reply-all leaves
    out the caller and duplicates. Send with `in_reply_to` for In-Reply-To/References."""
    original = await load_message(connection, blobs, message_id=message_id, principal=principal)
    return await service.reply_fields(original, own=original.address, reply_all=reply_all)


@router.get(
    "/api/messages/{message_id}/forward",
    response_model=ComposeRead,
    summary="Prefilled fields of a forward (not saved)",
    responses=ERRORS,
)
async def forward_prefill(
    request: Request,
    message_id: MessageId,
    principal: ReadPrincipal,
    connection: ConnectionDep,
    blobs: BlobsDep,
) -> ComposeRead:
    """ "Fwd: " once, the original inline and quoted, its attachments as the caller's uploads."""
    original = await load_message(connection, blobs, message_id=message_id, principal=principal)
    return await service.forward_fields(original, _uploads(request), own=original.address)
