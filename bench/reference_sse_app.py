"""The reference for bench_sse_fanout.py: a bare sse-starlette broadcast app.

One `GET /events` stream per client, fed by its own asyncio queue; `POST /publish` puts one
event (stamped with the publish time) into every queue. No authentication, no per-user
channels, no metrics or middleware: the floor the Email events stream is measured against.
Not something to deploy.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from sse_starlette import EventSourceResponse

app = FastAPI()
_queues: set[asyncio.Queue[dict[str, Any]]] = set()


@app.get("/events")
async def events() -> EventSourceResponse:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1000)

    async def stream() -> AsyncIterator[dict[str, Any]]:
        _queues.add(queue)
        try:
            yield {"event": "ready", "data": "{}"}
            while True:
                event = await queue.get()
                yield {"event": "bench.tick", "data": json.dumps(event)}
        finally:
            _queues.discard(queue)

    return EventSourceResponse(stream(), ping=15)


@app.post("/publish")
async def publish(seq: int) -> dict[str, int]:
    event = {"seq": seq, "sent": time.monotonic()}
    for queue in tuple(_queues):
        if not queue.full():
            queue.put_nowait(event)
    return {"delivered": len(_queues)}
