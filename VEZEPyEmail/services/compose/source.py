"""Reading a stored message back as composable parts: the original of a reply or forward,
or a saved draft. Lenient: an address the validator refuses is left out, never an error."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyCore.auth.principal import Principal
from VEZEPyEmail.services.compose.addresses import Recipient, parse_recipient
from VEZEPyEmail.services.compose.build import (
    FORWARD_OF_HEADER,
    REPLY_OF_HEADER,
    AttachmentData,
)
from VEZEPyEmail.services.compose.errors import ComposeInvalid
from VEZEPyEmail.services.messages import detail, mime
from VEZEPyEmail.services.store.blobs import BlobStore


@dataclass
class StoredMessage:
    row: RowMapping
    address: str
    raw: bytes
    parsed: EmailMessage
    subject: str
    date: datetime
    from_text: str
    sender: list[Recipient]
    reply_to: list[Recipient]
    to: list[Recipient]
    cc: list[Recipient]
    bcc: list[Recipient]
    text: str
    html: str
    attachments: list[AttachmentData] = field(default_factory=list)

    @property
    def message_id(self) -> str | None:
        value = self.row["message_id_header"]
        return str(value) if value else None

    @property
    def references(self) -> list[str]:
        return mime.message_ids(mime.header(self.parsed, "References"))

    @property
    def in_reply_to_header(self) -> str | None:
        ids = mime.message_ids(mime.header(self.parsed, "In-Reply-To"))
        return ids[0] if ids else None

    def linked_id(self, name: str) -> int | None:
        value = mime.header(self.parsed, name).strip()
        return int(value) if value.isdigit() and 0 < int(value) < 2**62 else None

    @property
    def reply_of(self) -> int | None:
        return self.linked_id(REPLY_OF_HEADER)

    @property
    def forward_of(self) -> int | None:
        return self.linked_id(FORWARD_OF_HEADER)


def lenient_recipients(message: EmailMessage, name: str) -> list[Recipient]:
    value = mime.header(message, name)
    if not value:
        return []
    recipients: list[Recipient] = []
    with contextlib.suppress(Exception):
        for display_name, address in getaddresses([value])[:1000]:
            if not address:
                continue
            with contextlib.suppress(ComposeInvalid):
                entry = f"{display_name} <{address}>" if display_name else address
                recipients.append(parse_recipient(entry, name, test_domains=True))
    return recipients


async def load_message(
    connection: AsyncConnection, blobs: BlobStore, *, message_id: int, principal: Principal
) -> StoredMessage:
    """The caller's message, parsed; 404 for anyone else's (detail.load_owned).

    A large message is parsed (and its attachments decoded) off the event loop."""
    owned = await detail.load_owned(connection, message_id=message_id, principal=principal)
    raw = await detail.raw_bytes(blobs, owned.row)
    return await detail.parsing(raw, _stored, owned, raw)


def _stored(owned: detail.OwnedMessage, raw: bytes) -> StoredMessage:
    try:
        parsed = mime.parse_bytes(raw)
        parts = mime.split_parts(parsed)
    except Exception:
        parsed, parts = EmailMessage(), mime.Parts(text=owned.row["body_text"])
    text = parts.text or (mime.html_to_text(parts.html) if parts.html else "")
    attachments = [
        AttachmentData(
            filename=detail.safe_filename(item.filename, item.index),
            content_type=item.content_type.lower(),
            data=mime.part_bytes(item.part),
        )
        for item in parts.attachments
    ]
    row = owned.row
    return StoredMessage(
        row=row,
        address=owned.address,
        raw=raw,
        parsed=parsed,
        subject=str(row["subject"]),
        date=row["date"],
        from_text=str(row["from_addr"]) or "(unknown sender)",
        sender=lenient_recipients(parsed, "From"),
        reply_to=lenient_recipients(parsed, "Reply-To"),
        to=lenient_recipients(parsed, "To"),
        cc=lenient_recipients(parsed, "Cc"),
        bcc=lenient_recipients(parsed, "Bcc"),
        text=mime.clean_text(text, mime.MAX_BODY_TEXT),
        html=parts.html,
        attachments=attachments,
    )
