"""Deliver one accepted message: inbound checks, bounces of forwarded mail, local filing.

This is what the MX did between end of DATA and its 250 before the intake existed; it now
runs from the intake (deliverer.py). Filing deletes the intake row in the same transaction
(group_commit.py), so a message is filed once however often its delivery is tried.
"""

from __future__ import annotations

import logging
from typing import Any

from VEZEPyEmail.db.intake import ClaimedMessage
from VEZEPyEmail.services.checks.service import InboundAnalysis, analyze_inbound
from VEZEPyEmail.services.delivery import local
from VEZEPyEmail.services.delivery.group_commit import GroupCommitter
from VEZEPyEmail.services.srs import bounces as srs_bounces

log = logging.getLogger(__name__)

NULL_SENDER = "<>"


async def _analysis(message: ClaimedMessage, envelope_from: str, settings: Any) -> Any:
    try:
        result: InboundAnalysis = await analyze_inbound(
            raw=message.raw,
            peer_ip=message.peer_ip,
            helo=message.helo,
            envelope_from=envelope_from,
            settings=settings,
            # Parsed once, off the loop: the summary serves delivery when it stands for the
            # stored bytes (trace fields and all).
            with_summary=local.summary_carries_over(message.raw),
        )
    except Exception:
        log.exception("inbound checks failed for intake %s; delivering without them", message.id)
        return None
    return result


async def deliver_accepted(state: Any, committer: GroupCommitter, message: ClaimedMessage) -> bool:
    """File `message` for its recipients; False when nothing was left to file.

    Raises when it could not be filed (its intake row stays, for another attempt).
    """
    sender = message.envelope_from or NULL_SENDER
    envelope_from = "" if sender == NULL_SENDER else sender
    analysis = await _analysis(message, envelope_from, state.settings)
    headers: list[tuple[str, str]] = [("Return-Path", f"<{envelope_from}>")]
    if analysis is not None and analysis.authentication_results:
        # RFC 8601 section 5: above the Received field this server added.
        headers.append(("Authentication-Results", analysis.authentication_results))
    headers.append(("Received", message.received))
    recipients = await srs_bounces.forward_bounces(
        state,
        raw=message.raw,
        envelope_from=envelope_from,
        recipients=list(message.recipients),
        trace_headers=headers,
    )
    if not recipients:
        return False
    delivered = await committer.deliver(
        raw=message.raw,
        envelope_from=sender,
        recipients=recipients,
        prepend_headers=headers,
        # Junk is filed, never refused: a false positive must not lose mail.
        folder="Junk" if analysis is not None and analysis.junk else "INBOX",
        spam_score=analysis.spam_score if analysis is not None else 0.0,
        summary=analysis.summary if analysis is not None else None,
        intake_id=message.id,
        received_at=message.accepted_at,
    )
    return bool(delivered)
