"""One message in full: headers, bodies (HTML sanitised), attachments, and the raw bytes.

Reads are Core statements on a plain connection; the body comes from the blob store (the
bytes as received), or is synthesised from the row for messages stored before blobs existed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, ParamSpec, TypeVar

import nh3
from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import NotFound
from VEZEPyEmail.app.security import can_access
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.messages import mime
from VEZEPyEmail.services.messages.schemas import (
    AttachmentRead,
    HeaderRead,
    MessageDetailRead,
)
from VEZEPyEmail.services.messages.service import flags_of
from VEZEPyEmail.services.store.blobs import BlobNotFound, BlobStore

_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_REMOTE_SRC = re.compile(r'\ssrc="(?:https?:)?//', re.IGNORECASE)
REMOTE_IMAGE_MARK = 'data-remote-image="true"'
#: Served as their own type; anything else that a browser might render (HTML, SVG, XML,
#: JavaScript) is downloaded as opaque bytes.
_SAFE_INLINE_TYPE = re.compile(
    r"(image/(png|jpeg|gif|webp|bmp)|application/(pdf|zip|octet-stream)|text/(plain|csv)|"
    r"audio/[a-z0-9.+-]+|video/[a-z0-9.+-]+)"
)


#: Messages up to this size are parsed on the event loop, where the parse costs about as much
#: as the hop to a thread (~0.5 ms here). Larger ones are parsed in a worker thread: a 25 MB
#: message takes about a second, which on the loop would stall every other request.
INLINE_PARSE_BYTES = 32 * 1024

_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclass(frozen=True)
class OwnedMessage:
    row: RowMapping
    address: str


async def load_owned(
    connection: AsyncConnection, *, message_id: int, principal: Principal
) -> OwnedMessage:
    """The message row if the token may read its mailbox; 404 otherwise (ids stay private)."""
    statement = (
        select(Message.__table__, Mailbox.address)
        .join(Mailbox, Mailbox.id == Message.mailbox_id)
        .where(Message.id == message_id)
    )
    row = (await connection.execute(statement)).mappings().one_or_none()
    if row is None or not can_access(principal, str(row["address"])):
        raise NotFound("no such message")
    return OwnedMessage(row, str(row["address"]))


def synthesise(row: RowMapping) -> bytes:
    """A plausible RFC 5322 message for a row without a stored blob (e.g. the welcome mail)."""
    message = EmailMessage(policy=policy.SMTP)
    for name, value in (
        ("From", row["from_addr"]),
        ("To", row["to_addrs"]),
        ("Cc", row["cc_addrs"]),
        ("Subject", row["subject"]),
        ("Message-ID", row["message_id_header"]),
        ("In-Reply-To", row["in_reply_to"]),
    ):
        if value:
            # a value the header parser rejects is skipped
            with contextlib.suppress(Exception):
                message[name] = value
    message["Date"] = format_datetime(row["date"])
    message.set_content(row["body_text"] or "")
    return message.as_bytes()


async def raw_bytes(blobs: BlobStore, row: RowMapping) -> bytes:
    key = row["blob_key"]
    if key:
        try:
            return await blobs.get(str(key))
        except (BlobNotFound, ValueError):
            pass
    return synthesise(row)


async def parsing(raw: bytes, work: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`work(*args, **kwargs)`, which parses `raw`: inline when `raw` is small, else off the
    event loop (INLINE_PARSE_BYTES)."""
    if len(raw) <= INLINE_PARSE_BYTES:
        return work(*args, **kwargs)
    return await asyncio.to_thread(work, *args, **kwargs)


def _as_utf8_text(raw: bytes) -> bytes:
    return raw.decode("utf-8", "replace").encode("utf-8")


async def read_source_text(blobs: BlobStore, owned: OwnedMessage) -> bytes:
    """The message as received, as UTF-8 text to show (bytes that are not UTF-8 become
    U+FFFD); a large one is converted off the event loop."""
    raw = await raw_bytes(blobs, owned.row)
    return await parsing(raw, _as_utf8_text, raw)


