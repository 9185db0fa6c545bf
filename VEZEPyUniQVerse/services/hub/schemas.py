"""What the home dashboard shows: one panel per concern, each standing on its own."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class MailItem(BaseModel):
    id: int
    subject: str
    sender: str
    date: datetime | None = None
    unread: bool


class RatingItem(BaseModel):
    mode: str
    rating: int
    games: int
    wins: int
    losses: int
    draws: int


class MatchItem(BaseModel):
    id: str
    mode: str
    status: str
    outcome: str | None
    opponent: str
    created_at: datetime


class QueueState(BaseModel):
    status: str
    mode: str
    waited_seconds: float
    match_id: str | None = None
    opponent_handle: str | None = None


class ProvisioningItem(BaseModel):
    target: str
    status: str
    last_error: str | None = None


class Panel(BaseModel):
    """`ok` False means the panel's service did not answer; `message` says so in words."""

    key: str
    title: str
    ok: bool = True
    message: str | None = None


class MailPanel(Panel):
    unread: int = 0
    messages: list[MailItem] = []


class RatingPanel(Panel):
    ratings: list[RatingItem] = []
    rank: int | None = None


class MatchesPanel(Panel):
    matches: list[MatchItem] = []


class QueuePanel(Panel):
    ticket: QueueState | None = None


class ProvisioningPanel(Panel):
    tasks: list[ProvisioningItem] = []


class Dashboard(BaseModel):
    mail: MailPanel
    rating: RatingPanel
    matches: MatchesPanel
    queue: QueuePanel
    provisioning: ProvisioningPanel
