"""The SMTP listeners' view of the intake, the store and the outbound queue.

Those live in their own domain folders (`intake`, `delivery`, `outbound`); this module keeps
the protocol handlers free of their details and maps their errors to SMTP replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from VEZEPyEmail.db.intake import AcceptedMessage
from VEZEPyEmail.services.delivery import local
from VEZEPyEmail.services.delivery.group_commit import committer_of
from VEZEPyEmail.services.intake.journal import IntakeFull, journal_of
from VEZEPyEmail.services.outbound import queue


async def local_mailbox_exists(state: Any, address: str) -> bool:
    return await local.local_mailbox_exists(state, address)


async def deliver_local(
    state: Any,
    *,
    raw: bytes,
    envelope_from: str,
    recipients: Sequence[str],
    folder: str = "INBOX",
    seen: bool = False,
    prepend_headers: Sequence[tuple[str, str]] = (),
    spam_score: float = 0.0,
) -> list[Any]:
    """Store `raw` for each recipient durably (fsync + commit) before returning."""
    committer = committer_of(state)
    if committer is not None:  # the listeners' deliveries share commits (group_commit.py)
        return list(
            await committer.deliver(
                raw=raw,
                envelope_from=envelope_from,
                recipients=recipients,
                folder=folder,
                seen=seen,
                prepend_headers=prepend_headers,
                spam_score=spam_score,
            )
        )
    delivered = await local.deliver_local(
        state,
        raw=raw,
        envelope_from=envelope_from,
        recipients=list(recipients),
        folder=folder,
        seen=seen,
        prepend_headers=tuple(prepend_headers),
        spam_score=spam_score,
    )
    return list(delivered)


async def enqueue_outbound(
    state: Any, *, raw: bytes, envelope_from: str, recipients: Sequence[str]
) -> None:
    """Queue `raw` for remote delivery, durably, before returning."""
    await queue.enqueue_outbound(
        state, raw=raw, envelope_from=envelope_from, recipients=list(recipients)
    )


async def accept_inbound(state: Any, message: AcceptedMessage) -> None:
    """Record a message the MX accepted, durably, before returning (services/intake)."""
    journal = journal_of(state)
    if journal is None:
        raise RuntimeError("the MX intake is not running")
    await journal.accept(message)


def refusal_for(error: Exception) -> str | None:
    """The permanent SMTP reply for a delivery error that retrying cannot fix, else None."""
    if isinstance(error, IntakeFull):
        return "452 4.3.1 Insufficient system storage, try again later"
    if isinstance(error, local.MessageTooLarge):
        return "552 5.3.4 Message size exceeds fixed maximum size"
    if isinstance(error, local.DeliveryRefused):
        return f"554 5.6.0 Message refused: {str(error)[:200]}"
    return None
