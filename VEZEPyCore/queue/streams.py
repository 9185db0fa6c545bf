"""Dispatch of queue jobs over Redis Streams with a consumer group (when Redis is configured).

The database row stays the record of each job; a stream entry only says "row N has work".
`<queue>` below is the queue's name and its database's (definition.stream_key), since a row id
means something in one database only:

- `<prefix>:<queue>`: the stream a producer XADDs a row id to after its transaction commits.
  Every process of the service reads it in the consumer group `workers` (XREADGROUP), so an
  entry goes to one consumer; the consumer claims the row's lease, runs the job, records the
  outcome and XACKs.
- `<prefix>:<queue>:delayed`: a sorted set of row ids to retry, scored by when; a consumer
  moves the due ones into the stream (one Lua script, so an id moves once).
- `<prefix>:<queue>:dead`: the dead-letter stream: an entry per job given up on, for
  operators and alerts (the row in its dead status is the record; `python -m VEZEPyCore.queue
  dead-letters` lists and replays).

A consumer that dies leaves its entries pending in the group; a live consumer takes them over
with XAUTOCLAIM once they have been idle for `claim_idle_seconds`. An entry Redis loses (a
restart without persistence) costs nothing but time: the database sweep finds the due row.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from VEZEPyCore.events.redis_client import fail_fast_client

GROUP = "workers"
#: Streams are trimmed to about this many entries (acknowledged ones are history only).
STREAM_MAXLEN = 100_000
DEAD_MAXLEN = 10_000

#: Move up to ARGV[2] ids due by ARGV[1] from the delayed set KEYS[1] into the stream KEYS[2].
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'id', member)
end
return #due
"""


def consumer_name() -> str:
    """Unique per process and start: a restarted process is a new consumer."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Entry:
    """One stream entry: its stream id and the row id it names (None if unreadable)."""

    entry_id: str
    row_id: int | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: Any) -> dict[str, str]:
    """An entry's fields as text (the client answers in bytes)."""
    return {_text(key): _text(value) for key, value in (raw or {}).items()}


def _row_id(fields: dict[str, str]) -> int | None:
    try:
        return int(fields["id"])
    except (KeyError, ValueError):
        return None


class StreamDispatch:
    """One queue's streams on one Redis client; `consumer` names this process in the group."""

    def __init__(
        self,
        redis: Redis,
        *,
        queue: str,
        prefix: str = "veze:queue",
        claim_idle_seconds: float = 60.0,
        consumer: str | None = None,
    ) -> None:
        self.redis = redis
        self.stream = f"{prefix}:{queue}"
        self.delayed = f"{self.stream}:delayed"
        self.dead = f"{self.stream}:dead"
        self.claim_idle_ms = max(int(claim_idle_seconds * 1000), 1)
        self.consumer = consumer or consumer_name()
        self._promote = redis.register_script(_PROMOTE)
        self._group_ready = False

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> StreamDispatch:
        # Fail fast when Redis is away (ADR 0018): the database sweep carries on meanwhile.
        return cls(fail_fast_client(url), **kwargs)

    async def close(self) -> None:
        await self.redis.aclose()

    # -- producing -------------------------------------------------------------------------

    async def publish(self, ids: Sequence[int]) -> None:
        """XADD one entry per row id (after the transaction that wrote the rows committed)."""
        if not ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for row_id in ids:
                pipe.xadd(self.stream, {"id": str(row_id)}, maxlen=STREAM_MAXLEN)
            await pipe.execute()

    async def retry_at(self, row_id: int, when: float) -> None:
        """Dispatch `row_id` again at the Unix time `when` (its back-off)."""
        await self.redis.zadd(self.delayed, {str(row_id): when})

    async def promote_due(self, *, limit: int = 100) -> int:
        """Move the retries that are due into the stream; how many moved."""
        moved = await self._promote(
            keys=[self.delayed, self.stream], args=[time.time(), limit, STREAM_MAXLEN]
        )
        return int(moved)

    async def dead_letter(self, row_id: int, *, error: str | None, attempts: int) -> None:
        """Record a job given up on in the dead-letter stream."""
        await self.redis.xadd(
            self.dead,
            {"id": str(row_id), "error": error or "", "attempts": str(attempts)},
            maxlen=DEAD_MAXLEN,
        )

    # -- consuming -------------------------------------------------------------------------

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists; from the start."""
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def forget_group(self) -> None:
        """After NOGROUP (Redis restarted empty): create the group again on the next read."""
        self._group_ready = False

    async def read(self, *, count: int, block_ms: int) -> list[Entry]:
        """New entries for this consumer (XREADGROUP), waiting up to `block_ms` for some."""
        await self.ensure_group()
        answer: Any = await self.redis.xreadgroup(
            GROUP, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        if isinstance(answer, dict):  # RESP3 answers with a map of stream -> entries
            answer = list(answer.items())
        entries: list[Entry] = []
        for _stream, items in answer or []:
            entries.extend(
                Entry(_text(entry_id), _row_id(_fields(fields))) for entry_id, fields in items
            )
        return entries

    async def autoclaim(self, *, count: int) -> list[Entry]:
        """Take over entries idle in other (dead) consumers for `claim_idle` (XAUTOCLAIM)."""
        await self.ensure_group()
        claimed: list[Entry] = []
        start = "0-0"
        while len(claimed) < count:
            answer: Any = await self.redis.xautoclaim(
                self.stream,
                GROUP,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=start,
                count=count - len(claimed),
            )
            start, items = answer[0], answer[1]
            claimed.extend(
                Entry(_text(entry_id), _row_id(_fields(fields)))
                for entry_id, fields in items
                if fields is not None
            )
            if _text(start) == "0-0":
                break
        return claimed

    async def ack(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            await self.redis.xack(self.stream, GROUP, *entry_ids)

    # -- inspection (operators, tests) -----------------------------------------------------

    async def pending_count(self) -> int:
        """Entries delivered to some consumer and not acknowledged yet."""
        try:
            summary: Any = await self.redis.xpending(self.stream, GROUP)
        except ResponseError:
            return 0  # no stream or group yet
        if not isinstance(summary, dict):
            return 0
        return int(summary.get("pending", summary.get(b"pending", 0)) or 0)

    async def dead_entries(self, *, count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """The newest dead-letter entries."""
        found: Any = await self.redis.xrevrange(self.dead, count=count)
        return [(_text(entry_id), _fields(fields)) for entry_id, fields in found or []]

    async def drop_dead(self, row_ids: Sequence[int]) -> int:
        """Remove the dead-letter entries of `row_ids` (they were replayed)."""
        wanted = {str(row_id) for row_id in row_ids}
        found: Any = await self.redis.xrange(self.dead)
        doomed = [
            _text(entry_id)
            for entry_id, fields in found or []
            if _fields(fields).get("id") in wanted
        ]
        if doomed:
            await self.redis.xdel(self.dead, *doomed)
        return len(doomed)
