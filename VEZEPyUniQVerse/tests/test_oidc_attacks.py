"""Attacks on the provider, each refused: forged and stale tokens, stolen or replayed codes,
PKCE downgrades, open redirects, scope escalation, wrong client secrets, guessing.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from sqlalchemy import select, update

from VEZEPyCore.errors import Unauthorized
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import AuditEvent, AuthorizationCode, User
from VEZEPyUniQVerse.services.oidc.keys import KeyStore
from VEZEPyUniQVerse.services.oidc.tokens import token_hash
from VEZEPyUniQVerse.tests.oidc_support import (
    ServedPortal,
    claims_of,
    create_user,
    follow_authorize,
    header_of,
    log_in,
    query_of,
    serve_portal,
)

CLI = "veze-cli"
LOOPBACK = "http://127.0.0.1:51515/callback"
WEBMAIL_CALLBACK = "http://127.0.0.1:8004/auth/callback"


@pytest.fixture
async def portal(portal_settings: PortalSettings) -> AsyncIterator[ServedPortal]:
    async with serve_portal(portal_settings) as served:
        yield served


def authorize_url(portal: ServedPortal, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLI,
        "redirect_uri": LOOPBACK,
        "scope": "openid profile email email.read",
        "state": "st-1",
        "code_challenge": create_s256_code_challenge("v" * 43),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return f"{portal.url}/oauth/authorize?" + urlencode(
        {key: value for key, value in params.items() if value is not None}
    )


async def get_code(
    portal: ServedPortal,
    user: User,
    *,
    verifier: str,
    client_id: str = CLI,
    redirect_uri: str = LOOPBACK,
    scope: str = "openid profile email email.read",
) -> str:
    cookie, _ = await log_in(portal, user)
    url = authorize_url(
        portal,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge=create_s256_code_challenge(verifier),
    )
    location = await follow_authorize(portal.url, url, cookie)
    returned = query_of(location)
    assert "code" in returned, location
    return returned["code"]


async def token_request(
    portal: ServedPortal, data: dict[str, str], auth: tuple[str, str] | None = None
) -> httpx.Response:
    basic = httpx.BasicAuth(*auth) if auth is not None else None
    # Client secrets are Argon2 hashes: slow by design, and slower on a busy CI machine.
    async with httpx.AsyncClient(auth=basic, timeout=30) as http:
        return await http.post(f"{portal.url}/oauth/token", data=data)


async def exchange(
    portal: ServedPortal,
    code: str,
    verifier: str,
    *,
    redirect_uri: str = LOOPBACK,
    client_id: str = CLI,
    auth: tuple[str, str] | None = None,
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    if auth is None:
        data["client_id"] = client_id
    return await token_request(portal, data, auth)


async def tokens_for(portal: ServedPortal, handle: str, **kwargs: str) -> dict[str, str]:
    user = await create_user(portal, handle)
    verifier = generate_token(48)
    code = await get_code(portal, user, verifier=verifier, **kwargs)
    response = await exchange(portal, code, verifier)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def userinfo_status(portal: ServedPortal, token: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(
            f"{portal.url}/userinfo", headers={"Authorization": f"Bearer {token}"}
        )


def error_of(response: httpx.Response) -> str:
    error: str = response.json()["error"]
    return error


# --- forged and stale tokens ---


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_tampered_signature_is_refused(portal: ServedPortal) -> None:
    tokens = await tokens_for(portal, "mallory")
    header, _payload, signature = tokens["access_token"].split(".")
    claims = claims_of(tokens["access_token"])
    claims["scope"] += " portal.admin"
    forged = f"{header}.{_b64(claims)}.{signature}"
    response = await userinfo_status(portal, forged)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    with pytest.raises(Unauthorized, match="bad signature"):
        await portal.app.state.verifier.verify(forged)
    # The original, untouched, is fine: it is the change that is refused.
    assert (await userinfo_status(portal, tokens["access_token"])).status_code == 200


async def test_a_foreign_key_is_refused_whatever_kid_it_claims(portal: ServedPortal) -> None:
    tokens = await tokens_for(portal, "mallory")
    claims = claims_of(tokens["access_token"])
    attacker = RSAKey.generate_key(2048)
    real_kid = header_of(tokens["access_token"])["kid"]
    for kid, reason in [("attacker-key", "unknown key"), (real_kid, "bad signature")]:
        forged = jwt.encode({"alg": "RS256", "kid": kid, "typ": "at+jwt"}, claims, attacker)
        assert (await userinfo_status(portal, forged)).status_code == 401
        with pytest.raises(Unauthorized, match=reason):
            await portal.app.state.verifier.verify(forged)


async def test_unsigned_and_symmetric_forgeries_are_refused(portal: ServedPortal) -> None:
    tokens = await tokens_for(portal, "mallory")
    claims = claims_of(tokens["access_token"])
    kid = header_of(tokens["access_token"])["kid"]
    unsigned = f"{_b64({'alg': 'none', 'kid': kid, 'typ': 'at+jwt'})}.{_b64(claims)}."
    assert (await userinfo_status(portal, unsigned)).status_code == 401
    # HS256 "signed" with the public key as the HMAC secret (algorithm confusion).
    async with httpx.AsyncClient() as http:
        jwks = (await http.get(f"{portal.url}/.well-known/jwks.json")).json()
    confused = jwt.encode(
        {"alg": "HS256", "kid": kid, "typ": "at+jwt"},
        claims,
        OctKey.import_key(json.dumps(jwks["keys"][0]).encode()),
    )
    assert (await userinfo_status(portal, confused)).status_code == 401


async def test_an_expired_token_is_refused(portal: ServedPortal) -> None:
    tokens = await tokens_for(portal, "mallory")
    claims = claims_of(tokens["access_token"])
    keys: KeyStore = portal.app.state.oidc_keys
    active = await keys.signing_key()
    past = int(time.time()) - portal.settings.jwt_leeway_seconds - 60
    claims.update(iat=past - 300, nbf=past - 300, exp=past)
    expired = jwt.encode({"alg": "RS256", "kid": active.kid, "typ": "at+jwt"}, claims, active.key)
    response = await userinfo_status(portal, expired)
    assert response.status_code == 401
    assert "expired" in response.json()["error_description"]
    with pytest.raises(Unauthorized, match="expired"):
        await portal.app.state.verifier.verify(expired)


async def test_an_id_token_is_not_an_access_token(portal: ServedPortal) -> None:
    tokens = await tokens_for(portal, "mallory")
    response = await userinfo_status(portal, tokens["id_token"])
    assert response.status_code == 401
    assert response.json()["error_description"] == "not an access token"


async def test_userinfo_wants_a_token_for_the_portal(portal: ServedPortal) -> None:
    # No openid or profile scope: the token is for Email and Game only.
    tokens = await tokens_for(portal, "mallory", scope="email.read")
    assert "veze-portal" not in claims_of(tokens["access_token"])["aud"]
    response = await userinfo_status(portal, tokens["access_token"])
    assert response.status_code == 401
    assert response.json()["error_description"] == "the token is not meant for the portal"


# --- codes, PKCE and redirect URIs ---


async def test_code_replay_is_refused_and_revokes_what_the_code_issued(
    portal: ServedPortal,
) -> None:
    user = await create_user(portal, "victim")
    verifier = generate_token(48)
    code = await get_code(portal, user, verifier=verifier)
    first = await exchange(portal, code, verifier)
    assert first.status_code == 200
    replay = await exchange(portal, code, verifier)
    assert replay.status_code == 400 and error_of(replay) == "invalid_grant"
    refresh = await token_request(
        portal,
        {
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "client_id": CLI,
        },
    )
    assert refresh.status_code == 400 and error_of(refresh) == "invalid_grant"
    async with portal.sessionmaker() as db:
        actions = set(await db.scalars(select(AuditEvent.action)))
    assert {"token.reuse_detected", "token.refused", "token.issued"} <= actions


async def test_pkce_verifier_mismatch_is_refused(portal: ServedPortal) -> None:
    user = await create_user(portal, "victim")
    verifier = generate_token(48)
    code = await get_code(portal, user, verifier=verifier)
    stolen = await exchange(portal, code, generate_token(48))
    assert stolen.status_code == 400 and error_of(stolen) == "invalid_grant"
    assert "PKCE" in stolen.json()["error_description"]
    missing = await token_request(
        portal,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": LOOPBACK,
            "client_id": CLI,
        },
    )
    assert missing.status_code == 400 and error_of(missing) == "invalid_request"
    # The thief learnt nothing and spent nothing: the rightful client still gets its tokens.
    assert (await exchange(portal, code, verifier)).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain", "code_challenge": "v" * 43}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid game.admin"}, "invalid_scope"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ],
    ids=["plain-pkce", "no-method", "no-pkce", "bad-challenge", "implicit", "scope", "request"],
)
async def test_bad_authorization_requests_go_back_with_an_error(
    portal: ServedPortal, overrides: dict[str, str | None], error: str
) -> None:
    user = await create_user(portal, "victim")
    cookie, _ = await log_in(portal, user)
    location = await follow_authorize(portal.url, authorize_url(portal, **overrides), cookie)
    assert location.startswith(LOOPBACK + "?")
    returned = query_of(location)
    assert returned["error"] == error
    assert returned["state"] == "st-1"
    assert "code" not in returned


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [
        (CLI, "https://evil.example/callback"),
        (CLI, "http://127.0.0.1:51515/other"),
        (CLI, "https://127.0.0.1:51515/callback"),
        (CLI, "http://127.0.0.2:51515/callback"),
        (CLI, "http://127.0.0.1:51515/callback#fragment"),
        (CLI, None),
        ("veze-webmail", "http://127.0.0.1:9999/auth/callback"),
        ("veze-webmail", "http://127.0.0.1:8004/auth/callback/../../evil"),
        ("veze-game-service", "http://127.0.0.1:8004/auth/callback"),
        ("no-such-client", LOOPBACK),
        (None, LOOPBACK),
    ],
)
async def test_an_untrusted_redirect_uri_gets_a_page_never_a_redirect(
    portal: ServedPortal, client_id: str | None, redirect_uri: str | None
) -> None:
    user = await create_user(portal, "victim")
    cookie, _ = await log_in(portal, user)
    url = authorize_url(portal, client_id=client_id, redirect_uri=redirect_uri)
    async with httpx.AsyncClient(cookies={"veze_portal_session": cookie}, timeout=30) as browser:
        response = await browser.get(url, follow_redirects=False)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    async with portal.sessionmaker() as db:
        assert await db.scalar(select(AuthorizationCode)) is None


async def test_a_public_client_may_use_any_loopback_port(portal: ServedPortal) -> None:
    user = await create_user(portal, "victim")
    for redirect_uri in ("http://127.0.0.1:40001/callback", "http://localhost:40002/callback"):
        verifier = generate_token(48)
        code = await get_code(portal, user, verifier=verifier, redirect_uri=redirect_uri)
        response = await exchange(portal, code, verifier, redirect_uri=redirect_uri)
        assert response.status_code == 200


async def test_a_code_is_bound_to_its_client_and_redirect_uri(portal: ServedPortal) -> None:
    user = await create_user(portal, "victim")
    verifier = generate_token(48)
    code = await get_code(portal, user, verifier=verifier)
    other_client = await exchange(
        portal, code, verifier, auth=("veze-webmail", portal.secret("veze-webmail"))
    )
    assert other_client.status_code == 400 and error_of(other_client) == "invalid_grant"
    other_uri = await exchange(portal, code, verifier, redirect_uri="http://127.0.0.1:1/callback")
    assert other_uri.status_code == 400 and error_of(other_uri) == "invalid_grant"


async def test_an_expired_code_is_refused(portal: ServedPortal) -> None:
    user = await create_user(portal, "victim")
    verifier = generate_token(48)
    code = await get_code(portal, user, verifier=verifier)
    async with portal.sessionmaker.begin() as db:
        await db.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.code_hash == token_hash(code))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    response = await exchange(portal, code, verifier)
    assert response.status_code == 400 and error_of(response) == "invalid_grant"


# --- refresh tokens and clients ---


async def test_scope_escalation_via_refresh_is_refused(portal: ServedPortal) -> None:
    tokens = await tokens_for(portal, "victim", scope="openid email.read")
    for wider in ("openid email.read game.play", "openid email.read portal.admin"):
        response = await token_request(
            portal,
            {
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "scope": wider,
                "client_id": CLI,
            },
        )
        assert response.status_code == 400 and error_of(response) == "invalid_scope"
    # Refused, not spent: the token still refreshes within its grant.
    ok = await token_request(
        portal,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": CLI},
    )
    assert ok.status_code == 200 and set(ok.json()["scope"].split()) == {"openid", "email.read"}


async def test_a_refresh_token_works_only_for_its_client(portal: ServedPortal) -> None:
    tokens = await tokens_for(portal, "victim")
    response = await token_request(
        portal,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=("veze-webmail", portal.secret("veze-webmail")),
    )
    assert response.status_code == 400 and error_of(response) == "invalid_grant"


@pytest.mark.parametrize("method", ["basic", "post"])
async def test_a_wrong_client_secret_is_refused(portal: ServedPortal, method: str) -> None:
    data = {"grant_type": "client_credentials"}
    auth = None
    if method == "basic":
        auth = ("veze-game-service", "not-the-secret")
    else:
        data |= {"client_id": "veze-game-service", "client_secret": "not-the-secret"}
    response = await token_request(portal, data, auth)
    assert response.status_code == 401
    assert error_of(response) == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert response.headers["cache-control"] == "no-store"


async def test_unknown_clients_and_missing_secrets_are_refused(portal: ServedPortal) -> None:
    for data, auth in [
        ({"grant_type": "client_credentials"}, ("no-such-client", "x")),
        ({"grant_type": "client_credentials", "client_id": "veze-game-service"}, None),
        ({"grant_type": "client_credentials"}, None),
        # A public client that sends a secret is not what it registered as.
        ({"grant_type": "refresh_token", "refresh_token": "x"}, (CLI, "guess")),
    ]:
        response = await token_request(portal, data, auth)
        assert response.status_code == 401, data
        assert error_of(response) == "invalid_client"


async def test_repeated_parameters_and_json_bodies_are_refused(portal: ServedPortal) -> None:
    async with httpx.AsyncClient() as http:
        repeated = await http.post(
            f"{portal.url}/oauth/token",
            content="grant_type=client_credentials&scope=email.send&scope=email.admin",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=("veze-game-service", portal.secret("veze-game-service")),
        )
        as_json = await http.post(
            f"{portal.url}/oauth/token",
            json={"grant_type": "client_credentials"},
            auth=("veze-game-service", portal.secret("veze-game-service")),
        )
    assert repeated.status_code == 400 and error_of(repeated) == "invalid_request"
    assert as_json.status_code == 400 and error_of(as_json) == "invalid_request"


async def test_guessing_is_rate_limited(portal: ServedPortal) -> None:
    statuses = []
    for _ in range(22):
        response = await token_request(
            portal, {"grant_type": "client_credentials"}, ("veze-game-service", "guess")
        )
        statuses.append(response.status_code)
    assert statuses[:20] == [401] * 20
    assert statuses[-1] == 429
    assert int(response.headers["retry-after"]) > 0
    # The budget is per client and address: another client from here is not locked out.
    other = await token_request(
        portal,
        {"grant_type": "client_credentials"},
        ("veze-email-service", portal.secret("veze-email-service")),
    )
    assert other.status_code == 200
