"""Drafts and sending over HTTP as flows: compose, store, commit, publish (ADR 0006, 0022).

A send is one durable unit. The bytes are written (fsynced) first; then one transaction files
every local recipient's copy (Sieve rules included), the sender's \\Seen copy in Sent, one
outbound queue row per remote recipient (the worker DKIM-signs at delivery, as for SMTP
submission, RFC 6409), the purge of the sent draft, \\Answered on the original of a reply,
$Forwarded (RFC 5788's registry) on the original of a forward, and the `Idempotency-Key`
record. A failure before the commit leaves none of it; after the commit, all of it is there.
What follows the commit only announces (events, waking the outbound worker) or acts on
Sieve's redirects and vacation replies, as SMTP delivery does. Bcc recipients are envelope
recipients only: no copy carries a Bcc field (RFC 5322 section 3.6.3, first method).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyCore.errors import NotFound
from VEZEPyCore.security.ratelimit import RateLimiter
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.compose import drafts, idempotency, service
from VEZEPyEmail.services.compose.build import (
    Composition,
    build_message,
    new_message_id,
    render,
)
from VEZEPyEmail.services.compose.errors import ComposeInvalid
from VEZEPyEmail.services.compose.schemas import (
    DraftRead,
    MessageCompose,
    RecipientStatus,
    SendRead,
)
from VEZEPyEmail.services.compose.service import Sender
from VEZEPyEmail.services.compose.source import StoredMessage, load_message
from VEZEPyEmail.services.delivery.local import (
    DeliveredMessage,
    PreparedDelivery,
    file_delivery,
    finish_delivery,
    prepare_delivery,
)
from VEZEPyEmail.services.messages import actions
from VEZEPyEmail.services.outbound.queue import add_outbound, wake_outbound
from VEZEPyEmail.services.store.blobs import BlobStore
from VEZEPyEmail.services.uploads.store import UploadStore
from VEZEPyEmail.streaming.events import publish_mail_event

log = logging.getLogger(__name__)

FORWARDED_LABEL = "$Forwarded"
SENT = "Sent"


@dataclass(frozen=True)
class SendOutcome:
    """The send's result; `replayed` when it is the stored result of an earlier request."""

    result: SendRead
    replayed: bool = False


# -- drafts --------------------------------------------------------------------------------


async def own_draft(
    connection: AsyncConnection, blobs: BlobStore, *, principal: Principal, draft_id: int
) -> StoredMessage:
    """The caller's draft, or 404 (another user's id, or a message that is not a draft)."""
    draft = await load_message(connection, blobs, message_id=draft_id, principal=principal)
    if not draft.row["draft"] or draft.address != (principal.address or "").lower():
        raise NotFound("no such draft")
    return draft


async def read_draft(state: Any, *, principal: Principal, draft_id: int) -> DraftRead:
    """The editable fields; attachments come back as fresh uploads of the caller."""
    async with _reading(state) as connection:
        draft = await own_draft(connection, state.blobs, principal=principal, draft_id=draft_id)
    return await service.draft_fields(draft, state.uploads)


async def save_draft(
    state: Any,
    session: AsyncSession,
    *,
    principal: Principal,
    body: MessageCompose,
    draft_id: int | None = None,
) -> DraftRead:
    """Create a draft (`draft_id` None) or replace the caller's draft keeping its id."""
    settings: EmailSettings = state.settings
    blobs: BlobStore = state.blobs
    uploads: UploadStore = state.uploads
    connection = await session.connection()
    if draft_id is not None:
        await own_draft(connection, blobs, principal=principal, draft_id=draft_id)
    sender = await service.sender_of(connection, principal=principal, settings=settings)
    composition = await service.compose(
        connection,
        blobs,
        uploads,
        principal=principal,
        sender=sender,
        body=body,
        settings=settings,
        for_sending=False,
    )
    raw = _draft_bytes(composition, settings)
    if draft_id is None:
        draft_id = await drafts.create_draft(
            session, blobs, mailbox_id=sender.mailbox_id, raw=raw, address=sender.address
        )
        event = "message.created"
    else:
        await drafts.replace_draft(
            session, blobs, draft_id=draft_id, mailbox_id=sender.mailbox_id, raw=raw
        )
        event = "message.updated"
    await session.commit()
    await publish_mail_event(state.bus, sender.address, event, id=draft_id, folder=drafts.DRAFTS)
    return DraftRead(
        id=draft_id,
        to=body.to,
        cc=body.cc,
        bcc=body.bcc,
        subject=body.subject,
        text=body.text,
        html=body.html,
        attachments=await service.upload_reads(uploads, owner=sender.address, ids=body.attachments),
        in_reply_to=body.in_reply_to,
        forward_of=body.forward_of,
    )


