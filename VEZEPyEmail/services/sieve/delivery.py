"""Sieve at local delivery: plan each recipient's copies, and queue its redirects and vacation
reply, inside the delivery transaction.

Nothing here may lose a message. Any failure while loading or running a user's script falls
back to the implicit keep (the folder delivery chose: INBOX, or Junk when the spam filter said
so) and is recorded on the script for the user to see. Rules run only for incoming mail (the
INBOX / Junk deliveries), never for the sender's own Sent copy.

Junk: mail the spam filter put in Junk still runs the user's rules; `keep` and the implicit
keep leave it in Junk, an explicit `fileinto` moves it. Redirect and vacation are not
performed for junk (forwarding or answering spam harms the domain's reputation); the copy is
kept in Junk instead.

Remote redirects leave with an SRS-rewritten envelope sender (services/srs).

Loops (RFC 5228 section 10): a redirected copy carries `Delivered-To: <user>`; a message that
already names this user in Delivered-To, or has passed MAX_HOPS such headers, is not
redirected again but kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyEmail.db.models import Mailbox
from VEZEPyEmail.db.sieve import SieveScript, VacationReply
from VEZEPyEmail.services.messages.mime import clean_text
from VEZEPyEmail.services.messages.schemas import MAX_LABELS
from VEZEPyEmail.services.outbound.queue import add_outbound
from VEZEPyEmail.services.sieve import vacation
from VEZEPyEmail.services.sieve.cache import ProgramCache, cache_on
from VEZEPyEmail.services.sieve.evaluate import MessageView, Outcome, evaluate
from VEZEPyEmail.services.srs.service import srs_of

log = logging.getLogger(__name__)

RULE_FOLDERS = frozenset({"INBOX", "Junk"})
JUNK = "Junk"
MAX_HOPS = 8
MAX_ERROR_LENGTH = 1000


@dataclass(frozen=True)
class Copy:
    """One row to store for the recipient."""

    folder: str
    seen: bool = False
    flagged: bool = False
    answered: bool = False
    draft: bool = False
    labels: tuple[str, ...] = ()


@dataclass
class Plan:
    """What delivery does for one recipient: its rows, and the redirects and reply it queues."""

    address: str
    mailbox_id: int
    default_folder: str
    copies: list[Copy]
    redirects: list[str] = field(default_factory=list)
    reply: bytes | None = None
    reply_to: str | None = None
    errors: list[str] = field(default_factory=list)


__all__ = ["Copy", "Plan", "cache_on", "plan_delivery", "queue_followups", "without_return_path"]


def _keep(address: str, mailbox_id: int, folder: str, seen: bool) -> Plan:
    return Plan(address, mailbox_id, folder, [Copy(folder, seen=seen)])


async def plan_delivery(
    session: AsyncSession,
    *,
    mailbox_id: int,
    address: str,
    stored: bytes,
    envelope_from: str,
    folder: str,
    seen: bool,
    settings: Any,
    programs: ProgramCache | None = None,
) -> Plan:
    """The recipient's plan; never raises (a failing script means the implicit keep)."""
    if folder not in RULE_FOLDERS:
        return _keep(address, mailbox_id, folder, seen)
    try:
        # A savepoint: a failed statement must not abort the delivery transaction (PG).
        async with session.begin_nested():
            script = await session.scalar(
                select(SieveScript.script).where(SieveScript.mailbox_id == mailbox_id)
            )
            if script is None:
                return _keep(address, mailbox_id, folder, seen)
            plan = await _run_script(
                session,
                script=script,
                mailbox_id=mailbox_id,
                address=address,
                stored=stored,
                envelope_from=envelope_from,
                folder=folder,
                seen=seen,
                settings=settings,
                programs=programs if programs is not None else ProgramCache(),
            )
    except Exception as error:
        log.warning("sieve: rules of %s failed; keeping the message", address, exc_info=True)
        plan = _keep(address, mailbox_id, folder, seen)
        plan.errors.append(f"the rules could not run ({type(error).__name__}: {error})")
    if plan.errors:
        await _record_errors(session, mailbox_id, plan.errors)
    return plan


async def _run_script(
    session: AsyncSession,
    *,
    script: str,
    mailbox_id: int,
    address: str,
    stored: bytes,
    envelope_from: str,
    folder: str,
    seen: bool,
    settings: Any,
    programs: ProgramCache,
) -> Plan:
    program = await programs.compile(script)
    view = MessageView.from_bytes(stored)
    outcome = evaluate(program, view, default_folder=folder)
    plan = Plan(address, mailbox_id, folder, [], errors=list(outcome.notes))
    junk = folder == JUNK
    redirects = outcome.redirects
    if redirects and junk:
        plan.errors.append("redirect skipped: the message was filed as junk")
        redirects = []
    elif redirects and _looping(view, address):
        plan.errors.append("redirect skipped: the message has already passed this mailbox")
        redirects = []
    plan.redirects = redirects
    folders = list(outcome.folders)
    if outcome.redirects and not redirects and not folders:
        folders = [folder]  # a redirect that cannot happen must not lose the message
    plan.copies = [_copy(target, outcome, seen) for target in folders]
    if outcome.vacation is not None:
        await _plan_vacation(
            session,
            plan,
            view=view,
            action=outcome.vacation,
            sender=_bare(envelope_from),
            junk=junk,
            settings=settings,
        )
    return plan


