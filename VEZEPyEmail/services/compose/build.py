"""RFC 5322 messages from composed fields, with the stdlib `email` package (policy SMTP).

Structure (RFC 2046): text/plain alone; multipart/alternative (text, then HTML, RFC 2046 5.1.4
"last is best") when there is an HTML body; and multipart/mixed around either when there are
attachments, each with `Content-Disposition: attachment` and its name RFC 2231-encoded when it
is not ASCII. Policy SMTP folds long headers, encodes non-ASCII ones (RFC 2047), writes CRLF
line ends and keeps bodies 7-bit (quoted-printable or base64), so DKIM and any relay see the
same bytes.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import nh3

from VEZEPyEmail.services.compose.addresses import Recipient
from VEZEPyEmail.services.messages.mime import html_to_text

#: RFC 5322 section 3.6.4 allows trimming References; keep the root and the newest ids.
MAX_REFERENCES = 20
_LINE_BREAKS = re.compile(r"\r\n?")
_HEADER_BREAKS = re.compile(r"[\r\n\0]+")
#: Headers that link a draft to the message it answers or forwards (never sent).
REPLY_OF_HEADER = "X-Veze-Reply-Of"
FORWARD_OF_HEADER = "X-Veze-Forward-Of"


@dataclass(frozen=True)
class AttachmentData:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Composition:
    sender: Recipient
    to: list[Recipient] = field(default_factory=list)
    cc: list[Recipient] = field(default_factory=list)
    bcc: list[Recipient] = field(default_factory=list)
    subject: str = ""
    text: str = ""
    html: str | None = None
    attachments: list[AttachmentData] = field(default_factory=list)
    #: Threading (RFC 5322 section 3.6.4): the parent's Message-ID and the chain to it.
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    #: Row ids of the caller's message this answers / forwards (drafts keep them).
    reply_of: int | None = None
    forward_of: int | None = None

    def envelope_recipients(self) -> list[str]:
        seen: dict[str, str] = {}
        for recipient in [*self.to, *self.cc, *self.bcc]:
            seen.setdefault(recipient.key, recipient.address)
        return list(seen.values())


def new_message_id(domain: str) -> str:
    """A globally unique msg-id on our own domain (RFC 5322 section 3.6.4)."""
    return f"<{secrets.token_urlsafe(24)}@{domain.lower()}>"


def sanitise_html(markup: str) -> str:
    """What goes out is what webmail would show: nh3's safe subset, no scripts or handlers."""
    return nh3.clean(markup)


def clean_header_text(value: str, limit: int = 998) -> str:
    return " ".join(_HEADER_BREAKS.sub(" ", value).split())[:limit]


def normalise_text(text: str) -> str:
    return _LINE_BREAKS.sub("\n", text).replace("\0", "")


def trim_references(references: list[str]) -> list[str]:
    unique = list(dict.fromkeys(references))
    if len(unique) <= MAX_REFERENCES:
        return unique
    return [unique[0], *unique[-(MAX_REFERENCES - 1) :]]


def _addresses(recipients: list[Recipient]) -> tuple[Address, ...]:
    return tuple(recipient.header_address() for recipient in recipients)


def build_message(
    composition: Composition,
    *,
    date: datetime,
    message_id: str | None,
    include_bcc: bool = False,
) -> EmailMessage:
    """The message as sent (no Bcc) or as a draft (`include_bcc`, no Message-ID needed)."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = composition.sender.header_address()
    if composition.to:
        message["To"] = _addresses(composition.to)
    if composition.cc:
        message["Cc"] = _addresses(composition.cc)
    if include_bcc and composition.bcc:
        # Only drafts carry Bcc, so the editor can restore it (RFC 5322 3.6.3 permits this).
        message["Bcc"] = _addresses(composition.bcc)
    message["Subject"] = clean_header_text(composition.subject)
    message["Date"] = format_datetime(date)
    if message_id is not None:
        message["Message-ID"] = message_id
    if composition.in_reply_to:
        message["In-Reply-To"] = composition.in_reply_to
        references = trim_references([*composition.references, composition.in_reply_to])
        message["References"] = " ".join(references)
    if include_bcc:
        if composition.reply_of is not None:
            message[REPLY_OF_HEADER] = str(composition.reply_of)
        if composition.forward_of is not None:
            message[FORWARD_OF_HEADER] = str(composition.forward_of)
    html = sanitise_html(composition.html) if composition.html else ""
    text = normalise_text(composition.text)
    if html and not text.strip():
        # An HTML-only message still gets a readable plain part for text-only readers.
        text = normalise_text(html_to_text(html)).strip() + "\n"
    message.set_content(text, subtype="plain", charset="utf-8")
    if html:
        message.add_alternative(html, subtype="html", charset="utf-8")
    for item in composition.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        message.add_attachment(
            item.data, maintype=maintype, subtype=subtype or "octet-stream", filename=item.filename
        )
    return message


def render(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=policy.SMTP)