async def discard_draft(
    state: Any, session: AsyncSession, *, principal: Principal, draft_id: int
) -> None:
    draft = await own_draft(
        await session.connection(), state.blobs, principal=principal, draft_id=draft_id
    )
    await drafts.remove_draft(session, draft_id=draft_id)
    await session.commit()
    await publish_mail_event(state.bus, draft.address, "message.removed", id=draft_id)


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


# -- sending -------------------------------------------------------------------------------


async def send_new(
    state: Any, *, principal: Principal, body: MessageCompose, idempotency_key: str | None
) -> SendOutcome:
    """Send the message `body` describes, as the caller (From is always their address)."""
    settings: EmailSettings = state.settings
    claim = idempotency.claim_of(idempotency_key, kind="send", request=body.model_dump(mode="json"))
    async with _reading(state) as connection:
        sender, first = await _sender_and_first_result(state, connection, principal, claim)
        if first is not None:
            return SendOutcome(first, replayed=True)
        composition = await service.compose(
            connection,
            state.blobs,
            state.uploads,
            principal=principal,
            sender=sender,
            body=body,
            settings=settings,
            for_sending=True,
        )
    outcome = await _send(
        state,
        composition=composition,
        sender=sender,
        fields=service.request_fields(body),
        claim=claim,
    )
    if not outcome.replayed:
        await _drop_uploads(state.uploads, sender.address, body.attachments)
    return outcome


async def send_draft(
    state: Any, *, principal: Principal, draft_id: int, idempotency_key: str | None
) -> SendOutcome:
    """Send the caller's saved draft; the draft is purged in the send's transaction."""
    claim = idempotency.claim_of(idempotency_key, kind="draft", request={"draft_id": draft_id})
    async with _reading(state) as connection:
        # Before the draft is looked up: a retry finds the draft gone (it was sent).
        sender, first = await _sender_and_first_result(state, connection, principal, claim)
        if first is not None:
            return SendOutcome(first, replayed=True)
        # Before the rate limit (in _prepare): a missing or foreign draft spends no send.
        draft = await own_draft(connection, state.blobs, principal=principal, draft_id=draft_id)
        composition = service.composition_of_draft(draft, sender)
    return await _send(
        state,
        composition=composition,
        sender=sender,
        fields=service.composition_fields(composition),
        claim=claim,
        draft_id=draft_id,
    )


async def _sender_and_first_result(
    state: Any,
    connection: AsyncConnection,
    principal: Principal,
    claim: idempotency.Claim | None,
) -> tuple[Sender, SendRead | None]:
    """The caller's mailbox, and the stored result when this is a retry of a committed send.

    The rate limit is checked only after this (in `_prepare`): a retry does not count as
    another message.
    """
    sender = await service.sender_of(connection, principal=principal, settings=state.settings)
    if claim is not None:
        found = await idempotency.replay(connection, mailbox_id=sender.mailbox_id, claim=claim)
        if found is not None:
            return sender, found
    return sender, None


@asynccontextmanager
async def _reading(state: Any) -> AsyncIterator[AsyncConnection]:
    """A read connection that is closed before the send's write transaction starts."""
    sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
    async with sessionmaker() as session:
        yield await session.connection()


async def _rate_limit(state: Any, sender: Sender) -> None:
    settings: EmailSettings = state.settings
    limiter: RateLimiter = state.send_limiter
    decision = await limiter.hit(
        f"send:{sender.address}",
        limit=settings.send_rate_limit,
        window_seconds=settings.send_rate_window_seconds,
    )
    decision.raise_if_refused("messages sent")


