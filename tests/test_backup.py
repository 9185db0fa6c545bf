"""Back up, wipe, restore: an account and a mail (with its blob) come back, on whatever
databases this test pass uses (SQLite files, or PostgreSQL when *_DB_URL says so).

The commands run as an operator runs them: `python -m VEZEPyCore.backup ...` in a subprocess,
configured by the services' own environment variables.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from VEZEPyCore.backup.__main__ import main as backup_main
from VEZEPyCore.backup.plan import plan_from_environment
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.smtp.bridge import deliver_local
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.tests.accounts_helpers import portal
from VEZEPyUniQVerse.tests.helpers import with_changes

ROOT = Path(__file__).resolve().parents[1]
Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
Minter = Callable[..., str]


def environment(
    portal_settings: PortalSettings, game_settings: GameSettings, email_settings: EmailSettings
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("UNI_", "GAME_", "EMAIL_", "VEZE_"))
    }
    env.update(
        {
            "UNI_DB_URL": portal_settings.db_url,
            "GAME_DB_URL": game_settings.db_url,
            "EMAIL_DB_URL": email_settings.db_url,
            "VEZE_VAR_DIR": str(email_settings.var_dir),
            "EMAIL_MAIL_DIR": str(email_settings.resolved_mail_dir),
            "VEZE_SECRETS_DIR": str(email_settings.resolved_secrets_dir),
        }
    )
    return env


def backup_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "VEZEPyCore.backup", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def wipe_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    admin = await asyncpg.connect(
        parsed.set(drivername="postgresql", database="postgres").render_as_string(
            hide_password=False
        )
    )
    try:
        await admin.execute(f'DROP DATABASE "{parsed.database}" WITH (FORCE)')
    finally:
        await admin.close()


def test_the_plan_names_what_the_services_use(
    portal_settings: PortalSettings, game_settings: GameSettings, email_settings: EmailSettings
) -> None:
    plan = plan_from_environment(environment(portal_settings, game_settings, email_settings))
    assert plan.databases == {
        "portal": portal_settings.db_url,
        "game": game_settings.db_url,
        "email": email_settings.db_url,
    }
    assert plan.directories == {
        "mail": email_settings.resolved_mail_dir,
        "secrets": email_settings.resolved_secrets_dir,
    }
    # With nothing set, the same defaults as the settings classes.
    defaults = plan_from_environment({"VEZE_VAR_DIR": "/srv/veze"})
    base = {"var_dir": Path("/srv/veze"), "db_url": ""}
    assert defaults.databases == {
        "portal": PortalSettings.model_validate(base).db_url,
        "game": GameSettings.model_validate(base).db_url,
        "email": EmailSettings.model_validate(base).db_url,
    }
    email_defaults = EmailSettings.model_validate(base)
    assert defaults.directories == {
        "mail": email_defaults.resolved_mail_dir,
        "secrets": email_defaults.resolved_secrets_dir,
    }


async def test_backup_wipe_restore_brings_back_an_account_and_a_mail(
    portal_settings: PortalSettings,
    game_settings: GameSettings,
    email_settings: EmailSettings,
    running: Running,
    mint: Minter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    portal_settings = with_changes(portal_settings, provisioning_worker=False)
    alice = f"alice@{email_settings.mail_domain}"
    admin = {"Authorization": f"Bearer {mint('svc:portal', scopes=('email.admin',))}"}
    reader = {"Authorization": f"Bearer {mint(alice)}"}

    async with portal(portal_settings) as site:
        _browser, handle = await site.signed_up("keeper")
    async with running(create_game_app(game_settings)):
        pass
    email_app = create_email_app(email_settings)
    async with running(email_app) as email:
        assert (
            await email.post("/api/mailboxes", json={"address": alice}, headers=admin)
        ).status_code == 201
        # A mail as the SMTP listener stores it: the raw message is a blob under the mail dir.
        await deliver_local(
            email_app.state,
            raw=b"From: carol@example.org\r\nTo: " + alice.encode() + b"\r\n"
            b"Subject: Keep me\r\nMessage-ID: <keep.me@example.org>\r\n\r\nDo not lose me.\r\n",
            envelope_from="carol@example.org",
            recipients=[alice],
        )
        listed = (await email.get("/api/messages", params={"user": alice}, headers=reader)).json()
        before = {message["subject"]: message["id"] for message in listed["messages"]}
        kept = before["Keep me"]
        raw_before = (await email.get(f"/api/messages/{kept}/raw", headers=reader)).content
        assert b"Do not lose me." in raw_before
    assert any(email_settings.resolved_mail_dir.rglob("*.eml"))
    secrets_dir = email_settings.resolved_secrets_dir
    secrets_before = {path.name: path.read_bytes() for path in secrets_dir.iterdir()}
    assert secrets_before, "the services keep keys in the secrets directory"

    env = environment(portal_settings, game_settings, email_settings)
    archive = tmp_path / "backups" / "veze.tar.gz"
    created = backup_command(env, "create", "--output", str(archive))
    assert created.returncode == 0, created.stderr
    assert archive.stat().st_mode & 0o077 == 0, "the archive holds secrets: owner only"
    # The other runs call the same entry point in this process (a thread: PostgreSQL loads run
    # their own event loop), with the same environment.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert await asyncio.to_thread(backup_main, ["verify", str(archive)]) == 0

    # A damaged archive is refused before anything is touched.
    damaged = tmp_path / "damaged.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    assert await asyncio.to_thread(backup_main, ["restore", str(damaged)]) == 1
    assert "error:" in capsys.readouterr().err

    # Restoring over live data needs --force.
    assert await asyncio.to_thread(backup_main, ["restore", str(archive)]) == 1
    assert "not empty" in capsys.readouterr().err

    for url in (portal_settings.db_url, game_settings.db_url, email_settings.db_url):
        await wipe_database(url)
    shutil.rmtree(email_settings.resolved_mail_dir)
    shutil.rmtree(secrets_dir)

    restored = backup_command(env, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert {path.name: path.read_bytes() for path in secrets_dir.iterdir()} == secrets_before

    async with portal(portal_settings) as site:
        browser = await site.browser()
        assert (await browser.login(handle)).status_code == 303
    async with running(create_email_app(email_settings)) as email:
        listed = (await email.get("/api/messages", params={"user": alice}, headers=reader)).json()
        assert {message["subject"]: message["id"] for message in listed["messages"]} == before
        raw = await email.get(f"/api/messages/{kept}/raw", headers=reader)
        assert raw.status_code == 200 and raw.content == raw_before

    # --force replaces what is there (here: the same data again, the services stopped).
    assert await asyncio.to_thread(backup_main, ["restore", "--force", str(archive)]) == 0
