"""`EMAIL_ASGI=1`: Game calls an Email app built and started inside its own process."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from VEZEPyGame.app.main import create_app
from VEZEPyGame.app.settings import GameSettings

ALICE = "alice@vezeuniqverse.com"


async def test_asgi_flag_starts_the_other_service_in_process(
    game_settings: GameSettings,
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mint: Callable[..., str],
) -> None:
    # The in-process Email reads its settings from the environment, as a real one would.
    email_db = tmp_path / "in-process-email.db"
    monkeypatch.setenv("EMAIL_DB_URL", f"sqlite+aiosqlite:///{email_db}")
    monkeypatch.setenv("VEZE_VAR_DIR", str(tmp_path / "email-var"))
    monkeypatch.setenv("VEZE_JWT_SECRET", game_settings.hs256_secret() or "")
    monkeypatch.setenv("VEZE_JWT_ISS", game_settings.jwt_iss)
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = game_settings.model_copy(
        update={
            "asgi_services": frozenset({"email"}),
            "service_urls": {"email": "http://127.0.0.1:9"},
        }
    )
    token = mint(
        ALICE, audience=["veze-game", "veze-email"], scopes=("game.read_mail", "email.read")
    )
    async with running(create_app(settings)) as client:
        response = await client.get(
            "/email/mail", params={"user": ALICE}, headers={"Authorization": f"Bearer {token}"}
        )
    # Email answered (not the dead URL): its migrations ran in its own database, and it says
    # there is no such mailbox yet.
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == f"no mailbox for {ALICE}"
    assert email_db.exists()