def _received(hostname: str, recipients: list[str]) -> tuple[str, str]:
    """A Received trace field for local copies (RFC 5321 section 4.4), as submission adds."""
    parts = [f"by {hostname}", "with HTTP", f"id {secrets.token_hex(8).upper()}"]
    if len(recipients) == 1:
        parts.append(f"for <{recipients[0]}>")
    return ("Received", "\r\n\t".join(parts) + "; " + format_datetime(datetime.now(UTC)))


async def _unknown_local(state: Any, addresses: list[str]) -> list[str]:
    if not addresses:
        return []
    async with _reading(state) as connection:
        known = set(
            (
                await connection.execute(
                    select(Mailbox.address).where(Mailbox.address.in_(addresses))
                )
            ).scalars()
        )
    return [address for address in addresses if address not in known]


@dataclass(frozen=True)
class _Prepared:
    """A checked, rendered message whose bytes are durable, ready for the send transaction."""

    message_id: str
    raw: bytes
    local: list[str]
    remote: list[str]
    local_copy: PreparedDelivery | None
    sent_copy: PreparedDelivery


async def _prepare(
    state: Any, *, composition: Composition, sender: Sender, fields: Mapping[str, list[str]]
) -> _Prepared:
    settings: EmailSettings = state.settings
    domain = settings.mail_domain.lower()
    recipients = composition.envelope_recipients()
    service.check_recipient_count(len(recipients), settings, for_sending=True)
    local = [address.lower() for address in recipients if address.lower().endswith("@" + domain)]
    remote = [address for address in recipients if not address.lower().endswith("@" + domain)]
    unknown = await _unknown_local(state, local)
    if unknown:
        # What RCPT TO would answer with 550 5.1.1 (RFC 3463): refused before anything is sent.
        field = service.field_of(fields, unknown[0])
        raise ComposeInvalid(
            field,
            f"{field}: <{unknown[0]}> does not exist here (550 5.1.1 user unknown)",
            code="recipient_unknown",
        )
    # Counted once the cheap checks have passed, so a request refused for what it says (an
    # unknown recipient, a missing draft or upload) spends nothing; before the rendering and
    # the fsyncs, so a caller over the limit costs little.
    await _rate_limit(state, sender)
    message_id = new_message_id(domain)
    raw = render(build_message(composition, date=datetime.now(UTC), message_id=message_id))
    if len(raw) > settings.max_message_bytes:
        raise ComposeInvalid(
            "attachments",
            f"attachments: the message is {len(raw)} bytes, more than the "
            f"{settings.max_message_bytes} allowed",
            code="message_too_large",
        )
    # The blobs are fsynced here, before any row names them; a send that fails later leaves
    # only unreferenced blobs, which are harmless.
    local_copy = None
    if local:
        local_copy = await prepare_delivery(
            state,
            raw=raw,
            envelope_from=sender.address,
            recipients=local,
            prepend_headers=[
                ("Return-Path", f"<{sender.address}>"),
                _received(settings.smtp_hostname, local),
            ],
        )
    sent_copy = await prepare_delivery(
        state,
        raw=raw,
        envelope_from=sender.address,
        recipients=[sender.address],
        folder=SENT,
        seen=True,
    )
    if sent_copy is None:  # the sender's own mailbox vanished mid-send
        raise NotFound(f"no mailbox for {sender.address}")
    return _Prepared(message_id, raw, local, remote, local_copy, sent_copy)


class _KeyTaken(Exception):
    """A concurrent send with the same Idempotency-Key committed first."""


