"""Set-based filing of a group commit's plain deliveries: a few statements per batch.

Filing one delivery at a time costs about a dozen statements (mailboxes, the duplicate
guard, the Sieve script, the folder, the insert, each savepoint), and the group committer
runs them one after another, so under load the SMTP listener waited on its own committer.
A *plain* delivery needs none of that per message: none of its recipients has rules for
the folder it goes to, and it names no parent message (In-Reply-To, References), so its
thread is its own Message-ID and nothing else moves. Plain deliveries of a batch are filed
together: mailboxes, scripts, duplicates and folders are looked up once, before the write
lock is taken, and every row goes in with one multi-row INSERT .. RETURNING. Anything else,
and a batch whose statements fail (a Message-ID stored meanwhile by another process, say), is
left to the per-delivery path (`local.file_delivery`), which keeps each delivery's own
savepoint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyEmail.db.models import Folder, Mailbox, Message
from VEZEPyEmail.db.sieve import SieveScript
from VEZEPyEmail.services.delivery.local import DeliveredMessage, PreparedDelivery, message_values
from VEZEPyEmail.services.folders.service import ensure_folder
from VEZEPyEmail.services.sieve.delivery import RULE_FOLDERS, Copy

log = logging.getLogger(__name__)


@dataclass
class BatchFiling:
    """Deliveries filed here (by their index in the batch) and those left to the caller."""

    filed: dict[int, list[DeliveredMessage]] = field(default_factory=dict)
    remaining: list[int] = field(default_factory=list)


@dataclass
class BatchPlan:
    """What the set-based step will write: read before the write lock is taken.

    On SQLite the group committer of every listener process takes one database-wide write
    lock, and an asyncio transaction holds it across each of its awaits; reading first keeps
    the time it is held to the inserts. What was read may be a moment old when the rows go
    in: a Message-ID stored since then fails the unique index and the batch is filed one by
    one (the duplicate guard still holds); a script saved since then applies from the next
    message on, as if this one had arrived a moment earlier.
    """

    batch: Sequence[PreparedDelivery]
    planned: dict[int, list[_PlannedCopy]] = field(default_factory=dict)
    values: list[dict[str, object]] = field(default_factory=list)
    missing_folders: list[tuple[int, str]] = field(default_factory=list)


def _names_a_parent(prepared: PreparedDelivery) -> bool:
    return prepared.summary.in_reply_to is not None or bool(prepared.summary.references_header)


async def plan_plain_deliveries(
    sessionmaker: async_sessionmaker[AsyncSession], batch: Sequence[PreparedDelivery]
) -> BatchPlan:
    """Plan the batch's plain deliveries; an empty plan when none qualifies or a read fails."""
    candidates = [index for index, prepared in enumerate(batch) if not _names_a_parent(prepared)]
    if not candidates:
        return BatchPlan(batch)
    try:
        async with sessionmaker() as session:
            return await _plan(session, batch, candidates)
    except Exception:
        log.info("planning a batch failed; filing its deliveries one by one", exc_info=True)
        return BatchPlan(batch)


async def file_plain_deliveries(session: AsyncSession, plan: BatchPlan) -> BatchFiling:
    """Write the plan in the caller's writer transaction; the caller commits.

    On any failure nothing of this step stays (its savepoint is rolled back) and every
    delivery is returned in `remaining`.
    """
    everything = list(range(len(plan.batch)))
    if not plan.planned:
        return BatchFiling(remaining=everything)
    try:
        async with session.begin_nested():
            filed = await _write(session, plan)
    except Exception:
        log.info("batch filing failed; filing its deliveries one by one", exc_info=True)
        return BatchFiling(remaining=everything)
    return BatchFiling(filed=filed, remaining=[index for index in everything if index not in filed])


