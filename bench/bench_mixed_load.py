"""A mixed HTTP load on Email and Game at once: requests/s and p50/p95/p99 per route.

Each run starts the Email and Game services under uvicorn, seeds them (mailboxes with
messages, players with leaderboard standings), then drives every route at the same time, one
`wrk` (Debian package `wrk`) per route with a Lua script this bench writes to a temp dir:

  email  list     GET  /api/messages?user=..&limit=50        (a random seeded mailbox)
  email  read     GET  /api/messages/{id}                    (a random message of it)
  email  search   GET  /api/messages?user=..&q=<word>        (full-text)
  email  send     POST /api/send                             (to another local mailbox)
  game   queue    POST /api/queue then DELETE /api/queue     (join and leave, per player)
  game   board    GET  /api/leaderboards/ranked?limit=50

Runs: SQLite with the in-process bus on one worker; PostgreSQL + Redis on one worker; and
PostgreSQL + Redis with two workers per service (WEB_CONCURRENCY=2). Every request carries a
real HS256 token for its own user. Non-2xx answers are counted, not hidden. The matchmaker is
off (GAME_MM_ENABLED=0) so queue join/leave measures the queue endpoints, not pairing.

    .venv/bin/python bench/bench_mixed_load.py                        # all three runs, 15 s
    .venv/bin/python bench/bench_mixed_load.py --runs sqlite --seconds 10
    .venv/bin/python bench/bench_mixed_load.py --runs pg,pg2 \
        --pg postgresql+asyncpg://veze:veze@127.0.0.1:5442/postgres --redis redis://127.0.0.1:6392/0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.auth.tokens import issue_hs256_token  # noqa: E402
from VEZEPyCore.testing import free_port, wait_for_port  # noqa: E402
from VEZEPyEmail.db.models import Message  # noqa: E402
from VEZEPyGame.db.competition import LeaderboardEntry, Season  # noqa: E402

SECRET = "bench-secret-" + "m" * 40
ISSUER = "http://bench.portal"
DOMAIN = "vezeuniqverse.com"
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
MAILBOXES = 20
PLAYERS = 200
ROUTES = ("list", "read", "search", "send", "queue", "board")


@dataclass(frozen=True)
class RouteResult:
    run: str
    route: str
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    failures: int


def token(subject: str, audience: str, scopes: tuple[str, ...], **claims: Any) -> str:
    return issue_hs256_token(
        secret=SECRET, issuer=ISSUER, subject=subject, audience=audience, scopes=scopes,
        ttl_seconds=3600, extra_claims=claims,
    )  # fmt: skip


# ---- databases and servers ---------------------------------------------------------------


async def create_pg_database(server_url: str, name: str) -> str:
    dsn = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(server_url: str, name: str) -> None:
    dsn = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def start(app: str, env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with log.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 - loopback uvicorn
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, process, timeout=120)
    except RuntimeError as exc:
        raise RuntimeError(f"{app} did not start:\n{log.read_text()[-3000:]}") from exc
    with httpx.Client(timeout=30) as client:
        for _ in range(1200):
            if process.poll() is not None:
                raise RuntimeError(f"{app} exited; see {log}")
            try:
                if client.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            subprocess.run(["sleep", "0.1"], check=True)  # noqa: S607 - bounded start-up wait
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# ---- seeding through the services and their tables ---------------------------------------


async def seed_email(base: str, db_url: str, messages_each: int) -> dict[str, Any]:
    admin = {"Authorization": "Bearer " + token("bench", "veze-email", ("email.admin",))}
    addresses = [f"load{n}@{DOMAIN}" for n in range(MAILBOXES)]
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for address in addresses:
            made = await http.post(
                "/api/mailboxes", json={"address": address, "display_name": "Load"}, headers=admin
            )
            made.raise_for_status()
    engine = create_async_engine(db_url)
    now = datetime.now(UTC)
    ids: dict[str, tuple[int, int]] = {}
    try:
        async with engine.begin() as connection:
            boxes: dict[str, int] = dict(
                (await connection.execute(text("SELECT address, id FROM mailboxes"))).all()
            )
            for address in addresses:
                rows = []
                for n in range(messages_each):
                    when = now - timedelta(seconds=n)
                    words = " ".join(WORDS[(n + k) % len(WORDS)] for k in range(3))
                    rows.append(
                        {
                            "mailbox_id": boxes[address], "folder": "INBOX",
                            "subject": f"Message {n} {words}",
                            "from_addr": f"sender{n % 50}@example.com", "to_addrs": address,
                            "date": when, "received_at": when,
                            "snippet": f"Lorem {words}", "body_text": f"Body {n}: {words}.",
                            "size": 2048, "labels": [],
                        }
                    )  # fmt: skip
                await connection.execute(insert(Message), rows)
            for address in addresses:
                low, high = (
                    await connection.execute(
                        text(
                            "SELECT min(id), max(id) FROM messages WHERE mailbox_id = :m"
                            " AND subject LIKE 'Message %'"  # one insert: contiguous ids
                        ),
                        {"m": boxes[address]},
                    )
                ).one()
                ids[address] = (int(low), int(high))
    finally:
        await engine.dispose()
    return {
        "users": [
            {
                "user": address,
                "token": token(address, "veze-email", ("email.read", "email.send")),
                "low": ids[address][0],
                "high": ids[address][1],
            }
            for address in addresses
        ]
    }


async def seed_game(base: str, db_url: str) -> dict[str, Any]:
    admin = {"Authorization": "Bearer " + token("bench", "veze-game", ("game.admin",))}
    handles = [f"load{n}" for n in range(PLAYERS)]
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for handle in handles:
            made = await http.post("/api/players", json={"handle": handle}, headers=admin)
            made.raise_for_status()
    engine = create_async_engine(db_url)
    now = datetime.now(UTC)
    rng = random.Random(7)
    try:
        async with engine.begin() as connection:
            player_ids = [
                row[0]
                for row in await connection.execute(
                    text("SELECT id FROM players WHERE handle LIKE 'load%'")
                )
            ]
            season = await connection.scalar(select(Season.id).order_by(Season.id.desc()))
            if season is None:
                season = (
                    await connection.execute(
                        insert(Season).returning(Season.id),
                        {
                            "number": 1,
                            "name": "Bench",
                            "starts_at": now - timedelta(days=1),
                            "ends_at": now + timedelta(days=90),
                        },
                    )
                ).scalar_one()
            await connection.execute(
                insert(LeaderboardEntry),
                [
                    {"season_id": season, "mode": "ranked", "player_id": pid,
                     "score": round(rng.gauss(1500, 200)), "games": 10, "wins": 5, "losses": 4,
                     "draws": 1, "updated_at": now}
                    for pid in player_ids
                ],
            )  # fmt: skip
    finally:
        await engine.dispose()
    return {
        "players": [
            token(f"{h}@{DOMAIN}", "veze-game", ("game.play",), preferred_username=h)
            for h in handles
        ]
    }


# ---- wrk and its Lua scripts -------------------------------------------------------------

DONE = """
function done(summary, latency, requests)
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "failures": %d,'
    .. ' "p50": %f, "p95": %f, "p99": %f}\\n', summary.requests, summary.duration / 1e6,
    failed, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
