"""From request fields to a checked Composition, and from stored messages to editable fields.

Keyword-only functions without HTTP types. Everything a caller names by id (uploads, the
message replied to or forwarded, a draft) is looked up as the caller's own: another user's id
is "not found", never "forbidden".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import AppError, Forbidden, NotFound
from VEZEPyEmail.app.security import normalise_local_address
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox
from VEZEPyEmail.services.compose import quoting
from VEZEPyEmail.services.compose.addresses import Recipient, parse_recipients, unique
from VEZEPyEmail.services.compose.build import AttachmentData, Composition, clean_header_text
from VEZEPyEmail.services.compose.errors import ComposeInvalid
from VEZEPyEmail.services.compose.schemas import ComposeRead, DraftRead, MessageCompose
from VEZEPyEmail.services.compose.source import StoredMessage, load_message
from VEZEPyEmail.services.store.blobs import BlobStore
from VEZEPyEmail.services.uploads.schemas import UploadRead
from VEZEPyEmail.services.uploads.store import (
    OCTET_STREAM,
    UploadNotFound,
    UploadQuotaExceeded,
    UploadStore,
    derived_id,
)


@dataclass(frozen=True)
class Sender:
    mailbox_id: int
    recipient: Recipient

    @property
    def address(self) -> str:
        return self.recipient.address


async def sender_of(
    connection: AsyncConnection, *, principal: Principal, settings: EmailSettings
) -> Sender:
    """The caller's own mailbox: From is always this address, whatever the request says."""
    if not principal.address:
        raise Forbidden("this token speaks for no mailbox")
    address = normalise_local_address(principal.address, settings.mail_domain)
    row = (
        await connection.execute(
            select(Mailbox.id, Mailbox.display_name).where(Mailbox.address == address)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no mailbox for {address}")
    name = " ".join(str(row.display_name or "").split())[:200]
    return Sender(int(row.id), Recipient(display_name=name, address=address))


def _recipients(
    body: MessageCompose, settings: EmailSettings
) -> tuple[list[Recipient], list[Recipient], list[Recipient]]:
    test = settings.environment != "production"
    to = unique(parse_recipients(body.to, "to", test_domains=test))
    cc = unique(parse_recipients(body.cc, "cc", test_domains=test), exclude={r.key for r in to})
    taken = {item.key for item in [*to, *cc]}
    bcc = unique(parse_recipients(body.bcc, "bcc", test_domains=test), exclude=taken)
    return to, cc, bcc


def check_recipient_count(count: int, settings: EmailSettings, *, for_sending: bool) -> None:
    if for_sending and count == 0:
        raise ComposeInvalid("to", "to: add at least one recipient", code="no_recipients")
    if count > settings.max_recipients:
        raise ComposeInvalid(
            "to",
            f"to: at most {settings.max_recipients} recipients per message (to, cc and bcc)",
            code="too_many_recipients",
        )


def request_fields(body: MessageCompose) -> dict[str, list[str]]:
    return {"to": list(body.to), "cc": list(body.cc), "bcc": list(body.bcc)}


def composition_fields(composition: Composition) -> dict[str, list[str]]:
    return {
        "to": [item.address for item in composition.to],
        "cc": [item.address for item in composition.cc],
        "bcc": [item.address for item in composition.bcc],
    }


def field_of(fields: Mapping[str, list[str]], address: str) -> str:
    """The request field ("to[2]") naming `address`, for errors about one recipient."""
    target = address.lower()
    for name in ("to", "cc", "bcc"):
        for index, entry in enumerate(fields.get(name, [])):
            if target in entry.lower():
                return f"{name}[{index}]"
    return "to"


async def load_attachments(
    uploads: UploadStore, *, owner: str, ids: list[str]
) -> list[AttachmentData]:
    items: list[AttachmentData] = []
    for index, upload_id in enumerate(dict.fromkeys(ids)):
        try:
            upload, data = await uploads.get(owner, upload_id)
        except UploadNotFound as exc:
            raise ComposeInvalid(
                f"attachments[{index}]",
                f"attachments[{index}]: upload {upload_id!r} does not exist or has expired",
                code="unknown_upload",
                status_code=404,
            ) from exc
        content_type = upload.content_type
        if content_type.startswith("message/"):
            # RFC 2046 5.2.1: message/rfc822 must not be base64-encoded; send it as bytes.
            content_type = OCTET_STREAM
        items.append(AttachmentData(upload.filename, content_type, data))
    return items


async def compose(
    connection: AsyncConnection,
    blobs: BlobStore,
    uploads: UploadStore,
    *,
    principal: Principal,
    sender: Sender,
    body: MessageCompose,
    settings: EmailSettings,
    for_sending: bool,
) -> Composition:
    """Check every field of `body` and gather what it refers to (422 naming the field)."""
    to, cc, bcc = _recipients(body, settings)
    check_recipient_count(len(to) + len(cc) + len(bcc), settings, for_sending=for_sending)
    attachments = await load_attachments(uploads, owner=sender.address, ids=body.attachments)
    total = sum(len(item.data) for item in attachments) + len(body.text) + len(body.html or "")
    if total > settings.max_message_bytes:
        raise ComposeInvalid(
            "attachments",
            f"attachments: the message would exceed {settings.max_message_bytes} bytes",
            code="message_too_large",
        )
    composition = Composition(
        sender=sender.recipient,
        to=to,
        cc=cc,
        bcc=bcc,
        subject=clean_header_text(body.subject),
        text=body.text,
        html=body.html or None,
        attachments=attachments,
    )
    if body.in_reply_to is not None:
        original = await load_message(
            connection, blobs, message_id=body.in_reply_to, principal=principal
        )
        composition.reply_of = body.in_reply_to
        if original.message_id:
            composition.in_reply_to = original.message_id
            composition.references = original.references or (
                [original.in_reply_to_header] if original.in_reply_to_header else []
            )
    if body.forward_of is not None:
        # 404 for a message that is not the caller's
        await load_message(connection, blobs, message_id=body.forward_of, principal=principal)
        composition.forward_of = body.forward_of
    return composition


async def upload_reads(uploads: UploadStore, *, owner: str, ids: list[str]) -> list[UploadRead]:
    reads: list[UploadRead] = []
    for upload_id in dict.fromkeys(ids):
        try:
            upload = await uploads.info(owner, upload_id)
        except UploadNotFound:
            continue
        reads.append(UploadRead.model_validate(upload, from_attributes=True))
    return reads


async def materialise(
    uploads: UploadStore, *, owner: str, source: str, attachments: list[AttachmentData]
) -> list[UploadRead]:
    """The attachments of a stored message as the caller's uploads (stable ids per source)."""
    reads: list[UploadRead] = []
    for index, item in enumerate(attachments):
        try:
            upload = await uploads.put(
                owner,
                data=item.data,
                filename=item.filename,
                content_type=item.content_type,
                upload_id=derived_id(owner, source, index),
            )
        except UploadQuotaExceeded as exc:
            raise AppError(str(exc), status_code=413, code="upload_quota_exceeded") from exc
        reads.append(UploadRead.model_validate(upload, from_attributes=True))
    return reads


async def reply_fields(original: StoredMessage, *, own: str, reply_all: bool) -> ComposeRead:
    to, cc = quoting.reply_recipients(
        own=own,
        sender=original.sender,
        reply_to=original.reply_to,
        to=original.to,
        cc=original.cc,
        reply_all=reply_all,
    )
    return ComposeRead(
        to=[item.formatted() for item in to],
        cc=[item.formatted() for item in cc],
        bcc=[],
        subject=quoting.reply_subject(original.subject),
        text=quoting.reply_text(
            date=original.date, sender=original.from_text, original_text=original.text
        ),
        html=None,
        attachments=[],
        in_reply_to=int(original.row["id"]),
        forward_of=None,
    )


async def forward_fields(original: StoredMessage, uploads: UploadStore, *, own: str) -> ComposeRead:
    return ComposeRead(
        to=[],
        cc=[],
        bcc=[],
        subject=quoting.forward_subject(original.subject),
        text=quoting.forward_text(
            date=original.date,
            sender=original.from_text,
            subject=original.subject,
            to=", ".join(item.formatted() for item in original.to),
            cc=", ".join(item.formatted() for item in original.cc),
            original_text=original.text,
        ),
        html=None,
        attachments=await materialise(
            uploads,
            owner=own,
            source=f"forward:{original.row['blob_key'] or original.row['id']}",
            attachments=original.attachments,
        ),
        in_reply_to=None,
        forward_of=int(original.row["id"]),
    )


async def draft_fields(draft: StoredMessage, uploads: UploadStore) -> DraftRead:
    return DraftRead(
        id=int(draft.row["id"]),
        to=[item.formatted() for item in draft.to],
        cc=[item.formatted() for item in draft.cc],
        bcc=[item.formatted() for item in draft.bcc],
        subject=draft.subject,
        text=draft.text,
        html=draft.html or None,
        attachments=await materialise(
            uploads,
            owner=draft.address,
            source=f"draft:{draft.row['blob_key']}",
            attachments=draft.attachments,
        ),
        in_reply_to=draft.reply_of,
        forward_of=draft.forward_of,
    )


def composition_of_draft(draft: StoredMessage, sender: Sender) -> Composition:
    """A stored draft as it will be sent (its attachments straight from its own bytes)."""
    return Composition(
        sender=sender.recipient,
        to=unique(draft.to),
        cc=unique(draft.cc, exclude={item.key for item in draft.to}),
        bcc=unique(draft.bcc, exclude={item.key for item in [*draft.to, *draft.cc]}),
        subject=draft.subject,
        text=draft.text,
        html=draft.html or None,
        attachments=[
            AttachmentData(
                item.filename,
                OCTET_STREAM if item.content_type.startswith("message/") else item.content_type,
                item.data,
            )
            for item in draft.attachments
        ],
        in_reply_to=draft.in_reply_to_header,
        references=[ref for ref in draft.references if ref != draft.in_reply_to_header],
        reply_of=draft.reply_of,
        forward_of=draft.forward_of,
    )
