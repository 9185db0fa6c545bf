"""The quick start's `./veze up` (honcho and the Procfile) serves /health and /ready on all three.

It runs with a PATH that does not hold the venv, as a person's shell would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from VEZEPyCore.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("portal", "game", "email")
SMTP_PORT_VARIABLES = ("EMAIL_SMTP_PORT", "EMAIL_SUBMISSION_PORT", "EMAIL_SMTPS_PORT")


def wait_until_ready(
    url: str, process: subprocess.Popen[bytes], timeout: float = 120.0
) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"honcho exited early with {process.returncode}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
            last_error = f"{response.status_code} {response.text}"
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready within {timeout}s: {last_error}")


def assert_email_trusts_the_portals_tokens(ports: dict[str, int], secrets_dir: Path) -> None:
    """The issuer follows PORTAL_PORT, and Email verifies the portal's RS256 tokens by JWKS."""
    portal = f"http://127.0.0.1:{ports['portal']}"
    discovery = httpx.get(f"{portal}/.well-known/openid-configuration", timeout=5).json()
    assert discovery["issuer"] == portal
    secret = (secrets_dir / "client-veze-game-service.secret").read_text().strip()
    granted = httpx.post(
        f"{portal}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "email.admin"},
        auth=("veze-game-service", secret),
        timeout=5,
    )
    assert granted.status_code == 200, granted.text
    created = httpx.post(
        f"http://127.0.0.1:{ports['email']}/api/mailboxes",
        json={"address": "procfile@vezeuniqverse.com"},
        headers={"Authorization": f"Bearer {granted.json()['access_token']}"},
        timeout=5,
    )
    assert created.status_code == 201, created.text


def assert_smtp_greets(port: int) -> None:
    """The MX listener runs inside the email process and greets (RFC 5321 section 4.2: 220)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        greeting = connection.makefile("rb").readline()
        connection.sendall(b"QUIT\r\n")
    assert greeting.startswith(b"220 "), greeting


def test_procfile_runs_all_services(tmp_path: Path) -> None:
    ports = {name: free_port() for name in SERVICES}
    smtp_ports = {name: free_port() for name in SMTP_PORT_VARIABLES}
    env = {
        # The Procfile derives the issuer and the JWKS URL from PORTAL_PORT unless these are set.
        **{k: v for k, v in os.environ.items() if k not in ("VEZE_JWT_ISS", "VEZE_JWKS_URL")},
        "PORTAL_PORT": str(ports["portal"]),
        "GAME_PORT": str(ports["game"]),
        "EMAIL_PORT": str(ports["email"]),
        # The email process runs its SMTP listeners by default: keep them off the dev ports.
        **{variable: str(port) for variable, port in smtp_ports.items()},
        "VEZE_VAR_DIR": str(tmp_path / "var"),
        "PATH": os.pathsep.join(
            part
            for part in os.environ.get("PATH", "").split(os.pathsep)
            if Path(part) != Path(sys.executable).parent
        ),
        **{
            f"VEZE_SERVICE_{name.upper()}": f"http://127.0.0.1:{port}"
            for name, port in ports.items()
        },
    }
    log = (tmp_path / "honcho.log").open("wb")
    process = subprocess.Popen(
        [str(ROOT / "veze"), "up"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for name, port in ports.items():
            health = wait_until_ready(f"http://127.0.0.1:{port}/health", process)
            assert health.json()["service"] == name
            ready = wait_until_ready(f"http://127.0.0.1:{port}/ready", process)
            assert ready.json()["checks"]["database"] == "ok"
            if name == "email":
                assert ready.json()["checks"]["smtp"] == "ok"
        assert_smtp_greets(smtp_ports["EMAIL_SMTP_PORT"])
        assert_email_trusts_the_portals_tokens(ports, tmp_path / "var" / "secrets")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    for name in SERVICES:
        port = ports[name]
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
        except httpx.ConnectError:
            continue
        raise AssertionError(f"{name} still answers on {port} after honcho stopped")
