"""A minimal Server-Sent Events reader over an httpx response (HTML Living Standard, 9.2.6)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

#: A field line longer than this ends the stream: no service of ours sends one.
MAX_LINE_CHARS = 64 * 1024


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str


async def read_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    """Dispatch an event at each blank line; comments (heartbeats) and ids are skipped."""
    name, data = "", list[str]()
    async for line in response.aiter_lines():
        if len(line) > MAX_LINE_CHARS:
            raise ValueError("SSE line too long")
        if not line:
            if data:
                yield SseEvent(event=name or "message", data="\n".join(data))
            name, data = "", list[str]()
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
