"""A queue table: the database rows that are the record of every job, and the SQL on them.

Every durable queue in the platform keeps one row per job with the same columns (`id`,
`status`, `attempts`, `next_attempt_at`, `lease_token`, `last_error`, `updated_at`; optional
`leased_until`, `expires_at`, `finished_at`). `QueueTable` names the table's model and what its
status values mean; the statements here are the whole protocol:

- claim: one conditional UPDATE takes a lease on due rows (a random token, the lease's end)
  and counts the attempt. Atomic on SQLite (one writer) and PostgreSQL (a second worker's
  UPDATE re-checks the condition on a row it waited for and skips it), so two workers never
  run one job at once. A worker that dies lets the lease run out; the job falls due again.
- finish: only the holder of the lease records an outcome (done, retry later, dead).
- dead letters: rows in the dead status, listed and replayed by an operator.

Whatever dispatches the work (the polling loop, Redis Streams) only says "look at row N":
the row decides whether there is anything to do, which makes every consumer idempotent.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


def aware(value: datetime) -> datetime:
    """UTC-aware (aggregates and some drivers skip the column type's fix-up)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class QueueTable:
    """One queue's table and the meaning of its status values."""

    #: Dotted name operators use (`portal.provisioning`); also names its Redis streams.
    name: str
    #: The ORM class with the standard columns (see the module docstring).
    model: Any
    waiting: str = "pending"
    done: str = "done"
    dead: str = "failed"
    #: The status of a leased row, when the table has one (and a `leased_until` column);
    #: None keeps leased rows `waiting` with the lease's end in `next_attempt_at`.
    running: str | None = None
    max_error_length: int = 500

    def _column(self, name: str) -> Any:
        return getattr(self.model, name)

    def _has(self, name: str) -> bool:
        return name in self.model.__table__.columns

    # -- conditions ------------------------------------------------------------------------

    def due(self, now: datetime) -> Any:
        """Rows a worker may claim at `now`: waiting and due, or leased by a worker that died."""
        m = self.model
        waiting = and_(m.status == self.waiting, m.next_attempt_at <= now)
        if self.running is None:
            return waiting  # an expired lease is simply a due `next_attempt_at`
        return or_(waiting, and_(m.status == self.running, m.leased_until <= now))

    def leased(self, now: datetime) -> Any:
        """Rows some worker holds a lease on at `now`."""
        m = self.model
        if self.running is None:
            return and_(
                m.status == self.waiting, m.lease_token.is_not(None), m.next_attempt_at > now
            )
        return and_(m.status == self.running, m.leased_until > now)

    # -- statements ------------------------------------------------------------------------

    async def claim(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        now: datetime,
        lease: timedelta,
        limit: int,
        ids: Sequence[int] | None = None,
    ) -> list[Job]:
        """Take the lease on up to `limit` due rows (only among `ids` when given)."""
        m = self.model
        token = secrets.token_hex(16)
        candidates = select(m.id).where(self.due(now))
        if ids is not None:
            if not ids:
                return []
            candidates = candidates.where(m.id.in_(list(ids)))
        candidates = candidates.order_by(m.next_attempt_at, m.id).limit(limit)
        values: dict[str, Any] = {
            "lease_token": token,
            "attempts": m.attempts + 1,
            "updated_at": now,
        }
        if self.running is None:
            values["next_attempt_at"] = now + lease
        else:
            values["status"] = self.running
            values["leased_until"] = now + lease
        statement = (
            update(m)
            # Repeated outside the subquery: PostgreSQL re-checks it on a row another worker
            # updated while this statement waited for it.
            .where(m.id.in_(candidates), self.due(now))
            .values(**values)
            .returning(*m.__table__.columns)
            .execution_options(synchronize_session=False)
        )
        async with sessionmaker.begin() as session:
            rows = (await session.execute(statement)).all()
        return [
            Job(id=row.id, attempts=row.attempts, lease_token=token, row=row)
            for row in sorted(rows, key=lambda row: row.id)
        ]

    async def finish(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        job: Job,
        *,
        status: str,
        error: str | None,
        next_attempt_at: datetime,
        now: datetime,
    ) -> bool:
        """Record an outcome and drop the lease, if `job`'s lease is still the one in force."""
        m = self.model
        values: dict[str, Any] = {
            "status": status,
            "last_error": error[: self.max_error_length] if error is not None else None,
            "next_attempt_at": next_attempt_at,
            "lease_token": None,
            "updated_at": now,
        }
        if self._has("leased_until"):
            values["leased_until"] = None
        if self._has("finished_at"):
            values["finished_at"] = now if status in (self.done, self.dead) else None
        statement = (
            update(m)
            .where(m.id == job.id, m.lease_token == job.lease_token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        async with sessionmaker.begin() as session:
            result = await session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def next_due(self, sessionmaker: async_sessionmaker[AsyncSession]) -> datetime | None:
        """When the earliest waiting (or leased) row falls due; None if there is none."""
        m = self.model
        async with sessionmaker() as session:
            waiting = await session.scalar(
                select(func.min(m.next_attempt_at)).where(m.status == self.waiting)
            )
            leased = None
            if self.running is not None:
                leased = await session.scalar(
                    select(func.min(m.leased_until)).where(m.status == self.running)
                )
        candidates = [aware(value) for value in (waiting, leased) if value is not None]
        return min(candidates) if candidates else None

    async def leased_ids(
        self, sessionmaker: async_sessionmaker[AsyncSession], ids: Sequence[int], now: datetime
    ) -> set[int]:
        """Those of `ids` some worker holds a lease on right now."""
        if not ids:
            return set()
        m = self.model
        async with sessionmaker() as session:
            found = await session.scalars(select(m.id).where(m.id.in_(list(ids)), self.leased(now)))
            return set(found)

    async def waiting_ids(
        self, session: AsyncSession, *, where: Any, limit: int = 1000
    ) -> list[int]:
        """Ids of waiting rows that match `where` (what a producer just added, say)."""
        m = self.model
        found = await session.scalars(
            select(m.id).where(m.status == self.waiting, where).order_by(m.id).limit(limit)
        )
        return list(found)

    # -- dead letters ----------------------------------------------------------------------

    async def dead_letters(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, limit: int = 100
    ) -> list[Any]:
        """The newest dead rows, whole."""
        m = self.model
        async with sessionmaker() as session:
            result = await session.execute(
                select(*m.__table__.columns)
                .where(m.status == self.dead)
                .order_by(m.updated_at.desc(), m.id.desc())
                .limit(limit)
            )
            return list(result.all())

    async def replay(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        ids: Sequence[int] | None,
        now: datetime,
    ) -> list[int]:
        """Put dead rows (all of them when `ids` is None) back in the queue with a fresh start.

        Attempts start again from zero, `last_error` stays for the record until the next
        attempt, and a row with a lifetime gets its whole lifetime again.
        """
        m = self.model
        condition = m.status == self.dead
        if ids is not None:
            if not ids:
                return []
            condition = and_(condition, m.id.in_(list(ids)))
        values: dict[str, Any] = {
            "status": self.waiting,
            "attempts": 0,
            "next_attempt_at": now,
            "lease_token": None,
            "updated_at": now,
        }
        if self._has("leased_until"):
            values["leased_until"] = None
        if self._has("finished_at"):
            values["finished_at"] = None
        if self._has("expires_at") and self._has("created_at"):
            return await self._replay_with_lifetime(sessionmaker, condition, values, now)
        statement = (
            update(m)
            .where(condition)
            .values(**values)
            .returning(m.id)
            .execution_options(synchronize_session=False)
        )
        async with sessionmaker.begin() as session:
            replayed = (await session.scalars(statement)).all()
        return sorted(replayed)

    async def _replay_with_lifetime(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        condition: Any,
        values: dict[str, Any],
        now: datetime,
    ) -> list[int]:
        # Interval arithmetic on timestamps differs between SQLite and PostgreSQL: read each
        # row's lifetime and write its new expiry one row at a time (replays are rare).
        m = self.model
        replayed: list[int] = []
        async with sessionmaker.begin() as session:
            lifetimes = select(m.id, m.created_at, m.expires_at).where(condition)
            rows = (await session.execute(lifetimes)).all()
            for row in rows:
                lifetime = aware(row.expires_at) - aware(row.created_at)
                await session.execute(
                    update(m)
                    .where(m.id == row.id, condition)
                    .values(**values, expires_at=now + lifetime)
                    .execution_options(synchronize_session=False)
                )
                replayed.append(row.id)
        return sorted(replayed)


@dataclass(frozen=True)
class Job:
    """One claimed row: its id, the attempt this claim is for, the lease token, the row."""

    id: int
    attempts: int
    lease_token: str
    #: The whole row as claimed (a SQLAlchemy Row: `job.row.handle`, `job.row.created_at`).
    row: Any
