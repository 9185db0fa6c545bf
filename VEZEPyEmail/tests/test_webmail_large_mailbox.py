"""A mailbox of 100,000 messages in the real browser: it opens, scrolls, reads and searches.

Timings are for `bench/bench_webmail_list.py`; this test holds the behaviour at that size
(keyset paging deep into the list, counts over the whole folder, search across it).
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Browser, expect
from sqlalchemy import insert, select

from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.webmail import listing
from VEZEPyEmail.tests.test_webmail_browser import (  # the browser and the running services
    World,
    provision,
    signed_in,
    world,
)

__all__ = ["world"]  # a fixture, imported for pytest to find

MESSAGES = 100_000
UNREAD_EVERY = 4  # every fourth message unread: 25,000
NEEDLE = 77_777  # the one message whose subject says "zebracorn"


async def seed(world: World, address: str) -> None:
    started = time.perf_counter()
    now = datetime.now(UTC)
    async with world.app.state.sessionmaker() as session:
        mailbox_id = await session.scalar(select(Mailbox.id).where(Mailbox.address == address))
        batch: list[dict[str, Any]] = []
        for n in range(MESSAGES):
            batch.append(
                {
                    "mailbox_id": mailbox_id,
                    "folder": "INBOX",
                    "subject": "The zebracorn report" if n == NEEDLE else f"Bulk message {n}",
                    "from_addr": f"Sender {n % 40} <s{n % 40}@example.org>",
                    "to_addrs": address,
                    "date": now - timedelta(minutes=1, seconds=n),
                    "received_at": now - timedelta(minutes=1, seconds=n),
                    "snippet": f"Body of bulk message {n}",
                    "body_text": f"Body of bulk message {n}",
                    "size": 1024,
                    "labels": [],
                    "seen": n % UNREAD_EVERY != 0,
                }
            )
            if len(batch) == 10_000:
                await session.execute(insert(Message), batch)
                batch = []
        if batch:
            await session.execute(insert(Message), batch)
        await session.commit()
    print(f"seeded {MESSAGES} messages in {time.perf_counter() - started:.1f} s")


async def test_a_mailbox_of_100k_messages_opens_scrolls_reads_and_searches(
    world: World, browser: Browser
) -> None:
    handle = "big" + secrets.token_hex(3)
    address = await provision(world.app, handle)
    await seed(world, address)
    context, page = await signed_in(browser, world, handle)

    rows = page.locator("#message-list .msg-row")
    await expect(rows).to_have_count(listing.PAGE_SIZE)
    # The welcome mail came with the mailbox, after the seeded ones' dates.
    await expect(rows.first).to_contain_text("Welcome to VEZE UniQVerse")
    await expect(rows.nth(1)).to_contain_text("Bulk message 0")
    # 25,000 seeded unread plus the welcome mail, counted over the whole folder.
    await expect(page.locator(".folder[data-folder='INBOX'] .count")).to_have_text(
        re.compile(r"25[,.\s]?001")
    )

    # Infinite scroll: three more pages, each the next slice of the keyset.
    for pages in range(2, 5):
        await page.locator("#message-list").evaluate("list => list.scrollTo(0, list.scrollHeight)")
        await expect(rows).to_have_count(listing.PAGE_SIZE * pages)
    last = listing.PAGE_SIZE * 4 - 1
    await expect(rows.nth(last)).to_contain_text(f"Bulk message {last - 1}")

    await rows.nth(last).locator(".msg-open").click()
    await expect(page.locator("#reader-subject")).to_have_text(f"Bulk message {last - 1}")

    # Search reaches a message deep in the folder.
    await page.fill("#search-input", "zebracorn")
    await page.press("#search-input", "Enter")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("The zebracorn report")
    await context.close()