"""


def lua_script(route: str, email: dict[str, Any], game: dict[str, Any], threads: int) -> str:
    users = ",".join(
        f'{{u="{u["user"]}",t="{u["token"]}",lo={u["low"]},hi={u["high"]}}}' for u in email["users"]
    )
    players = ",".join(f'"{t}"' for t in game["players"])
    words = ",".join(f'"{w}"' for w in WORDS)
    common = f"""
local users = {{{users}}}
local players = {{{players}}}
local words = {{{words}}}
local counter = 0
local made = 0
-- Each thread's state gets its own global `slot` (1, 2, ...): its share of the players.
function setup(thread) made = made + 1; thread:set("slot", made) end
function init(args) math.randomseed(os.time() + slot) end
local function pick() return users[math.random(#users)] end
local shown = false
-- The first refusal each thread meets is printed, so failures have a reason beside the count.
function response(status, headers, body)
  if status >= 400 and not shown then
    shown = true
    io.write("FAIL " .. status .. " " .. string.sub(body, 1, 200) .. "\\n")
  end
end
local function auth(t) return {{["Authorization"] = "Bearer " .. t,
  ["Content-Type"] = "application/json"}} end
"""
    bodies = {
        "list": """
request = function()
  local u = pick()
  return wrk.format("GET", "/api/messages?limit=50&user=" .. u.u, auth(u.t))
end""",
        "read": """
request = function()
  local u = pick()
  return wrk.format("GET", "/api/messages/" .. math.random(u.lo, u.hi), auth(u.t))
end""",
        "search": """
request = function()
  local u = pick()
  local q = words[math.random(#words)] .. "%20" .. words[math.random(#words)]
  return wrk.format("GET", "/api/messages?limit=50&user=" .. u.u .. "&q=" .. q, auth(u.t))
end""",
        "send": """
request = function()
  local u = pick()
  local to = pick()
  local body = '{"to": ["' .. to.u .. '"], "subject": "load", "text": "hello from the bench"}'
  return wrk.format("POST", "/api/send", auth(u.t), body)
end""",
        # One connection per thread (-t N -c N), each thread its own players: a player's
        # leave always follows its own join.
        "queue": """
request = function()
  counter = counter + 1
  local n = math.floor((counter - 1) / 2)
  local index = ((n * THREADS + slot - 1) % #players) + 1
  if counter % 2 == 1 then
    return wrk.format("POST", "/api/queue", auth(players[index]), "{}")
  end
  return wrk.format("DELETE", "/api/queue", auth(players[index]))
end""",
        "board": """
request = function()
  local t = players[math.random(#players)]
  return wrk.format("GET", "/api/leaderboards/ranked?limit=50", auth(t))
end""",
    }
    return common + bodies[route].replace("THREADS", str(threads)) + DONE


def run_wrk_all(
    name: str, urls: dict[str, str], scripts: dict[str, Path], seconds: int, connections: int
) -> list[RouteResult]:
    processes = {}
    for route, script in scripts.items():
        base = urls["game"] if route in ("queue", "board") else urls["email"]
        threads = connections if route == "queue" else 1
        command = [
            "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
            "--timeout", "10s", "-s", str(script), base,
        ]  # fmt: skip
        processes[route] = subprocess.Popen(  # noqa: S603 - wrk against our loopback servers
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    results = []
    for route, process in processes.items():
        output, _ = process.communicate(timeout=seconds + 60)
        for failure in sorted({ln for ln in output.splitlines() if ln.startswith("FAIL ")}):
            print(f"    {route}: {failure}", flush=True)
        line = next((ln for ln in output.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"wrk for {route} printed no result:\n{output}")
        data = json.loads(line[len("RESULT ") :])
        results.append(
            RouteResult(
                run=name,
                route=route,
                requests_per_second=data["requests"] / data["seconds"],
                p50_ms=data["p50"],
                p95_ms=data["p95"],
                p99_ms=data["p99"],
                requests=data["requests"],
                failures=data["failures"],
            )
        )
    return results


# ---- one run -----------------------------------------------------------------------------


def one_run(
    name: str,
    *,
    workers: int,
    pg: str | None,
    redis: str | None,
    seconds: int,
    connections: int,
    messages: int,
    directory: Path,
    routes: tuple[str, ...] = ROUTES,
) -> list[RouteResult]:
    run_dir = directory / name.replace(" ", "-").replace(",", "").replace("+", "")
    run_dir.mkdir()
    created: list[str] = []
    if pg:
        suffix = uuid.uuid4().hex[:8]
        email_db = asyncio.run(create_pg_database(pg, f"bench_email_{suffix}"))
        game_db = asyncio.run(create_pg_database(pg, f"bench_game_{suffix}"))
        created = [f"bench_email_{suffix}", f"bench_game_{suffix}"]
    else:
        email_db = f"sqlite+aiosqlite:///{run_dir}/email.db"
        game_db = f"sqlite+aiosqlite:///{run_dir}/game.db"
    env = {
        key: value
        for key, value in os.environ.items()
        if "REDIS" not in key and not key.endswith("_DB_URL") and key != "WEB_CONCURRENCY"
    }
    env.update(
        {
            "VEZE_VAR_DIR": str(run_dir),
            "VEZE_JWT_SECRET": SECRET,
            "VEZE_JWT_ISS": ISSUER,
            "VEZE_JWT_DEMO": "0",
            "EMAIL_SMTP_ENABLED": "0",
            "EMAIL_SEND_RATE": "100000",
            "GAME_MM_ENABLED": "0",
            "GAME_MM_JOINS_PER_MINUTE": "10000",
            "EMAIL_DB_URL": email_db,
            "GAME_DB_URL": game_db,
            "GAME_LEADERBOARD_REDIS_PREFIX": f"bench{uuid.uuid4().hex[:6]}:",
            "WEB_CONCURRENCY": str(workers),
        }
    )
    if redis:
        env["REDIS_URL"] = redis
    with ExitStack() as stack:
        urls = {}
        for service, app in (
            ("email", "VEZEPyEmail.app.main:app"),
            ("game", "VEZEPyGame.app.main:app"),
        ):
            port = free_port()
            process = start(app, env, port, run_dir / f"{service}.log")
            stack.callback(stop, process)
            urls[service] = f"http://127.0.0.1:{port}"
        print(f"  {name}: seeding ...", flush=True)
        email = asyncio.run(seed_email(urls["email"], email_db, messages))
        game = asyncio.run(seed_game(urls["game"], game_db))
        scripts = {}
        for route in routes:
            scripts[route] = run_dir / f"{route}.lua"
            scripts[route].write_text(lua_script(route, email, game, connections))
        print(f"  {name}: {len(routes)} routes at once for {seconds} s ...", flush=True)
        results = run_wrk_all(name, urls, scripts, seconds, connections)
    for database in created:
        assert pg is not None
        asyncio.run(drop_pg_database(pg, database))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=4, help="per route")
    parser.add_argument("--messages", type=int, default=1000, help="per mailbox (20 of them)")
    parser.add_argument("--runs", default="sqlite,pg,pg2", help="sqlite, pg, pg2 (2 workers)")
    parser.add_argument(
        "--pg", default="postgresql+asyncpg://veze:veze@127.0.0.1:5442/postgres",
        help="a PostgreSQL server URL (a role that may create databases)",
    )  # fmt: skip
    parser.add_argument("--redis", default="redis://127.0.0.1:6392/0")
    parser.add_argument("--routes", default=",".join(ROUTES), help="a subset of the routes")
    args = parser.parse_args()
    routes = tuple(r.strip() for r in args.routes.split(",") if r.strip())
    if not routes or any(r not in ROUTES for r in routes):
        parser.error(f"--routes takes some of {', '.join(ROUTES)}")
    if not (1 <= args.seconds <= 120 and 1 <= args.connections <= 64):
        parser.error("--seconds must be 1-120 and --connections 1-64")
    if not 1 <= args.messages <= 100_000:
        parser.error("--messages must be 1-100000")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install wrk)")
    plans = {
        "sqlite": ("SQLite, 1 worker", 1, None, None),
        "pg": ("PostgreSQL+Redis, 1 worker", 1, args.pg, args.redis),
        "pg2": ("PostgreSQL+Redis, 2 workers", 2, args.pg, args.redis),
    }
    results: list[RouteResult] = []
    with tempfile.TemporaryDirectory(prefix="veze-bench-mixed-") as directory:
        for key in [k.strip() for k in args.runs.split(",") if k.strip()]:
            name, workers, pg, redis = plans[key]
            print(name, flush=True)
            results += one_run(
                name, workers=workers, pg=pg, redis=redis, seconds=args.seconds,
                connections=args.connections, messages=args.messages, directory=Path(directory),
                routes=routes,
            )  # fmt: skip
    print(
        f"\nmixed load: {len(routes)} routes at once, {args.connections} connections each, "
        f"{args.seconds} s; {MAILBOXES} mailboxes x {args.messages} messages, {PLAYERS} players"
    )
    print(f"{'run':<30}{'route':<8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'fail':>7}")
    for r in results:
        print(
            f"{r.run:<30}{r.route:<8}{r.requests_per_second:>8.0f}{r.p50_ms:>9.1f}"
            f"{r.p95_ms:>9.1f}{r.p99_ms:>9.1f}{r.failures:>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