async def read_detail(blobs: BlobStore, owned: OwnedMessage) -> MessageDetailRead:
    """The detail of a message the caller owns; a large one is parsed off the event loop."""
    raw = await raw_bytes(blobs, owned.row)
    return await parsing(raw, detail_of, owned, raw)


async def read_attachment(blobs: BlobStore, owned: OwnedMessage, index: int) -> AttachmentFile:
    """Attachment `index` of a message the caller owns, decoded off the loop when large."""
    if index < 0:
        raise NotFound("no such attachment")
    raw = await raw_bytes(blobs, owned.row)
    return await parsing(raw, attachment, raw, index)


def sanitise_html(markup: str) -> tuple[str, bool]:
    """nh3-clean `markup` (no scripts, styles, event handlers or javascript: URLs) and mark
    remote images with `data-remote-image="true"` so a webmail can block them until asked.

    Markup too large or too deeply nested for the HTML parser in bounded time gives no HTML
    (the reader then shows its text, mime.html_to_text)."""
    if not mime.html_is_tractable(markup):
        return "", False
    cleaned = nh3.clean(markup)
    remote = False

    def mark(match: re.Match[str]) -> str:
        nonlocal remote
        tag = match.group(0)
        if _REMOTE_SRC.search(tag):
            remote = True
            return tag[:4] + " " + REMOTE_IMAGE_MARK + tag[4:]
        return tag

    return _IMG.sub(mark, cleaned), remote


def detail_of(owned: OwnedMessage, raw: bytes) -> MessageDetailRead:
    row = owned.row
    try:
        parsed = mime.parse_bytes(raw)
        parts = mime.split_parts(parsed)
        headers = mime.header_list(parsed)
    except Exception:
        parts, headers = mime.Parts(text=row["body_text"]), []
    html, remote = sanitise_html(parts.html) if parts.html else ("", False)
    text = parts.text or (row["body_text"] if not parts.html else mime.html_to_text(parts.html))
    return MessageDetailRead(
        id=row["id"],
        folder=row["folder"],
        subject=row["subject"],
        from_=row["from_addr"],
        to=_split(row["to_addrs"]),
        cc=_split(row["cc_addrs"]),
        date=row["date"],
        received_at=row["received_at"],
        message_id=row["message_id_header"],
        in_reply_to=row["in_reply_to"],
        references=row["references_header"].split() if row["references_header"] else [],
        thread_id=row["thread_id"],
        flags=flags_of(row),
        labels=list(row["labels"] or []),
        unread=not row["seen"],
        size=row["size"],
        spam_score=row["spam_score"],
        headers=[HeaderRead(name=name, value=value) for name, value in headers],
        text=mime.clean_text(text, mime.MAX_BODY_TEXT),
        html=html,
        has_remote_images=remote,
        attachments=[
            AttachmentRead(
                index=item.index,
                filename=safe_filename(item.filename, item.index),
                content_type=item.content_type,
                size=item.size,
            )
            for item in parts.attachments
        ],
    )


def _split(addresses: str) -> list[str]:
    return [part.strip() for part in addresses.split(",") if part.strip()]


@dataclass(frozen=True)
class AttachmentFile:
    filename: str
    content_type: str
    data: bytes


def attachment(raw: bytes, index: int) -> AttachmentFile:
    try:
        parts = mime.split_parts(mime.parse_bytes(raw))
    except Exception:
        parts = mime.Parts()
    if not 0 <= index < len(parts.attachments):
        raise NotFound("no such attachment")
    item = parts.attachments[index]
    content_type = item.content_type.lower()
    if not _SAFE_INLINE_TYPE.fullmatch(content_type):
        content_type = "application/octet-stream"
    return AttachmentFile(
        safe_filename(item.filename, index), content_type, mime.part_bytes(item.part)
    )


def safe_filename(name: str, index: int) -> str:
    """A file name without directories, control characters or quotes (path traversal and
    header injection both end here); a neutral default when nothing is left."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in '"<>|:*?')
    name = name.strip(" .")[:200]
    return name or f"attachment-{index + 1}"


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 `filename*` (RFC 8187)."""
    from urllib.parse import quote

    fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '%\\"' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def attachment_headers(filename: str) -> dict[str, Any]:
    return {
        "Content-Disposition": content_disposition(filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
