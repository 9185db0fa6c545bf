"""The clock sweeper: ends matches whose side to move ran out of time, nobody watching.

Flag fall is detected three ways, so it never waits on the loser: lazily whenever a match is
read or moved in, by each open event stream at the deadline it knows, and by this sweeper
every `GAME_CLOCK_SWEEP_SECONDS` in every process (an indexed query on `deadline_at`). Several
processes may find the same match; the version guard lets exactly one of them finish it.
The sweeper also makes bot replies, and bot answers to draw offers, that a restart lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from fastapi import FastAPI

from VEZEPyCore.tasks import cancel_and_wait
from VEZEPyGame.services.matches import draws, flows, service
from VEZEPyGame.services.matches.clock import TimeControl
from VEZEPyGame.services.matches.flows import MatchRuntime
from VEZEPyGame.services.matches.hooks import MatchHooks

log = logging.getLogger(__name__)
#: A bot reply still missing this long after the player's move was lost, not slow.
STALLED_BOT_SECONDS = 10


async def sweep_once(runtime: MatchRuntime, *, now: datetime | None = None) -> int:
    """One pass; returns how many matches it ended on time."""
    now = now or service.utcnow()
    async with runtime.sessionmaker() as session:
        overdue = await service.overdue_match_ids(session, now=now)
        before = now - timedelta(seconds=STALLED_BOT_SECONDS)
        stalled = await service.stalled_bot_match_ids(session, before=before)
        unanswered = await draws.unanswered_bot_offer_ids(session, before=before)
    ended = 0
    for match_id in overdue:
        ended += await flows.finish_if_overdue(runtime, match_id)
    for match_id in stalled:
        await flows.bot_reply(runtime, match_id=match_id)
    for match_id in unanswered:
        await flows.bot_answer_draw(runtime, match_id=match_id)
    return ended


async def run_sweeper(runtime: MatchRuntime, interval_seconds: float) -> None:
    while True:
        try:
            await sweep_once(runtime)
        except Exception:
            log.exception("match clock sweep failed; retrying")
        await asyncio.sleep(interval_seconds)


@asynccontextmanager
async def start_matches(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan part: the match runtime on `app.state`, the time control, the sweeper."""
    settings = app.state.settings
    hooks: MatchHooks = app.state.match_hooks
    # Sessions carry the configured time control, so matches created by any caller use it.
    info = dict(app.state.sessionmaker.kw.get("info") or {})
    info[service.TIME_CONTROL_INFO_KEY] = TimeControl(
        initial_ms=settings.match_clock_seconds * 1000,
        increment_ms=settings.match_increment_seconds * 1000,
    )
    app.state.sessionmaker.configure(info=info)
    runtime = MatchRuntime(
        sessionmaker=app.state.sessionmaker,
        bus=app.state.bus,
        hooks=hooks,
        bot_think_seconds=settings.bot_think_seconds,
        bot_reply_delay_ms=settings.bot_reply_delay_ms,
    )
    app.state.match_runtime = runtime
    sweeper = asyncio.create_task(run_sweeper(runtime, settings.match_sweep_seconds))
    try:
        yield
    finally:
        await cancel_and_wait(sweeper)
