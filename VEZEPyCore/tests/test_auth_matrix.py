"""Every way a bearer can be wrong, against the real Email API and a real JWKS over HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from VEZEPyCore.testing import serve_app
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings

ISSUER = "http://portal.test"
ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"


class JWKSServer:
    """A real HTTP server publishing a key set that a test can rotate."""

    def __init__(self) -> None:
        self.keys: list[RSAKey] = [
            RSAKey.generate_key(2048, parameters={"kid": "key-1"}, private=True)
        ]
        self.requests = 0
        self.app = FastAPI()

        @self.app.get("/jwks.json")
        async def jwks() -> dict[str, Any]:
            self.requests += 1
            return dict(KeySet(list(self.keys)).as_dict(private=False))

    def sign(self, claims: dict[str, Any], *, key: RSAKey | None = None) -> str:
        signer = key or self.keys[0]
        return jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, signer)


def claims(subject: str = ALICE, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": subject,
        "aud": "veze-email",
        "iat": now,
        "exp": now + 300,
        "scope": "email.read",
    }
    base.update(overrides)
    return base


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
async def jwks_server() -> AsyncIterator[tuple[JWKSServer, str]]:
    server = JWKSServer()
    async with serve_app(server.app) as base_url:
        yield server, f"{base_url}/jwks.json"


@pytest.fixture
async def api(
    jwks_server: tuple[JWKSServer, str],
    email_settings: EmailSettings,
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
    mint: Callable[..., str],
) -> AsyncIterator[httpx.AsyncClient]:
    _, jwks_url = jwks_server
    settings = email_settings.model_copy(update={"jwks_url": jwks_url, "jwt_iss": ISSUER})
    app = create_app(settings)
    async with running(app) as client:
        admin = {
            "Authorization": f"Bearer {mint('svc:portal', scopes=('email.admin',), issuer=ISSUER)}"
        }
        for address in (ALICE, BOB):
            created = await client.post("/api/mailboxes", json={"address": address}, headers=admin)
            assert created.status_code == 201
        yield client


async def get_alice(client: httpx.AsyncClient, token: str | None, **headers: str) -> httpx.Response:
    if token is not None:
        headers.setdefault("Authorization", f"Bearer {token}")
    return await client.get("/api/messages", params={"user": ALICE}, headers=headers)


async def test_valid_rs256_token_reads_its_own_mailbox(
    api: httpx.AsyncClient, jwks_server: tuple[JWKSServer, str]
) -> None:
    server, _ = jwks_server
    response = await get_alice(api, server.sign(claims()))
    assert response.status_code == 200
    assert response.json()["messages"][0]["subject"] == "Welcome to VEZE UniQVerse"


async def test_access_token_query_parameter_is_accepted(
    api: httpx.AsyncClient, jwks_server: tuple[JWKSServer, str]
) -> None:
    server, _ = jwks_server
    response = await api.get(
        "/api/messages", params={"user": ALICE, "access_token": server.sign(claims())}
    )
    assert response.status_code == 200


async def test_missing_token_is_401_with_a_challenge(api: httpx.AsyncClient) -> None:
    response = await get_alice(api, None)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_token", "detail": "missing bearer token"}
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Token abc"])
async def test_malformed_authorization_header_is_401(api: httpx.AsyncClient, header: str) -> None:
    response = await api.get(
        "/api/messages", params={"user": ALICE}, headers={"Authorization": header}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("token", ["abc", "a.b.c", "not-a-jwt-at-all", "x" * 9000])
async def test_malformed_token_is_401(api: httpx.AsyncClient, token: str) -> None:
    response = await get_alice(api, token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_expired_token_is_401(
    api: httpx.AsyncClient, jwks_server: tuple[JWKSServer, str]
) -> None:
    server, _ = jwks_server
    long_ago = int(time.time()) - 3600
    response = await get_alice(api, server.sign(claims(iat=long_ago - 300, exp=long_ago)))
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired"


async def test_expiry_has_a_small_leeway(
    api: httpx.AsyncClient, jwks_server: tuple[JWKSServer, str]
) -> None:
    server, _ = jwks_server
    just_expired = int(time.time()) - 5
    assert (await get_alice(api, server.sign(claims(exp=just_expired)))).status_code == 200


@pytest.mark.parametrize(
    "override",
    [{"iss": "http://evil.test"}, {"aud": "veze-game"}, {"aud": ["veze-game", "other"]}],
    ids=["wrong-issuer", "wrong-audience", "wrong-audience-list"],
)
async def test_wrong_issuer_or_audience_is_401(
    api: httpx.AsyncClient, jwks_server: tuple[JWKSServer, str], override: dict[str, Any]
) -> None:
    server, _ = jwks_server
    response = await get_alice(api, server.sign(claims(**override)))
    assert response.status_code == 401


async def test_audience_list_containing_email_is_accepted(
    api: httpx.AsyncClient, jwks_server: tuple[JWKSServer, str]
) -> None:
    server, _ = jwks_server
    token = server.sign(claims(aud=["veze-game", "veze-email"]))
    assert (await get_alice(api, token)).status_code == 200


async def test_missing_scope_is_403(
    api: httpx.AsyncClient, jwks_server: tuple[JWKSServer, str]
) -> None:
    server, _ = jwks_server
    response = await get_alice(api, server.sign(claims(scope="game.play")))
    assert response.status_code == 403
    assert response.json() == {"error": "insufficient_scope", "detail": "missing scope: email.read"}


async def test_alg_none_is_refused(api: httpx.AsyncClient) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    response = await get_alice(api, f"{header}.{payload}.")
    assert response.status_code == 401
    assert "not accepted" in response.json()["detail"]


async def test_hs256_signed_with_the_rsa_public_key_is_refused(
    api: httpx.AsyncClient, jwks_server: tuple[JWKSServer, str]
) -> None:
    server, _ = jwks_server
    public_pem = server.keys[0].as_pem(private=False)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "key-1"}).encode())
    payload = b64(json.dumps(claims()).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    response = await get_alice(api, f"{header}.{payload}.{b64(signature)}")
    assert response.status_code == 401


async def test_demo_token_is_refused_when_demo_mode_is_off(api: httpx.AsyncClient) -> None:
    response = await get_alice(api, "demo")
    assert response.status_code == 401


async def test_one_user_cannot_read_another_users_mailbox(
    api: httpx.AsyncClient, jwks_server: tuple[JWKSServer, str]
) -> None:
    server, _ = jwks_server
    response = await get_alice(api, server.sign(claims(subject=BOB)))
    assert response.status_code == 403
    by_email_claim = await get_alice(api, server.sign(claims(subject="user-42", email=BOB)))
    assert by_email_claim.status_code == 403


async def test_unknown_kid_refetches_jwks_once(
    api: httpx.AsyncClient, jwks_server: tuple[JWKSServer, str]
) -> None:
    server, _ = jwks_server
    assert (await get_alice(api, server.sign(claims()))).status_code == 200
    fetches_before = server.requests
    rotated = RSAKey.generate_key(2048, parameters={"kid": "key-2"}, private=True)
    server.keys.append(rotated)
    # The cache refuses refetches closer together than its floor; age the cache past it.
    api_app = api._transport.app  # type: ignore[attr-defined]
    api_app.state.verifier._jwks._fetched_at -= 60
    assert (await get_alice(api, server.sign(claims(), key=rotated))).status_code == 200
    assert server.requests == fetches_before + 1
    # A token from a key nobody published is refused after at most one more refetch.
    stranger = RSAKey.generate_key(2048, parameters={"kid": "key-x"}, private=True)
    api_app.state.verifier._jwks._fetched_at -= 60
    assert (await get_alice(api, server.sign(claims(), key=stranger))).status_code == 401
    assert server.requests == fetches_before + 2
    assert (await get_alice(api, server.sign(claims(), key=stranger))).status_code == 401
    assert server.requests == fetches_before + 2  # flood protection: no refetch within the floor
