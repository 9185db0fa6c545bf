"""Group commit: local deliveries that arrive together share one database transaction.

Each caller validates its message and fsyncs its blob itself (concurrently, as before); the
rows of every delivery waiting at that moment are then filed by one writer in one
transaction and committed once: plain deliveries together, set-based (batch_filing.py), the
others each inside its own savepoint. A caller returns only after
the commit that holds its rows, so the SMTP 250 still follows a durable store
(RFC 5321 section 6.1). A delivery that fails while being filed is rolled back to its
savepoint and fails alone; a failed commit fails every delivery of its batch (the SMTP layer
answers those with a 4xx, never a 250).

On SQLite this also ends the write-lock contention between concurrent deliveries of one
process: there is one writer per process instead of one per SMTP session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyCore.tasks import cancel_and_wait
from VEZEPyEmail.db import intake as intake_db
from VEZEPyEmail.services.delivery import local
from VEZEPyEmail.services.delivery.batch_filing import (
    file_plain_deliveries,
    plan_plain_deliveries,
)
from VEZEPyEmail.services.delivery.local import DeliveredMessage, PreparedDelivery
from VEZEPyEmail.services.delivery.writer_turn import WriterTurn, lock_path_for
from VEZEPyEmail.services.messages.mime import Summary

log = logging.getLogger(__name__)

#: Deliveries filed in one transaction at most (bounds how long the write lock is held).
MAX_BATCH = 64

_Filed = list[DeliveredMessage]


@dataclass(frozen=True)
class Delivery:
    """One message to deliver locally (local.deliver_local's arguments)."""

    raw: bytes
    envelope_from: str
    recipients: Sequence[str]
    folder: str = "INBOX"
    seen: bool = False
    prepend_headers: Sequence[tuple[str, str]] = ()
    spam_score: float = 0.0
    summary: Summary | None = None
    #: The smtp_intake row it comes from: deleted in the transaction that files it.
    intake_id: int | None = None
    #: When it arrived, if before now (accepted by the MX earlier).
    received_at: datetime | None = None


@dataclass
class _Waiting:
    prepared: PreparedDelivery
    #: The smtp_intake row this delivery comes from: deleted in the transaction that files it.
    intake_id: int | None = None
    done: asyncio.Future[_Filed] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitter:
    """`deliver` has deliver_local's contract; one task files and commits the batches."""

    def __init__(self, state: Any, *, max_batch: int = MAX_BATCH) -> None:
        self.state = state
        self.max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One committer at a time across listener processes on SQLite (writer_turn.py).
        self._turn = WriterTurn(lock_path_for(str(getattr(state.settings, "db_url", ""))))
        #: Batches committed and deliveries in them (for the tests and the bench).
        self.batches = 0
        self.filed = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="delivery-group-commit")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._turn.close()
        for waiting in self._waiting:  # never left hanging: they get a 4xx
            if not waiting.done.done():
                waiting.done.set_exception(RuntimeError("delivery stopped"))
        self._waiting.clear()

    async def deliver(
        self,
        *,
        raw: bytes,
        envelope_from: str,
        recipients: Sequence[str],
        folder: str = "INBOX",
        seen: bool = False,
        prepend_headers: Sequence[tuple[str, str]] = (),
        spam_score: float = 0.0,
        summary: Summary | None = None,
    ) -> list[DeliveredMessage]:
        """Deliver as `local.deliver_local` does, sharing the commit with other deliveries."""
        request = Delivery(
            raw=raw,
            envelope_from=envelope_from,
            recipients=recipients,
            folder=folder,
            seen=seen,
            prepend_headers=prepend_headers,
            spam_score=spam_score,
            summary=summary,
        )
        [outcome] = await self.deliver_in_order([request])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def deliver_in_order(
        self, requests: Sequence[Delivery]
    ) -> list[list[DeliveredMessage] | BaseException]:
        """Deliver `requests`, filed in their order, and their after-commit work (events,
        Sieve's redirects and vacation replies) run one after another in that order too.

        Returns each request's copies, or the error that kept it from being filed. A request
        whose intake row another deliverer ended first is not filed again: no copies.
        """
        if self._task is None:
            raise RuntimeError("the group committer is not running")
        # Validated and their blobs fsynced concurrently; queued in order, in one go.
        prepared = await asyncio.gather(
            *(
                local.prepare_delivery(
                    self.state,
                    raw=request.raw,
                    envelope_from=request.envelope_from,
                    recipients=list(request.recipients),
                    folder=request.folder,
                    seen=request.seen,
                    prepend_headers=tuple(request.prepend_headers),
                    spam_score=request.spam_score,
                    summary=request.summary,
                    received_at=request.received_at,
                )
                for request in requests
            ),
            return_exceptions=True,
        )
        waiting: dict[int, _Waiting] = {}
        for index, (request, ready) in enumerate(zip(requests, prepared, strict=True)):
            if isinstance(ready, PreparedDelivery):
                waiting[index] = _Waiting(ready, request.intake_id)
        self._waiting.extend(waiting.values())
        if waiting:
            self._wake.set()
        # Each future is set only after the commit of its batch; batches commit in order.
        filed = await asyncio.gather(*(w.done for w in waiting.values()), return_exceptions=True)
        outcomes: list[list[DeliveredMessage] | BaseException] = []
        results = dict(zip(waiting, filed, strict=True))
        for index, ready in enumerate(prepared):
            if isinstance(ready, BaseException):
                outcomes.append(ready)
                continue
            result = results.get(index)
            if result is None:  # nobody here to deliver to
                outcomes.append([])
            elif isinstance(result, BaseException):
                outcomes.append(result)
            else:
                delivered = result
                try:
                    await local.finish_delivery(self.state, waiting[index].prepared, delivered)
                except Exception:  # filed and committed: the copies stand
                    log.exception("after-commit work of a delivery failed")
                outcomes.append(delivered)
        return outcomes

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
                await self._commit(batch)

    async def _commit(self, batch: list[_Waiting]) -> None:
        while batch:
            ended_elsewhere = await self._commit_once(batch)
            if not ended_elsewhere:
                return
            # Rare (a lease ran out while this process held it): those were filed by another
            # deliverer; file the rest again without them.
            for waiting in ended_elsewhere:
                if not waiting.done.done():
                    waiting.done.set_result([])
            batch = [waiting for waiting in batch if waiting not in ended_elsewhere]

    async def _commit_once(self, batch: list[_Waiting]) -> list[_Waiting]:
        """File and commit `batch`; the deliveries whose intake row was gone, not filing any."""
        sessionmaker: async_sessionmaker[AsyncSession] = self.state.sessionmaker
        filed: list[tuple[_Waiting, _Filed]] = []
        try:
            # Plain deliveries set-based (batch_filing.py), read before the write lock; the
            # rest one by one.
            plan = await plan_plain_deliveries(sessionmaker, [w.prepared for w in batch])
            async with self._turn(), sessionmaker() as session:
                await begin_as_writer(session)
                plain = await file_plain_deliveries(session, plan)
                plain_intake = [
                    intake_id
                    for index in plain.filed
                    if (intake_id := batch[index].intake_id) is not None
                ]
                ended = await intake_db.finish(session, plain_intake)
                if len(ended) < len(plain_intake):
                    await session.rollback()
                    return [w for w in batch if w.intake_id in set(plain_intake) - ended]
                for index, delivered in plain.filed.items():
                    filed.append((batch[index], delivered))
                for waiting in (batch[index] for index in plain.remaining):
                    try:
                        async with session.begin_nested():
                            if waiting.intake_id is not None and not await intake_db.finish(
                                session, [waiting.intake_id]
                            ):
                                filed.append((waiting, []))  # delivered elsewhere
                                continue
                            result = await local.file_delivery(
                                session, self.state, waiting.prepared
                            )
                    except Exception as exc:
                        # This delivery alone is rolled back (its savepoint, its intake row's
                        # end with it) and refused.
                        log.warning("filing a delivery failed; the others go on", exc_info=True)
                        if not waiting.done.done():
                            waiting.done.set_exception(exc)
                        continue
                    filed.append((waiting, result))
                await session.commit()
        except Exception as exc:
            log.exception("group commit of %d deliveries failed", len(batch))
            for waiting in batch:
                if not waiting.done.done():
                    waiting.done.set_exception(exc)
            return []
        except BaseException as exc:  # cancelled mid-batch: nothing of it was committed
            for waiting in batch:
                if not waiting.done.done():
                    waiting.done.set_exception(RuntimeError("delivery stopped"))
            raise exc
        self.batches += 1
        self.filed += len(filed)
        for waiting, result in filed:
            if not waiting.done.done():  # its session may have gone (the rows stay stored)
                waiting.done.set_result(result)
        return []


def committer_of(state: Any) -> GroupCommitter | None:
    committer = getattr(state, "group_commit", None)
    return committer if isinstance(committer, GroupCommitter) else None
