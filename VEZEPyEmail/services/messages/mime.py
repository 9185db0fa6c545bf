"""Reading raw messages with the stdlib `email` package, never raising on bad input.

MIME (RFC 2045-2049) in the wild is often broken: missing or wrong boundaries, bad base64,
unknown charsets, NUL bytes, enormous headers. Everything here degrades to "best effort text"
instead of failing, because a message that was accepted must always be listable and viewable.
"""

from __future__ import annotations

import contextlib
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

import nh3

MAX_BODY_TEXT = 200_000
MAX_SNIPPET = 200
MAX_HEADER_FIELD = 998  # RFC 5322 section 2.1.1 line limit; also the column width
MAX_ADDRESS_LIST = 10_000
MAX_PARTS = 1_000
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,900}>")
_SPACE = re.compile(r"\s+")


def clean_text(value: object, limit: int | None = None) -> str:
    """A string safe for any database: lone surrogates replaced, NUL bytes dropped."""
    text = str(value)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = text.replace("\x00", "")
    return text[:limit] if limit is not None else text


def parse_bytes(raw: bytes) -> EmailMessage:
    """Parse with `policy.default`; the parser records defects instead of raising."""
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def header(message: Message, name: str) -> str:
    """One header's value as text, or "" (structured parsing may fail: fall back to raw)."""
    # Structured header parsing of hostile input may raise: fall back to the raw value.
    with contextlib.suppress(Exception):
        value = message.get(name)
        if value is not None:
            return clean_text(value)
    with contextlib.suppress(Exception):
        for key, raw_value in message.raw_items():
            if key.lower() == name.lower():
                return clean_text(raw_value)
    return ""


def header_list(message: Message) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    with contextlib.suppress(Exception):
        for key, value in message.raw_items():
            items.append((clean_text(key, 200), clean_text(_SPACE.sub(" ", str(value)), 10_000)))
    return items


def message_ids(value: str) -> list[str]:
    return _MESSAGE_ID.findall(value)


def parse_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def address_list(message: Message, name: str) -> str:
    value = header(message, name)
    if not value:
        return ""
    try:
        pairs = getaddresses([value])
        rendered = ", ".join(address for _name, address in pairs if address)
        return clean_text(rendered or value, MAX_ADDRESS_LIST)
    except Exception:
        return clean_text(value, MAX_ADDRESS_LIST)


def part_text(part: Message) -> str:
    """A leaf part's decoded text; unknown charsets and bad encodings degrade to utf-8."""
    # LookupError for unknown charsets, binascii errors, ...: fall back to the payload.
    with contextlib.suppress(Exception):
        if isinstance(part, EmailMessage):
            content = part.get_content()
            if isinstance(content, str):
                return clean_text(content)
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return clean_text(payload.decode("utf-8", "replace"))
    raw = part.get_payload()
    return clean_text(raw) if isinstance(raw, str) else ""


def part_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def html_to_text(markup: str) -> str:
    try:
        stripped = nh3.clean(markup, tags=set())
    except Exception:
        stripped = re.sub(r"<[^>]*>", " ", markup)
    return html.unescape(stripped)


@dataclass
class Attachment:
    index: int
    filename: str
    content_type: str
    part: Message = field(repr=False)

    @property
    def size(self) -> int:
        return len(part_bytes(self.part))


@dataclass
class Parts:
    text: str = ""
    html: str = ""
    attachments: list[Attachment] = field(default_factory=list)


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    return clean_text(name, 255) if name else ""


def _is_attachment(part: Message) -> bool:
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    return disposition == "attachment" or bool(_filename(part))


def split_parts(message: Message) -> Parts:
    """The first text/plain and text/html bodies and the attachments (leaf parts in order)."""
    parts = Parts()
    try:
        leaves = [part for part in message.walk() if not part.is_multipart()]
    except Exception:
        leaves = [message]
    for part in leaves[:MAX_PARTS]:
        try:
            content_type = part.get_content_type()
        except Exception:
            content_type = "application/octet-stream"
        if _is_attachment(part):
            parts.attachments.append(
                Attachment(len(parts.attachments), _filename(part), content_type, part)
            )
        elif content_type == "text/plain" and not parts.text:
            parts.text = part_text(part)
        elif content_type == "text/html" and not parts.html:
            parts.html = part_text(part)
        elif not content_type.startswith(("text/", "multipart/")) and part is not message:
            parts.attachments.append(Attachment(len(parts.attachments), "", content_type, part))
    return parts


@dataclass(frozen=True)
class Summary:
    """What the message list and search need from a raw message."""

    subject: str
    from_addr: str
    to_addrs: str
    cc_addrs: str
    date: datetime | None
    snippet: str
    body_text: str
    message_id_header: str | None
    in_reply_to: str | None
    references_header: str
    thread_id: str | None
    has_attachments: bool


def summarise(raw: bytes) -> Summary:
    """Summarise `raw`; never raises (a message that cannot be parsed yields empty fields)."""
    try:
        message: Message = parse_bytes(raw)
    except Exception:
        message = EmailMessage()
    try:
        parts = split_parts(message)
    except Exception:
        parts = Parts()
    text = parts.text or (html_to_text(parts.html) if parts.html else "")
    if not text and not message.keys():
        # No header block at all: show the bytes themselves.
        text = clean_text(raw[:MAX_BODY_TEXT].decode("utf-8", "replace"))
    body_text = clean_text(text, MAX_BODY_TEXT)
    own_ids = message_ids(header(message, "Message-ID"))
    reply_ids = message_ids(header(message, "In-Reply-To"))
    references = message_ids(header(message, "References"))
    own = own_ids[0] if own_ids else None
    thread = references[0] if references else reply_ids[0] if reply_ids else own
    return Summary(
        subject=clean_text(_SPACE.sub(" ", header(message, "Subject")).strip(), MAX_HEADER_FIELD),
        from_addr=clean_text(header(message, "From").strip(), MAX_HEADER_FIELD),
        to_addrs=address_list(message, "To"),
        cc_addrs=address_list(message, "Cc"),
        date=parse_date(header(message, "Date")),
        snippet=clean_text(_SPACE.sub(" ", body_text[:2000]).strip(), MAX_SNIPPET),
        body_text=body_text,
        message_id_header=own,
        in_reply_to=reply_ids[0] if reply_ids else None,
        references_header=clean_text(" ".join(references), MAX_ADDRESS_LIST),
        thread_id=thread,
        has_attachments=bool(parts.attachments),
    )
