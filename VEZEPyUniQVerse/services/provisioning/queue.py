"""The durable provisioning queue: what sign-up adds and what the account page reads.

`enqueue_account` only adds rows to the caller's transaction: the account and its tasks commit
together, so a crash or a dead target service never leaves an account without its tasks. After
that commit the portal's worker is woken (see `install_wakeup`) and calls the targets.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from VEZEPyUniQVerse.db.models import PROVISIONING_TARGETS, ProvisioningTask
from VEZEPyUniQVerse.services.provisioning.schemas import (
    ProvisioningTaskRead,
    ProvisioningTaskState,
)

#: Key in `Session.info` under which the portal's sessions carry the worker's wake-up event.
WAKEUP_INFO_KEY = "veze.provisioning.wakeup"
_WAKE_PENDING_KEY = "veze.provisioning.wake_pending"
_LISTENING_KEY = "veze.provisioning.listening"


def install_wakeup(sessionmaker: async_sessionmaker[AsyncSession], wakeup: asyncio.Event) -> None:
    """Make every session from `sessionmaker` carry `wakeup`, so an enqueue can poke it.

    Keeps whatever else the sessionmaker already puts in `Session.info`.
    """
    info: dict[Any, Any] = dict(sessionmaker.kw.get("info") or {})
    info[WAKEUP_INFO_KEY] = wakeup
    sessionmaker.configure(info=info)


async def enqueue_account(db: AsyncSession, *, handle: str, display_name: str) -> None:
    """Add one pending task per target for `handle` to the caller's transaction.

    The caller commits. Idempotent: a target already queued (or done) for the handle is left
    as it is. Once the transaction commits, the local worker wakes up at once; other portal
    workers find the tasks on their next poll.
    """
    now = datetime.now(UTC)
    handle = handle.lower()
    rows = [
        {
            "handle": handle,
            "target": target,
            "display_name": display_name,
            "status": "pending",
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": now,
            "lease_token": None,
            "created_at": now,
            "updated_at": now,
        }
        for target in PROVISIONING_TARGETS
    ]
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        await db.execute(
            postgresql.insert(ProvisioningTask)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["handle", "target"])
        )
    elif dialect == "sqlite":
        await db.execute(
            sqlite.insert(ProvisioningTask)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["handle", "target"])
        )
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        existing = set(
            await db.scalars(
                select(ProvisioningTask.target).where(ProvisioningTask.handle == handle)
            )
        )
        db.add_all(ProvisioningTask(**row) for row in rows if row["target"] not in existing)
        await db.flush()
    _wake_after_commit(db)


async def provisioning_status(db: AsyncSession, *, handle: str) -> list[ProvisioningTaskRead]:
    """One entry per queued target of `handle`, in target order; empty if nothing was queued."""
    tasks = await db.scalars(
        select(ProvisioningTask)
        .where(ProvisioningTask.handle == handle.lower())
        .order_by(ProvisioningTask.target)
    )
    return [task_read(task) for task in tasks]


def task_read(task: ProvisioningTask) -> ProvisioningTaskRead:
    state: ProvisioningTaskState
    if task.status == "done":
        state = "done"
    elif task.last_error is not None:
        state = "failed-retrying"
    else:
        state = "pending"
    return ProvisioningTaskRead(
        target=task.target,  # the CHECK constraint keeps it one of the targets
        status=state,
        attempts=task.attempts,
        last_error=task.last_error,
        next_attempt_at=None if task.status == "done" else task.next_attempt_at,
    )


def _wake_after_commit(db: AsyncSession) -> None:
    if not isinstance(db.info.get(WAKEUP_INFO_KEY), asyncio.Event):
        return  # a session not made by the portal's sessionmaker: the worker's poll finds it
    db.info[_WAKE_PENDING_KEY] = True
    if not db.info.get(_LISTENING_KEY):
        db.info[_LISTENING_KEY] = True
        event.listen(db.sync_session, "after_commit", _poke_after_commit)


def _poke_after_commit(session: Session) -> None:
    # Poked only after the commit: before it, the worker's own session could not see the rows.
    # Runs on the event loop's thread (SQLAlchemy's greenlet bridge), so set() is safe. A
    # rolled-back enqueue leaves the flag set and a later commit pokes for nothing: harmless.
    if session.info.pop(_WAKE_PENDING_KEY, False):
        wakeup = session.info.get(WAKEUP_INFO_KEY)
        if isinstance(wakeup, asyncio.Event):
            wakeup.set()
