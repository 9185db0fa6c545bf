"""Two writers creating the same missing folder at once: both succeed, one row exists.

Each writer is its own session (its own connection), as two SMTP listener processes are. The
first inserts and holds its transaction open; the second's create then has to wait for it
(PostgreSQL row lock on the unique key, SQLite's one writer). A select-then-insert failed the
second with a unique violation here, and the delivery answered 451.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyEmail.db.models import Folder, Mailbox, Message
from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.services.folders.service import ensure_folder
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


async def _mailbox_id(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        found = await session.scalar(select(Mailbox.id).where(Mailbox.address == ALICE))
    assert found is not None
    return int(found)


async def _folder_rows(sessionmaker: async_sessionmaker[AsyncSession], name: str) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Folder).where(Folder.name == name)
        )
    return int(count or 0)


async def test_two_concurrent_creators_of_one_folder_both_succeed(
    email_app: FastAPI, admin_headers: dict[str, str], running: Running
) -> None:
    async with running(email_app) as client:
        await provision(client, admin_headers, ALICE)
        sessionmaker: async_sessionmaker[AsyncSession] = email_app.state.sessionmaker
        mailbox_id = await _mailbox_id(sessionmaker)
        first_done = asyncio.Event()

        async with sessionmaker() as first, sessionmaker() as second:
            await begin_as_writer(first)
            await ensure_folder(first, mailbox_id=mailbox_id, name="Lists/python")

            async def second_writer() -> None:
                # Starts while the first holds its uncommitted row.
                await ensure_folder(second, mailbox_id=mailbox_id, name="Lists/python")
                assert first_done.is_set(), "the second create must wait for the first"
                await second.commit()

            racing = asyncio.create_task(second_writer())
            await asyncio.sleep(0)  # let the second writer reach the database
            for _ in range(20):  # give it every chance to run ahead of the first commit
                await asyncio.sleep(0.01)
            first_done.set()
            await first.commit()
            await asyncio.wait_for(racing, timeout=30)

        assert await _folder_rows(sessionmaker, "Lists/python") == 1


async def test_concurrent_fileinto_deliveries_to_a_new_folder_all_land(
    email_app: FastAPI, admin_headers: dict[str, str], running: Running, mint: Callable[..., str]
) -> None:
    async with running(email_app) as client:
        await provision(client, admin_headers, ALICE)
        response = await client.put(
            "/api/rules",
            json={"script": 'require "fileinto";\nfileinto "Projects/new";\n'},
            headers={"Authorization": f"Bearer {mint(ALICE)}"},
        )
        assert response.status_code == 200, response.text

        async def one(n: int) -> int:
            raw = f"From: s{n}@example.org\r\nMessage-ID: <race{n}@example.org>\r\n\r\nhi\r\n"
            delivered = await deliver_local(
                email_app.state, raw=raw.encode(), envelope_from="", recipients=[ALICE]
            )
            return len(delivered)

        # Separate connections each (truly concurrent on PostgreSQL): none may fail.
        assert await asyncio.gather(*(one(n) for n in range(6))) == [1] * 6
        sessionmaker: async_sessionmaker[AsyncSession] = email_app.state.sessionmaker
        async with sessionmaker() as session:
            filed = await session.scalar(
                select(func.count()).select_from(Message).where(Message.folder == "Projects/new")
            )
        assert filed == 6
        assert await _folder_rows(sessionmaker, "Projects/new") == 1


async def test_two_requests_creating_one_folder_get_201_and_409(
    email_app: FastAPI, admin_headers: dict[str, str], running: Running, mint: Callable[..., str]
) -> None:
    async with running(email_app) as client:
        await provision(client, admin_headers, ALICE)
        headers = {"Authorization": f"Bearer {mint(ALICE)}"}
        responses = await asyncio.gather(
            *(
                client.post("/api/folders", json={"name": "Taxes"}, headers=headers)
                for _ in range(4)
            )
        )
        assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
        assert await _folder_rows(email_app.state.sessionmaker, "Taxes") == 1
