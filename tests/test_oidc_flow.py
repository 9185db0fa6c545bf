"""Email trusts the portal's tokens through its JWKS, and only the right ones.

The portal runs on a real port (its URL is the issuer); Email runs its real lifespan with
`VEZE_JWKS_URL` pointing at the portal, so every check below fetches the portal's keys over
HTTP exactly as a deployment does.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import update

from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import SigningKey
from VEZEPyUniQVerse.services.oidc.keys import KeyStore
from VEZEPyUniQVerse.services.oidc.tokens import issue_service_token
from VEZEPyUniQVerse.tests.oidc_support import (
    ServedPortal,
    claims_of,
    create_user,
    follow_authorize,
    header_of,
    log_in,
    serve_portal,
)

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
DOMAIN = "vezeuniqverse.com"


@pytest.fixture
async def portal(portal_settings: PortalSettings) -> AsyncIterator[ServedPortal]:
    async with serve_portal(portal_settings) as served:
        yield served


@asynccontextmanager
async def email_trusting(
    portal: ServedPortal, email_settings: EmailSettings, running: Running
) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh Email app that verifies tokens with the portal's JWKS (a cold key cache)."""
    settings = email_settings.model_copy(
        update={"jwks_url": f"{portal.url}/.well-known/jwks.json", "jwt_iss": portal.url}
    )
    async with running(create_email_app(settings)) as email:
        yield email


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def service_token(portal: ServedPortal, client_id: str, scope: str | None = None) -> str:
    """Client credentials, fetched by Authlib's client as a service would."""
    client = AsyncOAuth2Client(
        client_id=client_id,
        client_secret=portal.secret(client_id),
        token_endpoint_auth_method="client_secret_basic",
    )
    async with client:
        extra = {"scope": scope} if scope else {}
        token = await client.fetch_token(
            f"{portal.url}/oauth/token", grant_type="client_credentials", **extra
        )
    access_token: str = token["access_token"]
    return access_token


async def webmail_token(portal: ServedPortal, handle: str) -> dict[str, Any]:
    """The webmail's code flow for a logged-in person."""
    user = await create_user(portal, handle)
    cookie, _ = await log_in(portal, user)
    client = AsyncOAuth2Client(
        client_id="veze-webmail",
        client_secret=portal.secret("veze-webmail"),
        scope="openid profile email email.read email.send",
        redirect_uri="http://127.0.0.1:8004/auth/callback",
        code_challenge_method="S256",
    )
    async with client:
        verifier = generate_token(48)
        url, _ = client.create_authorization_url(
            f"{portal.url}/oauth/authorize", code_verifier=verifier
        )
        location = await follow_authorize(portal.url, url, cookie)
        token = await client.fetch_token(
            f"{portal.url}/oauth/token", authorization_response=location, code_verifier=verifier
        )
    return dict(token)


async def create_mailbox(email: httpx.AsyncClient, token: str, address: str) -> httpx.Response:
    return await email.post("/api/mailboxes", json={"address": address}, headers=bearer(token))


async def test_email_accepts_the_game_services_client_credentials_token(
    portal: ServedPortal, email_settings: EmailSettings, running: Running
) -> None:
    token = await service_token(portal, "veze-game-service")
    assert claims_of(token)["sub"] == "svc:veze-game-service"
    async with email_trusting(portal, email_settings, running) as email:
        response = await create_mailbox(email, token, f"grace@{DOMAIN}")
        assert response.status_code == 201, response.text
        # Within its scopes only: the token may send and administer, not read mail.
        narrowed = await service_token(portal, "veze-game-service", scope="email.send")
        refused = await create_mailbox(email, narrowed, f"heidi@{DOMAIN}")
        assert refused.status_code == 403


async def test_email_accepts_the_portals_own_service_token(
    portal: ServedPortal, email_settings: EmailSettings, running: Running
) -> None:
    # What provisioning presents: signed with the active key, subject svc:portal.
    token = await issue_service_token(
        portal.app.state, audience="veze-email", scopes=["email.admin"]
    )
    async with email_trusting(portal, email_settings, running) as email:
        response = await create_mailbox(email, token, f"ivan@{DOMAIN}")
    assert response.status_code == 201, response.text


