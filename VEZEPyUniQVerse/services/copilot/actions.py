"""What the copilot does for a person: reads and changes in Email and Game with their token.

Each call carries a token minted for the person talking (subject = their account), so Email
and Game authorise it as they would the person's own client: nobody reaches another's data
through the copilot. Reads answer at once; sending mail and joining or leaving a queue are
proposed first and only done after a `yes` (see `service.CopilotSession`).
"""

from __future__ import annotations

from typing import Any

from VEZEPyCore.auth import scopes
from VEZEPyCore.errors import AppError
from VEZEPyCore.services.http import ServiceClients
from VEZEPyCore.services.registry import ServiceRegistry
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.copilot.intents import (
    JoinQueue,
    LeaveQueue,
    MyRank,
    QueueStatus,
    SearchMail,
    SendMail,
    Top,
    UnreadMail,
)
from VEZEPyUniQVerse.services.copilot.schemas import CopilotLink, CopilotReply
from VEZEPyUniQVerse.services.hub.tokens import user_token
from VEZEPyUniQVerse.services.hub.upstream import call_json

LISTED_MESSAGES = 5
SUBJECT_CHARS = 80


class Actor:
    """Calls on behalf of one signed-in person."""

    def __init__(self, app_state: Any, user: User) -> None:
        self.app_state = app_state
        self.user = user
        self.settings = app_state.settings
        self.address = f"{user.handle}@{self.settings.mail_domain}"

    async def _call(self, service: str, scope: str, method: str, path: str, **request: Any) -> Any:
        audience = self.settings.email_aud if service == "email" else self.settings.game_aud
        token = await user_token(self.app_state, user=self.user, audience=audience, scopes=[scope])
        clients: ServiceClients = self.app_state.clients
        return await call_json(
            clients,
            service,
            method,
            path,
            token=token,
            deadline_seconds=self.settings.http_timeout_seconds,
            **request,
        )

    def _link(self, service: str, path: str, label: str) -> list[CopilotLink]:
        registry: ServiceRegistry = self.app_state.registry
        try:
            return [CopilotLink(label=label, url=f"{registry.public_url(service)}{path}")]
        except KeyError:
            return []

    async def unread_mail(self, _intent: UnreadMail) -> CopilotReply:
        folders = await self._call("email", scopes.EMAIL_READ, "GET", "/api/folders")
        inbox = next(
            (f for f in folders["folders"] if f.get("special_use") == "inbox"),
            {"unread": 0},
        )
        page = await self._call(
            "email",
            scopes.EMAIL_READ,
            "GET",
            "/api/messages",
            params={"user": self.address, "limit": 50},
        )
        unread = [m for m in page["messages"] if m.get("unread")][:LISTED_MESSAGES]
        count = int(inbox["unread"])
        lines = [f"You have {count} unread message{'s' if count != 1 else ''}."]
        lines += [_line(message) for message in unread]
        return CopilotReply(
            type="reply",
            command="unread mail",
            text="\n".join(lines),
            links=self._link("email", "/ui/inbox", "Open webmail"),
        )

    async def search_mail(self, intent: SearchMail) -> CopilotReply:
        page = await self._call(
            "email",
            scopes.EMAIL_READ,
            "GET",
            "/api/messages",
            params={"user": self.address, "q": intent.query[:200], "limit": LISTED_MESSAGES},
        )
        found = page["messages"]
        if not found:
            text = f"No mail matches {intent.query!r}."
        else:
            text = "\n".join(
                [f"Mail matching {intent.query!r}:"] + [_line(message) for message in found]
            )
        return CopilotReply(
            type="reply",
            command="search mail",
            text=text,
            links=self._link("email", "/ui/inbox", "Open webmail"),
        )

    async def send_mail(self, intent: SendMail) -> CopilotReply:
        to = intent.to if "@" in intent.to else f"{intent.to}@{self.settings.mail_domain}"
        body = {"to": [to], "subject": intent.subject, "text": intent.text}
        await self._call("email", scopes.EMAIL_SEND, "POST", "/api/send", json=body)
        return CopilotReply(
            type="reply",
            command="send mail",
            text=f"Sent: your message to {to} is on its way (a copy is in your Sent folder).",
            links=self._link("email", "/ui/inbox", "Open webmail"),
        )

    async def join_queue(self, intent: JoinQueue) -> CopilotReply:
        ticket = await self._call(
            "game", scopes.GAME_PLAY, "POST", "/api/queue", json={"mode": intent.mode}
        )
        return CopilotReply(
            type="reply",
            command="queue",
            text=f"You are in the {intent.mode} queue ({ticket['status']}). "
            "I will tell you when a match is found.",
            links=self._link("game", "/ui/queue", "Watch the queue"),
        )

    async def leave_queue(self, _intent: LeaveQueue) -> CopilotReply:
        await self._call("game", scopes.GAME_PLAY, "DELETE", "/api/queue")
        return CopilotReply(type="reply", command="leave queue", text="You left the queue.")

    async def queue_status(self, _intent: QueueStatus) -> CopilotReply:
        body = await self._call("game", scopes.GAME_PLAY, "GET", "/api/queue")
        ticket = body.get("ticket")
        if not ticket or ticket["status"] == "cancelled":
            text = "You are not in a queue. Say queue ranked or queue casual to join one."
        elif ticket["status"] == "waiting":
            text = (
                f"Waiting in the {ticket['mode']} queue for {ticket['waited_seconds']:.0f} s "
                f"with {ticket['waiting_in_pool']} other player(s)."
            )
        else:
            text = f"Your {ticket['mode']} ticket is {ticket['status']}."
        links = self._link("game", "/ui/queue", "Open the queue")
        if ticket and ticket.get("match_id"):
            links = self._link("game", f"/ui/matches/{ticket['match_id']}", "Go to the match")
        return CopilotReply(type="reply", command="queue status", text=text, links=links)

    async def my_rank(self, _intent: MyRank) -> CopilotReply:
        ratings = await self._call("game", scopes.GAME_PLAY, "GET", "/api/ratings/me")
        try:
            standing = await self._call(
                "game", scopes.GAME_PLAY, "GET", "/api/leaderboards/ranked/me", params={"span": 0}
            )
        except AppError as exc:
            if exc.status_code != 404:
                raise
            standing = None
        lines = [
            f"{r['mode'].capitalize()}: {r['rating']} ({r['wins']}W {r['losses']}L {r['draws']}D)"
            for r in ratings
        ]
        if standing:
            lines.insert(0, f"You are #{standing['me']['rank']} on the ranked leaderboard.")
        else:
            lines.insert(0, "You are not on the ranked leaderboard yet: play a ranked match.")
        return CopilotReply(
            type="reply",
            command="my rank",
            text="\n".join(lines),
            links=self._link("game", "/ui/profile", "Your profile"),
        )

    async def top(self, intent: Top) -> CopilotReply:
        board = await self._call(
            "game",
            scopes.GAME_PLAY,
            "GET",
            "/api/leaderboards/ranked",
            params={"limit": intent.count},
        )
        entries = board["entries"]
        if not entries:
            text = "Nobody is on the ranked leaderboard yet."
        else:
            text = "\n".join(
                [f"Top {len(entries)} ranked:"]
                + [f"#{e['rank']} {e['handle']} {e['score']}" for e in entries]
            )
        return CopilotReply(
            type="reply",
            command="top",
            text=text,
            links=self._link("game", "/ui/leaderboard", "Leaderboard"),
        )


def _line(message: dict[str, Any]) -> str:
    subject = str(message.get("subject") or "(no subject)")[:SUBJECT_CHARS]
    return f"- {subject} — from {message.get('from_') or 'unknown'}"
