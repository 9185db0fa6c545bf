"""SMTP AUTH (RFC 4954) for submission: PLAIN (RFC 4616), LOGIN, OAUTHBEARER (RFC 7628)
and XOAUTH2.

Passwords (account or app password) are checked by the portal; bearer tokens are portal
access tokens for audience veze-email with scope email.send, verified locally. Failures are
counted per client IP and per login (settings `smtp_auth_failures_per_ip`, `..._per_login`,
`smtp_auth_failure_window_seconds`): past the budget every AUTH, even with the right
password, answers `454 4.7.0` (RFC 4954 section 6, temporary failure) until the window ends,
and every failure answers `535 5.7.8`. Refusals and lock-outs are logged with the client IP.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging

from aiosmtpd.smtp import MISSING, SMTP, AuthResult

from VEZEPyCore.auth.tokens import TokenVerifier
from VEZEPyCore.security.ratelimit import RateLimiter, make_rate_limiter
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.smtp.handlers import SmtpUser
from VEZEPyEmail.services.smtp.portal import (
    PortalPasswordClient,
    PortalThrottled,
    PortalUnavailable,
)

log = logging.getLogger(__name__)

SEND_SCOPE = "email.send"
INVALID = "535 5.7.8 Authentication credentials invalid"
THROTTLED = "454 4.7.0 Too many authentication failures, try again later"
UNAVAILABLE = "454 4.7.0 Temporary authentication failure"
MAX_CREDENTIAL_BYTES = 8192


def _peer_ip(server: SMTP) -> str:
    peer = server.session.peer if server.session is not None else None
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


def _b64(arg: str) -> bytes | None:
    if arg == "=":  # RFC 4954 section 4: "=" is an empty initial response
        return b""
    try:
        return base64.b64decode(arg, validate=True)
    except (binascii.Error, ValueError):
        return None


class SmtpAuthenticator:
    def __init__(
        self,
        *,
        settings: EmailSettings,
        verifier: TokenVerifier,
        passwords: PortalPasswordClient,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.verifier = verifier
        self.passwords = passwords
        self.limiter = limiter or make_rate_limiter(settings.redis_url)
        self.mail_domain = settings.mail_domain.lower()

    async def close(self) -> None:
        await self.limiter.close()

    # --- rate limits -------------------------------------------------------------------

    def _keys(self, ip: str, login: str | None) -> list[tuple[str, int]]:
        keys = [(f"smtp-auth:ip:{ip}", self.settings.smtp_auth_failures_per_ip)]
        if login:
            # "alice" and "alice@<domain>" are one account: one budget.
            account = self._handle_of(login) or login.strip().lower()
            keys.append((f"smtp-auth:login:{account}", self.settings.smtp_auth_failures_per_login))
        return keys

    async def _throttled(self, ip: str, login: str | None) -> bool:
        for key, limit in self._keys(ip, login):
            if await self.limiter.peek(key) >= limit:
                log.warning("SMTP AUTH locked out for %r from %s (%s)", login, ip, key)
                return True
        return False

    async def _failed(self, ip: str, login: str | None) -> None:
        window = self.settings.smtp_auth_failure_window_seconds
        for key, limit in self._keys(ip, login):
            await self.limiter.hit(key, limit=limit, window_seconds=window)

    # --- reading the exchange ------------------------------------------------------------

    async def _response(self, server: SMTP, args: list[str], challenge: bytes) -> bytes | None:
        """The initial response (RFC 4954 section 4), or the answer to an empty challenge."""
        if len(args) > 1:
            decoded = _b64(args[1])
            if decoded is None:
                await server.push("501 5.5.2 Cannot decode base64")
            return decoded
        answer = await server.challenge_auth(challenge, encode_to_b64=True)
        return None if answer is MISSING else bytes(answer)

    # --- password mechanisms ---------------------------------------------------------------

    async def plain(self, server: SMTP, args: list[str]) -> AuthResult:
        # RFC 4616: [authzid] NUL authcid NUL passwd
        blob = await self._response(server, args, b"")
        if blob is None:
            return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await server.push("501 5.5.2 Malformed PLAIN response")
            return AuthResult(success=False, handled=True)
        authzid, login, password = parts
        if authzid and authzid != login:
            return await self._refuse(server, _text(login), "authorization identity differs")
        return await self._password(server, _text(login), _text(password))

    async def login(self, server: SMTP, args: list[str]) -> AuthResult:
        login = await self._response(server, args, b"Username:")
        if login is None:
            return AuthResult(success=False, handled=True)
        answer = await server.challenge_auth(b"Password:", encode_to_b64=True)
        if answer is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._password(server, _text(login), _text(bytes(answer)))

    def _handle_of(self, login: str) -> str | None:
        """Users log in with their handle or their full local address."""
        local, at, domain = login.strip().rpartition("@")
        if not at:
            local = login.strip()
        elif domain.lower() != self.mail_domain:
            return None
        return local.lower() if local else None

    async def _password(self, server: SMTP, login: str, password: str) -> AuthResult:
        ip = _peer_ip(server)
        if await self._throttled(ip, login):
            return AuthResult(success=False, handled=False, message=THROTTLED)
        handle = self._handle_of(login)
        if handle is None or not password or len(password) > MAX_CREDENTIAL_BYTES:
            return await self._refuse(server, login, "not a local login")
        try:
            account = await self.passwords.verify(handle=handle, password=password, ip=ip)
        except PortalThrottled:
            return AuthResult(success=False, handled=False, message=THROTTLED)
        except PortalUnavailable:
            log.warning("SMTP AUTH: the portal's password check is unavailable", exc_info=True)
            return AuthResult(success=False, handled=False, message=UNAVAILABLE)
        if account is None:
            return await self._refuse(server, login, "wrong password")
        user = SmtpUser(handle=account.handle, address=account.email.lower())
        return AuthResult(success=True, auth_data=user)

    async def _refuse(self, server: SMTP, login: str | None, why: str) -> AuthResult:
        log.info("SMTP AUTH refused for %r from %s: %s", login, _peer_ip(server), why)
        await self._failed(_peer_ip(server), login)
        return AuthResult(success=False, handled=False, message=INVALID)

    # --- bearer mechanisms -----------------------------------------------------------------

    async def oauthbearer(self, server: SMTP, args: list[str]) -> AuthResult:
        # RFC 7628 section 3.1: gs2-header "," kvsep *(key=value kvsep) kvsep
        blob = await self._response(server, args, b"")
        if blob is None:
            return AuthResult(success=False, handled=True)
        text = _text(blob)
        header, _, rest = text.partition("\x01")
        authzid = None
        for field in header.split(","):
            if field.startswith("a="):
                authzid = field[2:].replace("=2C", ",").replace("=3D", "=")
        values = dict(item.split("=", 1) for item in rest.split("\x01") if "=" in item)
        return await self._bearer(server, values.get("auth", ""), authzid, rfc7628=True)

    async def xoauth2(self, server: SMTP, args: list[str]) -> AuthResult:
        # Google's XOAUTH2: "user=" addr ^A "auth=Bearer " token ^A ^A
        blob = await self._response(server, args, b"")
        if blob is None:
            return AuthResult(success=False, handled=True)
        values = dict(item.split("=", 1) for item in _text(blob).split("\x01") if "=" in item)
        return await self._bearer(server, values.get("auth", ""), values.get("user"), rfc7628=False)

    async def _bearer(
        self, server: SMTP, auth: str, authzid: str | None, *, rfc7628: bool
    ) -> AuthResult:
        ip = _peer_ip(server)
        if await self._throttled(ip, authzid):
            return AuthResult(success=False, handled=False, message=THROTTLED)
        scheme, _, token = auth.partition(" ")
        address: str | None = None
        if scheme.lower() == "bearer" and token and len(token) <= MAX_CREDENTIAL_BYTES:
            try:
                principal = await self.verifier.verify(token.strip())
            except Exception:
                principal = None
            if (
                principal is not None
                and not principal.is_demo
                and principal.has_scopes(SEND_SCOPE)
                and principal.address
                and principal.address.rpartition("@")[2] == self.mail_domain
                and (not authzid or authzid.lower() == principal.address)
            ):
                address = principal.address
        if address is None:
            await self._failed(ip, authzid)
            # RFC 7628 section 3.2.2: the failure is a JSON challenge; the client answers
            # with a dummy ^A and only then gets the final 535 (XOAUTH2 works the same way).
            status = {"status": "invalid_token", "schemes": "bearer", "scope": SEND_SCOPE}
            if rfc7628:
                status["openid-configuration"] = (
                    f"{self.settings.jwt_iss.rstrip('/')}/.well-known/openid-configuration"
                )
            await server.challenge_auth(json.dumps(status).encode(), encode_to_b64=True)
            return AuthResult(success=False, handled=False, message=INVALID)
        handle = address.rpartition("@")[0]
        return AuthResult(success=True, auth_data=SmtpUser(handle=handle, address=address))


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")
