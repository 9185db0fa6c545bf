"""Servers a fault test owns outright, so it may stop and restart them.

The shared dev servers and CI's servers are never touched: each test starts a private Redis or
a private PostgreSQL cluster on free loopback ports under a temporary directory, and stops it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from VEZEPyCore.testing import free_port, wait_for_port

PG_BIN = Path(os.environ.get("VEZE_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_SECONDS = 30.0


class PrivateRedis:
    """A `redis-server` on a fixed port that can be stopped and started again on that port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self._process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, self._process, timeout=START_SECONDS)

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel and never answered (a hung server)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no goodbye to the clients."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)  # a stopped process must run to die
            self._process.kill()
            self._process.wait(timeout=30)
        self._process = None


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    with tempfile.TemporaryDirectory(prefix="veze-fault-redis-") as directory:
        server = PrivateRedis(Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.kill()


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb as user postgres, as `.ci/run` does)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://veze:veze@127.0.0.1:{self.port}/veze_fault"

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=START_SECONDS * 2,
        )

    def create(self) -> None:
        shutil.chown(self.directory, "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync",
        )  # fmt: skip
        self.start()
        psql = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q",
                "-v", "ON_ERROR_STOP=1", "-c"]  # fmt: skip
        self._as_postgres(*psql, "CREATE ROLE veze LOGIN PASSWORD 'veze' SUPERUSER")
        self._as_postgres(*psql, "CREATE DATABASE veze_fault OWNER veze")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c autovacuum=off"  # fsync stays on: a restart must keep what was committed
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", str(int(START_SECONDS)),
            "-l", str(self.directory / "pg.log"), "-o", options, "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends sessions cleanly; `immediate` is a crash (recovery on the next start)."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN} (set VEZE_PG_BIN)")
    directory = Path(tempfile.mkdtemp(prefix="veze-fault-pg-"))
    server = PrivatePostgres(directory)
    try:
        server.create()
        yield server
    finally:
        if server.running():
            server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


async def eventually(
    check: Callable[[], Awaitable[bool]], *, seconds: float, what: str, every: float = 0.05
) -> None:
    """Wait until `check()` is true, or fail saying `what` did not happen within `seconds`."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds:g}s")
        await asyncio.sleep(every)
