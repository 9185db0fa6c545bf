"""The services under real `uvicorn` with two worker processes (`WEB_CONCURRENCY=2`, ADR 0019).

Which worker serves a connection is the kernel's choice, so the tests find out rather than
hope: the worker holding a connection is read from `/proc` (the server-side socket of that
client port, and which worker process has it open). Email: SSE clients held by each worker
receive every event published by requests that each worker served. Game: the two workers'
matchmakers share one queue, and every ticket lands in exactly one match, rated once.
Without Redis, two workers refuse to start with the reason.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from VEZEPyCore.auth.tokens import issue_hs256_token
from VEZEPyCore.testing import eventually, free_port, next_event, sse_events, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "vezeuniqverse.com"
SECRET = "multiworker-secret-" + "m" * 40
ISSUER = "http://portal.multiworker.test"
DatabaseFactory = Callable[[str], Awaitable[str]]


def mint(
    subject: str, *, audience: str = "veze-email", scopes: tuple[str, ...], **claims: Any
) -> str:
    return issue_hs256_token(
        secret=SECRET,
        issuer=ISSUER,
        subject=subject,
        audience=audience,
        scopes=scopes,
        ttl_seconds=600,
        extra_claims=claims,
    )


pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")


def _children(parent: int) -> list[int]:
    """Worker processes of a uvicorn supervisor (its spawned children, not helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def worker_holding(server_port: int, client_port: int, workers: list[int]) -> int | None:
    """The worker process holding the server side of the connection from `client_port`."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                inode = fields[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in workers:
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                if os.readlink(fd.path) == target:
                    return pid
        except OSError:
            continue
    return None


def client_port(response: httpx.Response) -> int:
    sock = response.extensions["network_stream"].get_extra_info("socket")
    port: int = sock.getsockname()[1]
    return port


class TwoWorkerServer:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.workers: list[int] = []

    def holder(self, response: httpx.Response) -> int | None:
        return worker_holding(self.port, client_port(response), self.workers)


@contextmanager
def two_workers(app: str, env: dict[str, str], log: Path) -> Iterator[TwoWorkerServer]:
    """`uvicorn <app>` with WEB_CONCURRENCY=2; yields once both workers answer."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--log-level", "warning"],
            cwd=ROOT,
            env={**env, "WEB_CONCURRENCY": "2"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = TwoWorkerServer(process, port)
    try:
        wait_for_port(port, process, timeout=60)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for _ in range(600):  # both workers started (each runs the lifespan on its own)
                server.workers = _children(process.pid)
                if len(server.workers) == 2 and client.get("/ready").status_code == 200:
                    break
                if process.poll() is not None:
                    raise AssertionError(log.read_text())
                time.sleep(0.1)  # a bounded poll: at most 60 s in all
        assert len(server.workers) == 2, log.read_text()
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _service_env(tmp_path: Path, redis_url: str | None, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if "REDIS" not in key and not key.endswith("_DB_URL") and key != "WEB_CONCURRENCY"
    }
    env.update(
        {
            "VEZE_ENV": "test",
            "VEZE_VAR_DIR": str(tmp_path / "var"),
            "VEZE_JWT_SECRET": SECRET,
            "VEZE_JWT_ISS": ISSUER,
            "VEZE_JWT_DEMO": "0",
            "EMAIL_SMTP_ENABLED": "0",
            **extra,
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


async def test_email_sse_clients_on_either_worker_get_events_published_by_either(
    tmp_path: Path, redis_url: str, database_url: DatabaseFactory
) -> None:
    handle = "mw" + uuid.uuid4().hex[:6]
    address = f"{handle}@{DOMAIN}"
    env = _service_env(tmp_path, redis_url, EMAIL_DB_URL=await database_url("email"))
    admin = {"Authorization": "Bearer " + mint("svc", scopes=("email.admin",))}
    user = {"Authorization": "Bearer " + mint(address, scopes=("email.read",))}
    with two_workers("VEZEPyEmail.app.main:app", env, tmp_path / "email.log") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            created = await http.post(
                "/api/mailboxes", json={"address": address, "display_name": "MW"}, headers=admin
            )
            assert created.status_code == 201, created.text

        async with AsyncExitStack() as stack:
            # SSE clients, each on its own connection, until both workers hold at least one.
            streams: list[AsyncIterator[tuple[str, dict[str, Any]]]] = []
            holders: set[int | None] = set()
            for _ in range(24):
                client = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=server.url, timeout=30)
                )
                response = await stack.enter_async_context(
                    client.stream("GET", "/api/events", headers=user)
                )
                assert response.status_code == 200
                events = sse_events(response)
                assert (await next_event(events, 30))[0] == "ready"  # subscribed
                holders.add(server.holder(response))
                streams.append(events)
                if len(streams) >= 2 and set(server.workers) <= holders:
                    break
            assert set(server.workers) <= holders, "every SSE client landed on one worker"

            # Publish (a folder each) over fresh connections until both workers have published.
            published: list[str] = []
            publishers: set[int | None] = set()
            for n in range(24):
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as lone:
                    name = f"F{n}"
                    made = await lone.post("/api/folders", json={"name": name}, headers=user)
                    assert made.status_code == 201, made.text
                    publishers.add(server.holder(made))
                published.append(name)
                if len(published) >= 2 and set(server.workers) <= publishers:
                    break
            assert set(server.workers) <= publishers, "every publish landed on one worker"

            # Every client, whichever worker holds it, got every event, in order.
            for events in streams:
                received: list[str] = []
                while len(received) < len(published):
                    kind, data = await next_event(events, 30)
                    if kind == "folder.created":
                        assert data["user"] == address
                        received.append(data["folder"])
                assert received == published


async def _poll(condition: Any, seconds: float = 60) -> Any:
    async with asyncio.timeout(seconds):
        while True:
            value = await condition()
            if value:
                return value
            await asyncio.sleep(0.1)


async def test_game_two_workers_match_every_ticket_once_and_rate_once(
    tmp_path: Path, redis_url: str, database_url: DatabaseFactory
) -> None:
    prefix = "mw" + uuid.uuid4().hex[:6]
    env = _service_env(
        tmp_path,
        redis_url,
        GAME_DB_URL=await database_url("game"),
        GAME_MM_POLL_SECONDS="0.2",
        GAME_MM_BOT_AFTER_SECONDS="0",  # humans only: every ticket must pair with another
        GAME_MM_WINDOW_BASE="5000",  # any two ratings pair
        GAME_MM_WINDOW_MAX="5000",
        GAME_LEADERBOARD_REDIS_PREFIX=f"{prefix}:",
    )
    handles = [f"{prefix}p{n}" for n in range(8)]

    def play(handle: str) -> dict[str, str]:
        token = mint(
            f"{handle}@{DOMAIN}",
            audience="veze-game",
            scopes=("game.play",),
            preferred_username=handle,
        )
        return {"Authorization": f"Bearer {token}"}

    admin = {
        "Authorization": "Bearer "
        + mint("svc", audience="veze-game", scopes=("game.admin",), client_id="veze-portal")
    }
    with two_workers("VEZEPyGame.app.main:app", env, tmp_path / "game.log") as server:

        async def fresh(method: str, path: str, **kwargs: Any) -> httpx.Response:
            # A connection per request: the kernel spreads them over both workers.
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as lone:
                return await lone.request(method, path, **kwargs)

        for handle in handles:
            made = await fresh("POST", "/api/players", json={"handle": handle}, headers=admin)
            assert made.status_code == 201, made.text
        joins = await asyncio.gather(
            *(fresh("POST", "/api/queue", json={}, headers=play(h)) for h in handles)
        )
        assert [join.status_code for join in joins] == [201] * len(handles), joins[0].text

        async def tickets() -> dict[str, dict[str, Any]] | None:
            reads = await asyncio.gather(
                *(fresh("GET", "/api/queue", headers=play(h)) for h in handles)
            )
            found = {h: r.json()["ticket"] for h, r in zip(handles, reads, strict=True)}
            matched = all(t and t["status"] == "matched" for t in found.values())
            return found if matched else None

        found = await _poll(tickets)
        by_match: dict[str, list[str]] = {}
        for handle, ticket in found.items():
            by_match.setdefault(ticket["match_id"], []).append(handle)
        # No ticket in two matches, no match without its two tickets, each other's opponent.
        assert sorted(len(seated) for seated in by_match.values()) == [2] * (len(handles) // 2)
        for first, second in by_match.values():
            assert found[first]["opponent_handle"] == second
            assert found[second]["opponent_handle"] == first

        # Each match is resigned twice at once (both may reach different workers): one
        # result, counted once.
        for match_id, (loser, _winner) in by_match.items():
            resigns = await asyncio.gather(
                *(fresh("POST", f"/api/matches/{match_id}/resign", headers=play(loser))
                  for _ in range(2))
            )  # fmt: skip
            assert sorted(r.status_code for r in resigns) in ([200, 409], [200, 200])

        async def rated() -> dict[str, dict[str, Any]] | None:
            reads = await asyncio.gather(
                *(fresh("GET", "/api/ratings/me", headers=play(h)) for h in handles)
            )
            ranked = {
                h: next(r for r in read.json() if r["mode"] == "ranked")
                for h, read in zip(handles, reads, strict=True)
            }
            return ranked if all(r["games"] >= 1 for r in ranked.values()) else None

        ranked = await _poll(rated)
        for match_id, (loser, winner) in by_match.items():
            assert (ranked[loser]["games"], ranked[loser]["losses"]) == (1, 1), match_id
            assert (ranked[winner]["games"], ranked[winner]["wins"]) == (1, 1), match_id
        board = await fresh("GET", "/api/leaderboards/ranked", headers=play(handles[0]))
        assert board.status_code == 200, board.text
        listed = [entry["handle"] for entry in board.json()["entries"] if entry["handle"]]
        assert sorted(h for h in listed if h.startswith(prefix)) == sorted(handles)


def test_two_workers_without_redis_refuse_to_start_and_say_why(tmp_path: Path) -> None:
    env = _service_env(tmp_path, None, EMAIL_DB_URL=f"sqlite+aiosqlite:///{tmp_path / 'email.db'}")
    port = free_port()
    finished = subprocess.run(
        [sys.executable, "-m", "uvicorn", "VEZEPyEmail.app.main:app", "--port", str(port)],
        cwd=ROOT,
        env={**env, "WEB_CONCURRENCY": "2"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "WEB_CONCURRENCY=2 asks for several workers, but REDIS_URL is not set" in (
        finished.stderr
    )
    assert "Child process" in finished.stderr and "failed to start" in finished.stderr


async def test_email_two_workers_with_their_own_smtp_listeners_share_the_ports(
    tmp_path: Path, redis_url: str, database_url: DatabaseFactory
) -> None:
    # Each worker runs the lifespan, SMTP listeners included: they bind with SO_REUSEPORT
    # (the second worker would otherwise fail to bind and uvicorn stop the server).
    handle = "ms" + uuid.uuid4().hex[:6]
    address = f"{handle}@{DOMAIN}"
    mx = free_port()
    env = _service_env(
        tmp_path,
        redis_url,
        EMAIL_DB_URL=await database_url("email"),
        EMAIL_SMTP_ENABLED="1",
        EMAIL_SMTP_HOST="127.0.0.1",
        EMAIL_SMTP_PORT=str(mx),
        EMAIL_SUBMISSION_PORT=str(free_port()),
        EMAIL_SMTPS_PORT=str(free_port()),
    )
    admin = {"Authorization": "Bearer " + mint("svc", scopes=("email.admin",))}
    user = {"Authorization": "Bearer " + mint(address, scopes=("email.read",))}
    with two_workers("VEZEPyEmail.app.main:app", env, tmp_path / "email.log") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            created = await http.post(
                "/api/mailboxes", json={"address": address, "display_name": "MS"}, headers=admin
            )
            assert created.status_code == 201, created.text

            def send(number: int) -> None:
                message = (
                    f"From: a@sender.example\r\nTo: {address}\r\nSubject: two {number}\r\n"
                    f"Message-ID: <two-{number}-{handle}@sender.example>\r\n\r\nhi\r\n"
                )
                with smtplib.SMTP("127.0.0.1", mx, timeout=30) as smtp:
                    smtp.sendmail("a@sender.example", [address], message)

            await asyncio.gather(*(asyncio.to_thread(send, n) for n in range(12)))

            async def delivered() -> list[str]:
                listed = await http.get(
                    "/api/messages", params={"user": address, "limit": 50}, headers=user
                )
                assert listed.status_code == 200, listed.text
                subjects = sorted(item["subject"] for item in listed.json()["messages"])
                two = [s for s in subjects if s.startswith("two ")]
                return two if len(two) >= 12 else []

            # Each accepted message is delivered behind its 250, once.
            two = await eventually(delivered, what="12 delivered messages")
            assert two == sorted(f"two {n}" for n in range(12))
        # Both workers started and still serve: none failed its start-up and was replaced.
        assert sorted(_children(server.process.pid)) == sorted(server.workers)
    assert "startup failed" not in (tmp_path / "email.log").read_text()
