"""Helpers for tests: serve an app on a real port, run lifespans, start a throwaway Redis.

Shipped in the package (like `starlette.testclient`) so every service's tests share them.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar, overload

import httpx
import uvicorn
from fastapi import FastAPI

T = TypeVar("T")


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]], *, what: str, seconds: float = 30.0
) -> T: ...
@overload
async def eventually(probe: Callable[[], T], *, what: str, seconds: float = 30.0) -> T: ...
async def eventually(probe: Callable[[], Any], *, what: str, seconds: float = 30.0) -> Any:
    """Poll `probe` (sync or async) until it returns something truthy, and return that.

    For state that settles after an answer was given (mail delivered behind an SMTP 250,
    say); fails naming `what` once `seconds` have passed.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        result = probe()
        value = await result if inspect.isawaitable(result) else result
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serve_app(app: FastAPI, *, port: int | None = None) -> AsyncIterator[str]:
    """Run `app` under uvicorn on 127.0.0.1 (lifespan included); yield its base URL.

    `port` (from `free_port()`) when the app's settings must name its own URL in advance,
    as services that redirect browsers to each other do.
    """
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # surface the start-up error
                raise RuntimeError("uvicorn exited before starting")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextmanager
def redis_server() -> Iterator[str]:
    """Start a real, throwaway `redis-server` on a free loopback port; yield its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="veze-redis-") as directory:
        process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, process)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


def wait_for_port(
    port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout}s")


SseEvent = tuple[str, dict[str, Any]]


async def sse_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    """The `event:`/`data:` blocks of a streaming Server-Sent Events response, JSON-decoded."""
    event, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.partition(":")[2].strip()
        elif line.startswith("data:"):
            data += line.partition(":")[2].strip()
        elif line == "" and data:
            yield event, json.loads(data)
            event, data = "message", ""


async def next_event(events: AsyncIterator[SseEvent], seconds: float = 10) -> SseEvent:
    """The next event, or TimeoutError: a test waits on the event, never on a fixed sleep."""
    return await asyncio.wait_for(anext(events), seconds)
