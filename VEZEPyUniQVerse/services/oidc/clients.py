"""Registered OAuth clients: seeded from `config/oauth_clients.json`, authenticated, matched.

Three kinds (RFC 6749 section 2.1): confidential browser clients (webmail, game pages) that
hold a secret, a public client for command-line and REST users (no secret, PKCE only), and
service clients that use client credentials. Secrets are never in the file: each comes from
`settings.client_secret(client_id)` and only its Argon2 hash is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyUniQVerse.db.models import OAuthClient
from VEZEPyUniQVerse.services.accounts.passwords import hash_password, verify_password

log = logging.getLogger(__name__)

CLIENTS_FILE = Path(__file__).resolve().parents[3] / "config" / "oauth_clients.json"
ClientType = Literal["confidential", "public", "service"]
CLIENT_TYPES: tuple[ClientType, ...] = ("confidential", "public", "service")
#: Hosts a native app listens on for its redirect (RFC 8252 section 7.3).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
#: A verified secret is remembered this long, so each token request does not pay for Argon2.
SECRET_CACHE_SECONDS = 300.0
SECRET_CACHE_SIZE = 256


@dataclass(frozen=True)
class ClientConfig:
    client_id: str
    name: str
    type: ClientType
    redirect_uris: tuple[str, ...]
    frontchannel_logout_uri: str | None
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]


def load_client_configs(path: Path, *, urls: Mapping[str, str]) -> list[ClientConfig]:
    """Read the client file, putting each service's public URL in for `{portal}`, `{game}`..."""

    def expand(value: str) -> str:
        for name, url in urls.items():
            value = value.replace("{" + name + "}", url.rstrip("/"))
        if "{" in value or "}" in value:
            raise ValueError(f"{path}: no URL for the placeholder in {value!r}")
        return value

    raw = json.loads(path.read_text(encoding="utf-8"))
    configs: list[ClientConfig] = []
    for item in raw["clients"]:
        kind = item.get("type")
        if kind not in CLIENT_TYPES:
            raise ValueError(f"{path}: client {item.get('client_id')!r} has type {kind!r}")
        logout = item.get("frontchannel_logout_uri")
        configs.append(
            ClientConfig(
                client_id=str(item["client_id"]),
                name=str(item.get("name", item["client_id"])),
                type=kind,
                redirect_uris=tuple(expand(str(uri)) for uri in item.get("redirect_uris", [])),
                frontchannel_logout_uri=expand(str(logout)) if logout else None,
                grant_types=tuple(str(grant) for grant in item.get("grant_types", [])),
                scopes=tuple(str(scope) for scope in item.get("scopes", [])),
                audiences=tuple(str(audience) for audience in item.get("audiences", [])),
            )
        )
    return configs


async def seed_clients(
    sessionmaker: async_sessionmaker[AsyncSession],
    configs: Sequence[ClientConfig],
    *,
    secret_for: Callable[[str], str | None],
) -> None:
    """Upsert every configured client; clients no longer configured are disabled."""
    async with sessionmaker() as db:
        existing = {row.client_id: row.secret_hash for row in await db.scalars(select(OAuthClient))}
    hashes = await asyncio.gather(
        *(_secret_hash(config, existing.get(config.client_id), secret_for) for config in configs)
    )
    now = datetime.now(UTC)
    async with sessionmaker.begin() as db:
        for config, secret_hash in zip(configs, hashes, strict=True):
            # A confidential or service client without a secret (production, secret not set)
            # must not quietly become a public one: it stays registered but disabled.
            enabled = config.type == "public" or secret_hash is not None
            if not enabled:
                log.warning("OAuth client %s has no secret configured; disabled", config.client_id)
            values: dict[str, Any] = {
                "name": config.name,
                "secret_hash": secret_hash,
                "redirect_uris": list(config.redirect_uris),
                "grant_types": list(config.grant_types),
                "scopes": list(config.scopes),
                "audiences": list(config.audiences),
                "frontchannel_logout_uri": config.frontchannel_logout_uri,
                "enabled": enabled,
                "updated_at": now,
            }
            if config.client_id not in existing:
                try:
                    async with db.begin_nested():
                        db.add(OAuthClient(client_id=config.client_id, **values))
                    continue
                except IntegrityError:
                    pass  # another worker seeded it first: update it like an existing one
            await db.execute(
                update(OAuthClient)
                .where(OAuthClient.client_id == config.client_id)
                .values(**values)
            )
        configured = [config.client_id for config in configs]
        await db.execute(
            update(OAuthClient)
            .where(OAuthClient.client_id.not_in(configured))
            .values(enabled=False, updated_at=now)
        )


async def _secret_hash(
    config: ClientConfig, current_hash: str | None, secret_for: Callable[[str], str | None]
) -> str | None:
    if config.type == "public":
        return None
    secret = secret_for(config.client_id)
    if not secret:
        return None
    if current_hash is not None and await asyncio.to_thread(verify_password, current_hash, secret):
        return current_hash  # unchanged: keep the row as it is
    return await asyncio.to_thread(hash_password, secret)


async def get_client(db: AsyncSession, client_id: str) -> OAuthClient | None:
    """An enabled client, or None."""
    # Not printable (a NUL, say) cannot be a client id, and PostgreSQL would refuse the query.
    if not client_id or len(client_id) > 100 or not client_id.isprintable():
        return None
    client = await db.get(OAuthClient, client_id)
    return client if client is not None and client.enabled else None


def is_public(client: OAuthClient) -> bool:
    return client.secret_hash is None


def redirect_uri_allowed(client: OAuthClient, candidate: str) -> bool:
    """Exact match (RFC 6749 section 3.1.2.3), except that a public client's loopback redirect
    may name any port (RFC 8252 section 7.3): a native app listens on whatever port is free.
    """
    if candidate in client.redirect_uris:
        return True
    if not is_public(client):
        return False
    parsed = urlsplit(candidate)
    try:
        port = parsed.port
    except ValueError:
        return False
    if (
        parsed.scheme != "http"
        or parsed.hostname not in LOOPBACK_HOSTS
        or port is None
        or parsed.username is not None
        or parsed.password is not None
        or parsed.fragment
    ):
        return False
    for registered in client.redirect_uris:
        expected = urlsplit(registered)
        if (
            expected.scheme == "http"
            and expected.hostname == parsed.hostname
            and expected.port is None
            and expected.path == parsed.path
            and expected.query == parsed.query
        ):
            return True
    return False


class ClientAuthenticator:
    """Checks client secrets (RFC 6749 section 2.3.1), remembering recent successes.

    Argon2 costs tens of milliseconds on purpose; a confidential client refreshing tokens for
    many users would pay it on every request. A success is remembered, keyed by the stored
    hash and the SHA-256 of the presented secret, so a changed secret is checked afresh.
    """

    def __init__(self) -> None:
        self._verified: dict[tuple[str, str, str], float] = {}

    async def verify(self, client: OAuthClient, secret: str) -> bool:
        if client.secret_hash is None:
            return False
        key = (client.client_id, client.secret_hash, hashlib.sha256(secret.encode()).hexdigest())
        now = time.monotonic()
        if self._verified.get(key, 0.0) > now:
            return True
        if not await asyncio.to_thread(verify_password, client.secret_hash, secret):
            return False
        if len(self._verified) >= SECRET_CACHE_SIZE:
            self._verified = {k: v for k, v in self._verified.items() if v > now}
            if len(self._verified) >= SECRET_CACHE_SIZE:
                self._verified.clear()
        self._verified[key] = now + SECRET_CACHE_SECONDS
        return True
