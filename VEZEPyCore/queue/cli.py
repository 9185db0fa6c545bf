"""`python -m VEZEPyCore.queue`: inspect and replay the dead letters of the durable queues.

    python -m VEZEPyCore.queue queues
    python -m VEZEPyCore.queue dead-letters list email.outbound [--limit 50] [--json]
    python -m VEZEPyCore.queue dead-letters replay email.outbound --id 12 --id 13
    python -m VEZEPyCore.queue dead-letters replay email.outbound --all

The database row is the record, so the list comes from the service's database (its
`*_DB_URL`); with Redis configured, a replay also drops the rows' entries from the dead-letter
stream and dispatches them on the queue's stream at once. Without Redis the running workers
find the replayed rows on their next poll.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from VEZEPyCore.db.engine import make_engine, make_sessionmaker
from VEZEPyCore.queue.definition import CATALOG, QueueDefinition, load, stream_dispatch

#: Columns the list shows when the row has them (beside id, attempts and the error).
DETAIL_COLUMNS = ("handle", "target", "address", "recipients", "match_id", "domain")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m VEZEPyCore.queue", description="Durable queues: dead letters."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("queues", help="list the known queues")
    dead = commands.add_parser("dead-letters", help="inspect or replay given-up jobs")
    actions = dead.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the newest dead letters of a queue")
    listing.add_argument("queue", choices=sorted(CATALOG))
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = actions.add_parser("replay", help="put dead letters back in the queue")
    replay.add_argument("queue", choices=sorted(CATALOG))
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, action="append", dest="ids", help="a row id (repeat)")
    which.add_argument("--all", action="store_true", help="every dead letter of the queue")
    return parser


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _describe(row: Any) -> dict[str, Any]:
    mapping = row._mapping
    shown = {"id": mapping["id"], "attempts": mapping["attempts"]}
    for column in DETAIL_COLUMNS:
        if column in mapping:
            shown[column] = _plain(mapping[column])
    shown["updated_at"] = _plain(mapping["updated_at"])
    shown["last_error"] = mapping["last_error"]
    return shown


async def list_dead(definition: QueueDefinition, *, limit: int, as_json: bool, out: TextIO) -> int:
    settings = definition.settings()
    engine = make_engine(settings.db_url)
    try:
        rows = await definition.table.dead_letters(make_sessionmaker(engine), limit=limit)
    finally:
        await engine.dispose()
    dispatch = stream_dispatch(settings, definition.name)
    in_stream: int | None = None
    if dispatch is not None:
        try:
            in_stream = int(await dispatch.redis.xlen(dispatch.dead))
        finally:
            await dispatch.close()
    for row in rows:
        shown = _describe(row)
        if as_json:
            out.write(json.dumps(shown, default=str) + "\n")
        else:
            details = " ".join(
                f"{key}={value}"
                for key, value in shown.items()
                if key not in ("id", "last_error", "attempts", "updated_at")
            )
            out.write(
                f"#{shown['id']}  attempts={shown['attempts']}  {shown['updated_at']}  {details}\n"
                f"    {shown['last_error']}\n"
            )
    if not as_json:
        summary = f"{len(rows)} dead letter(s) in {definition.name}"
        if in_stream is not None:
            summary += f"; {in_stream} entr(y/ies) in the Redis dead-letter stream"
        out.write(summary + "\n")
    return 0


async def replay_dead(
    definition: QueueDefinition, *, ids: Sequence[int] | None, out: TextIO
) -> int:
    settings = definition.settings()
    engine = make_engine(settings.db_url)
    try:
        replayed = await definition.table.replay(
            make_sessionmaker(engine), ids=ids, now=datetime.now(UTC)
        )
    finally:
        await engine.dispose()
    dispatch = stream_dispatch(settings, definition.name)
    if dispatch is not None and replayed:
        try:
            await dispatch.drop_dead(replayed)
            await dispatch.publish(replayed)
        finally:
            await dispatch.close()
    missing = sorted(set(ids or ()) - set(replayed))
    out.write(f"replayed {len(replayed)} job(s) of {definition.name}: {replayed}\n")
    if missing:
        out.write(f"not dead letters (left alone): {missing}\n")
        return 1
    return 0


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    args = _parser().parse_args(argv)
    if args.command == "queues":
        for name in sorted(CATALOG):
            out.write(f"{name}\n")
        return 0
    definition = load(args.queue)
    if args.action == "list":
        return asyncio.run(list_dead(definition, limit=args.limit, as_json=args.json, out=out))
    return asyncio.run(replay_dead(definition, ids=None if args.all else args.ids, out=out))
