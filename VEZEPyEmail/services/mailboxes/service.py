"""Mailbox provisioning: idempotent creation with a welcome message in the new INBOX."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyEmail.db.models import Folder, Mailbox, Message

WELCOME_SENDER = "VEZE UniQVerse <welcome@{domain}>"
WELCOME_SUBJECT = "Welcome to VEZE UniQVerse"
WELCOME_BODY = (
    "Hello {name},\n\n"
    "your mailbox {address} is ready. Mail sent to this address arrives here, and you can "
    "read it in webmail or over the JSON API with a token from the portal.\n\n"
    "One account also gives you the game: queue for a match of Connect Four and climb the "
    "leaderboard.\n\n"
    "- The VEZE UniQVerse team\n"
)


#: The RFC 6154 special-use folders every mailbox has (name, special-use attribute).
SPECIAL_FOLDERS = (
    ("INBOX", "inbox"),
    ("Sent", "sent"),
    ("Drafts", "drafts"),
    ("Junk", "junk"),
    ("Trash", "trash"),
    ("Archive", "archive"),
)


@dataclass(frozen=True)
class ProvisionResult:
    mailbox: Mailbox
    created: bool


async def get_mailbox(session: AsyncSession, *, address: str) -> Mailbox | None:
    result = await session.execute(select(Mailbox).where(Mailbox.address == address))
    return result.scalar_one_or_none()


async def ensure_mailbox(
    session: AsyncSession, *, address: str, display_name: str, domain: str
) -> ProvisionResult:
    existing = await get_mailbox(session, address=address)
    if existing is not None:
        return ProvisionResult(existing, created=False)
    now = datetime.now(UTC)
    mailbox = Mailbox(address=address, display_name=display_name, created_at=now)
    try:
        async with session.begin_nested():
            session.add(mailbox)
            await session.flush()
    except IntegrityError:
        # A concurrent provisioning call won the race: theirs is the mailbox.
        raced = await get_mailbox(session, address=address)
        assert raced is not None
        return ProvisionResult(raced, created=False)
    for name, special_use in SPECIAL_FOLDERS:
        session.add(
            Folder(mailbox_id=mailbox.id, name=name, special_use=special_use, created_at=now)
        )
    body = WELCOME_BODY.format(name=display_name or address.partition("@")[0], address=address)
    session.add(
        Message(
            mailbox_id=mailbox.id,
            folder="INBOX",
            message_id_header=f"<welcome.{mailbox.id}@{domain}>",
            subject=WELCOME_SUBJECT,
            from_addr=WELCOME_SENDER.format(domain=domain),
            to_addrs=address,
            date=now,
            received_at=now,
            snippet=" ".join(body.split())[:200],
            body_text=body,
            size=len(body.encode()),
            labels=[],
        )
    )
    await session.flush()
    return ProvisionResult(mailbox, created=True)
