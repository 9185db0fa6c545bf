"""The single sign-on relying party (VEZEPyCore.web.sso) in Email and Game, over real HTTP.

The provider here is a small OpenID Connect provider written to the spec (code flow with PKCE
S256, client_secret_basic, rotating refresh tokens with reuse detection, RS256 ID tokens with
nonce and sid), so a test can make it misbehave in each way a relying party must refuse:
a forged or misdirected ID token, a wrong nonce, a replayed state. The same flows against the
real portal are in `test_sso_portal.py`; the browser journey in `tests/test_sso_browser.py`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from VEZEPyCore.observability.logs import redact
from VEZEPyCore.settings import CoreSettings
from VEZEPyCore.testing import free_port, serve_app
from VEZEPyCore.web.sso import safe_next
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings

ISSUER = "http://portal.test"  # the root conftest's TEST_ISSUER: `mint` tokens still verify
ALICE = "alice@vezeuniqverse.com"
BROWSER_HTML = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}


@dataclass(frozen=True)
class Client:
    service: str
    audiences: list[str]
    scope: str


CLIENTS = {
    "veze-webmail": Client("email", ["veze-email"], "openid profile email email.read email.send"),
    "veze-game-ui": Client(
        "game",
        ["veze-game", "veze-email"],
        "openid profile email game.play game.read_mail email.read game.admin",
    ),
}
#: Scopes the portal grants only to accounts with its admin role: a client may ask for them for
#: everyone, and the grant leaves them out for anyone else (RFC 6749 3.3), like the real portal.
ADMIN_ONLY_SCOPES = frozenset({"game.admin", "portal.admin", "email.admin"})


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    scope: str


@dataclass
class SpecProvider:
    """An OpenID provider faithful to the specs, with knobs to make it misbehave."""

    settings: CoreSettings
    issuer: str = ISSUER
    public_url: str = ""
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    )
    #: Who is signed in at the provider (None: nobody; interactive logins are not modelled).
    user: str | None = "alice"
    #: Accounts holding the admin role.
    admins: set[str] = field(default_factory=set)
    sid: str = field(default_factory=lambda: secrets.token_hex(8))
    access_ttl: int = 300
    #: Changes applied to the next ID tokens' claims, and a foreign key to sign them with.
    id_token_changes: dict[str, Any] = field(default_factory=dict)
    id_token_key: RSAKey | None = None
    discovery_issuer: str | None = None
    codes: dict[str, Grant] = field(default_factory=dict)
    #: refresh token -> (family, user, client); used tokens stay to detect reuse.
    refresh_tokens: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    used_refresh_tokens: set[str] = field(default_factory=set)
    revoked_families: set[str] = field(default_factory=set)
    refreshes: int = 0
    reuse_detected: int = 0
    token_requests: list[dict[str, str]] = field(default_factory=list)
    #: Every access, refresh and ID token handed out, to look for them where they must not be.
    issued: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            base = self.issuer
            return {
                "issuer": self.discovery_issuer or self.issuer,
                "authorization_endpoint": f"{base}/oauth/authorize",
                "token_endpoint": f"{base}/oauth/token",
                "jwks_uri": f"{base}/.well-known/jwks.json",
                "end_session_endpoint": f"{base}/logout",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }

        @app.get("/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            return dict(KeySet([self.key]).as_dict(private=False))

        @app.get("/oauth/authorize")
        async def authorize(request: Request) -> Response:
            query = request.query_params
            client = CLIENTS.get(query.get("client_id", ""))
            redirect_uri = query.get("redirect_uri", "")
            if client is None or redirect_uri != self.redirect_uri(query["client_id"]):
                return HTMLResponse("unknown client or redirect_uri", status_code=400)
            assert query.get("response_type") == "code"
            assert query.get("code_challenge_method") == "S256"
            assert query.get("scope") == client.scope
            back = {"state": query.get("state", ""), "iss": self.issuer}
            if self.user is None:
                if query.get("prompt") == "none":
                    back["error"] = "login_required"
                    return RedirectResponse(f"{redirect_uri}?{urlencode(back)}", status_code=302)
                return HTMLResponse("<h1>Sign in</h1>", status_code=200)
            code = secrets.token_urlsafe(24)
            self.codes[code] = Grant(
                client_id=query["client_id"],
                redirect_uri=redirect_uri,
                challenge=query["code_challenge"],
                nonce=query["nonce"],
                scope=query["scope"],
            )
            back["code"] = code
            return RedirectResponse(f"{redirect_uri}?{urlencode(back)}", status_code=302)

        @app.post("/oauth/token")
        async def token(
            request: Request,
            grant_type: str = Form(),
            code: str | None = Form(None),
            redirect_uri: str | None = Form(None),
            code_verifier: str | None = Form(None),
            refresh_token: str | None = Form(None),
        ) -> JSONResponse:
            client_id = self.authenticate_client(request.headers.get("authorization", ""))
            if client_id is None:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            self.token_requests.append({"grant_type": grant_type})
            if grant_type == "authorization_code":
                grant = self.codes.pop(code or "", None)  # codes are single-use
                if grant is None or grant.client_id != client_id:
                    return _invalid_grant()
                if redirect_uri != grant.redirect_uri or not code_verifier:
                    return _invalid_grant()
                if _s256(code_verifier) != grant.challenge:
                    return _invalid_grant()
                assert self.user is not None
                return JSONResponse(self.tokens(client_id, self.user, nonce=grant.nonce))
            if grant_type == "refresh_token":
                self.refreshes += 1
                entry = self.refresh_tokens.get(refresh_token or "")
                if entry is None or entry[2] != client_id:
                    return _invalid_grant()
                family, user, _ = entry
                if family in self.revoked_families:
                    return _invalid_grant()
                if refresh_token in self.used_refresh_tokens:
                    self.reuse_detected += 1
                    self.revoked_families.add(family)
                    return _invalid_grant()
                self.used_refresh_tokens.add(refresh_token or "")
                return JSONResponse(self.tokens(client_id, user, family=family))
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)

        @app.get("/logout")
        async def logout_page() -> HTMLResponse:
            return HTMLResponse("<h1>Sign out of VEZE UniQVerse?</h1>")

        return app

    def redirect_uri(self, client_id: str) -> str:
        service = CLIENTS[client_id].service
        return self.settings.public_urls[service] + "/auth/callback"

    def authenticate_client(self, header: str) -> str | None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        client_id, _, secret = base64.b64decode(value).decode().partition(":")
        if client_id not in CLIENTS or secret != self.settings.client_secret(client_id):
            return None
        return client_id

    def tokens(
        self, client_id: str, user: str, *, nonce: str | None = None, family: str | None = None
    ) -> dict[str, Any]:
        now = int(time.time())
        client = CLIENTS[client_id]
        granted = [
            s for s in client.scope.split() if user in self.admins or s not in ADMIN_ONLY_SCOPES
        ]
        common = {"iss": self.issuer, "sub": f"u-{user}", "iat": now, "sid": self.sid}
        access = {
            **common,
            "aud": client.audiences,
            "exp": now + self.access_ttl,
            "scope": " ".join(s for s in granted if "." in s),
            "email": f"{user}@vezeuniqverse.com",
            "preferred_username": user,
            "client_id": client_id,
        }
        family = family or secrets.token_hex(8)
        refresh = secrets.token_urlsafe(32)
        self.refresh_tokens[refresh] = (family, user, client_id)
        body: dict[str, Any] = {
            "access_token": jwt.encode({"alg": "RS256", "kid": self.key.kid}, access, self.key),
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "refresh_token": refresh,
            "scope": " ".join(granted),
        }
        self.issued += [body["access_token"], refresh]
        if nonce is not None:
            id_claims = {
                **common,
                "aud": client_id,
                "exp": now + 300,
                "nonce": nonce,
                "preferred_username": user,
                **self.id_token_changes,
            }
            signer = self.id_token_key or self.key
            body["id_token"] = jwt.encode({"alg": "RS256", "kid": signer.kid}, id_claims, signer)
            self.issued.append(body["id_token"])
        return body

    def admin_token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "svc:portal",
            "aud": "veze-email",
            "iat": now,
            "exp": now + 300,
            "scope": "email.admin",
        }
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)


def _invalid_grant() -> JSONResponse:
    return JSONResponse({"error": "invalid_grant"}, status_code=400)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class World:
    provider: SpecProvider
    provider_url: str
    email_url: str
    game_url: str
    browser: httpx.AsyncClient

    async def follow(self, url: str, *, limit: int = 10, **kwargs: Any) -> httpx.Response:
        """GET `url` and follow redirects like a browser, keeping every hop for inspection."""
        response = await self.browser.get(url, **kwargs)
        for _ in range(limit):
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = response.headers["location"]
            assert "access_token" not in location and "refresh_token" not in location
            response = await self.browser.get(
                httpx.URL(str(response.url)).join(location), headers=kwargs.get("headers")
            )
        raise AssertionError("too many redirects")

    async def sign_in_to_webmail(self) -> httpx.Response:
        inbox = await self.follow(f"{self.email_url}/ui/inbox", headers=BROWSER_HTML)
        assert inbox.status_code == 200, inbox.text
        return inbox

    def cookie(self, name: str) -> str | None:
        return self.browser.cookies.get(name)


@pytest.fixture
async def world(email_settings: EmailSettings, game_settings: GameSettings) -> AsyncIterator[World]:
    ports = {name: free_port() for name in ("portal", "email", "game")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    wiring = {
        "service_urls": dict(urls),
        "public_urls": dict(urls),
        "jwks_url": f"{urls['portal']}/.well-known/jwks.json",
        "jwt_iss": ISSUER,
    }
    email = create_email_app(email_settings.model_copy(update=wiring))
    game = create_game_app(game_settings.model_copy(update=wiring))
    provider = SpecProvider(settings=email_settings.model_copy(update=wiring))
    async with (
        serve_app(provider.app(), port=ports["portal"]),
        serve_app(email, port=ports["email"]),
        serve_app(game, port=ports["game"]),
        httpx.AsyncClient(timeout=10) as browser,
    ):
        # The provider names itself by its issuer; the services reach it by the registry.
        created = await browser.post(
            f"{urls['email']}/api/mailboxes",
            json={"address": ALICE},
            headers={"Authorization": f"Bearer {provider.admin_token()}"},
        )
        assert created.status_code == 201, created.text
        yield World(provider, urls["portal"], urls["email"], urls["game"], browser)


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    cookies = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name in jar:
            cookies[name] = jar
    return cookies


# ---- the `next` rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/ui/inbox", "/ui/inbox"),
        ("/ui/inbox?user=a%40b&x=1", "/ui/inbox?user=a%40b&x=1"),
        (None, "/home"),
        ("", "/home"),
        ("ui/inbox", "/home"),
        ("//evil.example/x", "/home"),
        ("https://evil.example/", "/home"),
        ("/\\evil.example", "/home"),
        ("/\t/evil.example", "/home"),
        ("/ui\n/x", "/home"),
        ("javascript:alert(1)", "/home"),
        ("/auth/login?next=/x", "/home"),
        ("/auth", "/home"),
        ("/" + "a" * 3000, "/home"),
    ],
)
def test_next_accepts_only_paths_on_this_site(value: str | None, expected: str) -> None:
    assert safe_next(value, "/home") == expected


# ---- sign-in --------------------------------------------------------------------------------


async def test_webmail_signs_in_through_the_provider_without_tokens_in_urls(world: World) -> None:
    legacy = await world.browser.get(
        f"{world.email_url}/ui/inbox", params={"access_token": "old-bookmark-token"}
    )
    assert legacy.headers["location"] == "/auth/login?next=%2Fui%2Finbox"
    start = await world.browser.get(f"{world.email_url}/ui/inbox", headers=BROWSER_HTML)
    assert start.status_code == 303
    assert start.headers["location"] == "/auth/login?next=%2Fui%2Finbox"

    login = await world.browser.get(f"{world.email_url}{start.headers['location']}")
    assert login.status_code == 303
    authorize = urlsplit(login.headers["location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == world.provider_url
    params = {key: values[0] for key, values in parse_qs(authorize.query).items()}
    assert params["client_id"] == "veze-webmail"
    assert params["redirect_uri"] == f"{world.email_url}/auth/callback"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43 and len(params["state"]) >= 32
    assert params["nonce"] and params["nonce"] != params["state"]
    pending = set_cookies(login)["veze_email_sso_login"]["veze_email_sso_login"]
    assert pending["httponly"] and pending["samesite"].lower() == "lax"
    assert pending["path"] == "/auth"

    back = await world.browser.get(login.headers["location"])
    assert back.status_code == 302
    callback = await world.browser.get(back.headers["location"])
    assert callback.status_code == 303, callback.text
    assert callback.headers["location"] == "/ui/inbox"
    assert callback.headers["cache-control"] == "no-store"
    session = set_cookies(callback)["veze_email_session"]["veze_email_session"]
    assert session["httponly"] and session["samesite"].lower() == "lax"
    assert session["path"] == "/" and not session["secure"]
    header = next(
        value
        for value in callback.headers.get_list("set-cookie")
        if value.startswith("veze_email_session=")
    )
    assert len(header) < 4000

    inbox = await world.browser.get(f"{world.email_url}/ui/inbox")
    assert inbox.status_code == 200
    assert "Welcome to VEZE UniQVerse" in inbox.text
    assert "Signed in as <strong>alice</strong>" in inbox.text
    assert 'action="/auth/logout"' in inbox.text
    token_requests = world.provider.token_requests
    assert token_requests == [{"grant_type": "authorization_code"}]


async def test_secure_cookies_when_configured(email_settings: EmailSettings, world: World) -> None:
    settings = email_settings.model_copy(
        update={
            "cookie_secure": True,
            "service_urls": {"portal": world.provider_url},
            "public_urls": {"portal": world.provider_url},
        }
    )
    async with serve_app(create_email_app(settings)) as base_url:
        login = await world.browser.get(f"{base_url}/auth/login")
    assert set_cookies(login)["veze_email_sso_login"]["veze_email_sso_login"]["secure"]


async def test_state_must_match_a_sign_in_started_in_this_browser(world: World) -> None:
    login = await world.browser.get(f"{world.email_url}/auth/login?next=/ui/inbox")
    back = await world.browser.get(login.headers["location"])
    callback_url = httpx.URL(back.headers["location"])

    for wrong in ("attacker-chosen-state", "état-ünïcode"):
        odd = await world.browser.get(callback_url.copy_set_param("state", wrong))
        assert odd.status_code == 400
    forged = callback_url.copy_set_param("state", "attacker-chosen-state")
    refused = await world.browser.get(forged)
    assert refused.status_code == 400
    assert "expired or was started in another browser" in refused.text
    assert "veze_email_session" not in set_cookies(refused)

    async with httpx.AsyncClient(timeout=10) as other_browser:
        elsewhere = await other_browser.get(callback_url)  # the code, but not the cookie
    assert elsewhere.status_code == 400

    assert (await world.browser.get(callback_url)).status_code == 303
    replay = await world.browser.get(callback_url)  # state is single-use
    assert replay.status_code == 400


async def test_open_redirects_are_refused(world: World) -> None:
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example"):
        world.browser.cookies.clear()
        login = await world.browser.get(f"{world.email_url}/auth/login", params={"next": target})
        back = await world.browser.get(login.headers["location"])
        callback = await world.browser.get(back.headers["location"])
        assert callback.headers["location"] == "/ui/inbox"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"nonce": "replayed-nonce"}, "nonce does not match"),
        ({"aud": "veze-game-ui"}, "ID token was refused"),
        ({"aud": ["veze-webmail", "other"], "azp": "other"}, "issued to another client"),
        ({"iss": "http://evil.test"}, "ID token was refused"),
        ({"exp": int(time.time()) - 3600}, "ID token has expired"),
        ({"sub": "u-mallory"}, "different people"),
    ],
    ids=["nonce", "audience", "azp", "issuer", "expired", "subject"],
)
async def test_a_bad_id_token_is_refused(world: World, change: dict[str, Any], reason: str) -> None:
    world.provider.id_token_changes = change
    page = await world.follow(f"{world.email_url}/auth/login")
    assert page.status_code == 400
    assert reason in page.text
    assert world.cookie("veze_email_session") is None


async def test_an_id_token_signed_by_another_key_is_refused(world: World) -> None:
    world.provider.id_token_key = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    page = await world.follow(f"{world.email_url}/auth/login")
    assert page.status_code == 400
    assert "signature is wrong" in page.text
    world.provider.id_token_key = RSAKey.generate_key(
        2048, parameters={"kid": "unknown"}, private=True
    )
    page = await world.follow(f"{world.email_url}/auth/login")
    assert "unknown key" in page.text
    assert world.cookie("veze_email_session") is None


async def test_provider_naming_another_issuer_is_not_trusted(world: World) -> None:
    world.provider.discovery_issuer = "http://evil.test"
    page = await world.follow(f"{world.email_url}/auth/login")
    assert page.status_code == 502
    assert "another issuer" in page.text


async def test_provider_errors_are_shown_not_looped(world: World) -> None:
    login = await world.browser.get(f"{world.email_url}/auth/login")
    state = parse_qs(urlsplit(login.headers["location"]).query)["state"][0]
    page = await world.browser.get(
        f"{world.email_url}/auth/callback",
        params={"state": state, "error": "access_denied", "error_description": "<b>no</b>"},
    )
    assert page.status_code == 400
    assert "&lt;b&gt;no&lt;/b&gt;" in page.text  # escaped
    assert 'href="/auth/login?next=%2Fui%2Finbox"' in page.text


async def test_a_tampered_session_cookie_is_no_session(world: World) -> None:
    await world.sign_in_to_webmail()
    value = world.cookie("veze_email_session")
    assert value is not None
    world.browser.cookies.set("veze_email_session", value[:-2] + "xx", domain="127.0.0.1")
    page = await world.browser.get(f"{world.email_url}/ui/inbox")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/auth/login")


async def test_tokens_and_codes_stay_out_of_urls_and_logs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.provider.access_ttl = 30  # refreshes too
    with caplog.at_level(logging.DEBUG):
        await world.sign_in_to_webmail()  # `follow` checks every redirect's URL
        await world.browser.get(f"{world.email_url}/ui/inbox")
        await world.follow(f"{world.game_url}/ui", headers=BROWSER_HTML)
    assert len(world.provider.issued) >= 6
    for secret in world.provider.issued:
        assert secret not in caplog.text
    assert "sub=u-alice" in caplog.text  # the sign-in was logged, by whom, not with what
    line = "GET /auth/callback?code=Splx0bOrYQ&state=af0ifjsldkj&iss=x HTTP/1.1"
    assert redact(line) == "GET /auth/callback?code=[redacted]&state=af0ifjsldkj&iss=x HTTP/1.1"


# ---- refresh --------------------------------------------------------------------------------


async def test_access_token_near_expiry_is_refreshed_and_the_refresh_token_rotated(
    world: World,
) -> None:
    world.provider.access_ttl = 30  # always inside the 60 s refresh margin
    await world.sign_in_to_webmail()  # the inbox after the callback already refreshes once
    assert world.provider.refreshes == 1
    for expected in (2, 3, 4):
        before = world.cookie("veze_email_session")
        page = await world.browser.get(f"{world.email_url}/ui/inbox")
        assert page.status_code == 200
        assert world.provider.refreshes == expected
        assert world.cookie("veze_email_session") != before
    assert world.provider.reuse_detected == 0


async def test_concurrent_requests_refresh_only_once(world: World) -> None:
    world.provider.access_ttl = 30
    await world.sign_in_to_webmail()
    before = world.provider.refreshes
    pages = await asyncio.gather(
        *(world.browser.get(f"{world.email_url}/ui/inbox") for _ in range(6)),
        world.browser.get(f"{world.email_url}/api/messages", params={"user": ALICE}),
    )
    assert all(page.status_code == 200 for page in pages)
    assert world.provider.refreshes == before + 1
    assert world.provider.reuse_detected == 0


async def test_a_refused_refresh_ends_the_session(world: World) -> None:
    world.provider.access_ttl = 30  # every request refreshes
    await world.sign_in_to_webmail()
    # The portal revokes the token family (sign-out there, or reuse detected elsewhere).
    world.provider.revoked_families.update(
        family for family, _, _ in world.provider.refresh_tokens.values()
    )
    page = await world.browser.get(f"{world.email_url}/ui/inbox")
    assert page.status_code == 303
    assert page.headers["location"] == "/auth/login?next=%2Fui%2Finbox"
    assert world.cookie("veze_email_session") is None
    api = await world.browser.get(f"{world.email_url}/api/messages", params={"user": ALICE})
    assert api.status_code == 401


# ---- cookie-authenticated API calls -------------------------------------------------------


async def test_the_pages_scripts_call_the_api_with_the_cookie_and_csrf(world: World) -> None:
    await world.sign_in_to_webmail()
    listing = await world.browser.get(f"{world.email_url}/api/messages", params={"user": ALICE})
    assert listing.status_code == 200
    message_id = listing.json()["messages"][0]["id"]
    row = await world.browser.get(f"{world.email_url}/api/messages/{message_id}/row")
    assert row.status_code == 200 and f'id="message-{message_id}"' in row.text

    read = f"{world.email_url}/api/messages/{message_id}/read"
    no_csrf = await world.browser.post(read, json={"read": True})
    assert no_csrf.status_code == 403
    csrf = world.cookie("veze_email_csrf")
    assert csrf
    cross_site = await world.browser.post(
        read,
        json={"read": True},
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    with_csrf = await world.browser.post(read, json={"read": True}, headers={"X-CSRF-Token": csrf})
    assert with_csrf.status_code == 200
    assert with_csrf.json()["unread"] is False


async def test_bearer_requests_are_unchanged(world: World) -> None:
    token = world.provider.tokens("veze-webmail", "alice", nonce="n")["access_token"]
    async with httpx.AsyncClient(base_url=world.email_url, timeout=10) as client:
        missing = await client.get("/api/messages", params={"user": ALICE})
        assert missing.status_code == 401
        assert missing.json()["detail"] == "missing bearer token"
        listing = await client.get(
            "/api/messages", params={"user": ALICE}, headers={"Authorization": f"Bearer {token}"}
        )
        message_id = listing.json()["messages"][0]["id"]
        # No CSRF token: a bearer is never sent by a browser on its own.
        read = await client.post(
            f"/api/messages/{message_id}/read", headers={"Authorization": f"Bearer {token}"}
        )
        assert read.status_code == 200
        # A bearer wins over a session cookie (and is checked on its own).
        await world.sign_in_to_webmail()
        client.cookies.update(world.browser.cookies)
        bad = await client.get(
            "/api/messages", params={"user": ALICE}, headers={"Authorization": "Bearer x.y.z"}
        )
        assert bad.status_code == 401


async def test_a_session_reaches_only_its_own_mailbox(world: World) -> None:
    await world.sign_in_to_webmail()
    other = await world.browser.get(
        f"{world.email_url}/api/messages", params={"user": "bob@vezeuniqverse.com"}
    )
    assert other.status_code == 403
    page = await world.browser.get(
        f"{world.email_url}/ui/inbox", params={"user": "bob@vezeuniqverse.com"}
    )
    assert page.status_code == 403


# ---- sign-out -------------------------------------------------------------------------------


async def test_sign_out_needs_csrf_and_goes_through_the_portal(world: World) -> None:
    await world.sign_in_to_webmail()
    refused = await world.browser.post(f"{world.email_url}/auth/logout")
    assert refused.status_code == 403
    assert world.cookie("veze_email_session") is not None

    csrf = world.cookie("veze_email_csrf")
    out = await world.browser.post(f"{world.email_url}/auth/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    assert out.headers["location"] == f"{world.provider_url}/logout"
    assert world.cookie("veze_email_session") is None

    link = await world.browser.get(f"{world.email_url}/auth/logout")
    assert link.status_code == 303 and link.headers["location"] == f"{world.provider_url}/logout"


async def test_front_channel_logout_ends_only_the_matching_session(world: World) -> None:
    await world.sign_in_to_webmail()
    url = f"{world.email_url}/auth/frontchannel-logout"
    for params in (
        {"iss": ISSUER, "sid": "another-session"},
        {"iss": ISSUER, "sid": "sïd-ünïcode"},
        {"iss": "http://evil.test", "sid": world.provider.sid},
        {"sid": world.provider.sid},
        {},
    ):
        kept = await world.browser.get(url, params=params)
        assert kept.status_code == 200
        assert kept.headers["cache-control"] == "no-store"
        assert world.cookie("veze_email_session") is not None, params

    ended = await world.browser.get(url, params={"iss": ISSUER, "sid": world.provider.sid})
    assert ended.status_code == 200
    assert ended.headers["cache-control"] == "no-store"
    assert ended.headers["content-security-policy"] == f"frame-ancestors {world.provider_url}"
    assert "Signed out" in ended.text
    assert world.cookie("veze_email_session") is None
    page = await world.browser.get(f"{world.email_url}/ui/inbox")
    assert page.status_code == 303


# ---- the game page --------------------------------------------------------------------------


async def test_game_page_recognises_someone_signed_in_at_the_portal(world: World) -> None:
    page = await world.follow(f"{world.game_url}/ui", headers=BROWSER_HTML)
    assert page.status_code == 200
    assert "Signed in as <strong>alice</strong>" in page.text
    assert 'id="sign-out"' in page.text
    assert world.cookie("veze_game_session") is not None
    # Its own cookie: signing in to the game did not sign in to webmail, and vice versa.
    assert world.cookie("veze_email_session") is None


async def test_game_admin_pages_open_only_to_the_portals_admins(world: World) -> None:
    # The game asks for game.admin at every sign-in; only the grant decides who holds it.
    await world.follow(f"{world.game_url}/ui", headers=BROWSER_HTML)
    refused = await world.browser.get(f"{world.game_url}/ui/admin/flags", headers=BROWSER_HTML)
    assert refused.status_code == 403
    assert "for administrators" in refused.text
    api = await world.browser.get(f"{world.game_url}/api/admin/flags")
    assert api.status_code == 403

    world.provider.admins.add("alice")
    async with httpx.AsyncClient(timeout=10) as admin_browser:
        admin = World(
            world.provider, world.provider_url, world.email_url, world.game_url, admin_browser
        )
        await admin.follow(f"{world.game_url}/ui", headers=BROWSER_HTML)
        page = await admin_browser.get(f"{world.game_url}/ui/admin/flags", headers=BROWSER_HTML)
        assert page.status_code == 200, page.text


async def test_game_page_shows_a_sign_in_button_to_visitors_without_looping(
    world: World,
) -> None:
    world.provider.user = None
    first = await world.browser.get(f"{world.game_url}/ui", headers=BROWSER_HTML)
    assert first.status_code == 303
    assert first.headers["location"] == "/auth/login?next=%2Fui&prompt=none"
    page = await world.follow(f"{world.game_url}/ui", headers=BROWSER_HTML)
    assert page.status_code == 200
    assert 'id="sign-in"' in page.text and "Signed in as" not in page.text
    again = await world.browser.get(f"{world.game_url}/ui", headers=BROWSER_HTML)
    assert again.status_code == 200  # checked a moment ago: no new trip to the portal


async def test_game_page_still_serves_visitors_while_the_portal_is_down(
    game_settings: GameSettings,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = game_settings.model_copy(
        update={"service_urls": {"portal": nowhere}, "public_urls": {"portal": nowhere}}
    )
    async with (
        serve_app(create_game_app(settings)) as game_url,
        httpx.AsyncClient(base_url=game_url, timeout=10) as browser,
    ):
        first = await browser.get("/ui", headers=BROWSER_HTML)
        assert first.headers["location"] == "/auth/login?next=%2Fui&prompt=none"
        back = await browser.get(first.headers["location"])
        assert back.status_code == 303 and back.headers["location"] == "/ui"
        page = await browser.get("/ui", headers=BROWSER_HTML)
        assert page.status_code == 200 and 'id="sign-in"' in page.text
        signing_in = await browser.get("/auth/login?next=/ui")  # a click on "Sign in"
        assert signing_in.status_code == 502
        assert "Sign-in did not complete" in signing_in.text


async def test_game_page_for_scripts_and_bots_never_redirects(world: World) -> None:
    async with httpx.AsyncClient(timeout=10) as bot:
        page = await bot.get(f"{world.game_url}/ui")
    assert page.status_code == 200
    assert 'id="sign-in"' in page.text


async def test_game_session_calls_email_through_game(world: World) -> None:
    await world.follow(f"{world.game_url}/ui", headers=BROWSER_HTML)
    mail = await world.browser.get(f"{world.game_url}/email/mail", params={"user": ALICE})
    assert mail.status_code == 200, mail.text
    assert mail.json()["messages"][0]["subject"] == "Welcome to VEZE UniQVerse"
