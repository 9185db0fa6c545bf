"""Reading raw messages with the stdlib `email` package, never raising on bad input.

MIME (RFC 2045-2049) in the wild is often broken: missing or wrong boundaries, bad base64,
unknown charsets, NUL bytes, enormous headers. Everything here degrades to "best effort text"
instead of failing, because a message that was accepted must always be listable and viewable.

Hostile input must not cost unbounded time either (found by the fuzzers in
tests/test_fuzz_mime.py). The stdlib parser is super-linear in places, so work is bounded
before it starts:
- a structured header parse (policy.default) sees at most STRUCTURED_HEADER_LIMIT characters;
  longer values are decoded by the linear legacy functions from their first MAX_HEADER_INPUT;
- a message with more than MAX_PARTS parts, MIME nesting deeper than MAX_MIME_DEPTH, or more
  than MAX_PARSE_LINES lines is read as its header block plus one opaque text body;
- HTML nested deeper than MAX_HTML_DEPTH or longer than MAX_HTML_CHARS is not given to the
  HTML parser (html5ever is quadratic in nesting): it is shown as text.
"""

from __future__ import annotations

import contextlib
import functools
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

import nh3

MAX_BODY_TEXT = 200_000
MAX_SNIPPET = 200
MAX_HEADER_FIELD = 998  # RFC 5322 section 2.1.1 line limit; also the column width
MAX_ADDRESS_LIST = 10_000
MAX_PARTS = 500
MAX_MIME_DEPTH = 16
MAX_PARSE_LINES = 500_000
#: A longer header value skips the structured parser (quadratic: ~45 ms for 2 KB of addresses).
STRUCTURED_HEADER_LIMIT = 1024
#: What the MIME structure lookups (Content-Type, boundary, charset, file name) parse of a
#: field; the parser asks for each several times per part, so the parses are also cached.
STRUCTURAL_HEADER_LIMIT = 512
#: What is read of one header value at all (Postfix keeps 100 KB; nothing here shows more).
MAX_HEADER_INPUT = 16 * 1024
#: The header block read when the body is not parsed (over the limits above).
MAX_HEADER_BLOCK = 1024 * 1024
MAX_HEADERS_LISTED = 1_000
MAX_HTML_CHARS = 2 * 1024 * 1024
MAX_HTML_DEPTH = 256
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,900}>")
_SPACE = re.compile(r"\s+")


def clean_text(value: object, limit: int | None = None) -> str:
    """A string safe for any database: lone surrogates replaced, NUL bytes dropped."""
    text = str(value)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = text.replace("\x00", "")
    return text[:limit] if limit is not None else text


class _BoundedPolicy(EmailPolicy):
    """policy.default, but the structured header parser never sees a long value.

    The parser itself asks for Content-Type, boundaries and charsets through this hook, as do
    get_content_type(), get_filename() and get_content(); a cut Content-Type only loses
    parameters past its first STRUCTURAL_HEADER_LIMIT characters.
    """

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if not isinstance(value, str):
            return super().header_fetch_parse(name, value)
        return _structured(name, value[:STRUCTURAL_HEADER_LIMIT])


@functools.lru_cache(maxsize=1024)
def _structured(name: str, value: str) -> Any:
    # Header objects are immutable str subclasses: one parse may serve every lookup.
    return policy.default.header_fetch_parse(name, value)


POLICY = _BoundedPolicy()


class _TooComplex(Exception):
    """The MIME structure is over MAX_PARTS or MAX_MIME_DEPTH."""


class _ParsedPart(EmailMessage):
    """A part made by the parser, knowing its depth (the parser attaches each new part to its
    parent before reading it, so the depth is known before its lines are)."""

    depth = 0

    def attach(self, payload: Any) -> None:
        if isinstance(payload, _ParsedPart):
            payload.depth = self.depth + 1
            if payload.depth > MAX_MIME_DEPTH:
                raise _TooComplex("nested too deep")
        super().attach(payload)


