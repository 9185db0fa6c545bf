"""SMTP ingest: durable accepts per second and p95 end-of-DATA -> 250, ours against Postfix.

Load: Postfix's `smtp-source -s 20 -m 5000 -l 10240` (Debian `postfix`) against
1. a private Postfix (own config and queue under a temp dir, loopback only, a free port,
   `mydestination` = the test domain, delivery by Postfix's `virtual` agent to a mailbox file);
   Postfix's 250 after DATA follows its cleanup daemon's fsync of the queue file, and
2. `python -m VEZEPyEmail.smtp_main` with 1..N listener processes (SO_REUSEPORT), whose 250
   follows the commit of the message's intake row (raw bytes and envelope; ADR 0023).

Both deliver behind the 250 (Postfix's `virtual` agent; our intake deliverer, which runs the
checks, Sieve and filing): each line also says how long after the load's last 250 every
accepted message was delivered.

The p95 is measured by a sampler running alongside smtp-source: SAMPLER_SESSIONS extra
sessions that send 10 KB messages back to back and time, per message, from the moment the
final CRLF.CRLF is written to the moment the reply line is read (smtplib, raw DATA).
After each run the delivered copies are counted (Postfix: its log's `status=sent`; ours: rows).

    .venv/bin/python bench/bench_smtp_ingest.py [--messages 5000] [--processes 1,2]
        [--db-url postgresql+asyncpg://...] [--skip-postfix] [--rounds N]

Postfix's own rate moves a lot between runs on this machine (656-974 msg/s within an hour), so
each round compares ours with the Postfix of the same round, and `--rounds N` prints the median
of those ratios.

Needs root for Postfix's master (it drops to the `postfix` user).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyCore.db.engine import make_engine, make_sessionmaker  # noqa: E402
from VEZEPyEmail.db.models import Message  # noqa: E402
from VEZEPyEmail.services.mailboxes.service import ensure_mailbox  # noqa: E402

DOMAIN = "bench.example"
RECIPIENT = f"rcpt@{DOMAIN}"
SENDER = "sender@sender.example"
SESSIONS = 20
SIZE = 10240
SAMPLER_SESSIONS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def sample_message(index: int) -> bytes:
    head = (
        f"From: {SENDER}\r\nTo: {RECIPIENT}\r\nSubject: sample {index}\r\n"
        f"Message-ID: <sample-{index}-{time.time_ns()}@sender.example>\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    return head + line * ((SIZE - len(head)) // len(line))


@dataclass
class Sampler:
    """Sessions beside the load that time end-of-DATA -> reply for each message."""

    port: int
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    sent_ok: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self, worker: int) -> None:
        index = 0
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as client:
            client.ehlo("sampler.example")
            while not self._stop.is_set():
                index += 1
                client.mail(SENDER)
                client.rcpt(RECIPIENT)
                code, _ = client.docmd("DATA")
                if code != 354:
                    self.failures += 1
                    client.rset()
                    continue
                body = sample_message(worker * 1_000_000 + index)
                client.send(body + b".\r\n")
                started = time.perf_counter()
                code, _ = client.getreply()
                elapsed = time.perf_counter() - started
                if code == 250:
                    self.latencies.append(elapsed)
                    self.sent_ok += 1
                else:
                    self.failures += 1

    def start(self) -> None:
        for worker in range(SAMPLER_SESSIONS):
            thread = threading.Thread(target=self._run, args=(worker,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def p95_ms(self) -> float:
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=20)[18] * 1000


@dataclass
class Result:
    name: str
    messages: int
    seconds: float
    sampler: Sampler
    stored: int
    #: Seconds from the load's last 250 until every accepted message was delivered (None:
    #: not all of them within the wait).
    settled: float | None = None

    def line(self) -> str:
        rate = self.messages / self.seconds
        settled = f"{self.settled:.1f} s" if self.settled is not None else "not within the wait"
        return (
            f"{self.name:<34} {rate:8.1f} msg/s  ({self.messages} in {self.seconds:.2f} s)  "
            f"p95 DATA->250 {self.sampler.p95_ms():7.1f} ms "
            f"(n={len(self.sampler.latencies)}, sampler failures {self.sampler.failures})  "
            f"stored {self.stored}, all delivered {settled} after the last 250"
        )


def settle(delivered: Callable[[], int], expected: int, timeout: float) -> float | None:
    """Seconds until `delivered()` reaches `expected`, or None after `timeout`."""
    started = time.monotonic()
    try:
        wait_until(lambda: delivered() >= expected, timeout, "deliveries")
    except TimeoutError:
        return None
    return time.monotonic() - started


def drive(port: int, messages: int) -> tuple[float, Sampler]:
    """smtp-source with the issue's load, the sampler alongside; returns wall seconds."""
    smtp_source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    command = [
        smtp_source,
        "-s", str(SESSIONS),
        "-m", str(messages),
        "-l", str(SIZE),
        "-f", SENDER,
        "-t", RECIPIENT,
        f"127.0.0.1:{port}",
    ]  # fmt: skip
    sampler = Sampler(port)
    sampler.start()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)  # noqa: S603 - smtp-source, loopback
    seconds = time.perf_counter() - started
    sampler.stop()
    if done.returncode != 0:
        raise RuntimeError(f"smtp-source failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, sampler


# -- Postfix -------------------------------------------------------------------------------


def run_postfix(work: Path, messages: int) -> Result:
    config = work / "postfix-etc"
    queue = work / "postfix-queue"
    mail = work / "postfix-mail"
    config.mkdir()
    queue.mkdir()  # Postfix makes its queue's subdirectories itself, not the queue directory
    mail.mkdir()
    postfix_user = pwd.getpwnam("postfix")
    os.chown(mail, postfix_user.pw_uid, postfix_user.pw_gid)
    port = free_port()
    shutil.copy("/etc/postfix/master.cf", config / "master.cf")
    master = (config / "master.cf").read_text()
    # Only a loopback smtpd on our port, plus postlogd for the log file.
    master = master.replace("smtp      inet  n       -       y       -       -       smtpd",
                            f"127.0.0.1:{port} inet n - n - - smtpd")  # fmt: skip
    (config / "master.cf").write_text(master)
    (config / "main.cf").write_text(
        "\n".join(
            [
                "compatibility_level = 3.6",
                f"queue_directory = {queue}",
                f"data_directory = {work / 'postfix-data'}",
                f"maillog_file = {work / 'postfix.log'}",
                f"maillog_file_prefixes = {work}",
                "inet_interfaces = loopback-only",
                "inet_protocols = ipv4",
                "myhostname = postfix.bench.local",
                "mydomain = bench.local",
                # The test domain is delivered here: as a virtual mailbox domain, into one
                # mbox file (Postfix's `virtual` delivery agent; no system user needed).
                "mydestination =",
                f"virtual_mailbox_domains = {DOMAIN}",
                f"virtual_mailbox_base = {mail}",
                "virtual_mailbox_maps = static:rcpt.mbox",
                f"virtual_uid_maps = static:{postfix_user.pw_uid}",
                f"virtual_gid_maps = static:{postfix_user.pw_gid}",
                "mynetworks = 127.0.0.0/8",
                "smtpd_client_restrictions =",
                "alias_maps =",
                "alias_database =",
                "biff = no",
                "smtpd_banner = $myhostname ESMTP",
                f"message_size_limit = {64 * 1024 * 1024}",
                "virtual_mailbox_limit = 0",
                # 20 load sessions + the sampler: never refused for concurrency.
                "default_process_limit = 100",
                "smtpd_client_connection_count_limit = 0",
                "smtpd_client_message_rate_limit = 0",
                "smtpd_client_connection_rate_limit = 0",
                "",
            ]
        )
    )
    env = {**os.environ, "MAIL_CONFIG": str(config)}
    postfix = shutil.which("postfix") or "/usr/sbin/postfix"
    # No chroot: Debian's init script, not `postfix start`, fills a chroot with what it needs.
    postconf = shutil.which("postconf") or "/usr/sbin/postconf"
    subprocess.run([postconf, "-c", str(config), "-F", "*/*/chroot = n"],  # noqa: S603
                   check=True, env=env, capture_output=True, timeout=60)  # fmt: skip
    started = subprocess.run([postfix, "-c", str(config), "start"], env=env,  # noqa: S603
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    if started.returncode != 0:
        log = work / "postfix.log"
        details = log.read_text(errors="replace")[-2000:] if log.exists() else started.stderr
        raise RuntimeError(f"could not start a private Postfix: {details}")
    try:
        wait_until(lambda: port_open(port), 30, "postfix smtpd port")
        seconds, sampler = drive(port, messages)
        expected = messages + sampler.sent_ok
        log = work / "postfix.log"

        def delivered() -> int:
            text_ = log.read_text(errors="replace") if log.exists() else ""
            return text_.count("status=sent")

        settled = settle(delivered, expected, 120)
        if delivered() < expected:
            problems = [line for line in log.read_text(errors="replace").splitlines()
                        if ("status=" in line and "status=sent" not in line)
                        or "fatal" in line or "warning" in line]  # fmt: skip
            print("  postfix delivery problems:", *problems[-3:], sep="\n    ")
        return Result("postfix (reference)", messages, seconds, sampler, delivered(), settled)
    finally:
        subprocess.run([postfix, "-c", str(config), "stop"], env=env,  # noqa: S603
                       capture_output=True, timeout=60)  # fmt: skip


# -- ours ----------------------------------------------------------------------------------


async def prepare_database(db_url: str) -> None:
    from VEZEPyEmail.app.settings import EmailSettings
    from VEZEPyEmail.smtp_main import migrate

    await migrate(EmailSettings(db_url=db_url))
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            # As provisioning makes it: special folders and a welcome message.
            await ensure_mailbox(session, address=RECIPIENT, display_name="", domain=DOMAIN)
            await session.commit()
    finally:
        await engine.dispose()


async def count_stored(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.message_id_header.is_distinct_from(f"<welcome.1@{DOMAIN}>"))
            )
            return int(count or 0)
    finally:
        await engine.dispose()


async def fresh_pg_database(base_url: str, name: str) -> str:
    admin = make_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return base_url.rsplit("/", 1)[0] + f"/{name}"


def run_ours(work: Path, messages: int, processes: int, db_url: str, label: str) -> Result:
    var_dir = work / f"veze-{label}-{processes}"
    var_dir.mkdir()
    asyncio.run(prepare_database(db_url))
    port = free_port()
    env = {
        **os.environ,
        "VEZE_VAR_DIR": str(var_dir),
        "VEZE_MAIL_DOMAIN": DOMAIN,
        "EMAIL_DB_URL": db_url,
        "EMAIL_SMTP_HOST": "127.0.0.1",
        "EMAIL_SMTP_PORT": str(port),
        "EMAIL_SUBMISSION_PORT": str(free_port()),
        "EMAIL_SMTPS_PORT": str(free_port()),
        "EMAIL_SMTP_PROCESSES": str(processes),
        "EMAIL_SMTP_SEPARATE": "1",
        "EMAIL_MAX_SIZE": str(1024 * 1024),
        # Every session of the load comes from 127.0.0.1 (Postfix exempts its own networks
        # from its per-client limits, as this does for the load's one address).
        "EMAIL_SMTP_MAX_CONNECTIONS_PER_IP": "1000",
        "REDIS_URL": "",
        "VEZE_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "VEZEPyEmail.smtp_main"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=(work / f"smtp-{label}-{processes}.log").open("w"),
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = 0
        while ready < processes:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError("smtp_main ended before it was ready")
            ready += line.startswith("smtp_main ready")
        try:
            seconds, sampler = drive(port, messages)
        except RuntimeError:
            log = (work / f"smtp-{label}-{processes}.log").read_text(errors="replace")
            print(*[line for line in log.splitlines() if '"error"' in line][-3:], sep="\n")
            raise
        # Accepted messages are filed behind the 250s (services/intake, ADR 0023).
        settled = settle(lambda: asyncio.run(count_stored(db_url)), messages + sampler.sent_ok, 300)
        stored = asyncio.run(count_stored(db_url))
        name = f"ours {label}, {processes} process{'es' if processes > 1 else ''}"
        return Result(name, messages, seconds, sampler, stored, settled)
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--db-url", default="", help="PostgreSQL server URL (a db is made)")
    parser.add_argument("--skip-postfix", action="store_true")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the whole comparison; prints the median"
    )
    args = parser.parse_args()
    counts = [int(item) for item in args.processes.split(",")]
    print(
        f"load: smtp-source -s {SESSIONS} -m {args.messages} -l {SIZE}, plus "
        f"{SAMPLER_SESSIONS} sampler sessions timing end-of-DATA -> 250; {os.cpu_count()} CPUs"
    )
    ratios: dict[str, list[float]] = {}
    for round_number in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"round {round_number} of {args.rounds}", flush=True)
        for name, ratio in run_round(args, counts).items():
            ratios.setdefault(name, []).append(ratio)
    if args.rounds > 1:
        for name, values in ratios.items():
            shown = ", ".join(f"{value:.2f}" for value in values)
            print(
                f"{name}: median {statistics.median(values):.2f}x Postfix's accept rate over "
                f"{len(values)} rounds ({shown}; target 1.5x)"
            )


