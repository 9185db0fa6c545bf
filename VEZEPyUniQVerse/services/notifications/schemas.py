"""One notification as the portal header shows it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

NotificationKind = Literal["mail.new", "match.found", "match.result"]


class Notification(BaseModel):
    kind: NotificationKind
    title: str
    text: str
    link: str | None = None
