"""The leaderboard's hot path: a Redis sorted set per board, fed from the SQL record.

Per board three keys: the sorted set (member = zero-padded player id, score = rating), a hash
of what a row shows (handle and counts, with the entry's game count as its version), and a
`ready` marker set once the set holds the whole board. Reads use the set only when `ready`
exists; otherwise the caller answers from SQL while the set is rebuilt.

Writes carry the SQL row's game count, and a Lua script applies one only when it is newer
than what Redis holds: copies that arrive out of order, or race a rebuild, never take an
entry back in time. Zero-padded members sort the same as the ids, and ZREVRANGE orders equal
scores by member descending: the SQL order (score, player id) descending, exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis_asyncio

from VEZEPyGame.services.leaderboards.standings import Board, Neighbourhood, Standing

DEFAULT_PREFIX = "game:lb"
MEMBER_WIDTH = 12

#: ARGV: (member, score, version, info JSON) repeated. Returns how many entries changed.
_PUSH = """
local changed = 0
for i = 1, #ARGV, 4 do
  local member, score, version, info = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local current = redis.call('HGET', KEYS[2], member)
  local stale = false
  if current then
    stale = tonumber(cjson.decode(current)['g']) >= version
  end
  if not stale then
    redis.call('ZADD', KEYS[1], score, member)
    redis.call('HSET', KEYS[2], member, info)
    changed = changed + 1
  end
end
return changed
"""

#: ARGV: "range", start, stop  |  "rank", member, span. Nil when the board is not ready; else
#: one JSON document (a single bulk reply parses far faster than hundreds of small ones):
#: {"rank": 0-based rank or -1, "start": 0-based position of the first row, "rows": [...]}.
_READ = """
if redis.call('EXISTS', KEYS[3]) == 0 then return false end
local start, stop, rank
if ARGV[1] == 'range' then
  start, stop, rank = tonumber(ARGV[2]), tonumber(ARGV[3]), -1
else
  rank = redis.call('ZREVRANK', KEYS[1], ARGV[2])
  if not rank then return cjson.encode({rank = -1, start = 0, rows = {}}) end
  local span = tonumber(ARGV[3])
  start = math.max(rank - span, 0)
  stop = rank + span
end
local members = redis.call('ZREVRANGE', KEYS[1], start, stop, 'WITHSCORES')
local rows = {}
if #members > 0 then
  local ids = {}
  for i = 1, #members, 2 do ids[#ids + 1] = members[i] end
  local infos = redis.call('HMGET', KEYS[2], unpack(ids))
  for i = 1, #ids do
    local info = infos[i] and cjson.decode(infos[i]) or {h = '', g = 0, w = 0, l = 0, d = 0}
    info['p'] = tonumber(ids[i])
    info['s'] = tonumber(members[2 * i])
    rows[i] = info
  end
end
return cjson.encode({rank = rank, start = start, rows = rows})
"""


def member(player_id: int) -> str:
    return f"{player_id:0{MEMBER_WIDTH}d}"


def _info(entry: Standing) -> str:
    return json.dumps(
        {
            "h": entry.handle,
            "g": entry.games,
            "w": entry.wins,
            "l": entry.losses,
            "d": entry.draws,
        },
        separators=(",", ":"),
    )


class RedisBoards:
    def __init__(self, client: redis_asyncio.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._push = client.register_script(_PUSH)
        self._read = client.register_script(_READ)

    def board_key(self, board: Board) -> str:
        return f"{self._prefix}:{board.season_id}.{board.started_us}:{board.mode}"

    def _keys(self, board: Board) -> tuple[str, str, str]:
        key = self.board_key(board)
        return key, f"{key}:info", f"{key}:ready"

    async def push(self, board: Board, entries: Sequence[Standing]) -> int:
        if not entries:
            return 0
        args: list[Any] = []
        for entry in entries:
            args.extend((member(entry.player_id), entry.score, entry.games, _info(entry)))
        zset, info, _ready = self._keys(board)
        return int(await self._push(keys=[zset, info], args=args))

    async def is_ready(self, board: Board) -> bool:
        return bool(await self._client.exists(self._keys(board)[2]))

    async def mark_ready(self, board: Board) -> None:
        await self._client.set(self._keys(board)[2], "1")

    async def try_lock_rebuild(self, board: Board, *, seconds: int) -> bool:
        return bool(
            await self._client.set(f"{self.board_key(board)}:rebuild", "1", nx=True, ex=seconds)
        )

    async def unlock_rebuild(self, board: Board) -> None:
        await self._client.delete(f"{self.board_key(board)}:rebuild")

    async def drop(self, board: Board) -> None:
        await self._client.delete(*self._keys(board))

    async def top(self, board: Board, *, limit: int, offset: int = 0) -> list[Standing] | None:
        """None when the board is not ready in Redis."""
        stop = offset + limit - 1
        reply = await self._read(keys=list(self._keys(board)), args=["range", offset, stop])
        if reply is None:
            return None
        return _standings(json.loads(reply))

    async def neighbourhood(
        self, board: Board, player_id: int, *, span: int
    ) -> Neighbourhood | bool | None:
        """The player's neighbourhood; None when the board is not ready, False when the player
        has no entry on it."""
        reply = await self._read(
            keys=list(self._keys(board)), args=["rank", member(player_id), span]
        )
        if reply is None:
            return None
        document = json.loads(reply)
        if int(document["rank"]) < 0:
            return False
        around = _standings(document)
        me = next(entry for entry in around if entry.player_id == player_id)
        return Neighbourhood(me, around)


def _standings(document: dict[str, Any]) -> list[Standing]:
    start = int(document["start"])
    rows = document["rows"] or []  # cjson encodes an empty table as {}
    return [
        Standing(
            rank=start + index + 1,
            player_id=int(row["p"]),
            handle=str(row["h"]),
            score=round(float(row["s"])),
            games=int(row["g"]),
            wins=int(row["w"]),
            losses=int(row["l"]),
            draws=int(row["d"]),
        )
        for index, row in enumerate(rows)
    ]
