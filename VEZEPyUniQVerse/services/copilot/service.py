"""What the copilot understands and how it answers.

Protocol (JSON text frames): the client sends `{"text": "..."}`; the server answers with a
`CopilotReply`. The copilot is deliberately a small command interpreter (`intents`): it says
plainly when it does not understand instead of guessing. Anything that sends or changes data
is proposed first (`type: "confirm"`) and done only after the person answers yes; any other
message drops the proposal, so a stale "yes" can never fire something forgotten.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from VEZEPyCore.errors import AppError
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.copilot import intents
from VEZEPyUniQVerse.services.copilot.actions import Actor
from VEZEPyUniQVerse.services.copilot.schemas import CopilotReply
from VEZEPyUniQVerse.services.directory.schemas import ServiceStatusRead

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
#: The raw frame may carry JSON punctuation and escapes around the text, but not megabytes.
MAX_FRAME_CHARS = 4 * MAX_MESSAGE_CHARS
#: How much of an unknown message is quoted back.
ECHO_CHARS = 80

StatusLoader = Callable[[], Awaitable[list[ServiceStatusRead]]]
#: The person's account, looked up afresh for every action (a disabled account stops at once).
UserLoader = Callable[[], Awaitable[User | None]]

COMMANDS: dict[str, str] = intents.HELP
Proposal = intents.SendMail | intents.JoinQueue | intents.LeaveQueue


@dataclass
class CopilotSession:
    """One WebSocket conversation: who is talking, and what awaits their yes."""

    load_statuses: StatusLoader
    load_user: UserLoader
    app_state: object
    pending: Proposal | None = field(default=None)


def greeting(name: str) -> CopilotReply:
    return CopilotReply(
        type="greeting",
        text=f"Hi {name}, I am the VEZE copilot. Type help to see what I can do.",
        commands=list(COMMANDS),
    )


def parse_message(raw: str) -> str | CopilotReply:
    """The text the client typed, or the error reply explaining why the frame is unusable."""
    if len(raw) > MAX_FRAME_CHARS:
        return _too_long()
    try:
        message = json.loads(raw)
    except ValueError:
        return _malformed()
    text = message.get("text") if isinstance(message, dict) else None
    if not isinstance(text, str):
        return _malformed()
    if len(text) > MAX_MESSAGE_CHARS:
        return _too_long()
    return text


async def answer(text: str, session: CopilotSession) -> CopilotReply:
    intent = intents.parse(text)
    pending, session.pending = session.pending, None
    match intent:
        case intents.Help():
            lines = [f"{name}: {summary}" for name, summary in COMMANDS.items()]
            return CopilotReply(
                type="reply",
                command="help",
                commands=list(COMMANDS),
                text="I know these commands:\n" + "\n".join(lines),
            )
        case intents.Services():
            statuses = await session.load_statuses()
            return CopilotReply(
                type="reply", command="services", services=statuses, text=_describe(statuses)
            )
        case intents.Confirm(yes=True):
            if pending is None:
                return CopilotReply(type="reply", text="There is nothing waiting for a yes.")
            return await _act(session, pending)
        case intents.Confirm(yes=False):
            if pending is None:
                return CopilotReply(type="reply", text="There is nothing to cancel.")
            return CopilotReply(type="reply", command="cancel", text="Cancelled; nothing was done.")
        case intents.SendMail() | intents.JoinQueue() | intents.LeaveQueue():
            return _propose(session, intent)
        case intents.Unknown():
            return _not_understood(text)
        case _:
            return await _act(session, intent)


def _propose(session: CopilotSession, intent: Proposal) -> CopilotReply:
    if isinstance(intent, intents.SendMail):
        if not intent.text and not intent.subject:
            return CopilotReply(
                type="reply",
                text="What should the mail say? Try: send mail to bob subject hi: see you at 8",
            )
        question = (
            f"Send mail to {intent.to} with subject {intent.subject or '(none)'!r} "
            f"saying {intent.text[:ECHO_CHARS]!r}?"
        )
        command = "send mail"
    elif isinstance(intent, intents.JoinQueue):
        question, command = f"Join the {intent.mode} queue?", "queue"
    else:
        question, command = "Leave the queue?", "leave queue"
    session.pending = intent
    return CopilotReply(
        type="confirm", command=command, pending=command, text=f"{question} Answer yes or no."
    )


async def _act(session: CopilotSession, intent: intents.Intent) -> CopilotReply:
    user = await session.load_user()
    if user is None:
        return CopilotReply(
            type="error",
            text="I can only act for a signed-in portal account, and this one is not available.",
        )
    actor = Actor(session.app_state, user)
    try:
        match intent:
            case intents.UnreadMail():
                return await actor.unread_mail(intent)
            case intents.SearchMail():
                return await actor.search_mail(intent)
            case intents.SendMail():
                return await actor.send_mail(intent)
            case intents.JoinQueue():
                return await actor.join_queue(intent)
            case intents.LeaveQueue():
                return await actor.leave_queue(intent)
            case intents.QueueStatus():
                return await actor.queue_status(intent)
            case intents.MyRank():
                return await actor.my_rank(intent)
            case intents.Top():
                return await actor.top(intent)
    except AppError as exc:
        log.info("copilot action %s refused: %s", type(intent).__name__, exc.detail)
        return CopilotReply(type="error", text=f"That did not work: {exc.detail}")
    return _not_understood("")


def _not_understood(text: str) -> CopilotReply:
    quoted = text.strip()
    if not quoted:
        return CopilotReply(type="reply", text="Type help to see the commands I know.")
    if len(quoted) > ECHO_CHARS:
        quoted = quoted[:ECHO_CHARS] + "…"
    return CopilotReply(
        type="reply",
        text=f"I don't understand {quoted!r}. Type help to see the commands I know.",
    )


def _describe(statuses: list[ServiceStatusRead]) -> str:
    lines = []
    for status in statuses:
        extra = f" (version {status.version})" if status.version else ""
        if status.detail:
            extra += f": {status.detail}"
        lines.append(f"{status.title} is {status.status}{extra}")
    return "\n".join(lines) if lines else "No services are registered."


def _too_long() -> CopilotReply:
    return CopilotReply(
        type="error", text=f"Messages are limited to {MAX_MESSAGE_CHARS} characters."
    )


def _malformed() -> CopilotReply:
    return CopilotReply(type="error", text='Send JSON like {"text": "help"}.')
