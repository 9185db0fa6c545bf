"""`honcho -f Procfile.scaleout start`: the SMTP listeners as their own process beside the web.

The email web process binds no SMTP port; `python -m VEZEPyEmail.smtp_main` does. A message
accepted by the SMTP process is stored in the database the web process serves, and its
`message.created` event reaches Redis, where the web process's SSE streams read it.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import sqlite3
import subprocess
import time
from pathlib import Path

import redis

from tests.test_procfile import (
    ROOT,
    SERVICES,
    SMTP_PORT_VARIABLES,
    assert_email_trusts_the_portals_tokens,
    assert_smtp_greets,
    wait_until_ready,
)
from VEZEPyCore.testing import free_port
from VEZEPyEmail.streaming.events import user_channel

ADDRESS = "procfile@vezeuniqverse.com"  # the mailbox assert_email_trusts_the_portals_tokens makes


def _honcho(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [str(ROOT / ".venv/bin/honcho"), "start", "-f", "Procfile.scaleout"],
            cwd=ROOT,
            env={**env, "PATH": f"{ROOT / '.venv/bin'}{os.pathsep}{os.environ.get('PATH', '')}"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _base_env(tmp_path: Path, ports: dict[str, int], smtp_ports: dict[str, int]) -> dict[str, str]:
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("VEZE_JWT_ISS", "VEZE_JWKS_URL", "REDIS_URL", "VEZE_REDIS_URL")
            and not k.endswith("_DB_URL")
        },
        "PORTAL_PORT": str(ports["portal"]),
        "GAME_PORT": str(ports["game"]),
        "EMAIL_PORT": str(ports["email"]),
        **{variable: str(port) for variable, port in smtp_ports.items()},
        "VEZE_VAR_DIR": str(tmp_path / "var"),
        **{
            f"VEZE_SERVICE_{name.upper()}": f"http://127.0.0.1:{port}"
            for name, port in ports.items()
        },
    }


def test_the_smtp_process_stores_where_the_web_reads_and_publishes_through_redis(
    tmp_path: Path, redis_url: str
) -> None:
    ports = {name: free_port() for name in SERVICES}
    smtp_ports = {name: free_port() for name in SMTP_PORT_VARIABLES}
    env = {**_base_env(tmp_path, ports, smtp_ports), "REDIS_URL": redis_url}
    process = _honcho(env, tmp_path / "honcho.log")
    try:
        for name, port in ports.items():
            ready = wait_until_ready(f"http://127.0.0.1:{port}/ready", process)
            assert ready.json()["checks"]["database"] == "ok"
            if name == "email":
                assert "smtp" not in ready.json()["checks"]  # the web process binds none
        mx = smtp_ports["EMAIL_SMTP_PORT"]
        deadline = time.monotonic() + 120
        while True:  # smtp_main migrates and binds on its own schedule
            try:
                assert_smtp_greets(mx)
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "honcho.log").read_text()
                time.sleep(0.2)
        assert_email_trusts_the_portals_tokens(ports, tmp_path / "var" / "secrets")

        client = redis.Redis.from_url(redis_url)
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        pubsub.subscribe(user_channel(ADDRESS))
        assert pubsub.get_message(timeout=10)["type"] == "subscribe"
        with smtplib.SMTP("127.0.0.1", mx, timeout=30) as smtp:
            smtp.sendmail(
                "someone@sender.example",
                [ADDRESS],
                f"From: someone@sender.example\r\nTo: {ADDRESS}\r\nSubject: scale-out\r\n"
                "Message-ID: <scale-out@sender.example>\r\n\r\nhello\r\n",
            )
        event = None
        deadline = time.monotonic() + 30
        while event is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1)
            if message and message["type"] == "message":
                event = json.loads(message["data"])
        pubsub.close()
        client.close()
        assert event is not None and event["type"] == "message.created", event
        assert event["subject"] == "scale-out"

        database = tmp_path / "var" / "email.db"  # the default EMAIL_DB_URL, under VEZE_VAR_DIR
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            subjects = [row[0] for row in connection.execute("SELECT subject FROM messages")]
        assert "scale-out" in subjects
    finally:
        _stop(process)


def test_the_scaleout_layout_refuses_to_start_without_redis(tmp_path: Path) -> None:
    ports = {name: free_port() for name in SERVICES}
    smtp_ports = {name: free_port() for name in SMTP_PORT_VARIABLES}
    process = _honcho(_base_env(tmp_path, ports, smtp_ports), tmp_path / "honcho.log")
    try:
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            _stop(process)
    assert "Procfile.scaleout needs REDIS_URL" in (tmp_path / "honcho.log").read_text()
