"""`Idempotency-Key` for sends: a retried request gets the first result and sends nothing twice.

Modelled on the IETF HTTPAPI draft "The Idempotency-Key HTTP Header Field": the key is the
client's, scoped here to its mailbox; a reuse with another request is 422, a request while the
first with that key is still running is 409. The record is written in the send's own
transaction (see flows.py), so a key is taken exactly when the send commits: a send that
failed leaves the key free for the retry. Records live `TTL`; expired ones are ignored, and
swept from the mailbox at its next keyed send and by the periodic sweep (runtime.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from VEZEPyCore.errors import AppError, BadRequest, Conflict
from VEZEPyEmail.db.models import SendIdempotency
from VEZEPyEmail.services.compose.schemas import SendRead

HEADER = "Idempotency-Key"
#: How long a key holds (a day, as common payment APIs keep theirs).
TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class KeyReused(AppError):
    """The key was used for a different request (IETF idempotency-key draft: 422)."""

    status_code, code = 422, "idempotency_key_reused"


@dataclass(frozen=True)
class Claim:
    """A checked key and the fingerprint of the request it is for."""

    key: str
    request_hash: str


def claim_of(key: str | None, *, kind: str, request: object) -> Claim | None:
    """None without a key; 400 for a key that is not 1-255 visible ASCII characters."""
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all("!" <= ch <= "~" for ch in key):
        raise BadRequest(f"{HEADER} must be 1-{MAX_KEY_LENGTH} visible ASCII characters")
    fingerprint = orjson.dumps({"kind": kind, "request": request}, option=orjson.OPT_SORT_KEYS)
    return Claim(key, hashlib.sha256(fingerprint).hexdigest())


async def replay(
    connection: AsyncConnection | AsyncSession, *, mailbox_id: int, claim: Claim
) -> SendRead | None:
    """The first result for this key, if a send with it committed and has not expired."""
    row = (
        await connection.execute(
            select(SendIdempotency.request_hash, SendIdempotency.response).where(
                SendIdempotency.mailbox_id == mailbox_id,
                SendIdempotency.key == claim.key,
                SendIdempotency.expires_at > datetime.now(UTC),
            )
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != claim.request_hash:
        raise KeyReused(f"this {HEADER} was already used for a different request")
    return SendRead.model_validate_json(row.response)


async def take(session: AsyncSession, *, mailbox_id: int, claim: Claim) -> SendIdempotency:
    """Reserve the key in the send's transaction (its response is filled in by `record`).

    A concurrent send with the same key either waits for this one (PostgreSQL: the unique
    index; SQLite: one writer) and then fails on the constraint, which the caller turns into
    the first result, or gets here after it committed and finds the row in `replay`.
    """
    now = datetime.now(UTC)
    await session.execute(
        delete(SendIdempotency).where(
            SendIdempotency.mailbox_id == mailbox_id, SendIdempotency.expires_at <= now
        )
    )
    row = SendIdempotency(
        mailbox_id=mailbox_id,
        key=claim.key,
        request_hash=claim.request_hash,
        response="",
        created_at=now,
        expires_at=now + TTL,
    )
    async with session.begin_nested():
        session.add(row)
    return row


async def record(session: AsyncSession, row: SendIdempotency, result: SendRead) -> None:
    row.response = result.model_dump_json()
    await session.flush()


async def sweep(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Delete every expired record (the periodic sweep, for mailboxes that send no more)."""
    async with sessionmaker.begin() as session:
        result = await session.execute(
            delete(SendIdempotency).where(SendIdempotency.expires_at <= datetime.now(UTC))
        )
    return int(getattr(result, "rowcount", 0) or 0)


def in_progress() -> Conflict:
    return Conflict(f"a send with this {HEADER} is still in progress; retry shortly")