async def _send(
    state: Any,
    *,
    composition: Composition,
    sender: Sender,
    fields: Mapping[str, list[str]],
    claim: idempotency.Claim | None,
    draft_id: int | None = None,
) -> SendOutcome:
    prepared = await _prepare(state, composition=composition, sender=sender, fields=fields)
    sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
    try:
        async with sessionmaker() as session:
            await begin_as_writer(session)
            reservation = None
            if claim is not None:
                try:
                    reservation = await idempotency.take(
                        session, mailbox_id=sender.mailbox_id, claim=claim
                    )
                except IntegrityError as exc:
                    raise _KeyTaken from exc
            delivered: list[DeliveredMessage] = []
            if prepared.local_copy is not None:
                delivered = await file_delivery(session, state, prepared.local_copy)
            sent_rows = await file_delivery(session, state, prepared.sent_copy)
            sent_id = await _sent_copy_id(session, sender, sent_rows)
            await add_outbound(
                session,
                state,
                raw=prepared.raw,
                envelope_from=sender.address,
                recipients=prepared.remote,
            )
            updated = await _settle_sources(
                session, sender=sender, composition=composition, draft_id=draft_id
            )
            statuses = [RecipientStatus(address=a, status="delivered") for a in prepared.local]
            statuses += [RecipientStatus(address=a, status="queued") for a in prepared.remote]
            result = SendRead(message_id=prepared.message_id, id=sent_id, recipients=statuses)
            if reservation is not None:
                await idempotency.record(session, reservation, result)
            await session.commit()
    except _KeyTaken:
        assert claim is not None
        async with _reading(state) as connection:
            found = await idempotency.replay(connection, mailbox_id=sender.mailbox_id, claim=claim)
        if found is None:
            raise idempotency.in_progress() from None
        return SendOutcome(found, replayed=True)
    await _announce(
        state,
        prepared,
        delivered=delivered,
        sender=sender,
        sent_id=sent_id,
        draft_id=draft_id,
        updated=updated,
    )
    return SendOutcome(result)


async def _sent_copy_id(
    session: AsyncSession, sender: Sender, sent_rows: Sequence[DeliveredMessage]
) -> int:
    """The id of the \\Seen copy in Sent. Sending to oneself already filed the Message-ID in
    the inbox, so the Sent copy is then a Message-ID-less copy of that row, as IMAP COPY is."""
    if not sent_rows:
        raise NotFound(f"no mailbox for {sender.address}")
    first = sent_rows[0]
    if not first.duplicate:
        return int(first.id)
    copy_id = await actions.copy_message(
        session, message_id=first.id, mailbox_id=sender.mailbox_id, folder=SENT
    )
    await session.execute(update(Message).where(Message.id == copy_id).values(seen=True))
    return copy_id


async def _settle_sources(
    session: AsyncSession, *, sender: Sender, composition: Composition, draft_id: int | None
) -> list[int]:
    """Purge the sent draft; mark what the message answers or forwards. Returns changed ids."""
    if draft_id is not None and not await drafts.remove_draft(session, draft_id=draft_id):
        # Sent meanwhile by another request: this one must send nothing.
        raise NotFound("no such draft")
    updated: list[int] = []
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
    await session.flush()
    return list(dict.fromkeys(updated))


async def _announce(
    state: Any,
    prepared: _Prepared,
    *,
    delivered: list[DeliveredMessage],
    sender: Sender,
    sent_id: int,
    draft_id: int | None,
    updated: list[int],
) -> None:
    """After the commit: nothing here may undo or fail the send."""
    wake_outbound(state)
    try:
        if prepared.local_copy is not None:
            await finish_delivery(state, prepared.local_copy, delivered)
        bus = state.bus
        await publish_mail_event(
            bus,
            sender.address,
            "message.created",
            id=sent_id,
            folder=SENT,
            subject=prepared.sent_copy.summary.subject,
        )
        if draft_id is not None:
            await publish_mail_event(bus, sender.address, "message.removed", id=draft_id)
        for message_id in updated:
            await publish_mail_event(bus, sender.address, "message.updated", id=message_id)
    except Exception:
        log.warning("a committed send could not announce all of itself", exc_info=True)


async def _drop_uploads(uploads: UploadStore, owner: str, ids: Sequence[str]) -> None:
    for upload_id in ids:
        try:
            await uploads.delete(owner, upload_id)
        except Exception:  # scratch space: the sweep removes it later anyway
            log.warning("could not drop upload %s", upload_id, exc_info=True)
