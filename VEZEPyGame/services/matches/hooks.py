"""What other capabilities run when a match finishes.

The app keeps one `MatchHooks` on `app.state.match_hooks` (created in `create_app`); the match
service runs it on every finish (four in a row, draw, resignation, flag fall):

- `on_finished`: `async (session, match)`, inside the transaction that records the result,
  before the commit. An exception rolls the whole result back, so what a hook writes (ratings)
  happens exactly when the result is recorded, and only once.
- `after_finished`: `async (match)`, after the commit. Exceptions are logged and swallowed:
  the result stands whatever a follower (mail summaries) does.
- `after_started`: `async (match)`, after the commit that created a match (from the lobby or
  the matchmaker), logged and swallowed the same way (metrics).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyGame.db.matches import Match

log = logging.getLogger(__name__)

OnFinished = Callable[[AsyncSession, Match], Awaitable[None]]
AfterFinished = Callable[[Match], Awaitable[None]]
AfterStarted = Callable[[Match], Awaitable[None]]


@dataclass
class MatchHooks:
    on_finished: list[OnFinished] = field(default_factory=list)
    after_finished: list[AfterFinished] = field(default_factory=list)
    after_started: list[AfterStarted] = field(default_factory=list)

    async def run_on_finished(self, session: AsyncSession, match: Match) -> None:
        for hook in self.on_finished:
            await hook(session, match)

    async def run_after_finished(self, match: Match) -> None:
        await _run_followers("after_finished", self.after_finished, match)

    async def run_after_started(self, match: Match) -> None:
        await _run_followers("after_started", self.after_started, match)


async def _run_followers(kind: str, hooks: list[AfterFinished], match: Match) -> None:
    for hook in hooks:
        try:
            await hook(match)
        except Exception:
            log.exception("%s hook %r failed for match %s", kind, hook, match.id)
