"""Turns at the SQLite write lock across listener processes (services/delivery/writer_turn)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from VEZEPyEmail.services.delivery.writer_turn import WriterTurn, lock_path_for


def test_only_an_sqlite_file_gets_a_lock_file(tmp_path: Path) -> None:
    assert lock_path_for(f"sqlite+aiosqlite:///{tmp_path}/email.db") == Path(
        f"{tmp_path}/email.db.group-commit.lock"
    )
    assert lock_path_for("sqlite+aiosqlite:///:memory:") is None
    assert lock_path_for("postgresql+asyncpg://veze:veze@127.0.0.1/veze_email") is None


async def test_turns_exclude_each_other_and_the_next_goes_on_release(tmp_path: Path) -> None:
    # Two WriterTurns open the file separately, as two processes do: flock excludes them.
    path = tmp_path / "email.db.group-commit.lock"
    first, second = WriterTurn(path), WriterTurn(path)
    entered = asyncio.Event()

    async def take_second() -> None:
        async with second():
            entered.set()

    try:
        async with first():
            waiting = asyncio.create_task(take_second())
            # Still waiting while the first holds it (bounded: the wait ends on its own).
            done, _ = await asyncio.wait({waiting}, timeout=0.3)
            assert not done and not entered.is_set()
        await asyncio.wait_for(waiting, timeout=10)
        assert entered.is_set()
    finally:
        first.close()
        second.close()


async def test_a_cancelled_wait_does_not_keep_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "email.db.group-commit.lock"
    first, second, third = WriterTurn(path), WriterTurn(path), WriterTurn(path)

    async def take(turn: WriterTurn) -> None:
        async with turn():
            pass

    try:
        async with first():
            cancelled = asyncio.create_task(take(second))
            await asyncio.wait({cancelled}, timeout=0.2)
            cancelled.cancel()
            await asyncio.gather(cancelled, return_exceptions=True)
        # The cancelled waiter's thread got the lock after the release and gave it back.
        await asyncio.wait_for(take(third), timeout=10)
    finally:
        for turn in (first, second, third):
            turn.close()


async def test_postgresql_turns_do_not_lock() -> None:
    turn = WriterTurn(None)
    async with turn(), turn():  # nested: nothing is taken
        pass
