"""The provider's part of the portal's start-up: keys, clients, and the portal's own verifier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from VEZEPyCore.auth.tokens import TokenVerifier
from VEZEPyCore.security.ratelimit import RateLimiter, make_rate_limiter
from VEZEPyCore.services.registry import ServiceRegistry
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.services.oidc.clients import (
    CLIENTS_FILE,
    ClientAuthenticator,
    load_client_configs,
    seed_clients,
)
from VEZEPyUniQVerse.services.oidc.grants import Provider, purge_expired
from VEZEPyUniQVerse.services.oidc.keys import KeyStore


def retire_window(settings: PortalSettings) -> timedelta:
    """How long a rotated-out key stays published: the longest token life plus the leeway."""
    return timedelta(seconds=settings.access_token_ttl_seconds + settings.jwt_leeway_seconds)


def public_urls(registry: ServiceRegistry) -> dict[str, str]:
    return {entry.name: entry.public_url for entry in registry.entries()}


@asynccontextmanager
async def start_oidc_provider(app: FastAPI) -> AsyncIterator[None]:
    """Make sure a signing key exists, seed the clients, verify the portal's tokens locally."""
    settings: PortalSettings = app.state.settings
    sessionmaker = app.state.sessionmaker
    keys = KeyStore(sessionmaker, retire_window=retire_window(settings))
    await keys.ensure_active()
    await seed_clients(
        sessionmaker,
        load_client_configs(CLIENTS_FILE, urls=public_urls(app.state.registry)),
        secret_for=settings.client_secret,
    )
    async with sessionmaker.begin() as db:
        await purge_expired(db)
    app.state.oidc_keys = keys
    app.state.oidc = Provider(settings=settings, keys=keys, authenticator=ClientAuthenticator())
    # The portal is the issuer: its keys are in its own database, no HTTP round trip to itself.
    # The HS256 secret stays accepted for development tokens and the tests' minted tokens.
    app.state.verifier = TokenVerifier(
        issuer=settings.jwt_iss,
        audience=settings.portal_aud,
        secret=settings.hs256_secret(),
        jwks=keys,
        demo=settings.jwt_demo,
        mail_domain=settings.mail_domain,
        leeway_seconds=settings.jwt_leeway_seconds,
    )
    # The portal's shared limiter when its start-up made one already; else one of our own.
    shared: RateLimiter | None = getattr(app.state, "rate_limiter", None)
    limiter = shared if shared is not None else make_rate_limiter(settings.redis_url)
    app.state.oauth_rate_limiter = limiter
    try:
        yield
    finally:
        if shared is None:
            await limiter.close()
