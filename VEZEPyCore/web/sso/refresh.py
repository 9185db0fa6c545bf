"""One refresh per refresh token across every worker and replica of a service (ADR 0019).

The portal rotates refresh tokens and treats a rotated-out one presented again as theft: it
revokes the whole family (RFC 9700 section 4.14.2). A browser's concurrent requests can land
on different workers with the same cookie, so single-flight inside one process is not enough.
With Redis configured, the first worker to take a short lock refreshes; it seals the new
session into Redis for `RESULT_SECONDS`, and every other worker that arrives with the same old
cookie waits for that result and hands the browser the same new session.

The Redis key is a hash of the old refresh token and the result is sealed (AES-GCM) with a key
derived from it: only a holder of the old cookie can open it, so Redis never holds a usable
token. Without Redis this falls back to the process's own single-flight (one worker).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as redis_asyncio
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.exceptions import RedisError

from VEZEPyCore.web.sso.cookies import CookieCodec, SsoSession

logger = logging.getLogger("veze.sso")

#: How long a refresh result is handed to requests still carrying the old cookie.
RESULT_SECONDS = 60.0
#: Longest a lock holder may take (the portal call has its own, shorter deadline).
LOCK_SECONDS = 15.0
POLL_SECONDS = 0.05
_ENDED = b"-"  # the sealed value for "the portal refused: the session ends"
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)

Refresh = Callable[[], Awaitable[SsoSession | None]]


class RefreshUnavailable(Exception):
    """The shared coordination could not be reached; the caller falls back to its own."""


class SharedRefresh:
    """Cross-worker single-flight of token refreshes for one service, over Redis."""

    def __init__(self, client: redis_asyncio.Redis, *, service: str, codec: CookieCodec) -> None:
        self._client = client
        self._service = service
        self._codec = codec

    @classmethod
    def from_url(cls, url: str, *, service: str, codec: CookieCodec) -> SharedRefresh:
        client = redis_asyncio.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        return cls(client, service=service, codec=codec)

    async def close(self) -> None:
        await self._client.aclose()

    async def run(self, refresh_token: str, refresh: Refresh, *, max_age: int) -> SsoSession | None:
        """The new session for `refresh_token`, refreshed by exactly one caller anywhere.

        Raises `RefreshUnavailable` when Redis cannot be used (the caller then refreshes on its
        own); an upstream error of `refresh` propagates and leaves no result behind, so the
        next caller tries again.
        """
        lookup = hashlib.sha256(b"veze-sso-refresh-key\0" + refresh_token.encode()).hexdigest()
        result_key = f"veze:sso:refresh:{self._service}:{lookup}"
        lock_key = result_key + ":lock"
        seal_key = hashlib.sha256(b"veze-sso-refresh-seal\0" + refresh_token.encode()).digest()
        sealer = AESGCM(seal_key)
        deadline = time.monotonic() + LOCK_SECONDS + 5
        owner = secrets.token_hex(16)
        try:
            while True:
                found, session = await self._result(result_key, sealer, max_age)
                if found:
                    return session
                if await self._client.set(lock_key, owner, nx=True, px=int(LOCK_SECONDS * 1000)):
                    try:
                        # A holder may have finished between our read and our lock.
                        found, session = await self._result(result_key, sealer, max_age)
                        if found:
                            return session
                        session = await refresh()
                        await self._store(result_key, sealer, session)
                        return session
                    finally:
                        await self._client.eval(_RELEASE, 1, lock_key, owner)
                if time.monotonic() > deadline:
                    raise RefreshUnavailable("another worker's refresh did not finish in time")
                await asyncio.sleep(POLL_SECONDS)
        except RedisError as exc:
            raise RefreshUnavailable(str(exc)) from exc

    async def _result(
        self, key: str, sealer: AESGCM, max_age: int
    ) -> tuple[bool, SsoSession | None]:
        sealed = await self._client.get(key)
        if not isinstance(sealed, bytes):
            return False, None
        try:
            plain = sealer.decrypt(sealed[:12], sealed[12:], key.encode())
        except (InvalidTag, ValueError):
            logger.warning("a shared refresh result at %s could not be opened", self._service)
            return False, None
        if plain == _ENDED:
            return True, None
        session = self._codec.load_session(plain.decode(), max_age=max_age)
        return (True, session) if session is not None else (False, None)

    async def _store(self, key: str, sealer: AESGCM, session: SsoSession | None) -> None:
        plain = _ENDED if session is None else self._codec.dump_session(session).encode()
        nonce = os.urandom(12)
        sealed = nonce + sealer.encrypt(nonce, plain, key.encode())
        await self._client.set(key, sealed, px=int(RESULT_SECONDS * 1000))
