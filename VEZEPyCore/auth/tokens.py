"""JWT verification (RFC 7519) for bearer tokens issued by the portal.

Two key sources: the portal's JWKS (asymmetric, cached, refetched once on an unknown `kid`) and
an HS256 shared secret for development. The algorithm allow-list is tied to the key source so a
token can never choose how it is checked: HS256 is only ever verified with the shared secret,
asymmetric algorithms only with JWKS keys, and `none` never.

A token that verified is remembered for a few seconds (`VerifiedTokens`, ADR 0021): a client
polling with one bearer is not re-verified on every request. The memory never outlives the
token's `exp`, is bounded in size, and is not used once the key set changes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey
from joserfc.jws import extract_compact

from VEZEPyCore.auth import scopes as scope_names
from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import Unauthorized

ASYMMETRIC_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
SYMMETRIC_ALGORITHMS = ("HS256",)
DEMO_TOKEN = "demo"  # noqa: S105 - the documented dev token, accepted only with VEZE_JWT_DEMO=1
MAX_TOKEN_LENGTH = 8192
#: How long a fetched JWKS is trusted before a refetch, and the minimum gap between refetches
#: triggered by unknown `kid`s (so a flood of forged kids cannot hammer the portal).
JWKS_TTL_SECONDS = 300.0
JWKS_MIN_REFETCH_SECONDS = 10.0
#: How long a verified token is remembered, and how many are at most (ADR 0021).
VERIFIED_TOKEN_SECONDS = 5.0
VERIFIED_TOKEN_ENTRIES = 4096


class KeySource(Protocol):
    """Where a verifier finds the asymmetric public keys: a JWKS URL, or the issuer's own DB."""

    async def key_set(self, *, refresh: bool = False) -> KeySet: ...


