"""The provider's signing keys: created on first start, rotated on demand, published as JWKS.

Keys live in `oauth_signing_keys` (the portal database is its secret store). The active key is
the newest row that is not retired; every worker reads it from the database when it signs, so
all workers of all replicas agree on it without talking to each other. A rotated-out key keeps
verifying (it stays in the JWKS) until `unpublish_after`: the longest any token it signed can
live, plus the verifiers' leeway.

`KeyStore` is also the portal's own `KeySource` (VEZEPyCore.auth.tokens): the portal verifies
its tokens from the database, with a short cache, instead of fetching its own JWKS over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyUniQVerse.db.models import SigningKey

#: RS256: the one algorithm every OpenID Connect relying party must support (Core 15.1).
DEFAULT_ALGORITHM = "RS256"
RSA_KEY_BITS = 2048
#: How long a worker trusts its copy of the published keys before rereading the database.
PUBLISHED_CACHE_SECONDS = 5.0
#: An unknown `kid` rereads at once, but at most this often (forged kids cannot hammer the DB).
MIN_REFRESH_SECONDS = 0.5

SigningJWK = RSAKey | ECKey


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    algorithm: str
    key: SigningJWK


def generate_signing_key(algorithm: str = DEFAULT_ALGORITHM) -> SigningKey:
    """A fresh key pair as a row; its `kid` is the RFC 7638 thumbprint of the public key."""
    key: SigningJWK
    if algorithm == "RS256":
        key = RSAKey.generate_key(RSA_KEY_BITS, parameters={"alg": algorithm, "use": "sig"})
    elif algorithm == "ES256":
        key = ECKey.generate_key("P-256", parameters={"alg": algorithm, "use": "sig"})
    else:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}")
    kid = key.thumbprint()
    private = dict(key.as_dict(private=True))
    private["kid"] = kid
    return SigningKey(
        kid=kid,
        algorithm=algorithm,
        private_jwk=json.dumps(private),
        created_at=datetime.now(UTC),
        retired_at=None,
        unpublish_after=None,
    )


def load_private_key(row: SigningKey) -> SigningJWK:
    data = json.loads(row.private_jwk)
    if data.get("kty") == "RSA":
        return RSAKey.import_key(data)
    if data.get("kty") == "EC":
        return ECKey.import_key(data)
    raise ValueError(f"signing key {row.kid} has an unsupported key type")


def public_jwk(row: SigningKey) -> dict[str, Any]:
    """The public half only (RFC 7517): what JWKS publishes."""
    public = dict(load_private_key(row).as_dict(private=False))
    public.update(kid=row.kid, alg=row.algorithm, use="sig")
    return public


def _newest_first() -> tuple[Any, ...]:
    # Ties on created_at (two workers in the same microsecond) break on kid, so every worker
    # picks the same key.
    return (SigningKey.created_at.desc(), SigningKey.kid.desc())


async def active_key_row(db: AsyncSession) -> SigningKey | None:
    return await db.scalar(
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(*_newest_first())
        .limit(1)
    )


async def published_key_rows(db: AsyncSession, *, now: datetime | None = None) -> list[SigningKey]:
    """The active key and the retired keys whose tokens may still be alive."""
    now = now or datetime.now(UTC)
    rows = await db.scalars(
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.unpublish_after > now))
        .order_by(*_newest_first())
    )
    return list(rows)


async def _retire_all_but(db: AsyncSession, *, kid: str, retire_window: timedelta) -> None:
    now = datetime.now(UTC)
    await db.execute(
        update(SigningKey)
        .where(SigningKey.retired_at.is_(None), SigningKey.kid != kid)
        .values(retired_at=now, unpublish_after=now + retire_window)
    )


async def ensure_active_key(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    retire_window: timedelta,
    algorithm: str = DEFAULT_ALGORITHM,
) -> str:
    """Create the first key if there is none; the active kid as this worker sees it.

    Several workers starting at once may each insert a key. Each then rereads and retires
    every active key but the newest, like a rotation would (still published for
    `retire_window`, in case a worker signed with one meanwhile). However the inserts and
    rereads interleave, one active key remains, and since signing always reads the newest
    active key, all workers sign with it from then on.
    """
    async with sessionmaker() as db:
        row = await active_key_row(db)
        if row is not None:
            return row.kid
    candidate = await asyncio.to_thread(generate_signing_key, algorithm)
    async with sessionmaker.begin() as db:
        db.add(candidate)
    async with sessionmaker.begin() as db:
        await begin_as_writer(db)  # reads, then retires: see begin_as_writer
        winner = await active_key_row(db)
        assert winner is not None  # ours at least, unless a rotation retired it meanwhile
        await _retire_all_but(db, kid=winner.kid, retire_window=retire_window)
        return winner.kid


async def rotate_signing_key(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    retire_window: timedelta,
    algorithm: str = DEFAULT_ALGORITHM,
) -> str:
    """Make a new key the active one; the old ones stay published for `retire_window`."""
    new = await asyncio.to_thread(generate_signing_key, algorithm)
    async with sessionmaker.begin() as db:
        db.add(new)
        await db.flush()
        await _retire_all_but(db, kid=new.kid, retire_window=retire_window)
    return new.kid


@dataclass(frozen=True)
class _Published:
    loaded_at: float
    #: (public JWK, unpublish_after or None while active), newest first.
    entries: tuple[tuple[dict[str, Any], datetime | None], ...]
    key_set: KeySet


class KeyStore:
    """Signing and verification keys for one portal process (lives on `app.state`)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        retire_window: timedelta,
        algorithm: str = DEFAULT_ALGORITHM,
        cache_seconds: float = PUBLISHED_CACHE_SECONDS,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.retire_window = retire_window
        self.algorithm = algorithm
        self._cache_seconds = cache_seconds
        self._private: dict[str, SigningJWK] = {}
        self._published: _Published | None = None
        self._lock = asyncio.Lock()

    async def ensure_active(self) -> str:
        return await ensure_active_key(
            self._sessionmaker, retire_window=self.retire_window, algorithm=self.algorithm
        )

    async def rotate(self) -> str:
        kid = await rotate_signing_key(
            self._sessionmaker, retire_window=self.retire_window, algorithm=self.algorithm
        )
        self.invalidate()
        return kid

    def invalidate(self) -> None:
        """Forget the cached published keys (the next verification rereads the database)."""
        self._published = None

    async def signing_key(self) -> ActiveKey:
        """The key to sign with now: read on every call, so a rotation applies at once."""
        async with self._sessionmaker() as db:
            row = await active_key_row(db)
        if row is None:  # every key was retired (two rotations raced): make a new one
            await self.ensure_active()
            async with self._sessionmaker() as db:
                row = await active_key_row(db)
            assert row is not None
        key = self._private.get(row.kid)
        if key is None:
            key = load_private_key(row)
            self._private = {row.kid: key}  # only the active key is ever needed here
        return ActiveKey(kid=row.kid, algorithm=row.algorithm, key=key)

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        """The published public keys (`KeySource` protocol of VEZEPyCore.auth.tokens)."""
        return (await self._current(refresh=refresh)).key_set

    async def jwks(self) -> dict[str, Any]:
        """The JWK Set document (RFC 7517 section 5): public parts only."""
        published = await self._current(refresh=False)
        return {"keys": [jwk for jwk, _ in published.entries]}

    async def _current(self, *, refresh: bool) -> _Published:
        async with self._lock:
            published = self._published
            age = time.monotonic() - published.loaded_at if published else float("inf")
            if (
                published is None
                or age > self._cache_seconds
                or (refresh and age >= MIN_REFRESH_SECONDS)
            ):
                published = await self._load()
            # A cached retired key stops verifying the moment it is due to be unpublished.
            now = datetime.now(UTC)
            if any(until is not None and until <= now for _, until in published.entries):
                entries = tuple(e for e in published.entries if e[1] is None or e[1] > now)
                published = _Published(published.loaded_at, entries, _key_set(entries))
            self._published = published
            return published

    async def _load(self) -> _Published:
        async with self._sessionmaker() as db:
            rows = await published_key_rows(db)
        entries = tuple((public_jwk(row), row.unpublish_after) for row in rows)
        return _Published(time.monotonic(), entries, _key_set(entries))


def _key_set(entries: tuple[tuple[dict[str, Any], datetime | None], ...]) -> KeySet:
    return KeySet.import_key_set({"keys": [jwk for jwk, _ in entries]})
