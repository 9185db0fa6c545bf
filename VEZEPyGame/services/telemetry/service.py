"""Storing a telemetry batch and running the fair-play rules, in one transaction.

The events and any flags they raise commit together: a batch is either stored with its
findings or not at all (the client retries it). Counts for the rules use our clock
(`received_at`): a client can write any `ts` it likes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyCore.errors import Conflict, NotFound
from VEZEPyGame.db.models import Player
from VEZEPyGame.db.telemetry import FairPlayFlag, TelemetryEvent
from VEZEPyGame.services.telemetry import rules
from VEZEPyGame.services.telemetry.rules import Finding, Thresholds
from VEZEPyGame.services.telemetry.schemas import FlagRead, TelemetryEventIn

MAX_FLAG_PAGE = 200


def _now() -> datetime:
    return datetime.now(UTC)


def _event_row(
    event: TelemetryEventIn, *, player_id: int, batch_id: str, now: datetime
) -> dict[str, Any]:
    payload = event.model_dump(mode="json", exclude={"type", "ts"})
    return {
        "player_id": player_id,
        "batch_id": batch_id,
        "type": event.type,
        "match_id": payload.get("match_id"),
        "client_ts": event.ts.astimezone(UTC),
        "received_at": now,
        "payload": payload,
    }


async def store_batch(
    session: AsyncSession,
    *,
    player_id: int,
    events: Sequence[TelemetryEventIn],
    thresholds: Thresholds,
    now: datetime | None = None,
) -> tuple[str, list[str]]:
    """Insert the batch and the flags it raises (the caller commits); the batch id and the
    rules of the flags that are new."""
    now = now or _now()
    batch_id = uuid.uuid4().hex
    await begin_as_writer(session)
    await session.execute(
        insert(TelemetryEvent),
        [_event_row(event, player_id=player_id, batch_id=batch_id, now=now) for event in events],
    )
    findings = rules.timing_findings(events, now=now, min_move_ms=thresholds.min_move_ms)
    recent = await _count(session, player_id=player_id, since=now - rules.FLOOD_WINDOW)
    flood = rules.flood_finding(
        events_last_minute=recent, now=now, limit=thresholds.flood_events_per_minute
    )
    if any(event.type in rules.ABANDON_TYPES for event in events):
        abandons = await _count(
            session,
            player_id=player_id,
            since=now - rules.ABANDON_WINDOW,
            types=rules.ABANDON_TYPES,
        )
        abandon = rules.abandon_finding(
            abandons_last_hour=abandons, now=now, threshold=thresholds.abandon_threshold
        )
    else:
        abandon = None
    findings += [finding for finding in (flood, abandon) if finding is not None]
    new_rules = await add_flags(session, player_id=player_id, findings=findings, now=now)
    return batch_id, new_rules


async def _count(
    session: AsyncSession, *, player_id: int, since: datetime, types: Sequence[str] = ()
) -> int:
    statement = select(func.count(TelemetryEvent.id)).where(
        TelemetryEvent.player_id == player_id, TelemetryEvent.received_at >= since
    )
    if types:
        statement = statement.where(TelemetryEvent.type.in_(types))
    return int(await session.scalar(statement) or 0)


async def add_flags(
    session: AsyncSession, *, player_id: int, findings: Sequence[Finding], now: datetime
) -> list[str]:
    """Record findings; one already raised for the same rule and window is left as it is.
    The rules of the flags that are new."""
    if not findings:
        return []
    rows = [
        {
            "player_id": player_id,
            "rule": finding.rule,
            "window_key": finding.window_key,
            "detail": finding.detail[:500],
            "match_id": finding.match_id,
            "created_at": now,
        }
        for finding in findings
    ]
    index = ["player_id", "rule", "window_key"]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = (
            postgresql.insert(FairPlayFlag)
            .values(rows)
            .on_conflict_do_nothing(index_elements=index)
        )
    else:
        statement = (
            sqlite.insert(FairPlayFlag).values(rows).on_conflict_do_nothing(index_elements=index)
        )
    inserted = await session.execute(statement.returning(FairPlayFlag.rule))
    return list(inserted.scalars())


async def list_flags(
    session: AsyncSession,
    *,
    limit: int,
    before_id: int | None = None,
    rule: str | None = None,
    player_handle: str | None = None,
    status: str | None = None,
) -> list[FlagRead]:
    """Newest first; `before_id` pages back."""
    statement = (
        select(FairPlayFlag, Player.handle)
        .join(Player, Player.id == FairPlayFlag.player_id)
        .order_by(FairPlayFlag.id.desc())
        .limit(min(limit, MAX_FLAG_PAGE))
    )
    if before_id is not None:
        statement = statement.where(FairPlayFlag.id < before_id)
    if rule is not None:
        statement = statement.where(FairPlayFlag.rule == rule)
    if player_handle is not None:
        statement = statement.where(Player.handle == player_handle.lower())
    if status is not None:
        statement = statement.where(FairPlayFlag.status == status)
    rows = await session.execute(statement)
    return [_flag_read(flag, handle) for flag, handle in rows]


def _flag_read(flag: FairPlayFlag, handle: str) -> FlagRead:
    return FlagRead(
        id=flag.id,
        player_id=flag.player_id,
        handle=handle,
        rule=flag.rule,
        detail=flag.detail,
        match_id=flag.match_id,
        created_at=flag.created_at,
        status=flag.status,
        reviewed_by=flag.reviewed_by,
        reviewed_at=flag.reviewed_at,
        review_note=flag.review_note,
    )


async def review_flag(
    session: AsyncSession,
    *,
    flag_id: int,
    decision: str,
    reviewer: str,
    note: str = "",
    now: datetime | None = None,
) -> FlagRead:
    """Close an open flag as "resolved" or "dismissed", recording who and when (caller
    commits). A reviewed flag stays as it was decided: 409, so the trail is never rewritten.
    The conditional update decides between two admins answering at once."""
    closed = await session.execute(
        update(FairPlayFlag)
        .where(FairPlayFlag.id == flag_id, FairPlayFlag.status == "open")
        .values(
            status=decision,
            reviewed_by=reviewer[:64],
            reviewed_at=now or _now(),
            review_note=note.strip() or None,
        )
        .execution_options(synchronize_session=False)
    )
    row = (
        await session.execute(
            select(FairPlayFlag, Player.handle)
            .join(Player, Player.id == FairPlayFlag.player_id)
            .where(FairPlayFlag.id == flag_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        raise NotFound("no such flag")
    if not closed.rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"this flag was already {row[0].status}", code="flag_reviewed")
    return _flag_read(row[0], row[1])