class JWKSCache:
    """Fetches the portal's JWKS over HTTP and keeps it for `JWKS_TTL_SECONDS`."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        min_refetch_seconds: float = JWKS_MIN_REFETCH_SECONDS,
    ) -> None:
        self._url = url
        self._client = client
        self._min_refetch_seconds = min_refetch_seconds
        self.fetch_count = 0
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            stale = self._keys is None or age > JWKS_TTL_SECONDS
            if stale or (refresh and age >= self._min_refetch_seconds):
                self._keys = await self._fetch()
                self._fetched_at = time.monotonic()
            assert self._keys is not None
            return self._keys

    async def _fetch(self) -> KeySet:
        try:
            self.fetch_count += 1
            response = await self._client.get(self._url)
            response.raise_for_status()
            return KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, jose_errors.JoseError) as exc:
            if self._keys is not None:
                return self._keys  # keep verifying with the last good keys while the IdP is down
            raise Unauthorized(f"cannot fetch signing keys: {type(exc).__name__}") from exc


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    #: The key set the signature was checked against; None for the shared secret, which
    #: cannot change under a verifier.
    keys: KeySet | None
    #: `time.monotonic()` after which this entry is not used.
    until: float


class VerifiedTokens:
    """Tokens that verified in the last few seconds, keyed by the exact token text.

    Only a token that passed every check gets in. An entry ends at the earlier of `seconds`
    after the check and the token's own `exp` (without the verifier's leeway, so never later
    than the verifier itself would accept it); the oldest entry goes when `max_entries` are
    held. The verifier uses an entry only while its key source still hands out the very key
    set the signature was checked against.
    """

    def __init__(
        self, *, seconds: float = VERIFIED_TOKEN_SECONDS, max_entries: int = VERIFIED_TOKEN_ENTRIES
    ) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[str, _Verified] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> _Verified | None:
        entry = self._entries.get(token)
        if entry is not None and time.monotonic() >= entry.until:
            del self._entries[token]
            return None
        return entry

    def put(self, token: str, principal: Principal, keys: KeySet | None) -> None:
        if self.seconds <= 0 or self.max_entries <= 0:
            return
        exp = principal.claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            return
        now = time.monotonic()
        lifetime = min(self.seconds, float(exp) - time.time())
        if lifetime <= 0:  # inside the leeway after exp: verified, but never remembered
            return
        self._entries.pop(token, None)
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # dicts keep insertion order
        self._entries[token] = _Verified(principal, keys, now + lifetime)

    def clear(self) -> None:
        self._entries.clear()


class TokenVerifier:
    """Verifies bearer tokens for one audience and turns them into a `Principal`."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        secret: str | None,
        jwks: KeySource | None,
        demo: bool,
        mail_domain: str,
        leeway_seconds: int = 30,
        verified: VerifiedTokens | None = None,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._secret_key = OctKey.import_key(secret) if secret else None
        self._jwks = jwks
        self._demo = demo
        self._mail_domain = mail_domain
        self._claims_registry = jwt.JWTClaimsRegistry(
            leeway=leeway_seconds,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        self.verified = verified if verified is not None else VerifiedTokens()

    async def verify(self, token: str) -> Principal:
        if self._demo and token == DEMO_TOKEN:
            return self.demo_principal()
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("token too long")
        remembered = self.verified.get(token)
        if remembered is not None and await self._keys_unchanged(remembered.keys):
            return remembered.principal
        algorithm, kid = _read_header(token)
        keys: KeySet | None = None
        if algorithm in SYMMETRIC_ALGORITHMS and self._secret_key is not None:
            claims = self._decode(token, self._secret_key, SYMMETRIC_ALGORITHMS)
        elif algorithm in ASYMMETRIC_ALGORITHMS and self._jwks is not None:
            claims, keys = await self._decode_with_jwks(token, kid)
        else:
            raise Unauthorized(f"signing algorithm {algorithm!r} is not accepted")
        principal = self._principal(token, claims)
        self.verified.put(token, principal, keys)
        return principal

    async def _keys_unchanged(self, keys: KeySet | None) -> bool:
        """Whether the key source still serves the key set a remembered token was checked
        with. A reload or a retired key makes a new set, so the token is checked again."""
        if keys is None:
            return True  # the shared secret is fixed for the verifier's life
        return self._jwks is not None and await self._jwks.key_set() is keys

    def demo_principal(self) -> Principal:
        """The demo operator: every scope, speaking for the local domain's demo mailbox."""
        address = f"demo@{self._mail_domain}"
        return Principal(
            subject=address,
            scopes=scope_names.ALL_SCOPES,
            address=address,
            is_demo=True,
            token=DEMO_TOKEN,
        )

    async def _decode_with_jwks(self, token: str, kid: str | None) -> tuple[dict[str, Any], KeySet]:
        assert self._jwks is not None
        if kid is None:
            raise Unauthorized("token has no key id")
        keys = await self._jwks.key_set()
        if not _has_kid(keys, kid):
            keys = await self._jwks.key_set(refresh=True)
        if not _has_kid(keys, kid):
            raise Unauthorized("token signed by an unknown key")
        return self._decode(token, keys, ASYMMETRIC_ALGORITHMS), keys

    def _decode(self, token: str, key: Any, algorithms: tuple[str, ...]) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, key, algorithms=list(algorithms))
        except jose_errors.BadSignatureError as exc:
            raise Unauthorized("bad signature") from exc
        except jose_errors.JoseError as exc:
            raise Unauthorized(f"malformed token: {exc.error}") from exc
        except ValueError as exc:
            raise Unauthorized("malformed token") from exc
        try:
            self._claims_registry.validate(decoded.claims)
        except jose_errors.ExpiredTokenError as exc:
            raise Unauthorized("token expired") from exc
        except jose_errors.JoseError as exc:
            raise Unauthorized(f"token rejected: {exc.description or exc.error}") from exc
        return decoded.claims

    def _principal(self, token: str, claims: dict[str, Any]) -> Principal:
        subject = str(claims["sub"])
        email = claims.get("email")
        if isinstance(email, str):
            address: str | None = email.lower()
        elif "@" in subject:
            address = subject.lower()
        else:
            address = None
        return Principal(
            subject=subject,
            scopes=_scopes_of(claims),
            address=address,
            claims=claims,
            token=token,
        )


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _read_header(token: str) -> tuple[str, str | None]:
    try:
        header = extract_compact(token.encode("ascii")).protected
    except (jose_errors.JoseError, ValueError, UnicodeEncodeError) as exc:
        raise Unauthorized("malformed token") from exc
    algorithm = header.get("alg")
    kid = header.get("kid")
    if not isinstance(algorithm, str):
        raise Unauthorized("token has no algorithm")
    return algorithm, kid if isinstance(kid, str) else None


def _scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(str(item) for item in raw)
    return frozenset()


def issue_hs256_token(
    *,
    secret: str,
    issuer: str,
    subject: str,
    audience: str | list[str],
    scopes: list[str] | tuple[str, ...] | frozenset[str],
    ttl_seconds: int = 300,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """Mint a short-lived HS256 token (development service-to-service calls and tests)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "scope": " ".join(sorted(scopes)),
    }
    claims.update(extra_claims or {})
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(secret))
