"""Set-based filing of a group commit's plain deliveries: a few statements per batch.

Filing one delivery at a time costs about a dozen statements (mailboxes, the duplicate
guard, the Sieve script, the folder, the insert, each savepoint), and the group committer
runs them one after another, so under load the SMTP listener waited on its own committer.
A *plain* delivery needs none of that per message: none of its recipients has rules for
the folder it goes to, and it names no parent message (In-Reply-To, References), so its
thread is its own Message-ID and nothing else moves. Plain deliveries of a batch are filed
together: mailboxes, scripts, duplicates and folders are looked up once, and every row goes
in with one multi-row INSERT .. RETURNING. Anything else, and a batch whose statements fail
(a concurrent duplicate on PostgreSQL, say), is left to the per-delivery path
(`local.file_delivery`), which keeps each delivery's own savepoint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyEmail.db.models import Mailbox, Message
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


def _names_a_parent(prepared: PreparedDelivery) -> bool:
    return prepared.summary.in_reply_to is not None or bool(prepared.summary.references_header)


async def file_plain_deliveries(
    session: AsyncSession, batch: Sequence[PreparedDelivery]
) -> BatchFiling:
    """File the batch's plain deliveries in the caller's writer transaction.

    On any failure nothing of this step stays (its savepoint is rolled back) and every
    delivery is returned in `remaining`.
    """
    candidates = [index for index, prepared in enumerate(batch) if not _names_a_parent(prepared)]
    if not candidates:
        return BatchFiling(remaining=list(range(len(batch))))
    try:
        async with session.begin_nested():
            filed = await _file(session, batch, candidates)
    except Exception:
        log.info("batch filing failed; filing its deliveries one by one", exc_info=True)
        return BatchFiling(remaining=list(range(len(batch))))
    remaining = [index for index in range(len(batch)) if index not in filed]
    return BatchFiling(filed=filed, remaining=remaining)


async def _file(
    session: AsyncSession, batch: Sequence[PreparedDelivery], candidates: list[int]
) -> dict[int, list[DeliveredMessage]]:
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
    if not chosen:
        return {}
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
    values: list[dict[str, object]] = []
    planned: dict[int, list[_PlannedCopy]] = {}
    positions: dict[tuple[int, str], int] = {}  # Message-ID key -> its new row in `values`
    folders: set[tuple[int, str]] = set()
    for index in chosen:
        prepared = batch[index]
        message_id = prepared.summary.message_id_header
        copies = planned.setdefault(index, [])
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
                    positions[key] = len(values)
                copies.append(_PlannedCopy(address, position=len(values)))
                folders.add((mailbox_id, prepared.folder))
                values.append(
                    message_values(
                        prepared,
                        mailbox_id=mailbox_id,
                        copy=Copy(prepared.folder, seen=prepared.seen),
                        message_id_header=message_id,
                        thread_id=prepared.summary.thread_id,
                    )
                )
    for mailbox_id, folder in sorted(folders):
        await ensure_folder(session, mailbox_id=mailbox_id, name=folder)
    ids: list[int] = []
    if values:
        # A Core insert of the table: the ORM's bulk path adds per-row bookkeeping for nothing.
        table = cast(Table, Message.__table__)
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = [int(row_id) for row_id in (await session.scalars(statement, values)).all()]
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
        for index, copies in planned.items()
    }


@dataclass(frozen=True)
class _PlannedCopy:
    """One recipient's copy: a row stored before (`stored_id`) or one of this batch's rows."""

    address: str
    stored_id: int | None = None
    position: int = -1
    duplicate: bool = False
