"""Mail to our SRS addresses: bounces of forwarded mail, passed on to the original sender.

The MX accepts such a recipient only when `Srs.reverse` vouches for it (our HMAC, not
expired); the message is then queued, durably and before the 250, to the address it
reverses to. It keeps its own reverse-path (the null sender of a bounce stays null, RFC 5321
section 4.5.5; anything else is rewritten again, as any forward is).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from VEZEPyEmail.services.delivery.local import header_block
from VEZEPyEmail.services.outbound.queue import enqueue_outbound
from VEZEPyEmail.services.srs.service import srs_of


def accepts(state: Any, address: str) -> bool:
    """True when `address` is one of our valid SRS addresses (RCPT TO may take it)."""
    return srs_of(state).reverse(address) is not None


async def forward_bounces(
    state: Any,
    *,
    raw: bytes,
    envelope_from: str,
    recipients: Sequence[str],
    trace_headers: Sequence[tuple[str, str]] = (),
    origin: str | None = None,
) -> list[str]:
    """Queue the message to what each SRS recipient reverses to; return the other recipients.

    Of `trace_headers` only our Received field goes on top: Return-Path belongs to final
    delivery (RFC 5321 section 4.4), Authentication-Results to our own mailboxes. `origin`
    (the accepted message's) keeps a delivery that is tried again from forwarding it twice.
    """
    srs = srs_of(state)
    targets: list[str] = []
    others: list[str] = []
    for recipient in recipients:
        target = srs.reverse(recipient)
        if target is None:
            others.append(recipient)
        elif target not in targets:
            targets.append(target)
    if targets:
        trace = [(name, value) for name, value in trace_headers if name.lower() == "received"]
        await enqueue_outbound(
            state,
            raw=header_block(trace) + raw,
            envelope_from=srs.forward(envelope_from),
            recipients=targets,
            origin=origin,
        )
    return others
