"""The brief's resolution order for service URLs, as Game's running app sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from VEZEPyGame.app.main import create_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.services.registry import email_base_url, portal_url, webmail_url
from VEZEPyGame.tests.conftest import Running

SERVICE_ENV = ("VEZE_SERVICE_EMAIL", "EMAIL_BASE_URL", "VEZE_SERVICE_PORTAL", "PORTAL_BASE_URL")


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        pytest.param({}, "http://127.0.0.1:8004", id="default-from-services-json"),
        pytest.param(
            {"EMAIL_BASE_URL": "http://mail.internal:9000/"},
            "http://mail.internal:9000",
            id="base-url",
        ),
        pytest.param(
            {
                "EMAIL_BASE_URL": "http://mail.internal:9000",
                "VEZE_SERVICE_EMAIL": "http://mx.veze:8004",
            },
            "http://mx.veze:8004",
            id="veze-service-beats-base-url",
        ),
    ],
)
async def test_email_url_resolution_order(
    monkeypatch: pytest.MonkeyPatch,
    game_settings: GameSettings,
    var_dir: Path,
    running: Running,
    environment: dict[str, str],
    expected: str,
) -> None:
    for name in SERVICE_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # No `service_urls` argument: the settings read the environment, as in production.
    settings = GameSettings(db_url=game_settings.db_url, var_dir=var_dir, environment="test")
    app = create_app(settings)

    async with running(app):
        registry = app.state.registry
        assert email_base_url(registry) == expected
        assert webmail_url(registry) == f"{expected}/ui/inbox"
        assert portal_url(registry) == "http://127.0.0.1:8000"
