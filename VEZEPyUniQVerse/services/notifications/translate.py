"""Service events in, header notifications out (None for events a person need not see)."""

from __future__ import annotations

from typing import Any

from VEZEPyUniQVerse.services.notifications.schemas import Notification

SUBJECT_CHARS = 120


def mail_notification(event: dict[str, Any], *, inbox_url: str | None) -> Notification | None:
    """`message.created` in the inbox is new mail; drafts, sent copies and junk are not."""
    if event.get("type") != "message.created":
        return None
    if str(event.get("folder") or "INBOX").upper() != "INBOX":
        return None
    sender = str(event.get("from") or "someone")[:SUBJECT_CHARS]
    subject = str(event.get("subject") or "(no subject)")[:SUBJECT_CHARS]
    return Notification(
        kind="mail.new", title=f"New mail from {sender}", text=subject, link=inbox_url
    )


def match_found(event: dict[str, Any], *, match_url: str | None) -> Notification | None:
    match_id = event.get("match_id")
    if event.get("type") != "match.found" or not isinstance(match_id, str):
        return None
    mode = str(event.get("mode") or "")
    return Notification(
        kind="match.found",
        title="Match found",
        text=f"Your {mode} match is ready.".replace("  ", " "),
        link=f"{match_url}{match_id}" if match_url else None,
    )


def match_result(
    match_id: str, outcome: str | None, opponent: str | None, *, match_url: str | None
) -> Notification:
    words = {"win": "You won", "loss": "You lost", "draw": "A draw"}
    text = words.get(outcome or "", "The match is over")
    if opponent:
        text += f" against {opponent}"
    return Notification(
        kind="match.result",
        title="Match result",
        text=text + ".",
        link=f"{match_url}{match_id}" if match_url else None,
    )
