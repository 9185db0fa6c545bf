"""Composing over HTTP: drafts, sending, and reply/forward prefills.

Drafts and sending need `email.send`; prefills only read (`email.read`). From is always the
token's own address. Ids of another user's drafts or messages answer 404. A draft keeps its id
across `PUT`s (autosave), and is purged when sent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status

from VEZEPyCore.web.openapi import refusal
from VEZEPyEmail.app.deps import BlobsDep, ConnectionDep, MessageIdPath, SessionDep, SettingsDep
from VEZEPyEmail.app.security import ReadPrincipal, SendPrincipal
from VEZEPyEmail.services.compose import flows, idempotency, service
from VEZEPyEmail.services.compose.schemas import (
    ComposeLimitsRead,
    ComposeRead,
    DraftRead,
    MessageCompose,
    SendRead,
)
from VEZEPyEmail.services.compose.source import load_message
from VEZEPyEmail.services.uploads.store import UploadStore

#: Beyond the services' 1 MiB default: a message's text and HTML bodies may each hold
#: `MAX_TEXT` characters; the message itself is then held to `max_message_bytes`.
COMPOSE_BODY_CEILING = 64 * 1024 * 1024
router = APIRouter(tags=["compose"], max_body_size=COMPOSE_BODY_CEILING)

MessageId = MessageIdPath
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such draft or message of the caller's"},
    422: {"description": "A field is invalid: `field` names it (e.g. `to[1]`, `attachments`)"},
}
KEY_REFUSAL = "the Idempotency-Key header is not 1-255 visible ASCII characters"
DRAFT_SEND_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    400: refusal(KEY_REFUSAL[0].upper() + KEY_REFUSAL[1:]),
    409: refusal("A send with this Idempotency-Key is still in progress"),
    422: {
        "description": "A field is invalid (`field` names it), or the Idempotency-Key was "
        "already used for a different request (`idempotency_key_reused`)"
    },
    429: {"description": "Too many messages sent; see Retry-After"},
}
SEND_ERRORS = {**DRAFT_SEND_ERRORS, 400: refusal(f"The body could not be parsed, or {KEY_REFUSAL}")}
REPLAYED = "Idempotent-Replayed"
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description="Makes the send safe to retry: the same key (per user, for 24 hours) "
        "returns the first result, with `Idempotent-Replayed: true`, and sends nothing again; "
        "the same key with a different request is refused with 422.",
    ),
]


def _uploads(request: Request) -> UploadStore:
    store: UploadStore = request.app.state.uploads
    return store


def _sent(response: Response, outcome: flows.SendOutcome) -> SendRead:
    if outcome.replayed:
        response.headers[REPLAYED] = "true"
    return outcome.result


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
    request: Request, body: MessageCompose, principal: SendPrincipal, session: SessionDep
) -> DraftRead:
    """Stored as a message in Drafts with \\Draft; attachments are embedded, so the uploads
    may expire. Recipients may be empty; each given address must be valid."""
    return await flows.save_draft(request.app.state, session, principal=principal, body=body)


@router.get(
    "/api/drafts/{draft_id}", response_model=DraftRead, summary="Read a draft", responses=ERRORS
)
async def get_draft(request: Request, draft_id: MessageId, principal: SendPrincipal) -> DraftRead:
    """The editable fields; attachments come back as fresh uploads of the caller."""
    return await flows.read_draft(request.app.state, principal=principal, draft_id=draft_id)


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
) -> DraftRead:
    """The draft's new content (autosave); its id stays the same."""
    return await flows.save_draft(
        request.app.state, session, principal=principal, body=body, draft_id=draft_id
    )


@router.delete(
    "/api/drafts/{draft_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Discard a draft",
    responses=ERRORS,
)
async def delete_draft(
    request: Request, draft_id: MessageId, principal: SendPrincipal, session: SessionDep
) -> Response:
    """Purged, not moved to Trash."""
    await flows.discard_draft(request.app.state, session, principal=principal, draft_id=draft_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/drafts/{draft_id}/send",
    response_model=SendRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a saved draft",
    responses=DRAFT_SEND_ERRORS,
)
async def send_draft(
    request: Request,
    response: Response,
    draft_id: MessageId,
    principal: SendPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> SendRead:
    """As `POST /api/send` with the draft's fields; the draft is purged in the same
    transaction as the send, so a draft is sent once even when two requests race."""
    outcome = await flows.send_draft(
        request.app.state,
        principal=principal,
        draft_id=draft_id,
        idempotency_key=idempotency_key,
    )
    return _sent(response, outcome)


@router.post(
    "/api/send",
    response_model=SendRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a message",
    responses=SEND_ERRORS,
)
async def send_message(
    request: Request,
    response: Response,
    body: MessageCompose,
    principal: SendPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> SendRead:
    """Local recipients get it now (`delivered`), remote ones through the outbound queue
    (`queued`, DKIM-signed on the way out); a copy lands in the sender's Sent folder. All of
    it commits together or not at all. An unknown local recipient is refused (422) before
    anything is sent."""
    outcome = await flows.send_new(
        request.app.state, principal=principal, body=body, idempotency_key=idempotency_key
    )
    return _sent(response, outcome)


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