class _PartFactory:
    """The parser's message factory: counts the parts of one parse."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self, policy: Any = None) -> _ParsedPart:
        self.made += 1
        if self.made > MAX_PARTS + 1:  # FeedParser calls the factory once to probe it
            raise _TooComplex("too many parts")
        return _ParsedPart(policy=policy)


def parse_bytes(raw: bytes) -> EmailMessage:
    """Parse with a bounded policy.default; the parser records defects instead of raising.

    Over the structure limits (module docstring), only the header block is parsed and the
    body is one text payload: listable and viewable, with no parts.
    """
    if raw.count(b"\n") <= MAX_PARSE_LINES:
        with contextlib.suppress(_TooComplex, RecursionError):
            parsed = BytesParser(_class=_PartFactory(), policy=POLICY).parsebytes(raw)
            assert isinstance(parsed, EmailMessage)
            return parsed
    return _headers_and_opaque_body(raw)


_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def parse_headers(raw: bytes) -> tuple[EmailMessage, bytes]:
    """The header block (at most MAX_HEADER_BLOCK bytes) parsed, and the bytes after it.

    Never reads the body line by line, so its cost does not grow with the message.
    """
    found = _BLANK_LINE.search(raw, 0, MAX_HEADER_BLOCK)
    cut = found.end() if found else min(len(raw), MAX_HEADER_BLOCK)
    message = BytesParser(policy=POLICY).parsebytes(raw[:cut], headersonly=True)
    assert isinstance(message, EmailMessage)
    return message, raw[cut:]


def _headers_and_opaque_body(raw: bytes) -> EmailMessage:
    message, rest = parse_headers(raw)
    start = message.get_payload()
    # The body stays as the parser would keep it: ASCII with the other bytes escaped.
    body = rest.decode("ascii", "surrogateescape")
    message.set_payload((start if isinstance(start, str) else "") + body)
    return message


def raw_header(message: Message, name: str) -> str | None:
    """The first `name` field's value as stored (folded, encoded words intact), or None."""
    wanted = name.lower()
    with contextlib.suppress(Exception):
        for key, value in message.raw_items():
            if key.lower() == wanted:
                return str(value)
    return None


def decode_header_value(name: str, raw: str) -> str:
    """A header value as text (RFC 2047 words decoded), in time linear in its length.

    Short values go through policy.default as before; long ones (and any the structured
    parser fails on) through the legacy decoder, on their first MAX_HEADER_INPUT characters.
    """
    value = _LINE_BREAK.sub("", raw[:MAX_HEADER_INPUT])  # unfold (RFC 5322 section 2.2.3)
    if len(value) <= STRUCTURED_HEADER_LIMIT:
        with contextlib.suppress(Exception):
            return str(policy.default.header_fetch_parse(name, value))
    with contextlib.suppress(Exception):
        return str(make_header(decode_header(value)))
    return value


def header(message: Message, name: str) -> str:
    """One header's value as text, or "" (never raises, bounded time)."""
    raw = raw_header(message, name)
    return clean_text(decode_header_value(name, raw)) if raw is not None else ""


def header_list(message: Message) -> list[tuple[str, str]]:
    """The raw header fields in order, the first MAX_HEADERS_LISTED of them."""
    items: list[tuple[str, str]] = []
    with contextlib.suppress(Exception):
        for key, value in message.raw_items():
            if len(items) >= MAX_HEADERS_LISTED:
                break
            text = str(value)[:MAX_HEADER_INPUT]
            items.append((clean_text(key, 200), clean_text(_SPACE.sub(" ", text), 10_000)))
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


#: A tag, read up to the next "<" at most, so a "<" without ">" costs no rescan.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]{0,15})[^<>]*>")
#: Elements that never nest (void) or that the HTML parser closes by itself (optional end
#: tags): an unclosed <p> or <li> is ordinary mail markup, not nesting.
_FLAT_ELEMENTS = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
        "p",
        "li",
        "dt",
        "dd",
        "td",
        "th",
        "tr",
        "option",
        "optgroup",
        "tbody",
        "thead",
        "tfoot",
        "colgroup",
        "caption",
        "rb",
        "rt",
        "rp",
    ]
)


def html_is_tractable(markup: str) -> bool:
    """Whether `markup` is small and shallow enough for the HTML parser (nh3/html5ever).

    html5ever's time grows faster than quadratically with open elements (8,000 nested
    <ul><li><div> take seconds); this linear estimate of the nesting refuses such input.
    """
    if len(markup) > MAX_HTML_CHARS:
        return False
    depth = 0
    for match in _TAG.finditer(markup):
        closing, name = match.group(1), match.group(2).lower()
        if name in _FLAT_ELEMENTS or match.group(0).endswith("/>"):
            continue
        if closing:
            depth = max(0, depth - 1)
        else:
            depth += 1
            if depth > MAX_HTML_DEPTH:
                return False
    return True


def strip_tags(markup: str) -> str:
    """Text of `markup` without the HTML parser (linear; for markup it should not see)."""
    return html.unescape(_TAG.sub(" ", markup[:MAX_HTML_CHARS]))


def html_to_text(markup: str) -> str:
    if not html_is_tractable(markup):
        return strip_tags(markup)
    try:
        stripped = nh3.clean(markup, tags=set())
    except Exception:
        return strip_tags(markup)
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
    return summarise_message(message, raw)


def summarise_message(message: Message, raw: bytes) -> Summary:
    """`summarise` of a message already parsed (by `parse_bytes`) from `raw`."""
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
