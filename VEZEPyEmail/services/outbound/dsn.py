"""Delivery status notifications (RFC 3464) for mail that could not be delivered.

A DSN is a multipart/report (RFC 6522) with report-type=delivery-status: a human-readable
part, a message/delivery-status part (per-message fields, a blank line, per-recipient fields)
and the original message's headers as text/rfc822-headers. It is sent with the null reverse
path `<>` so that it can never be bounced in turn (RFC 5321 4.5.5, RFC 3464 2).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from VEZEPyEmail.services.outbound.transport import Outcome

#: Cap on the copied header block, so a message with huge headers still gets a small bounce.
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class FailedRecipient:
    address: str
    outcome: Outcome
    #: True when the lifetime ran out on transient failures (RFC 3463 4.4.7).
    expired: bool = False


def original_headers(raw: bytes) -> bytes:
    """The header section of `raw` with CRLF line ends (no body, RFC 3462 text/rfc822-headers)."""
    normalised = raw.replace(b"\r\n", b"\n")
    head, _, _ = normalised.partition(b"\n\n")
    head = head[:MAX_HEADER_BYTES]
    return b"\r\n".join(head.split(b"\n")) + b"\r\n"


def _header_value(value: str) -> str:
    """One line: no CR/LF can smuggle a header into the report."""
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def build_dsn(
    *,
    reporting_mta: str,
    mail_domain: str,
    sender: str,
    raw: bytes,
    failed: FailedRecipient,
    arrival_date: datetime,
    now: datetime,
    message_id: str,
) -> bytes:
    """The bounce for `failed`, addressed to `sender` (the original envelope sender)."""
    boundary = f"=_veze_dsn_{secrets.token_hex(12)}"
    address = _header_value(failed.address)
    status = failed.outcome.status
    if failed.expired:
        status = "4.4.7"
        reason = "Delivery kept failing temporarily until the message expired."
    else:
        reason = "The receiving server refused the message permanently."
    diagnostic = _header_value(failed.outcome.diagnostic)
    human = (
        "This is the mail system at "
        f"{reporting_mta}.\r\n\r\n"
        "Your message could not be delivered to the following recipient:\r\n\r\n"
        f"  <{address}>\r\n  {reason}\r\n  {diagnostic}\r\n\r\n"
        "The headers of your message are attached.\r\n"
    )
    per_message = [
        f"Reporting-MTA: dns; {reporting_mta}",
        f"Arrival-Date: {format_datetime(arrival_date)}",
    ]
    per_recipient = [
        f"Final-Recipient: rfc822; {address}",
        "Action: failed",
        f"Status: {status}",
    ]
    if failed.outcome.remote:
        per_recipient.append(f"Remote-MTA: dns; {_header_value(failed.outcome.remote)}")
    per_recipient += [
        f"Diagnostic-Code: {diagnostic}",
        f"Last-Attempt-Date: {format_datetime(now)}",
    ]
    if failed.expired:
        per_recipient.append(f"Will-Retry-Until: {format_datetime(now)}")
    status_part = "\r\n".join(per_message) + "\r\n\r\n" + "\r\n".join(per_recipient) + "\r\n"
    headers = [
        f"From: Mail Delivery System <MAILER-DAEMON@{mail_domain}>",
        f"To: <{_header_value(sender)}>",
        f"Subject: Undelivered Mail Returned to Sender ({address})",
        f"Date: {format_datetime(now)}",
        f"Message-ID: {message_id}",
        "Auto-Submitted: auto-replied",  # RFC 3834: no vacation replies to this
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ]
    parts = [
        "\r\n".join(headers).encode() + b"\r\n\r\n",
        b"This is a MIME-encapsulated delivery status notification.\r\n\r\n",
        f"--{boundary}\r\n".encode(),
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        human.encode(),
        f"\r\n--{boundary}\r\n".encode(),
        b"Content-Type: message/delivery-status\r\n\r\n",
        status_part.encode(),
        f"\r\n--{boundary}\r\n".encode(),
        b"Content-Type: text/rfc822-headers\r\n\r\n",
        original_headers(raw),
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)
