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


#: Queries the lane must answer as the declared route does: plain pages it takes itself, and
#: every bound, spelling and refusal it must leave to the route (ADR 0021).
LANE_QUERIES: list[str] = [
    f"user={ALICE}",
    f"user={ALICE}&limit=3",
    f"user={ALICE}&limit=200&offset=2",
    f"user={ALICE.upper()}&folder=INBOX",
    f"user={ALICE}&folder=Archive",
    f"user={ALICE}&limit=201",
    f"user={ALICE}&limit=0",
    f"user={ALICE}&limit=050",
    f"user={ALICE}&limit=%2B5",
    f"user={ALICE}&limit=",
    f"user={ALICE}&limit=%D9%A3",  # an Arabic-Indic three: a digit, but not one the route reads
    f"user={ALICE}&offset=-1",
    f"user={ALICE}&offset=1000001",
    f"user={ALICE}&folder=",
    f"user={ALICE}&folder=*",
    f"user={ALICE}&folder={'x' * 129}",
    f"user={ALICE}&cursor=not-a-cursor",
    f"user={ALICE}&cursor={'c' * 201}",
    f"user={ALICE}&q=subject",
    f"user={ALICE}&user={BOB}",
    f"user={ALICE}&unknown=1",
    f"user={BOB}",
    "user=ab",
    "user=alice@example.com",
    "limit=3",
    "",
]


async def test_the_fast_lane_answers_exactly_as_the_declared_route(
    sqlite_app: FastAPI,
    running: Running,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from VEZEPyEmail.app.routers import messages as router

    lane = router._fast_lane
    answered: list[str] = []

    async def watched_lane(request: Any) -> Any:
        answer = await lane(request)
        if answer is not None:
            answered.append(request.url.query)
        return answer

    async def no_lane(request: Any) -> None:
        return None

    callers = {
        "alice": {"Authorization": f"Bearer {mint(ALICE)}"},
        "admin": admin_headers,
        "no scope": {"Authorization": f"Bearer {mint(ALICE, scopes=('email.send',))}"},
        "expired": {"Authorization": f"Bearer {mint(ALICE, ttl_seconds=-120)}"},
        "other audience": {"Authorization": f"Bearer {mint(ALICE, audience='veze-game')}"},
        "not bearer": {"Authorization": f"Basic {mint(ALICE)}"},
        "none": {},
    }
    async with running(sqlite_app) as client:
        await provision(client, admin_headers, ALICE)
        await provision(client, admin_headers, BOB)
        await _seed(sqlite_app, ALICE)
        first = await client.get(
            "/api/messages", params={"user": ALICE, "limit": 2}, headers=callers["alice"]
        )
        queries = [*LANE_QUERIES, f"user={ALICE}&limit=2&cursor={first.json()['next_cursor']}"]
        for who, headers in callers.items():
            for query in queries:
                url = f"/api/messages?{query}"
                monkeypatch.setattr(router, "_fast_lane", watched_lane)
                with_lane = await client.get(url, headers=headers)
                monkeypatch.setattr(router, "_fast_lane", no_lane)
                declared = await client.get(url, headers=headers)
                assert with_lane.status_code == declared.status_code, (who, query)
                assert with_lane.json() == declared.json(), (who, query)
                assert with_lane.headers["content-type"] == declared.headers["content-type"]
                assert with_lane.headers.get("www-authenticate") == declared.headers.get(
                    "www-authenticate"
                )
    # The lane really took the plain pages (and only answers it may give).
    assert f"user={ALICE}&limit=3" in answered
    assert f"user={ALICE.upper()}&folder=INBOX" in answered
    assert any("cursor=" in query for query in answered)
    assert all("q=" not in query and "unknown" not in query for query in answered)