async def _plan(
    session: AsyncSession, batch: Sequence[PreparedDelivery], candidates: list[int]
) -> BatchPlan:
    addresses = sorted({address for index in candidates for address in batch[index].addresses})
    mailbox_ids: dict[str, int] = {
        str(address): int(mailbox_id)
        for mailbox_id, address in (
            await session.execute(
                select(Mailbox.id, Mailbox.address).where(Mailbox.address.in_(addresses))
            )
        ).all()
    }
    with_rules: set[int] = set(
        (
            await session.scalars(
                select(SieveScript.mailbox_id).where(
                    SieveScript.mailbox_id.in_(sorted(set(mailbox_ids.values())))
                )
            )
        ).all()
    )

    def plain(prepared: PreparedDelivery) -> bool:
        if prepared.folder not in RULE_FOLDERS:
            return True  # rules run for INBOX and Junk deliveries only (services/sieve)
        return not any(mailbox_ids.get(address) in with_rules for address in prepared.addresses)

    chosen = [index for index in candidates if plain(batch[index])]
    plan = BatchPlan(batch)
    if not chosen:
        return plan
    pairs = {
        (mailbox_ids[address], batch[index].summary.message_id_header)
        for index in chosen
        for address in batch[index].addresses
        if address in mailbox_ids and batch[index].summary.message_id_header is not None
    }
    existing: dict[tuple[int, str], int] = {}
    if pairs:
        rows = await session.execute(
            select(Message.mailbox_id, Message.message_id_header, Message.id).where(
                tuple_(Message.mailbox_id, Message.message_id_header).in_(sorted(pairs))
            )
        )
        for row_mailbox, row_message_id, row_id in rows.all():
            stored_key = (int(row_mailbox), str(row_message_id))
            existing[stored_key] = min(existing.get(stored_key, row_id), int(row_id))

    # Plan every copy: a duplicate (stored before, or earlier in this batch) stores nothing.
    positions: dict[tuple[int, str], int] = {}  # Message-ID key -> its new row in `values`
    folders: set[tuple[int, str]] = set()
    for index in chosen:
        prepared = batch[index]
        message_id = prepared.summary.message_id_header
        copies = plan.planned.setdefault(index, [])
        for address in prepared.addresses:
            mailbox_id = mailbox_ids.get(address)
            if mailbox_id is None:
                continue  # no mailbox here (refused at RCPT, or gone since)
            key = (mailbox_id, message_id) if message_id is not None else None
            if key is not None and key in existing:
                copies.append(_PlannedCopy(address, stored_id=existing[key]))
            elif key is not None and key in positions:
                copies.append(_PlannedCopy(address, position=positions[key], duplicate=True))
            else:
                if key is not None:
                    positions[key] = len(plan.values)
                copies.append(_PlannedCopy(address, position=len(plan.values)))
                folders.add((mailbox_id, prepared.folder))
                plan.values.append(
                    message_values(
                        prepared,
                        mailbox_id=mailbox_id,
                        copy=Copy(prepared.folder, seen=prepared.seen),
                        message_id_header=message_id,
                        thread_id=prepared.summary.thread_id,
                    )
                )
    if folders:
        folder_rows = await session.execute(
            select(Folder.mailbox_id, Folder.name).where(
                tuple_(Folder.mailbox_id, Folder.name).in_(sorted(folders))
            )
        )
        present = {(int(mailbox_id), str(name)) for mailbox_id, name in folder_rows.all()}
        plan.missing_folders = sorted(folders - present)
    return plan


async def _write(session: AsyncSession, plan: BatchPlan) -> dict[int, list[DeliveredMessage]]:
    for mailbox_id, folder in plan.missing_folders:
        await ensure_folder(session, mailbox_id=mailbox_id, name=folder)
    ids: list[int] = []
    if plan.values:
        # A Core insert of the table: the ORM's bulk path adds per-row bookkeeping for nothing.
        table = cast(Table, Message.__table__)
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = [int(row_id) for row_id in (await session.scalars(statement, plan.values)).all()]
    batch = plan.batch
    return {
        index: [
            DeliveredMessage(
                copy.stored_id if copy.stored_id is not None else ids[copy.position],
                copy.address,
                batch[index].folder,
                batch[index].key,
                duplicate=copy.duplicate or copy.stored_id is not None,
            )
            for copy in copies
        ]
        for index, copies in plan.planned.items()
    }


@dataclass(frozen=True)
class _PlannedCopy:
    """One recipient's copy: a row stored before (`stored_id`) or one of this batch's rows."""

    address: str
    stored_id: int | None = None
    position: int = -1
    duplicate: bool = False
