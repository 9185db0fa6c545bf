"""Deliver one accepted message: inbound checks, bounces of forwarded mail, local filing.

This is what the MX did between end of DATA and its 250 before the intake existed; it now
runs from the intake (deliverer.py). Filing deletes the intake row in the same transaction
(group_commit.py), so a message is filed once however often its delivery is tried; a bounce
passed on to an SRS address's owner is queued under the message's origin, so once as well.
The checks of a batch run concurrently; filing and its events go in the order the messages
were accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from VEZEPyEmail.db.intake import ClaimedMessage
from VEZEPyEmail.services.checks.service import InboundAnalysis, analyze_inbound
from VEZEPyEmail.services.delivery import local
from VEZEPyEmail.services.delivery.group_commit import Delivery, GroupCommitter
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


async def delivery_of(state: Any, message: ClaimedMessage) -> Delivery | None:
    """Check `message` and forward its SRS bounces; what is left to file here, if anything."""
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
        # Intake ids are never reused: the forward of this message is queued once, however
        # often its delivery is tried.
        origin=f"intake:{message.id}:srs",
    )
    if not recipients:
        return None
    return Delivery(
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


async def deliver_accepted(
    state: Any, committer: GroupCommitter, messages: Sequence[ClaimedMessage]
) -> list[bool | BaseException]:
    """File `messages` for their recipients, in order; per message, whether anything was
    filed (False: nobody left to file it for, or filed by another deliverer already) or the
    error that kept it from being filed (its intake row stays, for another attempt).
    """
    checked = await asyncio.gather(
        *(delivery_of(state, message) for message in messages), return_exceptions=True
    )
    requests = [item for item in checked if isinstance(item, Delivery)]
    filed = iter(await committer.deliver_in_order(requests))
    outcomes: list[bool | BaseException] = []
    for item in checked:
        if isinstance(item, BaseException):
            outcomes.append(item)
        elif item is None:
            outcomes.append(False)
        else:
            result = next(filed)
            outcomes.append(result if isinstance(result, BaseException) else bool(result))
    return outcomes
