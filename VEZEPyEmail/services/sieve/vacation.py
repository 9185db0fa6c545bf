"""Vacation auto-replies (RFC 5230) and when never to send one (RFC 3834).

An auto-reply goes to the envelope sender, at most once per sender and :days, never to a null
sender, a mailing list, bulk or junk mail, another automatic message or the user themselves,
and only to mail addressed to the user (so Bcc'd list traffic stays quiet).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses

from VEZEPyEmail.services.messages.mime import message_ids
from VEZEPyEmail.services.sieve import nodes
from VEZEPyEmail.services.sieve.evaluate import MessageView

#: RFC 3834 section 2: headers that mark list traffic (RFC 2369, RFC 2919).
LIST_HEADERS = (
    "list-id",
    "list-unsubscribe",
    "list-post",
    "list-help",
    "list-subscribe",
    "list-owner",
    "list-archive",
)
#: RFC 5230 section 4.5: headers that name the recipients of the original message.
RECIPIENT_HEADERS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
_AUTOMATIC_LOCALPARTS = ("mailer-daemon", "postmaster", "listserv", "majordomo", "mailman")
_AUTOMATIC_SUFFIXES = ("-request", "-bounces", "-owner")


def handle_of(action: nodes.Vacation) -> str:
    """RFC 5230 section 4.2: without :handle, replies with different text count apart."""
    material = "\x00".join(
        [action.reason, action.subject or "", ",".join(sorted(action.addresses))]
    )
    return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def refusal(
    message: MessageView, *, sender: str, user: str, action: nodes.Vacation, junk: bool
) -> str | None:
    """Why no reply may be sent, or None when one may."""
    if not sender:
        return "null sender"  # RFC 5230 section 4.6: bounces are never answered
    own = {user, *action.addresses}
    if sender in own:
        return "the sender is the user"
    local = sender.rpartition("@")[0]
    if local in _AUTOMATIC_LOCALPARTS or local.startswith("owner-"):
        return "automatic sender"
    if local.endswith(_AUTOMATIC_SUFFIXES):
        return "automatic sender"
    if junk:
        return "junk mail"  # answering spam only confirms the address (backscatter)
    for value in message.values("auto-submitted"):
        if value.split(";")[0].strip().lower() != "no":
            return "auto-submitted message"  # RFC 3834 section 5
    for value in message.values("precedence"):
        if value.strip().lower() in ("bulk", "list", "junk"):
            return "bulk precedence"
    if any(message.values(name) for name in LIST_HEADERS):
        return "mailing list"
    addressed = {
        address.lower()
        for name in RECIPIENT_HEADERS
        for value in message.values(name)
        for _display, address in _pairs(value)
    }
    if not addressed & own:
        return "not addressed to the user"
    return None


def _pairs(value: str) -> list[tuple[str, str]]:
    try:
        return getaddresses([value])
    except Exception:
        return []


def build_reply(
    message: MessageView,
    *,
    action: nodes.Vacation,
    user: str,
    sender: str,
    hostname: str,
    now: datetime | None = None,
) -> bytes:
    """The reply (RFC 5230 section 5), marked Auto-Submitted: auto-replied (RFC 3834 5.1)."""
    original_subject = (message.values("subject") or ("",))[0]
    subject = action.subject if action.subject is not None else f"Auto: {original_subject}"
    reply = EmailMessage(policy=SMTP)
    reply["From"] = user
    reply["To"] = sender
    reply["Subject"] = " ".join(subject.split())[:900] or "Auto-reply"
    reply["Date"] = format_datetime(now or datetime.now(UTC))
    reply["Message-ID"] = f"<vacation.{secrets.token_hex(12)}@{hostname}>"
    original_ids = message_ids(" ".join(message.values("message-id")))
    if original_ids:
        references = message_ids(" ".join(message.values("references")))[-20:]
        reply["In-Reply-To"] = original_ids[0]
        reply["References"] = " ".join([*references, original_ids[0]])
    reply["Auto-Submitted"] = "auto-replied"
    reply.set_content(action.reason)
    return reply.as_bytes()
