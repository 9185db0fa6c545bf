"""Webmail: the three-pane page and the HTML partials its script swaps in.

Pages and partials call the domain services directly (no HTTP to ourselves). The browser's
writes (flags, moves, folders) go to the JSON API with the session cookie and the CSRF header;
the only write here is the remote-image preference, a CSRF-checked form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyCore.auth import scopes
from VEZEPyCore.auth.deps import check_scopes
from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import BadRequest, NotFound, Unauthorized
from VEZEPyCore.security.csrf import csrf_token, require_csrf
from VEZEPyCore.web.sso import SignInRequired
from VEZEPyCore.web.sso.deps import current_path
from VEZEPyCore.web.sso.relying_party import RelyingParty
from VEZEPyCore.web.templates import render
from VEZEPyEmail.app.deps import BlobsDep, ConnectionDep, MessageIdPath, SessionDep
from VEZEPyEmail.app.security import authorize_mailbox, normalise_local_address
from VEZEPyEmail.services.folders import service as folders
from VEZEPyEmail.services.messages import detail
from VEZEPyEmail.services.messages.service import mailbox_id_for
from VEZEPyEmail.services.search.parser import MAX_QUERY_LENGTH
from VEZEPyEmail.services.store.blobs import BlobStore
from VEZEPyEmail.services.webmail import frame, images, listing, reader, sidebar, text

router = APIRouter(prefix="/ui/mail", tags=["pages"], include_in_schema=False)

THEME_COOKIE = "veze_webmail_theme"
THEMES = ("auto", "light", "dark")
#: The webmail's own pages: scripts and styles from this origin only, frames only our own
#: message frames, nothing inline.
PAGE_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
NO_STORE = {"Cache-Control": "no-store"}

FolderQuery = Annotated[str, Query(min_length=1, max_length=128)]
SearchText = Annotated[str | None, Query(max_length=MAX_QUERY_LENGTH)]
MessageIdQuery = Annotated[int | None, Query(ge=1, le=2**62)]
MessageId = MessageIdPath


@dataclass(frozen=True)
class Viewer:
    """The signed-in person whose mailbox the webmail shows (never anyone else's)."""

    principal: Principal
    address: str
    handle: str


async def _viewer(request: Request) -> Viewer:
    """The signed-in person; a page navigation goes to sign in, a script's fetch gets 401."""
    rp: RelyingParty = request.app.state.sso
    principal = await rp.principal(request)
    if principal is None:
        if request.headers.get("sec-fetch-dest", "document") == "document":
            raise SignInRequired(current_path(request))
        raise Unauthorized("the sign-in session has ended; reload the page to sign in again")
    check_scopes(principal, (scopes.EMAIL_READ,))
    settings = request.app.state.settings
    address = normalise_local_address(principal.address or "", settings.mail_domain)
    authorize_mailbox(principal, address)
    handle = str(principal.claims.get("preferred_username") or address)
    return Viewer(principal, address, handle)


ViewerDep = Annotated[Viewer, Depends(_viewer)]


def _theme(request: Request) -> str:
    theme = request.cookies.get(THEME_COOKIE, "auto")
    return theme if theme in THEMES else "auto"


def _partial(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    response = render(request, name, {**base_context(request), **context})
    response.headers.update(NO_STORE)
    return response


def base_context(request: Request) -> dict[str, Any]:
    return {
        "short_date": text.short_date,
        "human_size": text.human_size,
        "highlight": text.highlight,
        "plain_body": text.plain_body,
    }


async def page_context(
    request: Request,
    connection: ConnectionDep,
    blobs: BlobsDep,
    viewer: Viewer,
    *,
    folder: str,
    query: str | None,
    selected: int | None,
) -> dict[str, Any]:
    """Everything the full page renders: folders, the first page of the list, the reader."""
    folder = folders.validate_name(folder)
    query = query.strip() if query else None
    mailbox_id = await mailbox_id_for(connection, address=viewer.address)
    all_folders = await sidebar.sidebar_folders(connection, mailbox_id=mailbox_id)
    # A page shows what it can: a search it cannot run says why, a message that is not
    # there (or not this person's) is simply not opened.
    problem = None
    try:
        page = await listing.list_rows(
            connection, mailbox_id=mailbox_id, folder=folder, query=query
        )
    except BadRequest as exc:
        page, problem = listing.Page([], None), exc.detail
    reading = None
    if selected is not None:
        try:
            reading = await reader.read_message(
                connection,
                blobs,
                principal=viewer.principal,
                mailbox_id=mailbox_id,
                message_id=selected,
            )
        except NotFound:
            problem = "That message is not in your mailbox (any more)."
    inbox = next((item for item in all_folders if item.name == "INBOX"), None)
    return {
        **base_context(request),
        "address": viewer.address,
        "handle": viewer.handle,
        "portal_url": request.app.state.registry.public_url("portal"),
        "theme": _theme(request),
        "csrf": csrf_token(request),
        "folders": all_folders,
        "folder": folder,
        "query": query or "",
        "terms": text.search_terms(query),
        "page": page,
        "reading": reading,
        "problem": problem,
        "inbox_unread": inbox.unread if inbox else 0,
        "current_unread": next((f.unread for f in all_folders if f.name == folder), 0),
        "sandbox": frame.IFRAME_SANDBOX,
    }


def render_page(request: Request, context: dict[str, Any]) -> HTMLResponse:
    response = render(request, "webmail/page.html", context)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers.update(NO_STORE)
    return response


async def _read(
    viewer: Viewer, connection: AsyncConnection, blobs: BlobStore, message_id: int
) -> reader.Reading:
    """The viewer's message `message_id` as the reader shows it (404 when not theirs)."""
    mailbox_id = await mailbox_id_for(connection, address=viewer.address)
    return await reader.read_message(
        connection, blobs, principal=viewer.principal, mailbox_id=mailbox_id, message_id=message_id
    )


def _reader_partial(request: Request, template: str, reading: reader.Reading) -> HTMLResponse:
    return _partial(
        request,
        template,
        {"reading": reading, "csrf": csrf_token(request), "sandbox": frame.IFRAME_SANDBOX},
    )


@router.get("", response_class=HTMLResponse)
async def mail_page(
    request: Request,
    viewer: ViewerDep,
    connection: ConnectionDep,
    blobs: BlobsDep,
    folder: FolderQuery = "INBOX",
    q: SearchText = None,
    m: MessageIdQuery = None,
) -> HTMLResponse:
    """The webmail: folders, the message list and the reading pane."""
    context = await page_context(
        request, connection, blobs, viewer, folder=folder, query=q, selected=m
    )
    return render_page(request, context)


@router.get("/list", response_class=HTMLResponse)
async def list_partial(
    request: Request,
    viewer: ViewerDep,
    connection: ConnectionDep,
    folder: FolderQuery = "INBOX",
    q: SearchText = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Rows of the list (a page after `cursor`), with the link to the next page."""
    folder = folders.validate_name(folder)
    query = q.strip() if q else None
    mailbox_id = await mailbox_id_for(connection, address=viewer.address)
    page = await listing.list_rows(
        connection, mailbox_id=mailbox_id, folder=folder, query=query, cursor=cursor
    )
    return _partial(
        request,
        "webmail/_list.html",
        {"page": page, "folder": folder, "query": query or "", "terms": text.search_terms(query)},
    )


@router.get("/rows/{message_id}", response_class=HTMLResponse)
async def row_partial(
    request: Request,
    viewer: ViewerDep,
    connection: ConnectionDep,
    message_id: MessageId,
    folder: FolderQuery = "INBOX",
    q: SearchText = None,
) -> HTMLResponse:
    """One row, for live updates (new mail, another tab's changes)."""
    mailbox_id = await mailbox_id_for(connection, address=viewer.address)
    row = await listing.get_row(connection, mailbox_id=mailbox_id, message_id=message_id)
    return _partial(
        request,
        "webmail/_row.html",
        {"row": row, "folder": folders.validate_name(folder), "terms": text.search_terms(q)},
    )


@router.get("/folders", response_class=HTMLResponse)
async def folders_partial(
    request: Request,
    viewer: ViewerDep,
    connection: ConnectionDep,
    folder: FolderQuery = "INBOX",
) -> HTMLResponse:
    """The folder sidebar with live unread counts."""
    mailbox_id = await mailbox_id_for(connection, address=viewer.address)
    all_folders = await sidebar.sidebar_folders(connection, mailbox_id=mailbox_id)
    inbox = next((item for item in all_folders if item.name == "INBOX"), None)
    return _partial(
        request,
        "webmail/_folders.html",
        {
            "folders": all_folders,
            "folder": folders.validate_name(folder),
            "inbox_unread": inbox.unread if inbox else 0,
        },
    )


@router.get("/messages/{message_id}", response_class=HTMLResponse)
async def reader_partial(
    request: Request,
    viewer: ViewerDep,
    connection: ConnectionDep,
    blobs: BlobsDep,
    message_id: MessageId,
) -> HTMLResponse:
    """The reading pane: the message, its conversation, its attachments."""
    reading = await _read(viewer, connection, blobs, message_id)
    return _reader_partial(request, "webmail/_reader.html", reading)


@router.get("/messages/{message_id}/body", response_class=HTMLResponse)
async def message_body(
    request: Request,
    viewer: ViewerDep,
    connection: ConnectionDep,
    blobs: BlobsDep,
    message_id: MessageId,
) -> HTMLResponse:
    """One message of a conversation expanded in place: body, image notice, attachments."""
    reading = await _read(viewer, connection, blobs, message_id)
    return _reader_partial(request, "webmail/_body.html", reading)


@router.get("/messages/{message_id}/frame")
async def message_frame(
    viewer: ViewerDep,
    connection: ConnectionDep,
    blobs: BlobsDep,
    message_id: MessageId,
) -> Response:
    """The HTML body as its own document, for the sandboxed iframe, under a strict CSP."""
    reading = await _read(viewer, connection, blobs, message_id)
    document, _blocked = frame.document(reading.message.html, images_allowed=reading.images_allowed)
    return HTMLResponse(
        document.html,
        headers={
            "Content-Security-Policy": document.content_security_policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Resource-Policy": "same-origin",
            **NO_STORE,
        },
    )


@router.get("/messages/{message_id}/source")
async def message_source(
    viewer: ViewerDep,
    connection: ConnectionDep,
    blobs: BlobsDep,
    message_id: MessageId,
) -> Response:
    """ "View source": the message as received, as plain text that nothing renders."""
    owned = await detail.load_owned(connection, message_id=message_id, principal=viewer.principal)
    return Response(
        await detail.read_source_text(blobs, owned),
        media_type="text/plain; charset=utf-8",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            **NO_STORE,
        },
    )


@router.post(
    "/messages/{message_id}/images",
    response_class=HTMLResponse,
    dependencies=[Depends(require_csrf)],
)
async def allow_images(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    blobs: BlobsDep,
    message_id: MessageId,
    scope: Annotated[Literal["message", "sender"], Form()],
) -> Response:
    """Load remote images of this message, or of every message from its sender."""
    connection = await session.connection()
    mailbox_id = await mailbox_id_for(connection, address=viewer.address)
    row = await listing.get_row(connection, mailbox_id=mailbox_id, message_id=message_id)
    await images.allow_images(
        session,
        mailbox_id=mailbox_id,
        scope=scope,
        message_id=message_id,
        sender=row.sender_address,
    )
    await session.commit()
    if request.headers.get("sec-fetch-dest", "document") == "document":
        return RedirectResponse(
            "/ui/mail?" + urlencode({"folder": row.folder, "m": message_id}),
            status_code=303,
            headers=NO_STORE,
        )
    reading = await _read(viewer, await session.connection(), blobs, message_id)
    return _reader_partial(request, "webmail/_reader.html", reading)
