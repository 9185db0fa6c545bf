"""The provider's protocol logic, free of HTTP types: authorization requests and codes, the
token endpoint's grants, revocation and userinfo.

Functions only `flush()`; the router commits. A refusal is an `OAuthError`; when it carries
`keep_changes` (a replayed code, a reused refresh token) the revocation it caused must be
committed even though the request is refused.

References: RFC 6749 (OAuth 2.0) sections 4.1 and 6, RFC 7636 (PKCE), RFC 7009 (revocation),
RFC 9068 (JWT access tokens), RFC 9700 section 4.14 (refresh token rotation and reuse),
OpenID Connect Core 1.0 sections 3.1 and 5.3.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, cast
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jws import extract_compact
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import AuthorizationCode, OAuthClient, RefreshToken, User, WebSession
from VEZEPyUniQVerse.services.audit.service import record
from VEZEPyUniQVerse.services.oidc import scopes as scope_rules
from VEZEPyUniQVerse.services.oidc.clients import (
    ClientAuthenticator,
    get_client,
    is_public,
    redirect_uri_allowed,
)
from VEZEPyUniQVerse.services.oidc.errors import (
    OAuthError,
    invalid_client,
    invalid_grant,
    invalid_request,
    invalid_scope,
    unauthorized_client,
    unsupported_grant_type,
)
from VEZEPyUniQVerse.services.oidc.keys import KeyStore
from VEZEPyUniQVerse.services.oidc.schemas import TokenRead
from VEZEPyUniQVerse.services.oidc.tokens import (
    ACCESS_TOKEN_TYPE,
    issue_access_token,
    issue_id_token,
    opaque_token,
    token_hash,
)

#: RFC 6749 section 10.5 says at most 10 minutes; a redirect and a back-channel call need far
#: less, and a shorter life narrows the window for a stolen code.
CODE_TTL = timedelta(seconds=60)
#: Used and expired codes are kept this long so a late replay still revokes what they issued.
CODE_RETENTION = timedelta(days=1)
#: RFC 7636 section 4.1: 43-128 characters of the unreserved set.
CODE_VERIFIER_PATTERN = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
#: BASE64URL(SHA-256(verifier)) is always 43 characters.
S256_CHALLENGE_PATTERN = re.compile(r"[A-Za-z0-9\-_]{43}")
MAX_STATE_LENGTH = 1000
MAX_NONCE_LENGTH = 255
MAX_TOKEN_PARAMETER_LENGTH = 2000
CLIENT_REALM = "veze-portal"
SUPPORTED_PROMPTS = frozenset({"none", "login", "consent", "select_account"})
SERVICE_SUBJECT_PREFIX = "svc:"


@dataclass(frozen=True)
class Provider:
    """What the grants need from the running portal (lives on `app.state.oidc`)."""

    settings: PortalSettings
    keys: KeyStore
    authenticator: ClientAuthenticator

    @property
    def issuer(self) -> str:
        return self.settings.jwt_iss

    def endpoint(self, path: str) -> str:
        return self.settings.jwt_iss.rstrip("/") + path


# --- authorization endpoint (RFC 6749 section 4.1.1, OpenID Connect Core 3.1.2) ---


class AuthorizePageError(Exception):
    """The client or redirect URI cannot be trusted: tell the person, never redirect."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class AuthorizeRedirectError(Exception):
    """An error the client hears about at its redirect URI (RFC 6749 section 4.1.2.1)."""

    def __init__(self, error: str, description: str, *, redirect_uri: str, state: str | None):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True)
class AuthorizationRequest:
    client: OAuthClient
    redirect_uri: str
    state: str | None
    scopes: list[str]
    code_challenge: str
    nonce: str | None
    prompt: frozenset[str]


def _single(params: Mapping[str, Sequence[str]], name: str) -> tuple[str | None, bool]:
    """(value, duplicated): RFC 6749 section 3.1 forbids repeating a parameter."""
    values = params.get(name, ())
    return (values[0] if values else None), len(values) > 1


