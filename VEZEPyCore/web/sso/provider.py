"""The portal as seen by a relying party: discovery, the token endpoint, ID token checks.

OpenID Connect Core 1.0 (authorization code flow, ID token validation in section 3.1.3.7),
Discovery 1.0, OAuth 2.0 (RFC 6749: code exchange 4.1.3, refresh 6, client_secret_basic
2.3.1), PKCE (RFC 7636), JWT (RFC 7519) verified with joserfc.

The issuer is an identifier, not an address this service can always reach: in containers the
browser reaches the portal at `http://localhost:8000` while services call `http://portal:8000`.
Endpoints from the discovery document are therefore rebased: calls this service makes (token,
JWKS) go to the registry's URL for the portal, redirects of the browser (authorize, logout) to
its public URL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from VEZEPyCore.auth.tokens import ASYMMETRIC_ALGORITHMS, MAX_TOKEN_LENGTH, JWKSCache
from VEZEPyCore.errors import AppError, UpstreamTimeout, UpstreamUnavailable
from VEZEPyCore.services.calls import call_service

DISCOVERY_PATH = "/.well-known/openid-configuration"
#: How long a fetched discovery document is used before it is fetched again.
DISCOVERY_TTL_SECONDS = 3600.0
#: After a failed fetch, callers wait at least this long before the next attempt.
DISCOVERY_RETRY_SECONDS = 5.0
#: The hash halves of `at_hash` (OpenID Connect Core 3.1.3.6) for the algorithms we accept.
_AT_HASH = {"RS256": hashlib.sha256, "PS256": hashlib.sha256, "ES256": hashlib.sha256}


class SignInError(AppError):
    """Sign-in cannot complete; the person can try again. Never carries a token."""

    status_code, code = 400, "sign_in_failed"


class TokenEndpointError(AppError):
    """The token endpoint refused (RFC 6749 section 5.2): `error` is its code."""

    status_code, code = 400, "token_refused"

    def __init__(self, error: str, description: str, *, status_code: int) -> None:
        super().__init__(description or error, status_code=status_code, code=error)
        self.error = error


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    #: Browser-facing.
    authorization_endpoint: str
    end_session_endpoint: str
    #: Service-facing.
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    expires_in: int
    refresh_token: str | None
    id_token: str | None
    scope: str | None


def rebase(url: str, bases: tuple[str, ...], target: str) -> str:
    """`url` with whichever of `bases` it starts with replaced by `target`."""
    for base in bases:
        base = base.rstrip("/")
        if url == base or url.startswith(base + "/"):
            return target.rstrip("/") + url[len(base) :]
    return url


def pkce_s256(verifier: str) -> str:
    """The S256 code challenge of RFC 7636 section 4.2."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class ProviderClient:
    """Talks to one OpenID provider for one client; lives as long as the app's HTTP client."""

    def __init__(
        self,
        *,
        issuer: str,
        internal_url: str,
        public_url: str,
        client_id: str,
        client_secret: str | None,
        http_client: httpx.AsyncClient,
        deadline_seconds: float,
        leeway_seconds: int,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.http_client = http_client
        self._internal_url = internal_url.rstrip("/")
        self._public_url = public_url.rstrip("/")
        self._client_secret = client_secret
        self._deadline = deadline_seconds
        self._leeway = leeway_seconds
        self._metadata: ProviderMetadata | None = None
        self._fetched_at = 0.0
        self._failed_at = 0.0
        self._lock = asyncio.Lock()
        self._jwks: JWKSCache | None = None

    # ---- discovery ----------------------------------------------------------------------

    async def metadata(self) -> ProviderMetadata:
        async with self._lock:
            now = time.monotonic()
            if self._metadata is not None and now - self._fetched_at < DISCOVERY_TTL_SECONDS:
                return self._metadata
            if now - self._failed_at < DISCOVERY_RETRY_SECONDS:
                if self._metadata is not None:
                    return self._metadata
                raise UpstreamUnavailable("the portal's sign-in service is unavailable")
            try:
                metadata = await self._discover()
            except (UpstreamUnavailable, UpstreamTimeout):
                self._failed_at = now
                if self._metadata is None:
                    raise
                return self._metadata  # keep the last good document while the portal is down
            if self._metadata is None or metadata.jwks_uri != self._metadata.jwks_uri:
                self._jwks = None
            self._metadata, self._fetched_at = metadata, now
            return metadata

    async def _discover(self) -> ProviderMetadata:
        response = await call_service(
            self.http_client,
            "GET",
            self._internal_url + DISCOVERY_PATH,
            service="portal",
            deadline_seconds=self._deadline,
        )
        if response.status_code != 200:
            raise UpstreamUnavailable(
                f"the portal's discovery document answered HTTP {response.status_code}"
            )
        try:
            document = response.json()
        except ValueError as exc:
            raise UpstreamUnavailable("the portal's discovery document is not JSON") from exc
        if not isinstance(document, dict):
            raise UpstreamUnavailable("the portal's discovery document is not an object")
        # Discovery 1.0 section 4.3: the issuer in the document must be the one we trust.
        if str(document.get("issuer", "")).rstrip("/") != self.issuer.rstrip("/"):
            raise UpstreamUnavailable(
                "the portal's discovery document names another issuer; check VEZE_JWT_ISS"
            )
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise UpstreamUnavailable("the portal does not support PKCE S256")
        auth_methods = document.get("token_endpoint_auth_methods_supported")
        if isinstance(auth_methods, list) and "client_secret_basic" not in auth_methods:
            raise UpstreamUnavailable("the portal does not support client_secret_basic")
        endpoints = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str) or not value:
                raise UpstreamUnavailable(f"the portal's discovery document lacks {name}")
            endpoints[name] = value
        end_session = document.get("end_session_endpoint")
        if not isinstance(end_session, str) or not end_session:
            end_session = self.issuer.rstrip("/") + "/logout"
        known = (self.issuer, self._internal_url, self._public_url)
        return ProviderMetadata(
            issuer=self.issuer,
            authorization_endpoint=rebase(
                endpoints["authorization_endpoint"], known, self._public_url
            ),
            end_session_endpoint=rebase(end_session, known, self._public_url),
            token_endpoint=rebase(endpoints["token_endpoint"], known, self._internal_url),
            jwks_uri=rebase(endpoints["jwks_uri"], known, self._internal_url),
        )

    # ---- token endpoint -----------------------------------------------------------------

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Authorization code -> tokens (RFC 6749 section 4.1.3, RFC 7636 section 4.5)."""
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            }
        )

    async def refresh(self, refresh_token: str) -> TokenSet:
        """A fresh access token; the portal rotates the refresh token (RFC 6749 section 6)."""
        return await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )

    async def _token_request(self, form: dict[str, str]) -> TokenSet:
        if not self._client_secret:
            raise SignInError(
                f"no client secret for {self.client_id}: set VEZE_CLIENT_SECRET_"
                + self.client_id.upper().replace("-", "_")
            )
        metadata = await self.metadata()
        # client_secret_basic: id and secret are form-encoded before Basic (RFC 6749 2.3.1).
        auth = httpx.BasicAuth(quote(self.client_id, safe=""), quote(self._client_secret, safe=""))
        response = await call_service(
            self.http_client,
            "POST",
            metadata.token_endpoint,
            service="portal",
            deadline_seconds=self._deadline,
            data=form,
            auth=auth,
            headers={"Accept": "application/json"},
        )
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 500:
            raise UpstreamUnavailable(
                f"the portal's token endpoint failed (HTTP {response.status_code})"
            )
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            description = body.get("error_description") if isinstance(body, dict) else None
            raise TokenEndpointError(
                str(error or "invalid_response"),
                str(description or f"the portal refused (HTTP {response.status_code})"),
                status_code=400,
            )
        return _token_set(body)

    # ---- ID token -----------------------------------------------------------------------

    async def verify_id_token(
        self, id_token: str, *, nonce: str, access_token: str
    ) -> dict[str, Any]:
        """The ID token's claims, after every check of OpenID Connect Core 3.1.3.7."""
        if len(id_token) > MAX_TOKEN_LENGTH:
            raise SignInError("the ID token is too long")
        try:
            header = extract_compact(id_token.encode("ascii")).protected
        except (jose_errors.JoseError, ValueError, UnicodeEncodeError) as exc:
            raise SignInError("the ID token is malformed") from exc
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise SignInError(f"ID token algorithm {algorithm!r} is not accepted")
        if not isinstance(kid, str):
            raise SignInError("the ID token has no key id")
        keys = await self._key_set()
        if not any(key.kid == kid for key in keys.keys):
            keys = await self._key_set(refresh=True)
        if not any(key.kid == kid for key in keys.keys):
            raise SignInError("the ID token is signed by an unknown key")
        try:
            claims = jwt.decode(id_token, keys, algorithms=list(ASYMMETRIC_ALGORITHMS)).claims
        except jose_errors.BadSignatureError as exc:
            raise SignInError("the ID token's signature is wrong") from exc
        except (jose_errors.JoseError, ValueError) as exc:
            raise SignInError("the ID token is malformed") from exc
        registry = jwt.JWTClaimsRegistry(
            leeway=self._leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True},
        )
        try:
            registry.validate(claims)
        except jose_errors.ExpiredTokenError as exc:
            raise SignInError("the ID token has expired") from exc
        except jose_errors.JoseError as exc:
            raise SignInError(f"the ID token was refused: {exc.description or exc.error}") from exc
        if not hmac.compare_digest(str(claims["nonce"]).encode(), nonce.encode()):
            raise SignInError("the ID token's nonce does not match this sign-in")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise SignInError("the ID token was issued to another client")
        at_hash = claims.get("at_hash")
        digest = _AT_HASH.get(str(algorithm))
        if isinstance(at_hash, str) and digest is not None:
            half = digest(access_token.encode("ascii")).digest()
            expected = base64.urlsafe_b64encode(half[: len(half) // 2]).rstrip(b"=").decode()
            if not hmac.compare_digest(expected.encode(), at_hash.encode()):
                raise SignInError("the ID token does not belong to this access token")
        return claims

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        metadata = await self.metadata()
        if self._jwks is None:
            self._jwks = JWKSCache(metadata.jwks_uri, self.http_client)
        try:
            return await self._jwks.key_set(refresh=refresh)
        except AppError as exc:
            raise UpstreamUnavailable("the portal's signing keys cannot be fetched") from exc


def _token_set(body: dict[str, Any]) -> TokenSet:
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise TokenEndpointError("invalid_response", "no access token", status_code=400)
    if str(body.get("token_type", "")).lower() != "bearer":
        raise TokenEndpointError("invalid_response", "not a bearer token", status_code=400)
    expires_in = body.get("expires_in")
    refresh_token = body.get("refresh_token")
    id_token = body.get("id_token")
    scope = body.get("scope")
    return TokenSet(
        access_token=access_token,
        expires_in=int(expires_in) if isinstance(expires_in, int | float) else 0,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        id_token=id_token if isinstance(id_token, str) and id_token else None,
        scope=scope if isinstance(scope, str) else None,
    )
