"""The copilot's small, documented command language, parsed deterministically.

No model and no guessing: each command is a pattern over the lower-cased, whitespace-folded
text. Anything that matches none of them is `Unknown`, and the copilot says so.

Commands (also the `help` text):
- `help` — what the copilot understands
- `services` — every VEZE service and whether it is up
- `unread mail` — how many unread messages and the latest few
- `search mail <words>` — search your mailbox (`search mail from alice`, `from:`, `subject:`)
- `send mail to <who> subject <subject>: <text>` — send a message (asks to confirm)
- `queue ranked` / `queue casual` — join matchmaking (asks to confirm)
- `leave queue` — leave matchmaking (asks to confirm)
- `queue status` — where you are in the queue
- `my rank` — your ratings and ranked position
- `top <n>` — the top of the ranked leaderboard (1 to 50)
- `yes` / `no` — confirm or cancel what the copilot just proposed
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TOP_MAX = 50
#: Local part or full address; the Email service validates it again before sending.
_RECIPIENT = r"[a-z0-9._%+\-]+(?:@[a-z0-9.\-]+)?"

HELP: dict[str, str] = {
    "help": "list what I can do",
    "services": "show every VEZE service and whether it is up right now",
    "unread mail": "count your unread mail and show the latest messages",
    "search mail <words>": "search your mailbox, e.g. search mail from alice",
    "send mail to <who> subject <subject>: <text>": "send a message (I ask you to confirm)",
    "queue ranked | queue casual": "join matchmaking (I ask you to confirm)",
    "leave queue": "leave matchmaking (I ask you to confirm)",
    "queue status": "where you are in the queue",
    "my rank": "your ratings and your ranked position",
    "top <n>": f"the top of the ranked leaderboard (1 to {TOP_MAX})",
    "yes | no": "confirm or cancel what I proposed",
}


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Services:
    pass


@dataclass(frozen=True)
class UnreadMail:
    pass


@dataclass(frozen=True)
class SearchMail:
    query: str


@dataclass(frozen=True)
class SendMail:
    to: str
    subject: str
    text: str


@dataclass(frozen=True)
class JoinQueue:
    mode: Literal["ranked", "casual"]


@dataclass(frozen=True)
class LeaveQueue:
    pass


@dataclass(frozen=True)
class QueueStatus:
    pass


@dataclass(frozen=True)
class MyRank:
    pass


@dataclass(frozen=True)
class Top:
    count: int


@dataclass(frozen=True)
class Confirm:
    yes: bool


@dataclass(frozen=True)
class Unknown:
    text: str


Intent = (
    Help
    | Services
    | UnreadMail
    | SearchMail
    | SendMail
    | JoinQueue
    | LeaveQueue
    | QueueStatus
    | MyRank
    | Top
    | Confirm
    | Unknown
)

_FIXED: dict[str, Intent] = {
    **dict.fromkeys(("help", "?", "commands", "what can you do"), Help()),
    **dict.fromkeys(("services", "status", "health"), Services()),
    **dict.fromkeys(
        ("unread mail", "unread", "my mail", "inbox", "check mail", "new mail"), UnreadMail()
    ),
    **dict.fromkeys(("leave queue", "cancel queue", "leave the queue", "unqueue"), LeaveQueue()),
    **dict.fromkeys(("queue status", "my queue", "am i queued"), QueueStatus()),
    **dict.fromkeys(("my rank", "my rating", "rank", "rating"), MyRank()),
    **dict.fromkeys(("yes", "y", "confirm", "ok", "do it", "send it"), Confirm(yes=True)),
    **dict.fromkeys(("no", "n", "cancel", "stop", "never mind"), Confirm(yes=False)),
}
_SEARCH = re.compile(r"(?:search|find)(?: (?:my )?mail)?(?: for)? (?P<rest>.+)")
_FROM_WORD = re.compile(r"\bfrom (?P<who>\S+)")
_SEND = re.compile(
    rf"send (?:an? )?(?:mail|email|message) to (?P<to>{_RECIPIENT})"
    r"(?: subject (?P<subject>[^:]*))?(?::\s*(?P<text>.*))?",
    re.DOTALL,
)
_QUEUE = re.compile(
    r"(?:queue|queue up|join(?: the)? queue|play)(?: for)?(?: a)? "
    r"(?P<mode>ranked|casual)(?: match)?"
)
_TOP = re.compile(r"(?:top|leaderboard|show top)(?: (?P<count>\d{1,4}))?")


def parse(text: str) -> Intent:
    """The intent of one message (already bounded in length by the caller)."""
    original = " ".join(text.split())
    folded = original.lower().rstrip("?!. ")
    if not folded:
        return Unknown(text="")
    if folded in _FIXED:
        return _FIXED[folded]
    if send := _SEND.fullmatch(original.lower()):
        # Subject and text keep the case the person typed: same offsets in `original`.
        subject = _original_group(original, send, "subject")
        body = _original_group(original, send, "text")
        return SendMail(to=send["to"], subject=subject.strip(), text=body.strip())
    if search := _SEARCH.fullmatch(folded):
        rest = search["rest"].strip()
        # "from alice" is the plain-words form of the search language's `from:alice`.
        return SearchMail(query=_FROM_WORD.sub(lambda m: f"from:{m['who']}", rest))
    if queue := _QUEUE.fullmatch(folded):
        return JoinQueue(mode="ranked" if queue["mode"] == "ranked" else "casual")
    if top := _TOP.fullmatch(folded):
        count = int(top["count"]) if top["count"] else 10
        return Top(count=max(1, min(count, TOP_MAX)))
    return Unknown(text=original)


def _original_group(original: str, match: re.Match[str], name: str) -> str:
    start, end = match.span(name)
    if start < 0:
        return ""
    # Lower-casing keeps ASCII offsets; the rare characters whose lower case differs in length
    # fall back to the folded text rather than slicing the wrong region.
    if len(original) != len(match.string):
        return match[name] or ""
    return original[start:end]