def _copy(folder: str, outcome: Outcome, seen: bool) -> Copy:
    flags = outcome.system_flags
    return Copy(
        folder=folder,
        seen=seen or "\\Seen" in flags,
        flagged="\\Flagged" in flags,
        answered="\\Answered" in flags,
        draft="\\Draft" in flags,
        labels=tuple(outcome.labels[:MAX_LABELS]),  # several addflag may add up
    )


def _looping(view: MessageView, address: str) -> bool:
    delivered_to = [value.strip().strip("<>").lower() for value in view.values("delivered-to")]
    return address in delivered_to or len(delivered_to) >= MAX_HOPS


def _bare(address: str) -> str:
    return address.strip().strip("<>").strip().lower()


async def _plan_vacation(
    session: AsyncSession,
    plan: Plan,
    *,
    view: MessageView,
    action: Any,
    sender: str,
    junk: bool,
    settings: Any,
) -> None:
    refused = vacation.refusal(view, sender=sender, user=plan.address, action=action, junk=junk)
    if refused is not None:
        log.info("sieve: no vacation reply from %s: %s", plan.address, refused)
        return
    now = datetime.now(UTC)
    handle = vacation.handle_of(action)
    sender = clean_text(sender, 320)
    mine = (
        VacationReply.mailbox_id == plan.mailbox_id,
        VacationReply.sender == sender,
        VacationReply.handle == handle,
    )
    # One conditional UPDATE claims the reply: of two concurrent deliveries from the same
    # sender only one sees the old timestamp (RFC 5230 section 4.1: once per :days).
    claimed = await session.execute(
        update(VacationReply)
        .where(*mine, VacationReply.sent_at <= now - timedelta(days=action.days))
        .values(sent_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(claimed, "rowcount", 0):
        if await session.scalar(select(VacationReply.id).where(*mine)) is not None:
            return  # already answered within :days
        try:
            async with session.begin_nested():
                session.add(
                    VacationReply(
                        mailbox_id=plan.mailbox_id, sender=sender, handle=handle, sent_at=now
                    )
                )
        except IntegrityError:
            return  # a concurrent delivery from the same sender answered already
    plan.reply = vacation.build_reply(
        view, action=action, user=plan.address, sender=sender, hostname=settings.smtp_hostname
    )
    plan.reply_to = sender


async def _record_errors(session: AsyncSession, mailbox_id: int, errors: list[str]) -> None:
    message = clean_text("; ".join(errors), MAX_ERROR_LENGTH)
    try:
        async with session.begin_nested():
            await session.execute(
                update(SieveScript)
                .where(SieveScript.mailbox_id == mailbox_id)
                .values(last_error=message, last_error_at=datetime.now(UTC))
            )
    except Exception:
        log.warning("sieve: could not record an error for mailbox %s", mailbox_id, exc_info=True)


def without_return_path(stored: bytes) -> bytes:
    """`stored` minus the leading Return-Path this server added at delivery.

    RFC 5321 section 4.4: Return-Path belongs to final delivery; a message sent on must not
    carry one.
    """
    if stored[:12].lower() != b"return-path:":
        return stored
    end = stored.find(b"\r\n")
    while end != -1 and stored[end + 2 : end + 3] in (b" ", b"\t"):
        end = stored.find(b"\r\n", end + 2)
    return stored if end == -1 else stored[end + 2 :]


async def queue_followups(
    session: AsyncSession, state: Any, plan: Plan, *, stored: bytes, envelope_from: str
) -> None:
    """Queue the plan's redirects and vacation reply in the delivery's own transaction.

    They go on the outbound queue (services/outbound: local targets are filed here by its
    worker, remote ones sent), so they leave exactly when the delivery commits: a crash after
    the commit cannot lose a redirected message that was kept nowhere else. A redirect that
    cannot be queued (no such local mailbox, say) keeps the message for the user instead, and
    is noted on the script, as is a reply that cannot be.
    """
    if not plan.redirects and plan.reply is None:
        return
    sender = _bare(envelope_from)
    marked = f"Delivered-To: {plan.address}\r\n".encode() + without_return_path(stored)
    errors: list[str] = []
    for target in plan.redirects:
        try:
            if _is_local(state, target):
                if not await _mailbox_exists(session, target):
                    raise LookupError(f"no mailbox {target}")
                reverse_path = sender
            else:
                # SRS: sent on by us, so from our domain, or the destination's SPF check of
                # the original sender fails; a bounce to the rewritten address comes back to
                # us and goes on to them.
                reverse_path = srs_of(state).forward(sender)
            async with session.begin_nested():
                await add_outbound(
                    session, state, raw=marked, envelope_from=reverse_path, recipients=[target]
                )
        except Exception as error:
            log.warning("sieve: redirect %s -> %s failed", plan.address, target, exc_info=True)
            errors.append(f"redirect to {target} failed: {error}")
            if not plan.copies:
                plan.copies = [Copy(plan.default_folder)]
    if plan.reply is not None and plan.reply_to is not None:
        try:
            # An auto-reply goes out with the null reverse-path (RFC 3834 section 3.3).
            async with session.begin_nested():
                await add_outbound(
                    session, state, raw=plan.reply, envelope_from="", recipients=[plan.reply_to]
                )
        except Exception as error:
            log.warning("sieve: vacation reply of %s failed", plan.address, exc_info=True)
            errors.append(f"vacation reply failed: {error}")
    if errors:
        await _record_errors(session, plan.mailbox_id, errors)


def _is_local(state: Any, address: str) -> bool:
    return address.rpartition("@")[2] == str(state.settings.mail_domain).lower()


async def _mailbox_exists(session: AsyncSession, address: str) -> bool:
    found = await session.scalar(select(Mailbox.id).where(Mailbox.address == address))
    return found is not None