async def validate_authorization_request(
    db: AsyncSession, params: Mapping[str, Sequence[str]]
) -> AuthorizationRequest:
    # Until the client and its redirect URI are known to belong together, nothing is sent to
    # the redirect URI: an open redirector would hand codes and errors to anyone.
    client_id, repeated = _single(params, "client_id")
    if repeated or not client_id:
        raise AuthorizePageError("The request does not name one client (client_id).")
    client = await get_client(db, client_id)
    if client is None:
        raise AuthorizePageError("The application that sent you here is not registered.")
    redirect_uri, repeated = _single(params, "redirect_uri")
    if repeated or not redirect_uri:
        raise AuthorizePageError("The request does not name one redirect_uri.")
    if not redirect_uri_allowed(client, redirect_uri):
        raise AuthorizePageError("The redirect_uri is not registered for this application.")

    state, repeated_state = _single(params, "state")
    if state is not None and len(state) > MAX_STATE_LENGTH:
        state = None

    def refuse(error: str, description: str) -> AuthorizeRedirectError:
        return AuthorizeRedirectError(error, description, redirect_uri=redirect_uri, state=state)

    for name, values in params.items():
        if len(values) > 1:
            raise refuse("invalid_request", f"parameter {name} is repeated")
    if repeated_state:
        raise refuse("invalid_request", "parameter state is repeated")
    if "authorization_code" not in client.grant_types:
        raise refuse("unauthorized_client", "this client may not use the authorization code")
    if "request" in params:
        raise refuse("request_not_supported", "request objects are not supported")
    if "request_uri" in params:
        raise refuse("request_uri_not_supported", "request_uri is not supported")
    response_type = _first(params, "response_type")
    if not response_type:
        raise refuse("invalid_request", "response_type is required")
    if response_type != "code":
        raise refuse("unsupported_response_type", "only response_type=code is supported")
    response_mode = _first(params, "response_mode")
    if response_mode not in (None, "query"):
        raise refuse("invalid_request", "only response_mode=query is supported")
    # PKCE is mandatory, and only with S256 (RFC 7636 section 4.4.1; RFC 9700 2.1.1).
    method = _first(params, "code_challenge_method")
    challenge = _first(params, "code_challenge")
    if not challenge:
        raise refuse("invalid_request", "code_challenge is required (PKCE, RFC 7636)")
    if method != "S256":
        raise refuse("invalid_request", "code_challenge_method must be S256")
    if not S256_CHALLENGE_PATTERN.fullmatch(challenge):
        raise refuse("invalid_request", "code_challenge is not a base64url SHA-256 value")
    try:
        requested = scope_rules.parse_scope(_first(params, "scope"))
    except OAuthError as exc:
        raise refuse(exc.error, exc.description) from exc
    if not requested:
        requested = list(client.scopes)
    not_allowed = [scope for scope in requested if scope not in client.scopes]
    if not_allowed:
        raise refuse("invalid_scope", f"not allowed for this client: {' '.join(not_allowed)}")
    nonce = _first(params, "nonce")
    if nonce is not None and len(nonce) > MAX_NONCE_LENGTH:
        raise refuse("invalid_request", "nonce is too long")
    prompt = frozenset((_first(params, "prompt") or "").split())
    if not prompt <= SUPPORTED_PROMPTS or ("none" in prompt and len(prompt) > 1):
        raise refuse("invalid_request", "unsupported prompt value")
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        state=state,
        scopes=requested,
        code_challenge=challenge,
        nonce=nonce,
        prompt=prompt,
    )


def _first(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name, ())
    return values[0] if values else None


async def create_authorization_code(
    db: AsyncSession, request: AuthorizationRequest, *, user: User, sid: str
) -> str:
    """A one-time code bound to the client, redirect URI, PKCE challenge, nonce and session."""
    granted = [s for s in request.scopes if s in scope_rules.scopes_for_roles(user.roles)]
    if not granted:
        raise AuthorizeRedirectError(
            "invalid_scope",
            "none of the requested scopes is available to this account",
            redirect_uri=request.redirect_uri,
            state=request.state,
        )
    code = opaque_token()
    now = datetime.now(UTC)
    db.add(
        AuthorizationCode(
            code_hash=token_hash(code),
            client_id=request.client.client_id,
            user_id=user.id,
            sid=sid,
            redirect_uri=request.redirect_uri,
            scope=scope_rules.format_scope(granted),
            code_challenge=request.code_challenge,
            nonce=request.nonce,
            created_at=now,
            expires_at=now + CODE_TTL,
            used_at=None,
        )
    )
    await db.flush()
    return code


