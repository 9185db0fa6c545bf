"""The authorization code flow with PKCE, driven by a real OAuth client (Authlib) against the
portal served on a real port: discovery, log-in, code exchange, ID token, refresh rotation and
reuse detection, revocation, userinfo; and the client credentials grant.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from sqlalchemy import select

from VEZEPyCore.testing import free_port
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import AuditEvent, RefreshToken, User, WebSession
from VEZEPyUniQVerse.services.oidc.tokens import token_hash
from VEZEPyUniQVerse.tests.oidc_support import (
    ServedPortal,
    claims_of,
    create_user,
    fetch_jwks,
    follow_authorize,
    log_in,
    query_of,
    serve_portal,
)

CLI = "veze-cli"
CLI_SCOPE = "openid profile email email.read"


@pytest.fixture
async def portal(portal_settings: PortalSettings) -> AsyncIterator[ServedPortal]:
    async with serve_portal(portal_settings) as served:
        yield served


async def discover(portal: ServedPortal) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{portal.url}/.well-known/openid-configuration")
    assert response.status_code == 200
    metadata: dict[str, Any] = response.json()
    return metadata


def cli_client(**kwargs: Any) -> Any:
    """Authlib's client as the command-line app registers it: public, PKCE S256, loopback."""
    return AsyncOAuth2Client(
        client_id=CLI,
        scope=kwargs.pop("scope", CLI_SCOPE),
        redirect_uri=f"http://127.0.0.1:{free_port()}/callback",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        **kwargs,
    )


async def sign_in_with_cli(
    portal: ServedPortal, user: User, metadata: dict[str, Any], *, scope: str = CLI_SCOPE
) -> tuple[Any, dict[str, Any], str]:
    """Authorize and exchange the code: (client, token response, nonce)."""
    cookie, _ = await log_in(portal, user)
    client = cli_client(scope=scope)
    verifier, nonce = generate_token(48), secrets.token_urlsafe(16)
    url, _state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    location = await follow_authorize(portal.url, url, cookie)
    token = await client.fetch_token(
        metadata["token_endpoint"], authorization_response=location, code_verifier=verifier
    )
    return client, dict(token), nonce


async def test_discovery_names_endpoints_under_the_issuer(portal: ServedPortal) -> None:
    metadata = await discover(portal)
    assert metadata["issuer"] == portal.url == portal.settings.jwt_iss
    for name, path in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("revocation_endpoint", "/oauth/revoke"),
    ]:
        assert metadata[name] == portal.url + path
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]
    assert {"openid", "email.read", "game.play"} <= set(metadata["scopes_supported"])


async def test_jwks_publishes_public_keys_only(portal: ServedPortal) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{portal.url}/.well-known/jwks.json")
    keys = response.json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(keys[0])


