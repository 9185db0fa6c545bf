"""aiosmtpd handlers: one hook per SMTP command (RFC 5321 section 4.1).

`MxHandler` takes mail for local users from anyone and relays nothing. `SubmissionHandler`
takes mail from authenticated users (RFC 6409) for anyone, as that user only.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.policy import default as default_policy
from email.utils import format_datetime, getaddresses
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.intake import AcceptedMessage
from VEZEPyEmail.services.smtp import bridge
from VEZEPyEmail.services.smtp.protocol import protocol_names
from VEZEPyEmail.services.srs import bounces as srs_bounces

log = logging.getLogger(__name__)

NULL_SENDER = "<>"


@dataclass(frozen=True)
class SmtpUser:
    """Who a submission session authenticated as (RFC 4954 section 6's authorization id)."""

    handle: str
    address: str


def new_queue_id() -> str:
    return secrets.token_hex(8).upper()


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def normalise(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}" if local else address


def received_header(
    *,
    session: Session,
    hostname: str,
    protocol: str,
    queue_id: str,
    recipient: str | None,
) -> str:
    """A Received trace field (RFC 5321 section 4.4; `with` values from RFC 3848)."""
    peer = session.peer
    ip = peer[0] if isinstance(peer, tuple) else str(peer)
    helo = "".join(ch for ch in (session.host_name or "unknown") if " " < ch < "\x7f")[:255]
    parts = [f"from {helo} ([{ip}])", f"by {hostname}", f"with {protocol}", f"id {queue_id}"]
    if recipient is not None:
        parts.append(f"for <{recipient}>")
    return "\r\n\t".join(parts) + "; " + format_datetime(datetime.now(UTC))


def protocol_name(session: Session, *, authenticated: bool) -> str:
    # RFC 3848: ESMTP, plus S for TLS and A for an authenticated session.
    name = "ESMTP" if session.extended_smtp else "SMTP"
    if session.ssl is not None:
        name += "S"
    if authenticated:
        name += "A"
    return name


class BaseHandler:
    def __init__(self, *, state: Any, settings: EmailSettings) -> None:
        self.state = state
        self.settings = settings

    def __dir__(self) -> list[str]:
        # aiosmtpd scans a handler's attributes on every connection (VezeSMTP.__dir__).
        return protocol_names(type(self))

    def _recipient_limit_reached(self, envelope: Envelope) -> bool:
        return len(envelope.rcpt_tos) >= self.settings.max_recipients

    async def _local_rcpt(self, address: str) -> str | None:
        """None when `address` is a local mailbox, else the refusal (RFC 5321 4.2.2)."""
        try:
            exists = await bridge.local_mailbox_exists(self.state, address)
        except Exception:
            log.exception("mailbox lookup failed for %s", address)
            return "451 4.3.0 Mailbox lookup failed, try again later"
        if not exists:
            return f"550 5.1.1 <{address}>: Recipient address rejected: user unknown"
        return None

    def _is_local(self, address: str) -> bool:
        return domain_of(address) == self.settings.mail_domain.lower()


class MxHandler(BaseHandler):
    """Inbound MX: no AUTH; local recipients only, so never an open relay."""

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._recipient_limit_reached(envelope):
            return "452 4.5.3 Too many recipients"  # RFC 5321 section 4.5.3.1.10
        if not self._is_local(address):
            return "550 5.7.1 Relaying denied"
        if srs_bounces.accepts(self.state, address):  # a bounce of mail we forwarded
            envelope.rcpt_tos.append(address.strip().strip("<>"))  # SRS hashes keep their case
            envelope.rcpt_options.extend(options)
            return "250 2.1.5 OK"
        refusal = await self._local_rcpt(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(normalise(address))
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or b"")
        queue_id = new_queue_id()
        recipients = list(envelope.rcpt_tos)
        peer_ip = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        message = AcceptedMessage(
            raw=raw,
            envelope_from=envelope.mail_from or NULL_SENDER,
            recipients=recipients,
            peer_ip=peer_ip[:64],
            helo=(session.host_name or "")[:255],
            received=received_header(
                session=session,
                hostname=self.settings.smtp_hostname,
                protocol=protocol_name(session, authenticated=False),
                queue_id=queue_id,
                recipient=recipients[0] if len(recipients) == 1 else None,
            ),
            accepted_at=datetime.now(UTC),
        )
        try:
            # RFC 5321 section 6.1: the 250 is a promise; it follows a committed record of
            # the message. Checks and filing follow it (services/intake, ADR 0023).
            await bridge.accept_inbound(self.state, message)
        except Exception as exc:
            refusal = bridge.refusal_for(exc)
            if refusal is not None:
                return refusal
            log.exception("recording %s failed", queue_id)
            return "451 4.3.0 Could not store the message, try again later"
        return f"250 2.0.0 OK queued as {queue_id}"


#: From fields longer than this, or more of them, are refused before the structured parse:
#: its time grows faster than the input on crafted values (nested comments, say), and no real
#: message needs more (RFC 5322 allows one From field).
MAX_FROM_FIELD_CHARS = 4096
MAX_FROM_FIELDS = 4


def header_from_addresses(raw: bytes) -> list[str]:
    """The addresses of the From header fields (RFC 5322 section 3.6.2); ValueError when
    they are too long or too many to parse."""
    unparsed = BytesHeaderParser(policy=compat32).parsebytes(raw).get_all("From", [])
    if len(unparsed) > MAX_FROM_FIELDS or any(
        len(str(value)) > MAX_FROM_FIELD_CHARS for value in unparsed
    ):
        raise ValueError("From header fields too long or too many")
    message = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    values = [str(value) for value in message.get_all("From", [])]
    return [address.lower() for _, address in getaddresses(values) if address]


class SubmissionHandler(BaseHandler):
    """Submission (RFC 6409): authenticated users send as themselves to anyone."""

    def __init__(self, *, state: Any, settings: EmailSettings, authenticator: Any) -> None:
        super().__init__(state=state, settings=settings)
        self.authenticator = authenticator

    # AUTH mechanisms (RFC 4954); the handler's auth_* methods replace aiosmtpd's built-ins.
    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> Any:
        return await self.authenticator.plain(server, args)

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> Any:
        return await self.authenticator.login(server, args)

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> Any:
        return await self.authenticator.oauthbearer(server, args)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> Any:
        return await self.authenticator.xoauth2(server, args)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        user = session.auth_data
        if not isinstance(user, SmtpUser) or normalise(address).lower() != user.address:
            return "553 5.7.1 Sender address rejected: not owned by the authenticated user"
        envelope.mail_from = normalise(address)
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._recipient_limit_reached(envelope):
            return "452 4.5.3 Too many recipients"  # RFC 5321 section 4.5.3.1.10
        if self._is_local(address):
            refusal = await self._local_rcpt(address)
            if refusal is not None:
                return refusal
        envelope.rcpt_tos.append(normalise(address))
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        user = session.auth_data
        if not isinstance(user, SmtpUser):
            return "530 5.7.0 Authentication required"
        raw = bytes(envelope.original_content or b"")
        try:
            senders = header_from_addresses(raw)
        except Exception:
            senders = []
        if not senders or any(sender != user.address for sender in senders):
            return "553 5.7.1 From header rejected: not owned by the authenticated user"
        queue_id = new_queue_id()
        sender = str(envelope.mail_from)
        local = [rcpt for rcpt in envelope.rcpt_tos if self._is_local(rcpt)]
        remote = [rcpt for rcpt in envelope.rcpt_tos if not self._is_local(rcpt)]
        received = (
            "Received",
            received_header(
                session=session,
                hostname=self.settings.smtp_hostname,
                protocol=protocol_name(session, authenticated=True),
                queue_id=queue_id,
                recipient=None,
            ),
        )
        try:
            # Every part is durable before the 250 (RFC 5321 section 6.1). A retry after a
            # partial failure is stored once: the store drops a duplicate Message-ID.
            if remote:
                await bridge.enqueue_outbound(
                    self.state, raw=raw, envelope_from=sender, recipients=remote
                )
            if local:
                await bridge.deliver_local(
                    self.state,
                    raw=raw,
                    envelope_from=sender,
                    recipients=local,
                    prepend_headers=[
                        ("Return-Path", f"<{sender}>"),
                        received,
                    ],
                )
            await bridge.deliver_local(
                self.state,
                raw=raw,
                envelope_from=sender,
                recipients=[user.address],
                folder="Sent",
                seen=True,
            )
        except Exception as exc:
            refusal = bridge.refusal_for(exc)
            if refusal is not None:
                return refusal
            log.exception("submission %s failed", queue_id)
            return "451 4.3.0 Delivery failed, try again later"
        return f"250 2.0.0 OK queued as {queue_id}"
