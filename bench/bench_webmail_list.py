"""How fast the webmail opens and scrolls a mailbox of 100,000 messages (embedded SQLite).

Seeds one mailbox with N messages in bulk SQL (with threads, flags and a few folders), then
times, in process, exactly what the webmail's page and partials do: the first page of the
list rendered to HTML, scrolling deep by cursor (infinite scroll), the folder counts of the
sidebar, a search with highlighting, and opening one row with its conversation. Prints the
median and worst time of each. Run:

    .venv/bin/python bench/bench_webmail_list.py --messages 100000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.db.engine import make_engine  # noqa: E402
from VEZEPyCore.db.migrations import upgrade_to_head  # noqa: E402
from VEZEPyCore.web.templates import service_templates  # noqa: E402
from VEZEPyEmail.app.main import MIGRATIONS, PACKAGE_DIR  # noqa: E402
from VEZEPyEmail.db.models import Mailbox, Message  # noqa: E402
from VEZEPyEmail.services.webmail import listing, sidebar, text  # noqa: E402

ADDRESS = "bench@vezeuniqverse.com"
FOLDERS = ("INBOX", "INBOX", "INBOX", "INBOX", "Archive", "Sent", "Projects")


async def seed(db_url: str, count: int) -> int:
    await upgrade_to_head(MIGRATIONS, db_url)
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        result = await connection.execute(
            insert(Mailbox).values(address=ADDRESS, display_name="Bench", created_at=now)
        )
        mailbox_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        batch: list[dict[str, Any]] = []
        for n in range(count):
            batch.append(
                {
                    "mailbox_id": mailbox_id,
                    "folder": FOLDERS[n % len(FOLDERS)],
                    "subject": f"Quarterly numbers {n}" if n % 97 == 0 else f"Message {n}",
                    "from_addr": f"Sender {n % 50} <sender{n % 50}@example.com>",
                    "to_addrs": ADDRESS,
                    "date": now - timedelta(seconds=n),
                    "received_at": now - timedelta(seconds=n),
                    "snippet": "Lorem ipsum dolor sit amet, consectetur adipiscing elit " * 2,
                    "body_text": "Lorem ipsum dolor sit amet",
                    "size": 2048,
                    "labels": [],
                    "seen": n % 3 != 0,
                    "flagged": n % 11 == 0,
                    "has_attachments": n % 7 == 0,
                    "thread_id": f"<thread{n // 4}@example.com>",
                    "message_id_header": f"<m{n}@example.com>",
                }
            )
            if len(batch) == 5000:
                await connection.execute(insert(Message), batch)
                batch = []
        if batch:
            await connection.execute(insert(Message), batch)
    await engine.dispose()
    return mailbox_id


async def timed(
    name: str, runs: int, work: Callable[[], Awaitable[object]], results: dict[str, list[float]]
) -> None:
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        results.setdefault(name, []).append((time.perf_counter() - started) * 1000)


async def measure(db_url: str, mailbox_id: int, runs: int) -> dict[str, list[float]]:
    engine = make_engine(db_url)
    templates = service_templates(PACKAGE_DIR / "ui" / "templates")
    template = templates.env.get_template("webmail/_list.html")
    results: dict[str, list[float]] = {}

    def render(page: listing.Page, terms: list[str]) -> str:
        return template.render(
            page=page,
            folder="INBOX",
            query="",
            terms=terms,
            url_for=lambda name, **_: f"/{name}",
            short_date=text.short_date,
            highlight=text.highlight,
        )

    async with engine.connect() as connection:

        async def first_page() -> None:
            page = await listing.list_rows(connection, mailbox_id=mailbox_id, folder="INBOX")
            render(page, [])

        async def deep_scroll(connection: AsyncConnection = connection) -> None:
            cursor = None
            for _ in range(20):  # 1,000 rows down, 50 at a time, as infinite scroll fetches
                page = await listing.list_rows(
                    connection, mailbox_id=mailbox_id, folder="INBOX", cursor=cursor
                )
                render(page, [])
                cursor = page.next_cursor

        async def folder_counts() -> None:
            await sidebar.sidebar_folders(connection, mailbox_id=mailbox_id)

        async def search() -> None:
            query = "in:all quarterly"
            page = await listing.list_rows(
                connection, mailbox_id=mailbox_id, folder="INBOX", query=query
            )
            render(page, text.search_terms(query))

        async def open_row() -> None:
            row = await listing.get_row(connection, mailbox_id=mailbox_id, message_id=4242)
            await listing.conversation(connection, mailbox_id=mailbox_id, row=row)

        await timed("list: first page (50 rows, rendered)", runs, first_page, results)
        await timed(
            "list: scroll 20 pages by cursor (total)", max(1, runs // 4), deep_scroll, results
        )
        await timed("sidebar: folders with unread counts", runs, folder_counts, results)
        await timed("search: in:all quarterly (rendered)", runs, search, results)
        await timed("open: row + conversation", runs, open_row, results)
    await engine.dispose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite+aiosqlite:///{tmp}/bench_email.db"
        started = time.perf_counter()
        mailbox_id = asyncio.run(seed(db_url, args.messages))
        print(f"seeded {args.messages:,} messages in {time.perf_counter() - started:.1f} s")
        results = asyncio.run(measure(db_url, mailbox_id, args.runs))
    for name, values in results.items():
        print(f"{name:45s} median {statistics.median(values):8.1f} ms   max {max(values):8.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
