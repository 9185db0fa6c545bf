"""Email's hot read, `GET /api/messages` (newest 50 of a large mailbox), against a bare reference.

Seeds one SQLite mailbox with N messages (default 100,000), then drives with `wrk` (Debian
package `wrk`), 64 connections for 15 s each:
  1. the reference: bench/reference_list_app.py, the same query with stdlib sqlite3 inline and
     no authentication, metrics or middleware, on one uvicorn worker;
  2. the Email service itself, authenticated (a real HS256 bearer token) and metered as in
     production, on one uvicorn worker (measured in turns with the reference, `--rounds`
     pairs) and then on two.
Prints requests/s and p50/p99 latency of each and the ratio to the reference. Run it on a quiet
machine:

    .venv/bin/python bench/bench_message_list.py                  # 100,000 messages, 15 s
    .venv/bin/python bench/bench_message_list.py --search         # also full-text search p95
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.auth.tokens import issue_hs256_token  # noqa: E402
from VEZEPyCore.db.migrations import upgrade_to_head  # noqa: E402
from VEZEPyCore.testing import free_port, wait_for_port  # noqa: E402
from VEZEPyEmail.app.main import MIGRATIONS  # noqa: E402

ADDRESS = "bench@vezeuniqverse.com"
SECRET = "bench-secret-" + "b" * 40
ISSUER = "http://bench.portal"
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
]


@dataclass(frozen=True)
class WrkResult:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: str


def seed(database: Path, count: int) -> None:
    """Migrate with Alembic, then bulk-insert with sqlite3 (minutes faster than the ORM)."""
    asyncio.run(upgrade_to_head(MIGRATIONS, f"sqlite+aiosqlite:///{database}"))
    now = datetime.now(UTC).replace(tzinfo=None)
    connection = sqlite3.connect(database)
    with connection:
        cursor = connection.execute(
            "INSERT INTO mailboxes (address, display_name, created_at) VALUES (?, ?, ?)",
            (ADDRESS, "Bench", now.isoformat(sep=" ")),
        )
        mailbox_id = cursor.lastrowid
        rows = []
        for n in range(count):
            when = (now - timedelta(seconds=n)).isoformat(sep=" ", timespec="microseconds")
            words = " ".join(WORDS[(n + k) % len(WORDS)] for k in range(4))
            rows.append(
                (
                    mailbox_id,
                    "INBOX",
                    f"Message {n} {words}",
                    f"sender{n % 50}@example.com",
                    ADDRESS,
                    when,
                    when,
                    f"Lorem ipsum {words} dolor sit amet",
                    f"Body of message {n}: {words} and more words to index.",
                    2048,
                    "[]",
                )
            )
        connection.executemany(
            "INSERT INTO messages (mailbox_id, folder, subject, from_addr, to_addrs, date,"
            " received_at, snippet, body_text, size, labels, spam_score, seen, flagged,"
            " answered, draft, cc_addrs, references_header, has_attachments, envelope_from,"
            " auth_results) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0, '', '',"
            " 0, '', '')",
            rows,
        )
    connection.close()


@contextlib.contextmanager
def served(command: list[str], env: dict[str, str], port: int) -> Iterator[None]:
    """A uvicorn server for the duration of the block, stopped (workers too) however it ends."""
    process = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 - loopback uvicorn
    try:
        # Generous: on a busy machine two workers importing the service take a while.
        wait_for_port(port, process, timeout=120)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def uvicorn(app: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def wait_ready(url: str, headers: dict[str, str]) -> None:
    """Every worker answers before the run starts (a few requests warm each one up)."""
    with httpx.Client(headers=headers, timeout=30) as client:
        for _ in range(50):
            client.get(url).raise_for_status()


def run_wrk(
    name: str, url: str, headers: dict[str, str], seconds: int, connections: int
) -> WrkResult:
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    output = subprocess.run(  # noqa: S603 - wrk from PATH, our own loopback server
        [*command, url], capture_output=True, text=True, check=True
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", output)
    return WrkResult(
        name=name,
        requests_per_second=rate,
        p50_ms=_percentile(output, "50%"),
        p99_ms=_percentile(output, "99%"),
        errors=errors.group(0) if errors else "none",
    )


def _percentile(output: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {label} latency in wrk's output:\n{output}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def search_p95(url: str, headers: dict[str, str], rounds: int) -> tuple[float, float]:
    """Sequential full-text searches over HTTP: (p50, p95) in ms."""
    import time

    timings = []
    with httpx.Client(headers=headers, timeout=30) as client:
        for n in range(rounds):
            word = WORDS[n % len(WORDS)]
            started = time.perf_counter()
            client.get(url, params={"user": ADDRESS, "q": f"{word} message"}).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return timings[len(timings) // 2], timings[int(len(timings) * 0.95) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--search", action="store_true", help="also time full-text search")
    parser.add_argument(
        "--rounds", type=int, default=3, help="reference / Email 1-worker pairs, in turns"
    )
    args = parser.parse_args()
    if not (1 <= args.seconds <= 120 and 1 <= args.connections <= 256 and 1 <= args.rounds <= 10):
        parser.error("--seconds must be 1-120, --connections 1-256 and --rounds 1-10")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install wrk)")

    token = issue_hs256_token(
        secret=SECRET,
        issuer=ISSUER,
        subject=ADDRESS,
        audience="veze-email",
        scopes=("email.read",),
        ttl_seconds=3600,
    )
    auth = {"Authorization": f"Bearer {token}"}
    results: list[WrkResult] = []
    with tempfile.TemporaryDirectory(prefix="veze-bench-") as directory:
        database = Path(directory) / "email.db"
        print(f"seeding {args.messages} messages ...", flush=True)
        seed(database, args.messages)
        base_env = {key: value for key, value in os.environ.items() if "REDIS" not in key}

        email_env = {
            **base_env,
            "EMAIL_DB_URL": f"sqlite+aiosqlite:///{database}",
            "VEZE_VAR_DIR": directory,
            "VEZE_JWT_SECRET": SECRET,
            "VEZE_JWT_ISS": ISSUER,
            "VEZE_JWT_DEMO": "0",
            "EMAIL_SMTP_ENABLED": "0",
        }
        query = f"/api/messages?user={ADDRESS}&limit=50"
        # The reference and one Email worker run side by side (idle while the other is
        # measured) and are measured in turns, so that a change in the machine's other load
        # hits both alike; each Email run is compared with the reference run just before it.
        ref_port, email_port = free_port(), free_port()
        with (
            served(
                uvicorn("bench.reference_list_app:app", ref_port, 1),
                {**base_env, "REFERENCE_DB": str(database)},
                ref_port,
            ),
            served(uvicorn("VEZEPyEmail.app.main:app", email_port, 1), email_env, email_port),
        ):
            ref_url = f"http://127.0.0.1:{ref_port}{query}"
            email_url = f"http://127.0.0.1:{email_port}{query}"
            wait_ready(ref_url, {})
            wait_ready(email_url, auth)
            for round_number in range(1, args.rounds + 1):
                for name, url, headers in (
                    (f"reference, 1 worker #{round_number}", ref_url, {}),
                    (f"email, 1 worker #{round_number}", email_url, auth),
                ):
                    results.append(run_wrk(name, url, headers, args.seconds, args.connections))
                    print(results[-1], flush=True)
            if args.search:
                p50, p95 = search_p95(f"http://127.0.0.1:{email_port}/api/messages", auth, 200)
                print(f"full-text search over HTTP: p50 {p50:.1f} ms, p95 {p95:.1f} ms")

        port = free_port()
        with served(uvicorn("VEZEPyEmail.app.main:app", port, 2), email_env, port):
            url = f"http://127.0.0.1:{port}{query}"
            wait_ready(url, auth)
            results.append(run_wrk("email, 2 workers", url, auth, args.seconds, args.connections))
            print(results[-1], flush=True)

    references = [result for result in results if result.name.startswith("reference")]
    median_reference = statistics.median(result.requests_per_second for result in references)
    print(
        f"\nnewest 50 of {args.messages} messages, wrk {args.connections} connections, "
        f"{args.seconds} s each; x ref: against the reference run just before (2 workers: "
        f"against the median reference, {median_reference:.0f} requests/s)"
    )
    print(f"{'run':<24}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'x ref':>8}  errors")
    reference_rate = median_reference
    for result in results:
        if result.name.startswith("reference"):
            reference_rate = result.requests_per_second
        elif result.name == "email, 2 workers":
            reference_rate = median_reference
        print(
            f"{result.name:<24}{result.requests_per_second:>12.0f}{result.p50_ms:>9.1f}"
            f"{result.p99_ms:>9.1f}{result.requests_per_second / reference_rate:>8.2f}"
            f"  {result.errors}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
