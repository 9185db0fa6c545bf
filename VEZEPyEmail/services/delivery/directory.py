"""Which addresses have a mailbox here, remembered for a short while per process.

Every inbound message asks this twice (at RCPT, and again before its blob is written), and
under load those lookups were a third of the listener's database round trips. Mailboxes are
created by provisioning and never deleted, so an address once found stays valid; it is still
forgotten after `TTL_SECONDS` so a future removal takes effect without a restart. A miss is
never remembered: a mailbox provisioned a moment ago must receive mail at once.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyEmail.db.models import Mailbox

TTL_SECONDS = 30.0
#: Entries kept at most; past it the oldest half is dropped (the cache is only a shortcut).
MAX_ENTRIES = 50_000


class MailboxDirectory:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._found: dict[str, float] = {}  # address -> when it was last seen in the database

    async def known(self, addresses: Iterable[str]) -> set[str]:
        """The addresses among `addresses` (already normalised) that have a mailbox."""
        now = time.monotonic()
        wanted = set(addresses)
        found = {
            address
            for address in wanted
            if address in self._found and now - self._found[address] < TTL_SECONDS
        }
        missing = wanted - found
        if missing:
            async with self._sessionmaker() as session:
                rows = await session.scalars(
                    select(Mailbox.address).where(Mailbox.address.in_(sorted(missing)))
                )
                fresh = {str(address) for address in rows.all()}
            if len(self._found) + len(fresh) > MAX_ENTRIES:
                oldest = sorted(self._found, key=self._found.__getitem__)
                for address in oldest[: len(oldest) // 2]:
                    del self._found[address]
            for address in fresh:
                self._found[address] = now
            found |= fresh
        return found


_directories: weakref.WeakKeyDictionary[Any, MailboxDirectory] = weakref.WeakKeyDictionary()


def directory_of(sessionmaker: async_sessionmaker[AsyncSession]) -> MailboxDirectory:
    """The process's directory for this database (one per sessionmaker, so per app)."""
    directory = _directories.get(sessionmaker)
    if directory is None:
        directory = _directories[sessionmaker] = MailboxDirectory(sessionmaker)
    return directory
