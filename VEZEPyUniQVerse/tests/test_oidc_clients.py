"""Registered clients: seeded from config/oauth_clients.json, secrets hashed, redirects matched."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from VEZEPyUniQVerse.app.main import create_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import OAuthClient
from VEZEPyUniQVerse.services.accounts.passwords import verify_password
from VEZEPyUniQVerse.services.oidc.clients import (
    CLIENTS_FILE,
    ClientAuthenticator,
    load_client_configs,
    redirect_uri_allowed,
    seed_clients,
)
from VEZEPyUniQVerse.tests.helpers import Running, with_changes

URLS = {
    "portal": "https://id.example",
    "game": "https://play.example",
    "email": "https://mail.example",
}


async def seeded(app_settings: PortalSettings, running: Running) -> dict[str, OAuthClient]:
    app = create_app(app_settings)
    async with running(app), app.state.sessionmaker() as db:
        return {row.client_id: row for row in await db.scalars(select(OAuthClient))}


async def test_clients_are_seeded_with_public_urls_and_hashed_secrets(
    portal_settings: PortalSettings, running: Running
) -> None:
    settings = with_changes(
        portal_settings, public_urls={"email": URLS["email"], "game": URLS["game"]}
    )
    clients = await seeded(settings, running)
    assert set(clients) == {
        "veze-webmail",
        "veze-game-ui",
        "veze-cli",
        "veze-game-service",
        "veze-email-service",
    }
    webmail = clients["veze-webmail"]
    assert webmail.redirect_uris == ["https://mail.example/auth/callback"]
    assert webmail.frontchannel_logout_uri == "https://mail.example/auth/frontchannel-logout"
    assert clients["veze-game-ui"].redirect_uris == ["https://play.example/auth/callback"]
    assert clients["veze-game-service"].audiences == ["veze-email"]
    assert all(client.enabled for client in clients.values())
    for client_id in ("veze-webmail", "veze-game-ui", "veze-game-service", "veze-email-service"):
        stored = clients[client_id].secret_hash
        secret = settings.client_secret(client_id)
        assert stored is not None and secret is not None and secret not in stored
        assert stored.startswith("$argon2")
        assert verify_password(stored, secret)
    assert clients["veze-cli"].secret_hash is None


async def test_seeding_again_changes_nothing(
    portal_settings: PortalSettings, running: Running
) -> None:
    first = await seeded(portal_settings, running)
    second = await seeded(portal_settings, running)
    for client_id, client in first.items():
        assert second[client_id].secret_hash == client.secret_hash
        assert second[client_id].redirect_uris == client.redirect_uris


async def test_clients_without_a_secret_or_no_longer_configured_are_disabled(
    portal_settings: PortalSettings, running: Running
) -> None:
    app = create_app(portal_settings)
    async with running(app):
        sessionmaker = app.state.sessionmaker
        async with sessionmaker.begin() as db:
            db.add(
                OAuthClient(
                    client_id="retired-client",
                    name="Gone",
                    secret_hash=None,
                    redirect_uris=["http://127.0.0.1/callback"],
                    grant_types=["authorization_code"],
                    scopes=["openid"],
                    audiences=[],
                    enabled=True,
                    updated_at=datetime.now(UTC),
                )
            )
        # Production without VEZE_CLIENT_SECRET_*: no secret for anyone.
        await seed_clients(
            sessionmaker, load_client_configs(CLIENTS_FILE, urls=URLS), secret_for=lambda _: None
        )
        async with sessionmaker() as db:
            enabled = {row.client_id: row.enabled for row in await db.scalars(select(OAuthClient))}
    assert enabled == {
        "veze-webmail": False,
        "veze-game-ui": False,
        "veze-cli": True,
        "veze-game-service": False,
        "veze-email-service": False,
        "retired-client": False,
    }


def test_an_unknown_placeholder_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    path.write_text(
        json.dumps(
            {
                "clients": [
                    {
                        "client_id": "x",
                        "type": "confidential",
                        "redirect_uris": ["{chat}/callback"],
                    }
                ]
            }
        )
    )
    with pytest.raises(ValueError, match="placeholder"):
        load_client_configs(path, urls=URLS)


def _client(*, public: bool, redirect_uris: list[str]) -> OAuthClient:
    return OAuthClient(
        client_id="c",
        name="c",
        secret_hash=None if public else "$argon2id$stub",
        redirect_uris=redirect_uris,
        grant_types=["authorization_code"],
        scopes=[],
        audiences=[],
        enabled=True,
    )


@pytest.mark.parametrize(
    ("candidate", "allowed"),
    [
        ("http://127.0.0.1/callback", True),
        ("http://127.0.0.1:51234/callback", True),
        ("http://localhost:8080/callback", True),
        ("http://127.0.0.1:51234/callback?x=1", False),
        ("http://127.0.0.1:51234/other", False),
        ("https://127.0.0.1:51234/callback", False),
        ("http://127.0.0.1.evil.example:80/callback", False),
        ("http://user@127.0.0.1:51234/callback", False),
        ("http://127.0.0.1:51234/callback#x", False),
        ("http://127.0.0.1:notaport/callback", False),
        ("http://[::1]:51234/callback", False),  # not registered with that host
    ],
)
def test_a_public_clients_loopback_redirect_may_use_any_port(candidate: str, allowed: bool) -> None:
    client = _client(
        public=True, redirect_uris=["http://127.0.0.1/callback", "http://localhost/callback"]
    )
    assert redirect_uri_allowed(client, candidate) is allowed


@pytest.mark.parametrize(
    ("candidate", "allowed"),
    [
        ("http://127.0.0.1:8004/auth/callback", True),
        ("http://127.0.0.1:8005/auth/callback", False),
        ("http://127.0.0.1:8004/auth/callback/", False),
        ("http://127.0.0.1:8004/auth/CALLBACK", False),
    ],
)
def test_a_confidential_clients_redirect_must_match_exactly(candidate: str, allowed: bool) -> None:
    client = _client(public=False, redirect_uris=["http://127.0.0.1:8004/auth/callback"])
    assert redirect_uri_allowed(client, candidate) is allowed


async def test_client_secrets_are_checked_and_successes_remembered(
    portal_settings: PortalSettings, running: Running
) -> None:
    clients = await seeded(portal_settings, running)
    service = clients["veze-game-service"]
    secret = portal_settings.client_secret("veze-game-service")
    assert secret is not None
    authenticator = ClientAuthenticator()
    assert await authenticator.verify(service, secret)
    assert not await authenticator.verify(service, secret + "x")
    assert await authenticator.verify(service, secret)  # from the cache this time
    assert not await authenticator.verify(clients["veze-cli"], "anything")
    # A changed stored hash (a new secret) is not answered from the cache.
    service.secret_hash = clients["veze-email-service"].secret_hash
    assert not await authenticator.verify(service, secret)