async def test_full_code_flow_with_a_real_oauth_client(portal: ServedPortal) -> None:
    metadata = await discover(portal)
    alice = await create_user(portal, "alice", display_name="Alice Liddell")
    client = cli_client()
    verifier, nonce = generate_token(48), secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    assert "code_challenge_method=S256" in url

    # Not logged in yet: the portal sends the browser to its log-in page, to come back here.
    location = await follow_authorize(portal.url, url, cookie=None)
    assert location.startswith("/login?next=")
    assert query_of(location)["next"] == url.removeprefix(portal.url)

    cookie, sid = await log_in(portal, alice)
    location = await follow_authorize(portal.url, url, cookie)
    assert location.startswith(client.redirect_uri + "?")
    returned = query_of(location)
    assert returned["state"] == state and returned["iss"] == portal.url and returned["code"]

    token = await client.fetch_token(
        metadata["token_endpoint"], authorization_response=location, code_verifier=verifier
    )
    assert token["token_type"].lower() == "bearer"
    assert token["expires_in"] == portal.settings.access_token_ttl_seconds
    assert set(token["scope"].split()) == set(CLI_SCOPE.split())
    assert token["refresh_token"] and token["id_token"]

    # The ID token verifies against the published JWKS and is bound to this login.
    keys = await fetch_jwks(portal.url)
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": portal.url},
        aud={"essential": True, "value": CLI},
        nonce={"essential": True, "value": nonce},
        sid={"essential": True, "value": sid},
        exp={"essential": True},
    ).validate(id_token.claims)
    assert id_token.claims["sub"] == str(alice.id)
    assert id_token.claims["preferred_username"] == "alice"
    assert id_token.claims["email"] == f"alice@{portal.settings.mail_domain}"
    assert id_token.claims["at_hash"] == create_half_hash(token["access_token"], "RS256").decode()

    # The access token is an RFC 9068 JWT for the client's audiences and the portal.
    access = jwt.decode(token["access_token"], keys, algorithms=["RS256"])
    assert access.header["typ"] == "at+jwt"
    assert access.header["kid"] == keys.keys[0].kid
    claims = access.claims
    assert claims["iss"] == portal.url and claims["sub"] == str(alice.id)
    assert set(claims["aud"]) == {"veze-email", "veze-game", "veze-portal"}
    assert claims["client_id"] == CLI and claims["sid"] == sid and claims["jti"]
    assert claims["email"] == f"alice@{portal.settings.mail_domain}"
    assert claims["exp"] - claims["iat"] == portal.settings.access_token_ttl_seconds

    # Userinfo answers for the token's person, by GET and by POST.
    by_post = await client.post(metadata["userinfo_endpoint"])
    response = await client.get(metadata["userinfo_endpoint"])
    assert response.status_code == 200 and by_post.json() == response.json()
    assert response.json() == {
        "sub": str(alice.id),
        "preferred_username": "alice",
        "name": "Alice Liddell",
        "email": f"alice@{portal.settings.mail_domain}",
        "email_verified": True,
    }

    # Refresh rotates: a new refresh token each time, the old one is spent.
    first_refresh = token["refresh_token"]
    refreshed = await client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
    second_refresh = refreshed["refresh_token"]
    assert second_refresh != first_refresh
    assert refreshed["access_token"] != token["access_token"]
    assert claims_of(refreshed["id_token"]).get("nonce") is None
    async with portal.sessionmaker() as db:
        spent = await db.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash(first_refresh))
        )
        assert spent is not None and spent.used_at is not None

    # Presenting the spent token again is reuse: refused, and the whole family is revoked.
    with pytest.raises(OAuthError) as reused:
        await client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
    assert reused.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as family:
        await client.refresh_token(metadata["token_endpoint"], refresh_token=second_refresh)
    assert family.value.error == "invalid_grant"
    async with portal.sessionmaker() as db:
        events = list(await db.scalars(select(AuditEvent.action)))
    assert "token.reuse_detected" in events
    assert events.count("token.issued") == 2
    await client.aclose()


async def test_refresh_may_narrow_the_scope(portal: ServedPortal) -> None:
    metadata = await discover(portal)
    bob = await create_user(portal, "bob")
    client, token, _ = await sign_in_with_cli(portal, bob, metadata)
    narrowed = await client.refresh_token(
        metadata["token_endpoint"], refresh_token=token["refresh_token"], scope="email.read"
    )
    assert narrowed["scope"] == "email.read"
    assert claims_of(narrowed["access_token"])["aud"] == ["veze-email", "veze-game"]
    assert "id_token" not in narrowed
    # The grant itself is not narrowed: the next refresh may ask for all of it again.
    widened_back = await client.refresh_token(
        metadata["token_endpoint"], refresh_token=narrowed["refresh_token"], scope=CLI_SCOPE
    )
    assert set(widened_back["scope"].split()) == set(CLI_SCOPE.split())
    await client.aclose()


