"""Provisioning a handle: validate it, create its mailbox in Email, record the outcome.

The Email call happens between two short transactions instead of inside one: a database
transaction must not stay open across a network call (on SQLite it would block every other
writer for as long as Email takes), and a failed attempt has to be recorded even though the
request that made it fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.errors import UpstreamTimeout, UpstreamUnavailable
from VEZEPyCore.services.calls import call_service
from VEZEPyUniQVerse.db.models import Provisioning, ProvisioningStatus
from VEZEPyUniQVerse.services.accounts.handles import normalise_handle as normalise_handle
from VEZEPyUniQVerse.services.provisioning.schemas import ProvisioningRead

MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class MailboxOutcome:
    address: str
    created: bool


async def provision_mailbox(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    email: httpx.AsyncClient,
    token: str,
    handle: str,
    display_name: str,
    mail_domain: str,
    timeout_seconds: float,
) -> ProvisioningRead:
    """Create `<handle>@<mail_domain>` in Email. Idempotent: a second call reports created=False.

    Raises `UpstreamUnavailable` (502) or `UpstreamTimeout` (504) after recording the failure.
    """
    address = f"{handle}@{mail_domain}"
    async with sessionmaker.begin() as session:
        await _record_attempt(session, handle=handle, address=address)
    try:
        outcome = await create_mailbox(
            email,
            token=token,
            address=address,
            display_name=display_name,
            timeout_seconds=timeout_seconds,
        )
    except (UpstreamUnavailable, UpstreamTimeout) as exc:
        async with sessionmaker.begin() as session:
            await _record_outcome(session, handle=handle, status="failed", error=exc.detail)
        raise
    async with sessionmaker.begin() as session:
        await _record_outcome(session, handle=handle, status="done", error=None)
    return ProvisioningRead(
        handle=handle, address=outcome.address, status="done", created=outcome.created
    )


async def get_provisioning(session: AsyncSession, *, handle: str) -> Provisioning | None:
    return await session.scalar(select(Provisioning).where(Provisioning.handle == handle))


async def create_mailbox(
    email: httpx.AsyncClient,
    *,
    token: str,
    address: str,
    display_name: str,
    timeout_seconds: float,
) -> MailboxOutcome:
    """`POST /api/mailboxes` on Email: 201 created, 200 already there; anything else fails."""
    response = await call_service(
        email,
        "POST",
        "/api/mailboxes",
        service="mail",
        deadline_seconds=timeout_seconds,
        json={"address": address, "display_name": display_name},
        headers={"Authorization": f"Bearer {token}"},
    )
    # Any refusal here is the portal's own problem (its service token), not the caller's: 502.
    if response.status_code not in (200, 201):
        raise UpstreamUnavailable(
            f"the mail service refused the mailbox: HTTP {response.status_code} "
            f"{error_detail(response)}".rstrip()
        )
    try:
        body = response.json()
        created_address = str(body["address"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamUnavailable("the mail service sent an unreadable answer") from exc
    return MailboxOutcome(address=created_address, created=response.status_code == 201)


def error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    return f"({detail})"[:MAX_ERROR_LENGTH] if isinstance(detail, str) else ""


async def _record_attempt(session: AsyncSession, *, handle: str, address: str) -> None:
    now = datetime.now(UTC)
    if await get_provisioning(session, handle=handle) is None:
        try:
            async with session.begin_nested():
                session.add(
                    Provisioning(
                        handle=handle,
                        address=address,
                        status="pending",
                        attempts=1,
                        last_error=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
            return
        except IntegrityError:
            pass  # a concurrent first attempt inserted the row; count ours on it below
    # An SQL increment, not read-modify-write, so concurrent attempts are all counted.
    await session.execute(
        update(Provisioning)
        .where(Provisioning.handle == handle)
        .values(
            address=address,
            status="pending",
            attempts=Provisioning.attempts + 1,
            updated_at=now,
        )
    )


async def _record_outcome(
    session: AsyncSession, *, handle: str, status: ProvisioningStatus, error: str | None
) -> None:
    await session.execute(
        update(Provisioning)
        .where(Provisioning.handle == handle)
        .values(
            status=status,
            last_error=error[:MAX_ERROR_LENGTH] if error is not None else None,
            updated_at=datetime.now(UTC),
        )
    )
