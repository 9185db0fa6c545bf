"""What the copilot understands and how it answers.

Protocol (JSON text frames): the client sends `{"text": "..."}`; the server answers with a
`CopilotReply`. The copilot is deliberately a small command interpreter: it says plainly when
it does not understand instead of guessing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from VEZEPyUniQVerse.services.copilot.schemas import CopilotReply
from VEZEPyUniQVerse.services.directory.schemas import ServiceStatusRead

MAX_MESSAGE_CHARS = 2000
#: The raw frame may carry JSON punctuation and escapes around the text, but not megabytes.
MAX_FRAME_CHARS = 4 * MAX_MESSAGE_CHARS
#: How much of an unknown message is quoted back.
ECHO_CHARS = 80

StatusLoader = Callable[[], Awaitable[list[ServiceStatusRead]]]

COMMANDS: dict[str, str] = {
    "help": "list what I can do",
    "services": "show every VEZE service and whether it is up right now",
}
ALIASES: dict[str, str] = {"?": "help", "commands": "help", "status": "services"}


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


async def answer(text: str, *, load_statuses: StatusLoader) -> CopilotReply:
    words = text.strip().lower().split()
    if not words:
        return CopilotReply(type="reply", text="Type help to see the commands I know.")
    command = ALIASES.get(words[0], words[0]) if len(words) == 1 else None
    if command == "help":
        lines = [f"{name}: {summary}" for name, summary in COMMANDS.items()]
        return CopilotReply(
            type="reply",
            command="help",
            commands=list(COMMANDS),
            text="I know these commands:\n" + "\n".join(lines),
        )
    if command == "services":
        statuses = await load_statuses()
        return CopilotReply(
            type="reply", command="services", services=statuses, text=_describe(statuses)
        )
    quoted = text.strip()
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