def run_round(args: argparse.Namespace, counts: list[int]) -> dict[str, float]:
    """Postfix, then ours with each process count; each of ours against that Postfix."""
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-smtp-") as temp:
        work = Path(temp)
        os.chmod(work, 0o755)  # noqa: S103 - Postfix's user must reach its mailbox directory
        results: list[Result] = []
        if not args.skip_postfix:
            results.append(run_postfix(work, args.messages))
            print(results[-1].line(), flush=True)
            print(
                "  postfix: 250 after cleanup fsyncs the queue file; delivery to the mbox "
                "file by `virtual` follows asynchronously (stored = log status=sent)",
                flush=True,
            )
        for processes in counts:
            if args.db_url:
                url = asyncio.run(fresh_pg_database(args.db_url, f"bench_smtp_{processes}"))
                label = "PostgreSQL"
            else:
                url = f"sqlite+aiosqlite:///{work / f'email-{processes}.db'}"
                label = "SQLite"
            results.append(run_ours(work, args.messages, processes, url, label))
            print(results[-1].line(), flush=True)
        if not args.skip_postfix:
            reference = results[0].messages / results[0].seconds
            for result in results[1:]:
                ratio = (result.messages / result.seconds) / reference
                ratios[result.name] = ratio
                print(f"{result.name}: {ratio:.2f}x Postfix's accept rate (target 1.5x)")
    return ratios


if __name__ == "__main__":
    main()
