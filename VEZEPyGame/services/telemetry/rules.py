"""Fair-play rules: what in a player's telemetry deserves a human look.

The rules only raise flags for admins; they never punish by themselves (a fast click can be
luck, a flaky connection looks like abandoning). Each finding has a `window_key`, so a rule
flags a player once per match or time window however many batches repeat the pattern.

- `flood`: more events per minute than any person produces, or batches refused by the rate
  limit.
- `impossible_timing`: a move decided faster than a person can (`think_ms` under the minimum),
  client timestamps that run backwards inside a batch, or lie in the future.
- `abandon_requeue`: many abandoned matches or queue exits within an hour.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from VEZEPyGame.services.telemetry.schemas import MoveEvent, TelemetryEventIn

FLOOD = "flood"
IMPOSSIBLE_TIMING = "impossible_timing"
ABANDON_REQUEUE = "abandon_requeue"
RULES = (FLOOD, IMPOSSIBLE_TIMING, ABANDON_REQUEUE)
#: Client clocks drift; further ahead of ours than this is not drift.
FUTURE_SKEW = timedelta(minutes=5)
ABANDON_TYPES = ("match_abandon", "queue_leave")
ABANDON_WINDOW = timedelta(hours=1)
FLOOD_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class Finding:
    rule: str
    window_key: str
    detail: str
    match_id: str | None = None


@dataclass(frozen=True)
class Thresholds:
    min_move_ms: int
    flood_events_per_minute: int
    abandon_threshold: int


def minute_key(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M")


def hour_key(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H")


def timing_findings(
    events: Sequence[TelemetryEventIn], *, now: datetime, min_move_ms: int
) -> list[Finding]:
    """What one batch shows by itself: too-fast moves and clocks that cannot be right."""
    findings: list[Finding] = []
    for event in events:
        if isinstance(event, MoveEvent) and event.think_ms < min_move_ms:
            findings.append(
                Finding(
                    IMPOSSIBLE_TIMING,
                    f"move:{event.match_id}",
                    f"a move in {event.think_ms} ms (column {event.column}); "
                    f"a person needs at least {min_move_ms} ms",
                    match_id=event.match_id,
                )
            )
    for earlier, later in itertools.pairwise(events):
        if later.ts < earlier.ts:
            findings.append(
                Finding(
                    IMPOSSIBLE_TIMING,
                    f"order:{minute_key(now)}",
                    f"client timestamps out of order: {later.type} at {later.ts.isoformat()} "
                    f"after {earlier.type} at {earlier.ts.isoformat()}",
                )
            )
            break
    future = [event for event in events if event.ts > now + FUTURE_SKEW]
    if future:
        findings.append(
            Finding(
                IMPOSSIBLE_TIMING,
                f"future:{minute_key(now)}",
                f"{len(future)} event(s) stamped in the future, up to "
                f"{max(event.ts for event in future).isoformat()}",
            )
        )
    return findings


def flood_finding(*, events_last_minute: int, now: datetime, limit: int) -> Finding | None:
    if events_last_minute <= limit:
        return None
    return Finding(
        FLOOD,
        minute_key(now),
        f"{events_last_minute} events in one minute (limit {limit})",
    )


def refused_batch_finding(*, now: datetime, batches_per_minute: int) -> Finding:
    return Finding(
        FLOOD,
        minute_key(now),
        f"telemetry batches beyond the rate limit of {batches_per_minute} per minute",
    )


def abandon_finding(*, abandons_last_hour: int, now: datetime, threshold: int) -> Finding | None:
    if abandons_last_hour < threshold:
        return None
    return Finding(
        ABANDON_REQUEUE,
        hour_key(now),
        f"{abandons_last_hour} abandoned matches or queue exits within an hour "
        f"(threshold {threshold})",
    )
