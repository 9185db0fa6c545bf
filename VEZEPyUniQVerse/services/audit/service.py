"""The audit log: one row per security-relevant event (who, what, on what, from where, result).

Events are added to the caller's transaction, so an event is recorded exactly when what it
describes is committed. Actions are dotted verbs (`login.failure`, `admin.disable`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyUniQVerse.db.models import AuditEvent

Outcome = Literal["ok", "denied", "error"]
MAX_PAGE_SIZE = 200


def record(
    db: AsyncSession,
    *,
    actor: str,
    action: str,
    target: str = "",
    outcome: Outcome = "ok",
    ip: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one event to `db`'s transaction (the caller commits)."""
    event = AuditEvent(
        at=datetime.now(UTC),
        actor=(actor or "anonymous")[:120],
        action=action[:64],
        target=target[:200],
        outcome=outcome,
        ip=ip[:64],
        detail=detail or {},
    )
    db.add(event)
    return event


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


async def list_events(
    db: AsyncSession,
    *,
    actor: str = "",
    action: str = "",
    page: int = 1,
    per_page: int = 50,
) -> AuditPage:
    """Newest first. `actor` matches exactly; `action` matches a prefix (`login.` for all)."""
    per_page = max(1, min(per_page, MAX_PAGE_SIZE))
    page = max(1, page)
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor.strip().lower())
    if action:
        query = query.where(AuditEvent.action.startswith(action.strip(), autoescape=True))
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await db.scalars(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return AuditPage(events=list(rows), page=page, per_page=per_page, total=total)
