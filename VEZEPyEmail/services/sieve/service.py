"""The rules a user manages over HTTP: read, replace (validated), remove, dry-run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from VEZEPyCore.errors import AppError, NotFound
from VEZEPyEmail.db.sieve import SieveScript
from VEZEPyEmail.services.sieve import vacation
from VEZEPyEmail.services.sieve.compiler import SieveError, compile_script
from VEZEPyEmail.services.sieve.evaluate import MessageView, evaluate
from VEZEPyEmail.services.sieve.matching import BudgetExceeded
from VEZEPyEmail.services.sieve.nodes import Program
from VEZEPyEmail.services.sieve.schemas import RuleRead, RuleTestRead


class InvalidScript(AppError):
    """422: the script is not valid Sieve or uses something this server does not run."""

    status_code, code = 422, "invalid_script"


def checked(script: str) -> Program:
    try:
        return compile_script(script)
    except SieveError as error:
        raise InvalidScript(str(error)) from error


async def read_rules(connection: AsyncConnection, *, mailbox_id: int, address: str) -> RuleRead:
    row = (
        (
            await connection.execute(
                select(
                    SieveScript.script,
                    SieveScript.updated_at,
                    SieveScript.last_error,
                    SieveScript.last_error_at,
                ).where(SieveScript.mailbox_id == mailbox_id)
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        return RuleRead(
            user=address,
            active=False,
            script="",
            updated_at=None,
            last_error=None,
            last_error_at=None,
        )
    return RuleRead(user=address, active=True, **row)


async def replace_rules(
    session: AsyncSession, *, mailbox_id: int, address: str, script: str
) -> RuleRead:
    """Validate and store `script` as the active one (422 with the reason when invalid)."""
    await asyncio.to_thread(checked, script)  # a 64 KB script parses for a while
    now = datetime.now(UTC)
    row = await session.scalar(select(SieveScript).where(SieveScript.mailbox_id == mailbox_id))
    if row is None:
        row = SieveScript(mailbox_id=mailbox_id, script=script, created_at=now, updated_at=now)
        session.add(row)
    else:
        row.script = script
        row.updated_at = now
        row.last_error = None  # the errors were about the old script
        row.last_error_at = None
    await session.flush()
    return RuleRead(
        user=address,
        active=True,
        script=script,
        updated_at=now,
        last_error=None,
        last_error_at=None,
    )


async def remove_rules(session: AsyncSession, *, mailbox_id: int) -> None:
    result = await session.execute(delete(SieveScript).where(SieveScript.mailbox_id == mailbox_id))
    if not getattr(result, "rowcount", 0):
        raise NotFound("this mailbox has no rules")


async def active_script(connection: AsyncConnection, *, mailbox_id: int) -> str:
    script = await connection.scalar(
        select(SieveScript.script).where(SieveScript.mailbox_id == mailbox_id)
    )
    if script is None:
        raise NotFound("this mailbox has no rules; pass a script to try")
    return str(script)


async def dry_run(
    script: str, raw: bytes, *, folder: str, user: str, envelope_from: str
) -> RuleTestRead:
    """Evaluate `script` against `raw` as if it were being delivered to `folder` for `user`."""
    program = await asyncio.to_thread(checked, script)
    view = MessageView.from_bytes(raw)
    try:
        outcome = evaluate(program, view, default_folder=folder)
    except BudgetExceeded as error:
        raise InvalidScript(str(error)) from error
    notes = list(outcome.notes)
    if outcome.vacation is not None:
        # The same checks delivery makes (not the once-per-:days record, which it would update).
        why = vacation.refusal(
            view,
            sender=envelope_from.strip().strip("<>").lower(),
            user=user,
            action=outcome.vacation,
            junk=folder == "Junk",
        )
        if why is not None:
            notes.append(f"vacation: no reply ({why})")
    return RuleTestRead(
        folders=outcome.folders,
        flags=[flag for flag in outcome.flags if flag.startswith("\\")],
        labels=outcome.labels,
        discarded=outcome.discarded,
        redirects=outcome.redirects,
        vacation=outcome.vacation is not None,
        notes=notes,
    )
