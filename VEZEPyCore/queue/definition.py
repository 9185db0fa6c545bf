"""A named queue as operators and services see it: its table and where its settings come from.

Each service declares its queues as a `QueueDefinition` beside the code that fills them; the
dead-letter command finds them by name through `CATALOG` (import strings, so VEZEPyCore still
imports no service).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy.engine import make_url

from VEZEPyCore.queue.streams import StreamDispatch
from VEZEPyCore.queue.table import QueueTable

#: Queue name -> "module:attribute" of its QueueDefinition.
CATALOG = {
    "portal.provisioning": "VEZEPyUniQVerse.services.provisioning.queue:QUEUE",
    "email.outbound": "VEZEPyEmail.services.outbound.queue:QUEUE",
    "game.summary-mail": "VEZEPyGame.services.notifications.outbox:QUEUE",
}


@dataclass(frozen=True)
class QueueDefinition:
    table: QueueTable
    #: The owning service's settings class (read from the environment): its `db_url`,
    #: `redis_url` and queue settings.
    settings: Callable[[], Any]

    @property
    def name(self) -> str:
        return self.table.name


def load(name: str) -> QueueDefinition:
    """The definition of the queue called `name` (see CATALOG)."""
    try:
        target = CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise LookupError(f"no queue called {name!r} (known: {known})") from None
    module, _, attribute = target.partition(":")
    definition = getattr(importlib.import_module(module), attribute)
    if not isinstance(definition, QueueDefinition):
        raise TypeError(f"{target} is not a QueueDefinition")
    return definition


def database_tag(db_url: str) -> str:
    """The database's name (a SQLite file's name): part of the stream keys, because an entry
    names a row id, which means something only in one database. Replicas on one database share
    the streams; two installations (or test runs) on one Redis do not mix."""
    database = make_url(db_url).database or "default"
    return PurePosixPath(database).name or "default"


def stream_key(queue: str, db_url: str) -> str:
    """The name of `queue`'s streams on the database at `db_url` (below the prefix)."""
    return f"{queue}:{database_tag(db_url)}"


def stream_dispatch(settings: Any, queue: str) -> StreamDispatch | None:
    """The Redis Streams dispatch of `queue`, or None when Redis is not configured (or the
    streams are switched off): then the database loop alone dispatches. `settings` is the
    service's (its `db_url`, `redis_url` and the `queue_*` settings of CoreSettings)."""
    if not settings.redis_url or not settings.queue_streams:
        return None
    return StreamDispatch.from_url(
        settings.redis_url,
        queue=stream_key(queue, settings.db_url),
        prefix=settings.queue_stream_prefix,
        claim_idle_seconds=settings.queue_claim_idle_seconds,
    )