async def test_a_token_for_game_is_refused_by_email(
    portal: ServedPortal, email_settings: EmailSettings, running: Running
) -> None:
    # Audiences veze-game and veze-portal (its SMTP AUTH password checks), never veze-email.
    token = await service_token(portal, "veze-email-service")
    assert claims_of(token)["aud"] == ["veze-game", "veze-portal"]
    async with email_trusting(portal, email_settings, running) as email:
        response = await create_mailbox(email, token, f"judy@{DOMAIN}")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_webmail_token_reads_only_its_owners_mailbox(
    portal: ServedPortal, email_settings: EmailSettings, running: Running
) -> None:
    token = await webmail_token(portal, "alice")
    admin = await service_token(portal, "veze-game-service")
    async with email_trusting(portal, email_settings, running) as email:
        for handle in ("alice", "bob"):
            assert (await create_mailbox(email, admin, f"{handle}@{DOMAIN}")).status_code == 201
        own = await email.get(
            "/api/messages",
            params={"user": f"alice@{DOMAIN}"},
            headers=bearer(token["access_token"]),
        )
        assert own.status_code == 200, own.text
        other = await email.get(
            "/api/messages", params={"user": f"bob@{DOMAIN}"}, headers=bearer(token["access_token"])
        )
        assert other.status_code == 403
        # The ID token is for the webmail client, not a key to the API.
        id_token = await email.get(
            "/api/messages", params={"user": f"alice@{DOMAIN}"}, headers=bearer(token["id_token"])
        )
        assert id_token.status_code == 401


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_forged_and_expired_tokens_are_refused_by_email(
    portal: ServedPortal, email_settings: EmailSettings, running: Running
) -> None:
    genuine = await service_token(portal, "veze-game-service")
    header, _payload, signature = genuine.split(".")
    claims = claims_of(genuine)
    kid = header_of(genuine)["kid"]

    tampered = f"{header}.{_b64({**claims, 'sub': 'svc:someone-else'})}.{signature}"
    attacker = RSAKey.generate_key(2048)
    unknown_kid = jwt.encode({"alg": "RS256", "kid": "not-a-portal-key"}, claims, attacker)
    reused_kid = jwt.encode({"alg": "RS256", "kid": kid}, claims, attacker)
    active = await portal.app.state.oidc_keys.signing_key()
    past = int(time.time()) - 3600
    expired = jwt.encode(
        {"alg": "RS256", "kid": active.kid, "typ": "at+jwt"},
        {**claims, "iat": past - 300, "exp": past},
        active.key,
    )
    async with email_trusting(portal, email_settings, running) as email:
        assert (await create_mailbox(email, genuine, f"kim@{DOMAIN}")).status_code == 201
        for name, token, reason in [
            ("tampered", tampered, "bad signature"),
            ("unknown kid", unknown_kid, "unknown key"),
            ("foreign key, real kid", reused_kid, "bad signature"),
            ("expired", expired, "token expired"),
        ]:
            response = await create_mailbox(email, token, f"kim@{DOMAIN}")
            assert response.status_code == 401, name
            assert reason in response.json()["detail"], name


async def test_old_tokens_verify_after_a_rotation_until_their_key_is_unpublished(
    portal: ServedPortal, email_settings: EmailSettings, running: Running
) -> None:
    old_token = await service_token(portal, "veze-game-service")
    keys: KeyStore = portal.app.state.oidc_keys
    old_kid = header_of(old_token)["kid"]
    new_kid = await keys.rotate()
    new_token = await service_token(portal, "veze-game-service")
    assert header_of(new_token)["kid"] == new_kid != old_kid

    async with email_trusting(portal, email_settings, running) as email:
        assert (await create_mailbox(email, old_token, f"lee@{DOMAIN}")).status_code == 201
        assert (await create_mailbox(email, new_token, f"lee@{DOMAIN}")).status_code == 200

    # The old key's tokens have all expired: the portal stops publishing it.
    async with portal.sessionmaker.begin() as db:
        await db.execute(
            update(SigningKey)
            .where(SigningKey.kid == old_kid)
            .values(unpublish_after=datetime.now(UTC) - timedelta(seconds=1))
        )
    keys.invalidate()
    async with email_trusting(portal, email_settings, running) as email:
        refused = await create_mailbox(email, old_token, f"lee@{DOMAIN}")
        assert refused.status_code == 401
        assert "unknown key" in refused.json()["detail"]
        assert (await create_mailbox(email, new_token, f"lee@{DOMAIN}")).status_code == 200