async def test_revocation_ends_the_refresh_family(portal: ServedPortal) -> None:
    metadata = await discover(portal)
    carol = await create_user(portal, "carol")
    client, token, _ = await sign_in_with_cli(portal, carol, metadata)
    refreshed = await client.refresh_token(
        metadata["token_endpoint"], refresh_token=token["refresh_token"]
    )
    response = await client.revoke_token(
        metadata["revocation_endpoint"],
        token=refreshed["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert response.status_code == 200
    with pytest.raises(OAuthError) as refused:
        await client.refresh_token(
            metadata["token_endpoint"], refresh_token=refreshed["refresh_token"]
        )
    assert refused.value.error == "invalid_grant"
    # RFC 7009 section 2.2: unknown tokens (and access tokens) get the same 200.
    for unknown in ("not-a-token", token["access_token"]):
        response = await client.revoke_token(metadata["revocation_endpoint"], token=unknown)
        assert response.status_code == 200
    async with portal.sessionmaker() as db:
        assert "token.revoked" in set(await db.scalars(select(AuditEvent.action)))
    await client.aclose()


async def test_another_client_cannot_revoke_a_token(portal: ServedPortal) -> None:
    metadata = await discover(portal)
    dave = await create_user(portal, "dave")
    client, token, _ = await sign_in_with_cli(portal, dave, metadata)
    async with httpx.AsyncClient() as http:
        response = await http.post(
            metadata["revocation_endpoint"],
            data={"token": token["refresh_token"]},
            auth=("veze-webmail", portal.secret("veze-webmail")),
        )
    assert response.status_code == 200
    still = await client.refresh_token(
        metadata["token_endpoint"], refresh_token=token["refresh_token"]
    )
    assert still["access_token"]
    await client.aclose()


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_confidential_client_authenticates_with_its_secret(
    portal: ServedPortal, method: str
) -> None:
    metadata = await discover(portal)
    erin = await create_user(portal, "erin")
    cookie, _ = await log_in(portal, erin)
    client = AsyncOAuth2Client(
        client_id="veze-webmail",
        client_secret=portal.secret("veze-webmail"),
        scope="openid profile email email.read email.send",
        redirect_uri="http://127.0.0.1:8004/auth/callback",  # {email} of the default registry
        code_challenge_method="S256",
        token_endpoint_auth_method=method,
    )
    verifier = generate_token(48)
    url, _ = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce="n-1"
    )
    location = await follow_authorize(portal.url, url, cookie)
    token = await client.fetch_token(
        metadata["token_endpoint"], authorization_response=location, code_verifier=verifier
    )
    assert set(claims_of(token["access_token"])["aud"]) == {"veze-email", "veze-portal"}
    assert claims_of(token["id_token"])["aud"] == "veze-webmail"
    refreshed = await client.refresh_token(
        metadata["token_endpoint"], refresh_token=token["refresh_token"]
    )
    assert refreshed["refresh_token"] != token["refresh_token"]
    await client.aclose()


async def test_client_credentials_for_a_service(portal: ServedPortal) -> None:
    metadata = await discover(portal)
    service = AsyncOAuth2Client(
        client_id="veze-game-service",
        client_secret=portal.secret("veze-game-service"),
        token_endpoint_auth_method="client_secret_basic",
    )
    token = await service.fetch_token(
        metadata["token_endpoint"], grant_type="client_credentials", scope="email.send"
    )
    assert "refresh_token" not in token and "id_token" not in token
    claims = claims_of(token["access_token"])
    assert claims["sub"] == "svc:veze-game-service"
    assert claims["aud"] == ["veze-email"]
    assert claims["scope"] == "email.send"
    assert "email" not in claims
    full = await service.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    # email.system_mail: Game's match-summary mail (POST /internal/mail/deliver on Email).
    assert set(full["scope"].split()) == {"email.send", "email.admin", "email.system_mail"}
    with pytest.raises(OAuthError) as beyond:
        await service.fetch_token(
            metadata["token_endpoint"], grant_type="client_credentials", scope="game.admin"
        )
    assert beyond.value.error == "invalid_scope"
    # Service tokens are not about a person: userinfo refuses them.
    async with httpx.AsyncClient() as http:
        response = await http.get(
            metadata["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {full['access_token']}"},
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    await service.aclose()


@pytest.mark.parametrize(
    ("client_id", "secret_from"), [("veze-cli", None), ("veze-webmail", "veze-webmail")]
)
async def test_client_credentials_only_for_service_clients(
    portal: ServedPortal, client_id: str, secret_from: str | None
) -> None:
    data = {"grant_type": "client_credentials", "client_id": client_id}
    if secret_from:
        data["client_secret"] = portal.secret(secret_from)
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{portal.url}/oauth/token", data=data)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_token_responses_are_never_cached(portal: ServedPortal) -> None:
    async with httpx.AsyncClient() as http:
        good = await http.post(
            f"{portal.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("veze-email-service", portal.secret("veze-email-service")),
        )
        bad = await http.post(f"{portal.url}/oauth/token", data={"grant_type": "password"})
    assert good.status_code == 200 and good.headers["cache-control"] == "no-store"
    assert bad.status_code == 401 and bad.headers["cache-control"] == "no-store"
    assert set(bad.json()) == {"error", "error_description"}


async def test_unsupported_grant_type(portal: ServedPortal) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{portal.url}/oauth/token",
            data={"grant_type": "password", "username": "a", "password": "b"},
            auth=("veze-email-service", portal.secret("veze-email-service")),
        )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_a_pending_second_factor_counts_as_logged_out(portal: ServedPortal) -> None:
    metadata = await discover(portal)
    frank = await create_user(portal, "frank")
    cookie, _ = await log_in(portal, frank, second_factor_done=False)
    client = cli_client()
    url, _ = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=generate_token(48)
    )
    location = await follow_authorize(portal.url, url, cookie)
    assert location.startswith("/login?next=")
    await client.aclose()


