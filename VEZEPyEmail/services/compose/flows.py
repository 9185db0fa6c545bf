"""Sending a composed message: the same durable paths as SMTP submission (RFC 6409).

Remote recipients go to the durable outbound queue (`outbound.queue.enqueue_outbound`; the
worker DKIM-signs at delivery, as for SMTP submission), local ones through `deliver_local`
(blob fsynced, rows committed), then a \\Seen copy goes to the sender's Sent folder. Only then
are the draft purged, the original marked \\Answered (reply) or labelled $Forwarded (forward,
the IMAP keyword of RFC 5788's registry) and the used uploads dropped. Bcc recipients are
envelope recipients only: no copy carries a Bcc field (RFC 5322 section 3.6.3, first method).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.errors import NotFound
from VEZEPyCore.events.bus import EventBus
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.compose.build import (
    Composition,
    build_message,
    new_message_id,
    render,
)
from VEZEPyEmail.services.compose.drafts import remove_draft
from VEZEPyEmail.services.compose.errors import ComposeInvalid
from VEZEPyEmail.services.compose.schemas import RecipientStatus, SendRead
from VEZEPyEmail.services.compose.service import Sender, check_recipient_count, field_of
from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.services.messages import actions
from VEZEPyEmail.services.outbound.queue import enqueue_outbound
from VEZEPyEmail.services.uploads.store import UploadStore
from VEZEPyEmail.streaming.events import publish_mail_event

log = logging.getLogger(__name__)

FORWARDED_LABEL = "$Forwarded"


def _received(hostname: str, recipients: list[str]) -> tuple[str, str]:
    """A Received trace field for local copies (RFC 5321 section 4.4), as submission adds."""
    parts = [f"by {hostname}", "with HTTP", f"id {secrets.token_hex(8).upper()}"]
    if len(recipients) == 1:
        parts.append(f"for <{recipients[0]}>")
    return ("Received", "\r\n\t".join(parts) + "; " + format_datetime(datetime.now(UTC)))


async def _unknown_local(
    sessionmaker: async_sessionmaker[AsyncSession], addresses: list[str]
) -> list[str]:
    if not addresses:
        return []
    async with sessionmaker() as session:
        known = set(
            await session.scalars(select(Mailbox.address).where(Mailbox.address.in_(addresses)))
        )
    return [address for address in addresses if address not in known]


async def send_composition(
    state: Any,
    *,
    composition: Composition,
    sender: Sender,
    fields: Mapping[str, list[str]],
    draft_id: int | None = None,
    used_uploads: Sequence[str] = (),
) -> SendRead:
    """Deliver `composition` as `sender`; durable for every recipient when it returns."""
    settings: EmailSettings = state.settings
    sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
    bus: EventBus = state.bus
    domain = settings.mail_domain.lower()
    recipients = composition.envelope_recipients()
    check_recipient_count(len(recipients), settings, for_sending=True)
    local = [address.lower() for address in recipients if address.lower().endswith("@" + domain)]
    remote = [address for address in recipients if not address.lower().endswith("@" + domain)]
    unknown = await _unknown_local(sessionmaker, local)
    if unknown:
        # What RCPT TO would answer with 550 5.1.1 (RFC 3463): refused before anything is sent.
        field = field_of(fields, unknown[0])
        raise ComposeInvalid(
            field,
            f"{field}: <{unknown[0]}> does not exist here (550 5.1.1 user unknown)",
            code="recipient_unknown",
        )

    message_id = new_message_id(domain)
    raw = render(build_message(composition, date=datetime.now(UTC), message_id=message_id))
    if len(raw) > settings.max_message_bytes:
        raise ComposeInvalid(
            "attachments",
            f"attachments: the message is {len(raw)} bytes, more than the "
            f"{settings.max_message_bytes} allowed",
            code="message_too_large",
        )

    if remote:
        await enqueue_outbound(state, raw=raw, envelope_from=sender.address, recipients=remote)
    if local:
        await deliver_local(
            state,
            raw=raw,
            envelope_from=sender.address,
            recipients=local,
            prepend_headers=[
                ("Return-Path", f"<{sender.address}>"),
                _received(settings.smtp_hostname, local),
            ],
        )
    sent_id = await _file_sent_copy(state, raw=raw, sender=sender)
    await _after_send(sessionmaker, bus, sender=sender, composition=composition, draft_id=draft_id)
    uploads: UploadStore = state.uploads
    for upload_id in used_uploads:
        try:
            await uploads.delete(sender.address, upload_id)
        except Exception:  # scratch space: the sweep removes it later anyway
            log.warning("could not drop upload %s", upload_id, exc_info=True)

    statuses = [RecipientStatus(address=address, status="delivered") for address in local]
    statuses += [RecipientStatus(address=address, status="queued") for address in remote]
    return SendRead(message_id=message_id, id=sent_id, recipients=statuses)


async def _file_sent_copy(state: Any, *, raw: bytes, sender: Sender) -> int:
    """The sender's \\Seen copy in Sent. Sending to oneself already filed the Message-ID in
    the inbox, so the Sent copy is then a Message-ID-less copy of that row, as IMAP COPY is."""
    delivered = await deliver_local(
        state,
        raw=raw,
        envelope_from=sender.address,
        recipients=[sender.address],
        folder="Sent",
        seen=True,
    )
    if not delivered:  # the sender's own mailbox vanished mid-send
        raise NotFound(f"no mailbox for {sender.address}")
    first = delivered[0]
    if not first.duplicate:
        return int(first.id)
    sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
    async with sessionmaker() as session:
        copy_id = await actions.copy_message(
            session, message_id=first.id, mailbox_id=sender.mailbox_id, folder="Sent"
        )
        await session.execute(update(Message).where(Message.id == copy_id).values(seen=True))
        await session.commit()
    await publish_mail_event(
        state.bus, sender.address, "message.created", id=copy_id, folder="Sent"
    )
    return copy_id


async def _after_send(
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    *,
    sender: Sender,
    composition: Composition,
    draft_id: int | None,
) -> None:
    updated: list[int] = []
    async with sessionmaker() as session:
        if draft_id is not None:
            await remove_draft(session, draft_id=draft_id)
        own = Message.mailbox_id == sender.mailbox_id  # ids are checked again: never another's
        if composition.reply_of is not None:
            result = await session.execute(
                update(Message).where(Message.id == composition.reply_of, own).values(answered=True)
            )
            if getattr(result, "rowcount", 0):
                updated.append(composition.reply_of)
        if composition.forward_of is not None:
            row = await session.get(Message, composition.forward_of)
            if row is not None and row.mailbox_id == sender.mailbox_id:
                labels = list(row.labels or [])
                if FORWARDED_LABEL not in labels:
                    row.labels = [*labels, FORWARDED_LABEL]
                updated.append(row.id)
        await session.commit()
    try:
        if draft_id is not None:
            await publish_mail_event(bus, sender.address, "message.removed", id=draft_id)
        for message_id in dict.fromkeys(updated):
            await publish_mail_event(bus, sender.address, "message.updated", id=message_id)
    except Exception:
        log.warning("could not publish the events of a send", exc_info=True)
