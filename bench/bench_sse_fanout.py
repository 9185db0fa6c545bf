"""SSE fan-out on one Email process, against a bare sse-starlette broadcast app.

For each client count (default 1,000 then 10,000) and each app, the bench:
  1. starts the app under one uvicorn worker (bench/reference_sse_app.py, then the Email
     service through bench/sse_email_harness.py: the real `/api/events` route, token check,
     mailbox authorisation and metrics, the in-process bus unless --redis is given);
  2. connects that many SSE clients from a separate process (raw asyncio streams on uvloop,
     chunked-transfer and SSE parsing by hand, so the client stays lean): every Email client
     has its own mailbox `sse<n>@vezeuniqverse.com` and its own HS256 token for it;
  3. publishes rounds of events (Email: one event per mailbox, through `publish_mail_event`;
     reference: one broadcast), each stamped with the publish time, and waits until every
     client has its event;
  4. reports publish-to-receive latency p50/p99/max, events lost, events a client received
     for another mailbox (must be 0), and the server's resident memory before and after.

    .venv/bin/python bench/bench_sse_fanout.py                        # 1,000 and 10,000
    .venv/bin/python bench/bench_sse_fanout.py --clients 1000 --rounds 30
    .venv/bin/python bench/bench_sse_fanout.py --clients 1000 --redis redis://127.0.0.1:6392/0

Target (issue 9): Email p99 at most 1.2x the reference's at 1,000 clients; 10,000 held.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.auth.tokens import issue_hs256_token  # noqa: E402
from VEZEPyCore.testing import free_port, wait_for_port  # noqa: E402

SECRET = "bench-secret-" + "s" * 40
ISSUER = "http://bench.portal"
DOMAIN = "vezeuniqverse.com"
#: Handshakes in flight at once while the clients connect (the server's accept backlog is 2048).
CONNECT_CONCURRENCY = 200
#: A round not complete by then is reported as lost, and no further rounds are published.
ROUND_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class RunResult:
    app: str
    clients: int
    connected: int
    connect_seconds: float
    events: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    foreign: int
    rss_idle_mb: float
    rss_connected_mb: float


# ---- the client process ----------------------------------------------------------------


class _Stats:
    def __init__(self, clients: int) -> None:
        self.clients = clients
        self.latencies: list[float] = []
        self.foreign = 0
        self.received: dict[int, int] = {}
        self.round_done: dict[int, asyncio.Event] = {}
        self.ready = 0
        self.failed = 0
        self.all_ready = asyncio.Event()

    def done_event(self, seq: int) -> asyncio.Event:
        return self.round_done.setdefault(seq, asyncio.Event())

    def got(self, seq: int, sent: float) -> None:
        self.latencies.append((time.monotonic() - sent) * 1000)
        count = self.received.get(seq, 0) + 1
        self.received[seq] = count
        if count == self.clients:
            self.done_event(seq).set()

    def settled(self) -> None:
        if self.ready + self.failed == self.clients:
            self.all_ready.set()


async def _one_client(
    host: str,
    port: int,
    path: str,
    token: str,
    user: str,
    stats: _Stats,
    gate: asyncio.Semaphore,
) -> None:
    writer: asyncio.StreamWriter | None = None
    await gate.acquire()
    released = False
    try:
        reader, opened = await asyncio.wait_for(asyncio.open_connection(host, port), 60)
        writer = opened
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        opened.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        status = await asyncio.wait_for(reader.readline(), 60)
        if b" 200 " not in status:
            raise RuntimeError(status.decode(errors="replace").strip())
        while (await reader.readline()) not in (b"\r\n", b""):
            pass  # headers; the body is chunked (no Content-Length on a stream)
        buffer = b""
        while True:
            size_line = await reader.readline()
            if not size_line:
                return
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                return
            buffer += (await reader.readexactly(size + 2))[:-2]
            while True:
                block, separator, rest = buffer.partition(b"\r\n\r\n")
                if not separator:
                    break
                buffer = rest
                event, data = b"message", b""
                for line in block.split(b"\r\n"):
                    if line.startswith(b"event:"):
                        event = line[6:].strip()
                    elif line.startswith(b"data:"):
                        data += line[5:].strip()
                if event == b"ready":
                    stats.ready += 1
                    stats.settled()
                    gate.release()
                    released = True
                elif data:
                    payload = orjson.loads(data)
                    if user and payload.get("user") != user:
                        stats.foreign += 1
                        continue
                    stats.got(int(payload["seq"]), float(payload["sent"]))
    except (OSError, RuntimeError, TimeoutError, asyncio.IncompleteReadError):
        if not released:
            stats.failed += 1
            stats.settled()
    finally:
        if not released:
            gate.release()
        if writer is not None:
            writer.close()


async def _client_main(conn: multiprocessing.connection.Connection, spec: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    stats = _Stats(spec["clients"])
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    started = time.monotonic()
    tasks = [
        asyncio.create_task(_one_client(spec["host"], spec["port"], path, token, user, stats, gate))
        for path, token, user in spec["connections"]
    ]
    await stats.all_ready.wait()
    conn.send(("connected", stats.ready, time.monotonic() - started))
    while True:
        command, seq = await loop.run_in_executor(None, conn.recv)
        if command == "wait":
            with contextlib.suppress(TimeoutError):  # the count says what arrived
                await asyncio.wait_for(stats.done_event(seq).wait(), ROUND_TIMEOUT_SECONDS)
            conn.send(("round", stats.received.get(seq, 0)))
        elif command == "report":
            conn.send(("report", stats.latencies, stats.foreign, sum(stats.received.values())))
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def client_process(conn: multiprocessing.connection.Connection, spec: dict[str, Any]) -> None:
    raise_file_limit()
    import uvloop

    uvloop.run(_client_main(conn, spec))


# ---- the driver --------------------------------------------------------------------------


def raise_file_limit() -> int:
    """Every client is a socket on both sides: lift the soft descriptor limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1_048_576
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(app: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log", "--backlog", "4096",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 - loopback uvicorn
    wait_for_port(port, process, timeout=60)
    return process


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def run(
    name: str, app: str, env: dict[str, str], clients: int, rounds: int, email: bool
) -> RunResult:
    port = free_port()
    server = start_server(app, env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=120) as http:
            if email:  # warm the route (JWT verifier, metrics) before measuring memory
                http.get("/health").raise_for_status()
            rss_idle = rss_mb(server.pid)
            if email:
                connections = [
                    (
                        f"/api/events?user=sse{n}@{DOMAIN}",
                        issue_hs256_token(
                            secret=SECRET, issuer=ISSUER, subject=f"sse{n}@{DOMAIN}",
                            audience="veze-email", scopes=("email.read",), ttl_seconds=3600,
                        ),
                        f"sse{n}@{DOMAIN}",
                    )
                    for n in range(clients)
                ]  # fmt: skip
            else:
                connections = [("/events", "", "")] * clients
            spec = {"host": "127.0.0.1", "port": port, "clients": clients,
                    "connections": connections}  # fmt: skip
            parent, child = multiprocessing.get_context("spawn").Pipe()
            client = multiprocessing.get_context("spawn").Process(
                target=client_process, args=(child, spec), daemon=True
            )
            client.start()
            try:
                _, connected, connect_seconds = parent.recv()
                rss_connected = rss_mb(server.pid)
                print(
                    f"  {name}: {connected}/{clients} connected in {connect_seconds:.1f} s, "
                    f"RSS {rss_idle:.0f} -> {rss_connected:.0f} MB",
                    flush=True,
                )
                for seq in range(1, rounds + 1):
                    if email:
                        http.post(
                            "/bench/publish", params={"seq": seq, "users": clients}
                        ).raise_for_status()
                    else:
                        http.post("/publish", params={"seq": seq}).raise_for_status()
                    parent.send(("wait", seq))
                    _, arrived = parent.recv()
                    if arrived < connected:  # lost events: say so rather than wait on
                        print(f"  {name}: round {seq} incomplete ({arrived}/{connected})")
                        rounds = seq
                        break
                parent.send(("report", 0))
                _, latencies, foreign, received = parent.recv()
            finally:
                client.join(timeout=30)
                if client.is_alive():
                    client.terminate()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return RunResult(
        app=name,
        clients=clients,
        connected=connected,
        connect_seconds=connect_seconds,
        events=received,
        p50_ms=statistics.median(latencies) if latencies else 0.0,
        p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies, default=0.0),
        lost=connected * rounds - received,
        foreign=foreign,
        rss_idle_mb=rss_idle,
        rss_connected_mb=rss_connected,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1000,10000", help="comma-separated client counts")
    parser.add_argument("--rounds", type=int, default=0, help="publish rounds (default by size)")
    parser.add_argument("--redis", default=None, help="run Email on the Redis bus at this URL")
    args = parser.parse_args()
    counts = [int(value) for value in args.clients.split(",") if value.strip()]
    limit = raise_file_limit()
    if any(not 1 <= count <= 20_000 for count in counts):
        parser.error("client counts must be 1-20000")
    if max(counts) + 100 > limit:
        parser.error(f"the descriptor hard limit {limit} is too low for {max(counts)} clients")

    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="veze-bench-sse-") as directory:
        base_env = {key: value for key, value in os.environ.items() if "REDIS" not in key}
        email_env = {
            **base_env,
            "EMAIL_DB_URL": f"sqlite+aiosqlite:///{directory}/email.db",
            "VEZE_VAR_DIR": directory,
            "VEZE_JWT_SECRET": SECRET,
            "VEZE_JWT_ISS": ISSUER,
            "VEZE_JWT_DEMO": "0",
            "EMAIL_SMTP_ENABLED": "0",
        }
        if args.redis:
            email_env["REDIS_URL"] = args.redis
        for count in counts:
            rounds = args.rounds or max(5, min(30, 20_000 // count))
            print(f"{count} clients, {rounds} rounds", flush=True)
            results.append(
                run("reference", "bench.reference_sse_app:app", base_env, count, rounds, False)
            )
            bus = "redis bus" if args.redis else "in-process bus"
            results.append(
                run(f"email ({bus})", "bench.sse_email_harness:app", email_env, count, rounds, True)
            )

    print(
        f"\n{'app':<26}{'clients':>8}{'conn':>7}{'conn s':>8}{'events':>8}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'max ms':>8}{'lost':>6}{'foreign':>8}{'RSS MB':>8}{'KB/cl':>7}"
    )
    for r in results:
        per_client = (r.rss_connected_mb - r.rss_idle_mb) * 1024 / max(r.connected, 1)
        print(
            f"{r.app:<26}{r.clients:>8}{r.connected:>7}{r.connect_seconds:>8.1f}{r.events:>8}"
            f"{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}{r.max_ms:>8.1f}{r.lost:>6}{r.foreign:>8}"
            f"{r.rss_connected_mb:>8.0f}{per_client:>7.1f}"
        )
    for reference, email in zip(results[::2], results[1::2], strict=True):
        ratio = email.p99_ms / reference.p99_ms if reference.p99_ms else float("inf")
        print(f"{email.clients} clients: email p99 / reference p99 = {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
