"""`python -m VEZEPyEmail.smtp_main`: the SMTP listeners as their own process, without HTTP.

With `EMAIL_SMTP_PROCESSES=N` (N > 1) this process runs the migrations once and then
supervises N listener processes that each bind the MX, submission and SMTPS ports with
SO_REUSEPORT; the kernel spreads new connections across them. All of them share the database
and the blob directory, so a message accepted by any of them is stored once, durably.

Set `EMAIL_SMTP_SEPARATE=1` for both this process and the web process: the web process then
starts no listeners of its own. The outbound worker stays in the web process (it is off here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import logging.config
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from VEZEPyCore.db.engine import make_engine
from VEZEPyCore.db.migrations import upgrade_to_head
from VEZEPyEmail.app.main import MIGRATIONS, create_app
from VEZEPyEmail.app.settings import EmailSettings

log = logging.getLogger("VEZEPyEmail.smtp_main")

LOG_CONFIG = Path(__file__).resolve().parents[1] / "VEZEPyCore/observability/logging/email.json"
#: Printed (and flushed) by each listener process once its ports are bound.
READY_LINE = "smtp_main ready pid={pid}"


def listener_settings(settings: EmailSettings) -> EmailSettings:
    # The listeners are the point of this process; the outbound worker belongs to the web one.
    return settings.model_copy(update={"smtp_enabled": True, "outbound_worker": False})


async def serve(settings: EmailSettings) -> None:
    """Run one listener process until SIGTERM or SIGINT."""
    app = create_app(listener_settings(settings))
    app.state.smtp_main = True  # the listeners start here even with smtp_separate_process
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with app.router.lifespan_context(app):
        print(READY_LINE.format(pid=os.getpid()), flush=True)
        await stop.wait()


async def migrate(settings: EmailSettings) -> None:
    engine = make_engine(settings.db_url)  # creates the SQLite file's folder
    try:
        await upgrade_to_head(MIGRATIONS, settings.db_url)
    finally:
        await engine.dispose()


def supervise(settings: EmailSettings) -> int:
    """Run `smtp_processes` listener processes; stop them all when one ends or on a signal."""
    asyncio.run(migrate(settings))  # once, before the listeners race to do it
    command = [sys.executable, "-m", "VEZEPyEmail.smtp_main", "--listener"]
    children: list[subprocess.Popen[str]] = []
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        # One at a time: each runs the (no-op) migration check and binds before the next starts.
        for _ in range(settings.smtp_processes):
            # Our own interpreter and module, no outside input.
            child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
            children.append(child)
            assert child.stdout is not None
            line = child.stdout.readline()  # its only stdout line; logs go to stderr
            if not line.startswith("smtp_main ready"):
                if stopping:
                    return 0  # stopped while it was starting
                log.error("an SMTP listener process did not start; stopping the others")
                return 1  # the finally below stops and reaps them
            print(line.strip(), flush=True)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        stop(signal.SIGTERM, None)
        codes = [child.wait() for child in children]
    if not stopping:
        log.error("an SMTP listener process ended (exit codes %s); stopped the others", codes)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m VEZEPyEmail.smtp_main")
    # Internal: one listener process under the supervisor.
    parser.add_argument("--listener", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # The web process's JSON log format (uvicorn gets the same file with --log-config).
    logging.config.dictConfig(json.loads(LOG_CONFIG.read_text()))
    # aiosmtpd traces every SMTP command at INFO: debugging detail that costs per command.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    settings = EmailSettings()
    if args.listener or settings.smtp_processes == 1:
        asyncio.run(serve(settings))
        return 0
    return supervise(settings)


if __name__ == "__main__":
    raise SystemExit(main())