async def test_prompt_none_without_a_session_answers_login_required(
    portal: ServedPortal,
) -> None:
    metadata = await discover(portal)
    client = cli_client()
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=generate_token(48), prompt="none"
    )
    returned = query_of(await follow_authorize(portal.url, url, cookie=None))
    assert returned["error"] == "login_required"
    assert returned["state"] == state and returned["iss"] == portal.url
    assert "code" not in returned
    await client.aclose()


async def test_refresh_is_refused_once_the_session_ends_or_the_account_is_disabled(
    portal: ServedPortal,
) -> None:
    metadata = await discover(portal)
    grace = await create_user(portal, "grace")
    client, token, _ = await sign_in_with_cli(portal, grace, metadata)
    sid = claims_of(token["access_token"])["sid"]
    async with portal.sessionmaker.begin() as db:
        web_session = await db.scalar(select(WebSession).where(WebSession.sid == sid))
        assert web_session is not None
        web_session.revoked_at = web_session.created_at
    with pytest.raises(OAuthError) as ended:
        await client.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert ended.value.error == "invalid_grant"
    response = await client.get(metadata["userinfo_endpoint"])
    assert response.status_code == 401  # the access token's session is gone too

    heidi = await create_user(portal, "heidi")
    client, token, _ = await sign_in_with_cli(portal, heidi, metadata)
    async with portal.sessionmaker.begin() as db:
        account = await db.get(User, heidi.id)
        assert account is not None
        account.disabled = True
    with pytest.raises(OAuthError) as disabled:
        await client.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert disabled.value.error == "invalid_grant"
    await client.aclose()


async def test_role_scopes_narrow_what_a_client_may_ask_for(portal: ServedPortal) -> None:
    metadata = await discover(portal)
    ivan = await create_user(portal, "ivan")
    client, token, _ = await sign_in_with_cli(
        portal, ivan, metadata, scope="openid email.read email.send game.play"
    )
    assert set(token["scope"].split()) == {"openid", "email.read", "email.send", "game.play"}
    # A scope the client is not registered for is refused at the authorization endpoint.
    cookie, _ = await log_in(portal, ivan)
    url, state = cli_client(scope="openid portal.admin").create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=generate_token(48)
    )
    returned = query_of(await follow_authorize(portal.url, url, cookie))
    assert returned["error"] == "invalid_scope" and returned["state"] == state
    await client.aclose()
