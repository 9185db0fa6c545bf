"""A match result and its summary mails commit together (ADR 0017, closing ADR 0011's gap).

The summaries are written by the `on_finished` hook inside the result's transaction. So a
crash right after the commit (before any `after_finished` follower runs) keeps them, and the
worker's sweep finds them; a crash before the commit loses the result and the summaries both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from VEZEPyGame.app.main import create_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.db.matches import Match
from VEZEPyGame.db.models import Player
from VEZEPyGame.db.notifications import SummaryMail
from VEZEPyGame.services.matches.service import create_match, resign
from VEZEPyGame.tests.conftest import Running
from VEZEPyGame.tests.store_helpers import Minter, create_players, player_token

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def game(
    game_settings: GameSettings, running: Running, mint: Minter
) -> AsyncIterator[tuple[FastAPI, str]]:
    # The worker is off: the test looks at the outbox as a worker's sweep would find it.
    app = create_app(game_settings.model_copy(update={"summary_mail_worker": False}))
    async with running(app) as client:
        await create_players(client, mint, "alice", "bob")
        opted = await client.put(
            "/api/players/me/notifications",
            json={"match_summary_mail": True},
            headers=player_token(mint, "alice"),
        )
        assert opted.status_code == 200, opted.text
        async with app.state.sessionmaker() as session:
            ids = {p.handle: p.id for p in await session.scalars(select(Player))}
            match = await create_match(
                session, mode="casual", first_player_id=ids["alice"], second_player_id=ids["bob"]
            )
            await session.commit()
        yield app, match.id


async def resign_bob(app: FastAPI, match_id: str, *, commit: bool) -> None:
    """Bob resigns through the match service, with every `on_finished` hook, and then the
    process either commits and dies before any follower runs, or dies before the commit."""
    async with app.state.sessionmaker() as session:
        match = await session.get(Match, match_id)
        assert match is not None
        bob = await session.scalar(select(Player.id).where(Player.handle == "bob"))
        assert bob is not None
        await resign(session, hooks=app.state.match_hooks, match=match, player_id=bob)
        if commit:
            await session.commit()
        else:
            await session.rollback()


async def outbox(app: FastAPI) -> list[SummaryMail]:
    async with app.state.sessionmaker() as session:
        return list(await session.scalars(select(SummaryMail)))


async def test_a_crash_after_the_result_commits_keeps_its_summary(
    game: tuple[FastAPI, str],
) -> None:
    app, match_id = game
    await resign_bob(app, match_id, commit=True)  # no after_finished follower ever runs

    (row,) = await outbox(app)
    async with app.state.sessionmaker() as session:
        match = await session.get(Match, match_id)
    assert match is not None and match.status == "finished" and match.end_reason == "resign"
    assert (row.match_id, row.address, row.status) == (
        match_id,
        "alice@vezeuniqverse.com",
        "pending",
    )
    assert row.subject.startswith("You won against")
    # The worker's sweep claims it, though nobody dispatched it after the commit.
    claimed = await app.state.summary_mail_worker.claim_due()
    assert [job.id for job in claimed] == [row.id]


async def test_a_crash_before_the_commit_loses_neither_alone(game: tuple[FastAPI, str]) -> None:
    app, match_id = game
    await resign_bob(app, match_id, commit=False)

    async with app.state.sessionmaker() as session:
        match = await session.get(Match, match_id)
    assert match is not None and match.status == "active"  # no result ...
    assert await outbox(app) == []  # ... and no summary of it
