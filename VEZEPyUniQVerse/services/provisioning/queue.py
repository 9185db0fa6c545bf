"""The durable provisioning queue: what sign-up adds and what the account page reads.

`enqueue_account` only adds rows to the caller's transaction: the account and its tasks commit
together, so a crash or a dead target service never leaves an account without its tasks. Once
that commit is done the rows are dispatched to the portal's workers (see `install_notifier`):
the local worker wakes up, or, with Redis, the task ids go on the queue's stream.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.queue import QueueDefinition, QueueTable, QueueWorker
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import PROVISIONING_TARGETS, ProvisioningTask
from VEZEPyUniQVerse.services.provisioning.schemas import (
    ProvisioningTaskRead,
    ProvisioningTaskState,
)

#: The provisioning tasks as a VEZEPyCore queue. Tasks are retried until they succeed (the
#: account exists already), so no task reaches the dead status unless a maximum is set.
PROVISIONING = QueueTable(name="portal.provisioning", model=ProvisioningTask)
QUEUE = QueueDefinition(table=PROVISIONING, settings=PortalSettings)

#: Key in `Session.info` under which the portal's sessions carry the provisioning worker.
WORKER_INFO_KEY = "veze.provisioning.worker"


def install_notifier(sessionmaker: async_sessionmaker[AsyncSession], worker: QueueWorker) -> None:
    """Make every session from `sessionmaker` carry `worker`, so an enqueue can dispatch.

    Keeps whatever else the sessionmaker already puts in `Session.info`.
    """
    info: dict[Any, Any] = dict(sessionmaker.kw.get("info") or {})
    info[WORKER_INFO_KEY] = worker
    sessionmaker.configure(info=info)


async def enqueue_account(db: AsyncSession, *, handle: str, display_name: str) -> None:
    """Add one pending task per target for `handle` to the caller's transaction.

    The caller commits. Idempotent: a target already queued (or done) for the handle is left
    as it is. Once the transaction commits, the new tasks are dispatched: the local worker
    wakes up at once, or with Redis the task ids go on the queue's stream.
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
    insert: Any = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    added = await db.scalars(
        insert(ProvisioningTask)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["handle", "target"])
        .returning(ProvisioningTask.id)
    )
    ids = list(added)
    worker = db.info.get(WORKER_INFO_KEY)
    if ids and isinstance(worker, QueueWorker):
        # Only after the commit: before it, no worker's own session could see the rows. A
        # session not made by the portal's sessionmaker: the workers' sweep finds them.
        worker.notify_after_commit(db, ids)


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
    elif task.status == PROVISIONING.dead:
        state = "failed"
    elif task.last_error is not None:
        state = "failed-retrying"
    else:
        state = "pending"
    return ProvisioningTaskRead(
        target=task.target,  # the CHECK constraint keeps it one of the targets
        status=state,
        attempts=task.attempts,
        last_error=task.last_error,
        next_attempt_at=task.next_attempt_at if task.status == "pending" else None,
    )
