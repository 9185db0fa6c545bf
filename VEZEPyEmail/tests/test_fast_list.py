"""The inline SQLite list (services/messages/fast_list.py) answers exactly as the general path."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.messages import service
from VEZEPyEmail.services.messages.schemas import MessagePage
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"
Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def sqlite_app(email_settings: EmailSettings, tmp_path: Path) -> FastAPI:
    # Always SQLite, also in CI's PostgreSQL pass: the inline reader exists only there.
    settings = email_settings.model_copy(
        update={"db_url": f"sqlite+aiosqlite:///{tmp_path / 'fast.db'}"}
    )
    return create_app(settings)


async def _seed(app: FastAPI, address: str) -> None:
    async with app.state.sessionmaker() as session:
        mailbox_id = (
            await session.execute(Mailbox.__table__.select().where(Mailbox.address == address))
        ).first()[0]
        base = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
        rows: list[dict[str, Any]] = [
            {
                "mailbox_id": mailbox_id,
                "folder": "INBOX",
                "subject": f"Subject {n} <é>",
                "from_addr": f"Sender {n} <s{n}@example.com>",
                "to_addrs": address,
                "date": base - timedelta(days=n, microseconds=n * 7),
                # Pairs of equal instants: the cursor must break ties by id.
                "received_at": base - timedelta(minutes=n // 2),
                "snippet": f"snippet {n}",
                "body_text": "",
                "size": 100 + n,
                "spam_score": n / 4,
                "seen": n % 2 == 0,
                "flagged": n % 3 == 0,
                "answered": n % 4 == 0,
                "draft": n == 5,
                "labels": ["work", f"tag{n}"] if n % 2 else [],
                "thread_id": f"<t{n % 3}@example.com>" if n % 3 else None,
            }
            for n in range(9)
        ]
        await session.execute(insert(Message), rows)
        await session.commit()


async def _general_page(app: FastAPI, **kwargs: Any) -> dict[str, Any]:
    async with app.state.engine.connect() as connection:
        messages, next_cursor = await service.list_page(connection, address=ALICE, **kwargs)
    page = MessagePage(user=ALICE, messages=messages, next_cursor=next_cursor)
    return page.model_dump(mode="json", exclude_none=True)


async def test_inline_pages_equal_the_general_path_page_by_page(
    sqlite_app: FastAPI, running: Running, admin_headers: dict[str, str], mint: Callable[..., str]
) -> None:
    async with running(sqlite_app) as client:
        assert sqlite_app.state.fast_message_list is not None
        await provision(client, admin_headers, ALICE)
        await _seed(sqlite_app, ALICE)
        headers = {"Authorization": f"Bearer {mint(ALICE)}"}

        cursor: str | None = None
        seen_ids: list[int] = []
        for _page in range(5):
            params: dict[str, Any] = {"user": ALICE, "limit": 3}
            if cursor:
                params["cursor"] = cursor
            response = await client.get("/api/messages", params=params, headers=headers)
            assert response.status_code == 200, response.text
            expected = await _general_page(sqlite_app, folder="INBOX", limit=3, cursor=cursor)
            assert response.json() == expected
            seen_ids += [message["id"] for message in expected["messages"]]
            cursor = expected.get("next_cursor")
            if cursor is None:
                break
        assert len(seen_ids) == 10 == len(set(seen_ids))  # nine seeded plus the welcome mail

        offset = await client.get(
            "/api/messages", params={"user": ALICE, "limit": 4, "offset": 2}, headers=headers
        )
        assert offset.json() == await _general_page(sqlite_app, folder="INBOX", limit=4, offset=2)
        drafts = await client.get(
            "/api/messages", params={"user": ALICE, "folder": "Archive"}, headers=headers
        )
        assert drafts.json() == {"user": ALICE, "messages": []}


async def test_inline_path_keeps_the_errors_and_the_owner_check(
    sqlite_app: FastAPI, running: Running, admin_headers: dict[str, str], mint: Callable[..., str]
) -> None:
    async with running(sqlite_app) as client:
        await provision(client, admin_headers, ALICE)
        alice = {"Authorization": f"Bearer {mint(ALICE)}"}
        first = await client.get("/api/messages", params={"user": ALICE, "limit": 1}, headers=alice)
        cursor = first.json()["messages"] and first.json().get("next_cursor")

        both = await client.get(
            "/api/messages",
            params={"user": ALICE, "offset": 1, "cursor": cursor or "x"},
            headers=alice,
        )
        bad_cursor = await client.get(
            "/api/messages", params={"user": ALICE, "cursor": "not-a-cursor"}, headers=alice
        )
        bob = {"Authorization": f"Bearer {mint(BOB)}"}
        other = await client.get("/api/messages", params={"user": ALICE}, headers=bob)
        missing = await client.get("/api/messages", params={"user": BOB}, headers=bob)
    assert both.status_code == 400
    assert bad_cursor.status_code == 400
    assert other.status_code == 403
    assert missing.status_code == 404