def redirect_with(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """`redirect_uri` with `params` added to its query (its own query is kept, section 3.1.2)."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((key, value) for key, value in params.items() if value is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- token endpoint: client authentication (RFC 6749 section 2.3.1) ---


@dataclass(frozen=True)
class PresentedCredentials:
    client_id: str | None
    secret: str | None
    method: str  # client_secret_basic | client_secret_post | none


def read_client_credentials(
    authorization: str | None, form: Mapping[str, Sequence[str]]
) -> PresentedCredentials:
    form_id, form_secret = _first(form, "client_id"), _first(form, "client_secret")
    if authorization:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise invalid_client("use HTTP Basic or client_secret_post", realm=CLIENT_REALM)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise invalid_client("malformed Basic credentials", realm=CLIENT_REALM) from exc
        raw_id, colon, raw_secret = decoded.partition(":")
        if not colon:
            raise invalid_client("malformed Basic credentials", realm=CLIENT_REALM)
        # Section 2.3.1: both parts are form-urlencoded before Basic encoding.
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if form_secret is not None:
            raise invalid_request("use one client authentication method, not two")
        if form_id is not None and form_id != client_id:
            raise invalid_request("client_id does not match the Basic credentials")
        return PresentedCredentials(client_id, secret, "client_secret_basic")
    if form_secret is not None:
        return PresentedCredentials(form_id, form_secret, "client_secret_post")
    return PresentedCredentials(form_id, None, "none")


async def authenticate_client(
    db: AsyncSession, provider: Provider, credentials: PresentedCredentials
) -> OAuthClient:
    client = await get_client(db, credentials.client_id or "")
    if client is None:
        raise invalid_client("unknown client or bad credentials", realm=CLIENT_REALM)
    if is_public(client):
        if credentials.method != "none":
            raise invalid_client("this client has no secret", realm=CLIENT_REALM)
        return client
    if credentials.secret is None or not await provider.authenticator.verify(
        client, credentials.secret
    ):
        raise invalid_client("unknown client or bad credentials", realm=CLIENT_REALM)
    return client


# --- token endpoint: grants ---


@dataclass(frozen=True)
class TokenContext:
    """Who is asking, for the audit log."""

    ip: str


async def grant_token(
    db: AsyncSession,
    provider: Provider,
    *,
    client: OAuthClient,
    form: Mapping[str, Sequence[str]],
    context: TokenContext,
) -> tuple[TokenRead, User | None]:
    for name, values in form.items():
        if len(values) > 1:
            raise invalid_request(f"parameter {name} is repeated")
    grant_type = _first(form, "grant_type")
    if not grant_type:
        raise invalid_request("grant_type is required")
    if grant_type not in ("authorization_code", "refresh_token", "client_credentials"):
        raise unsupported_grant_type(f"grant_type {grant_type!r} is not supported")
    if grant_type not in client.grant_types:
        raise unauthorized_client(f"this client may not use {grant_type}")
    if grant_type == "authorization_code":
        return await _exchange_code(db, provider, client=client, form=form, context=context)
    if grant_type == "refresh_token":
        return await _refresh(db, provider, client=client, form=form, context=context)
    return await _client_credentials(provider, client=client, form=form), None


def _required(form: Mapping[str, Sequence[str]], name: str) -> str:
    value = _first(form, name)
    if not value:
        raise invalid_request(f"{name} is required")
    if len(value) > MAX_TOKEN_PARAMETER_LENGTH:
        raise invalid_request(f"{name} is too long")
    return value


def family_of_code(code_hash: str) -> str:
    """The refresh-token family a code starts: derived, so a replay finds what it issued."""
    return code_hash[:32]


async def _exchange_code(
    db: AsyncSession,
    provider: Provider,
    *,
    client: OAuthClient,
    form: Mapping[str, Sequence[str]],
    context: TokenContext,
) -> tuple[TokenRead, User]:
    code = _required(form, "code")
    redirect_uri = _required(form, "redirect_uri")
    verifier = _first(form, "code_verifier")
    if not verifier:
        raise invalid_request("code_verifier is required (PKCE, RFC 7636)")
    code_hash = token_hash(code)
    row = await db.get(AuthorizationCode, code_hash)
    if row is None:
        raise invalid_grant("unknown authorization code")
    if row.used_at is not None:
        await _replayed_code(db, row, context=context)
    if row.client_id != client.client_id:
        raise invalid_grant("the code was issued to another client")
    now = datetime.now(UTC)
    if row.expires_at <= now:
        raise invalid_grant("the authorization code has expired")
    if row.redirect_uri != redirect_uri:
        raise invalid_grant("redirect_uri does not match the authorization request")
    if not CODE_VERIFIER_PATTERN.fullmatch(verifier) or (
        create_s256_code_challenge(verifier) != row.code_challenge
    ):
        raise invalid_grant("code_verifier does not match the code_challenge (PKCE)")
    consumed = cast(
        "CursorResult[Any]",
        await db.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.used_at.is_(None))
            .values(used_at=now)
        ),
    )
    if consumed.rowcount != 1:  # a concurrent exchange won the race: this one is a replay
        await _replayed_code(db, row, context=context)
    user = await _active_user(db, row.user_id)
    session = await _live_session(db, row.sid)
    if user is None or session is None:
        raise invalid_grant("the account or its session is no longer active")
    issued = await _issue_user_tokens(
        db,
        provider,
        client=client,
        user=user,
        session=session,
        granted=row.scope.split(),
        requested=None,
        nonce=row.nonce,
        family_id=family_of_code(code_hash),
    )
    return issued, user


async def _replayed_code(
    db: AsyncSession, row: AuthorizationCode, *, context: TokenContext
) -> NoReturn:
    # RFC 6749 section 4.1.2: a code used twice means someone else has it; what the first
    # use issued can no longer be trusted.
    revoked = await revoke_family(db, family_id=family_of_code(row.code_hash))
    record(
        db,
        actor=f"client:{row.client_id}",
        action="token.reuse_detected",
        target=str(row.user_id),
        outcome="denied",
        ip=context.ip,
        detail={"kind": "authorization_code", "revoked_refresh_tokens": revoked},
    )
    raise invalid_grant("the authorization code was already used", keep_changes=True)


async def _refresh(
    db: AsyncSession,
    provider: Provider,
    *,
    client: OAuthClient,
    form: Mapping[str, Sequence[str]],
    context: TokenContext,
) -> tuple[TokenRead, User]:
    presented = _required(form, "refresh_token")
    requested = scope_rules.parse_scope(_first(form, "scope"))
    row = await db.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash(presented))
    )
    if row is None or row.client_id != client.client_id:
        raise invalid_grant("unknown refresh token")
    if row.revoked_at is not None:
        raise invalid_grant("the refresh token was revoked")
    if row.used_at is not None:
        await _reused_refresh_token(db, row, context=context)
    now = datetime.now(UTC)
    if row.expires_at <= now:
        raise invalid_grant("the refresh token has expired")
    granted = row.scope.split()
    beyond = [scope for scope in requested if scope not in granted]
    if beyond:
        # RFC 6749 section 6: a refresh may narrow the grant, never widen it.
        raise invalid_scope(f"not part of the original grant: {' '.join(beyond)}")
    rotated = cast(
        "CursorResult[Any]",
        await db.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == row.id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=now)
        ),
    )
    if rotated.rowcount != 1:  # used by a concurrent request in the meantime
        await _reused_refresh_token(db, row, context=context)
    user = await _active_user(db, row.user_id)
    session = await _live_session(db, row.sid) if row.sid else None
    if user is None or session is None:
        await revoke_family(db, family_id=row.family_id)
        raise invalid_grant("the account is disabled or its session has ended", keep_changes=True)
    issued = await _issue_user_tokens(
        db,
        provider,
        client=client,
        user=user,
        session=session,
        granted=granted,
        requested=requested or None,
        nonce=None,  # Core 12.2: a refreshed ID token carries no nonce
        family_id=row.family_id,
    )
    return issued, user


async def _reused_refresh_token(
    db: AsyncSession, row: RefreshToken, *, context: TokenContext
) -> NoReturn:
    # RFC 9700 section 4.14.2: a rotated-out token presented again means one of the two
    # holders is an attacker, and the server cannot tell which: end the whole family.
    revoked = await revoke_family(db, family_id=row.family_id)
    record(
        db,
        actor=f"client:{row.client_id}",
        action="token.reuse_detected",
        target=str(row.user_id),
        outcome="denied",
        ip=context.ip,
        detail={"kind": "refresh_token", "family": row.family_id, "revoked": revoked},
    )
    raise invalid_grant("the refresh token was already used", keep_changes=True)


async def _client_credentials(
    provider: Provider, *, client: OAuthClient, form: Mapping[str, Sequence[str]]
) -> TokenRead:
    if is_public(client):
        raise unauthorized_client("a public client cannot use client credentials")
    requested = scope_rules.parse_scope(_first(form, "scope"))
    beyond = [scope for scope in requested if scope not in client.scopes]
    if beyond:
        raise invalid_scope(f"not allowed for this client: {' '.join(beyond)}")
    granted = requested or list(client.scopes)
    ttl = provider.settings.access_token_ttl_seconds
    access_token = await issue_access_token(
        provider.keys,
        issuer=provider.issuer,
        subject=SERVICE_SUBJECT_PREFIX + client.client_id,
        audience=client.audiences,
        scopes=granted,
        client_id=client.client_id,
        ttl_seconds=ttl,
    )
    return TokenRead(
        access_token=access_token,
        expires_in=ttl,
        scope=scope_rules.format_scope(granted),
    )


async def _issue_user_tokens(
    db: AsyncSession,
    provider: Provider,
    *,
    client: OAuthClient,
    user: User,
    session: WebSession,
    granted: Sequence[str],
    requested: Sequence[str] | None,
    nonce: str | None,
    family_id: str,
) -> TokenRead:
    # Narrowed again at every issue: a role taken away, or a scope taken from the client,
    # stops reaching tokens at the next refresh.
    allowed = scope_rules.scopes_for_roles(user.roles) & set(client.scopes)
    grant = [scope for scope in granted if scope in allowed]
    scopes = [scope for scope in (requested or grant) if scope in grant]
    if not scopes:
        raise invalid_scope("no scope of the grant is available any more")
    settings = provider.settings
    audience = list(client.audiences)
    if {scope_rules.OPENID, scope_rules.PROFILE} & set(scopes):
        audience.append(settings.portal_aud)  # so /userinfo accepts it
    address = f"{user.handle}@{settings.mail_domain}"
    ttl = settings.access_token_ttl_seconds
    access_token = await issue_access_token(
        provider.keys,
        issuer=provider.issuer,
        subject=str(user.id),
        audience=audience,
        scopes=scopes,
        client_id=client.client_id,
        ttl_seconds=ttl,
        extra_claims={"sid": session.sid, "email": address, "preferred_username": user.handle},
    )
    id_token = None
    if scope_rules.OPENID in scopes:
        id_token = await issue_id_token(
            provider.keys,
            issuer=provider.issuer,
            subject=str(user.id),
            client_id=client.client_id,
            ttl_seconds=ttl,
            auth_time=int(session.created_at.timestamp()),
            sid=session.sid,
            access_token=access_token,
            nonce=nonce,
            extra_claims=identity_claims(user, scopes, mail_domain=settings.mail_domain),
        )
    refresh_token = None
    if "refresh_token" in client.grant_types:
        refresh_token = opaque_token()
        now = datetime.now(UTC)
        db.add(
            RefreshToken(
                token_hash=token_hash(refresh_token),
                family_id=family_id,
                client_id=client.client_id,
                user_id=user.id,
                sid=session.sid,
                scope=scope_rules.format_scope(grant),  # the grant, not this narrowing
                created_at=now,
                expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
                used_at=None,
                revoked_at=None,
            )
        )
        await db.flush()
    return TokenRead(
        access_token=access_token,
        expires_in=ttl,
        scope=scope_rules.format_scope(scopes),
        refresh_token=refresh_token,
        id_token=id_token,
    )


def identity_claims(user: User, scopes: Sequence[str], *, mail_domain: str) -> dict[str, Any]:
    """The standard claims the scopes ask for (OpenID Connect Core section 5.4)."""
    claims: dict[str, Any] = {}
    if scope_rules.PROFILE in scopes:
        claims["preferred_username"] = user.handle
        claims["name"] = user.display_name or user.handle
    if scope_rules.EMAIL in scopes:
        claims["email"] = f"{user.handle}@{mail_domain}"
        claims["email_verified"] = True  # the address is the account's own mailbox
    return claims


async def _active_user(db: AsyncSession, user_id: int) -> User | None:
    user = await db.get(User, user_id)
    return user if user is not None and not user.disabled else None


async def _live_session(db: AsyncSession, sid: str) -> WebSession | None:
    session = await db.scalar(select(WebSession).where(WebSession.sid == sid))
    if session is None or session.revoked_at is not None:
        return None
    return session if session.expires_at > datetime.now(UTC) else None


# --- revocation (RFC 7009) ---


async def revoke_family(db: AsyncSession, *, family_id: str) -> int:
    """Revoke every live refresh token of a family; how many there were."""
    result = cast(
        "CursorResult[Any]",
        await db.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        ),
    )
    return int(result.rowcount or 0)


async def revoke_token(
    db: AsyncSession, *, client: OAuthClient, form: Mapping[str, Sequence[str]]
) -> RefreshToken | None:
    """Revoke a refresh token's family; what was revoked, if anything.

    Section 2.2: unknown tokens, access tokens (self-contained JWTs that simply expire) and
    another client's tokens get the same 200 as a success, so the endpoint reveals nothing.
    """
    token = _required(form, "token")
    row = await db.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash(token)))
    if row is None or row.client_id != client.client_id:
        return None
    await revoke_family(db, family_id=row.family_id)
    return row


async def purge_expired(db: AsyncSession) -> None:
    """Forget codes and refresh tokens long past their use (run at start-up)."""
    horizon = datetime.now(UTC) - CODE_RETENTION
    await db.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < horizon))
    await db.execute(delete(RefreshToken).where(RefreshToken.expires_at < horizon))


# --- userinfo (OpenID Connect Core section 5.3) ---


def _invalid_token(description: str) -> OAuthError:
    # RFC 6750 section 3: the reason travels in the challenge.
    return OAuthError(
        "invalid_token",
        description,
        status_code=401,
        headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'
        },
    )


async def userinfo(db: AsyncSession, provider: Provider, token: str) -> dict[str, Any]:
    claims = await verify_access_token(provider, token)
    subject = str(claims["sub"])
    if not subject.isdigit():
        raise _invalid_token("the token does not speak for a person")
    user = await _active_user(db, int(subject))
    if user is None:
        raise _invalid_token("the account is not active")
    sid = claims.get("sid")
    if isinstance(sid, str) and await _live_session(db, sid) is None:
        raise _invalid_token("the session of this token has ended")
    scopes = str(claims.get("scope", "")).split()
    return {
        "sub": subject,
        **identity_claims(user, scopes, mail_domain=provider.settings.mail_domain),
    }


async def verify_access_token(provider: Provider, token: str) -> dict[str, Any]:
    """An access token this provider issued for the portal (audience), or with `openid`."""
    if len(token) > 8192:
        raise _invalid_token("token too long")
    try:
        header = extract_compact(token.encode("ascii")).protected
    except (jose_errors.JoseError, ValueError, UnicodeEncodeError) as exc:
        raise _invalid_token("malformed token") from exc
    # RFC 9068 section 4: check typ, so an ID token cannot pass for an access token.
    if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYPE, "application/at+jwt"):
        raise _invalid_token("not an access token")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise _invalid_token("token has no key id")
    keys = await provider.keys.key_set()
    if not any(key.kid == kid for key in keys.keys):
        keys = await provider.keys.key_set(refresh=True)
        if not any(key.kid == kid for key in keys.keys):
            raise _invalid_token("token signed by an unknown key")
    try:
        decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
    except jose_errors.JoseError as exc:
        raise _invalid_token("bad signature or malformed token") from exc
    registry = jwt.JWTClaimsRegistry(
        leeway=provider.settings.jwt_leeway_seconds,
        iss={"essential": True, "value": provider.issuer},
        exp={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except jose_errors.ExpiredTokenError as exc:
        raise _invalid_token("token expired") from exc
    except jose_errors.JoseError as exc:
        raise _invalid_token("token rejected") from exc
    audience = decoded.claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else list(audience or [])
    scopes = str(decoded.claims.get("scope", "")).split()
    if provider.settings.portal_aud not in audiences and scope_rules.OPENID not in scopes:
        raise _invalid_token("the token is not meant for the portal")
    return decoded.claims
