from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from VEZEPyCore.settings import CoreSettings, read_or_create_secret, service_urls_from_environment

STRONG = "s" * 48


def test_production_refuses_demo_auth() -> None:
    with pytest.raises(ValidationError, match="VEZE_JWT_DEMO"):
        CoreSettings(environment="production", jwt_demo=True, jwt_secret=STRONG)


@pytest.mark.parametrize("secret", ["changeme", "secret", "short-but-not-default"])
def test_production_refuses_a_default_or_short_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="VEZE_JWT_SECRET"):
        CoreSettings(environment="production", jwt_secret=secret)


def test_production_needs_a_key_source() -> None:
    with pytest.raises(ValidationError, match="VEZE_JWKS_URL"):
        CoreSettings(environment="production")


def test_production_starts_with_jwks_or_a_strong_secret() -> None:
    assert CoreSettings(environment="production", jwks_url="http://portal/jwks").jwks_url
    assert CoreSettings(environment="production", jwt_secret=STRONG).hs256_secret() == STRONG


def test_environment_names_of_the_brief(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)  # CI's second pass sets it
    monkeypatch.setenv("VEZE_JWT_DEMO", "1")
    monkeypatch.setenv("VEZE_REDIS_URL", "redis://example:6379/0")
    monkeypatch.setenv("VEZE_JWT_ISS", "https://id.example")
    monkeypatch.setenv("VEZE_EMAIL_AUD", "mail-aud")
    monkeypatch.setenv("OTEL_ENABLED", "1")
    monkeypatch.setenv("EMAIL_ASGI", "1")
    monkeypatch.setenv("VEZE_PUBLIC_URL_EMAIL", "https://mail.example.com/")
    settings = CoreSettings()
    assert settings.jwt_demo is True
    assert settings.redis_url == "redis://example:6379/0"
    assert settings.jwt_iss == "https://id.example"
    assert settings.email_aud == "mail-aud"
    assert settings.otel_enabled is True
    assert "email" in settings.asgi_services
    assert settings.public_urls == {"email": "https://mail.example.com"}
    monkeypatch.setenv("REDIS_URL", "redis://primary:6379/1")
    assert CoreSettings().redis_url == "redis://primary:6379/1"


def test_demo_is_off_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEZE_JWT_DEMO", raising=False)
    assert CoreSettings().jwt_demo is False


def test_service_override_beats_base_url() -> None:
    urls = service_urls_from_environment(
        {
            "EMAIL_BASE_URL": "http://base:1/",
            "VEZE_SERVICE_EMAIL": "http://override:2",
            "GAME_BASE_URL": "http://game:3",
        }
    )
    assert urls == {"email": "http://override:2", "game": "http://game:3"}


def test_development_secret_is_generated_once_and_shared(tmp_path: Path) -> None:
    first = CoreSettings(var_dir=tmp_path).hs256_secret()
    second = CoreSettings(var_dir=tmp_path).hs256_secret()
    assert first == second
    assert first is not None and len(first) >= 48
    secret_file = tmp_path / "secrets" / "jwt-hs256.key"
    assert secret_file.stat().st_mode & 0o077 == 0
    assert read_or_create_secret(secret_file) == first
