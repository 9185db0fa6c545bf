"""Signing keys: created once (even by workers starting together), rotated, published, retired."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from sqlalchemy import func, select, update

from VEZEPyCore.auth.tokens import TokenVerifier
from VEZEPyCore.db.engine import make_engine, make_sessionmaker
from VEZEPyCore.db.migrations import upgrade_to_head
from VEZEPyCore.errors import Unauthorized
from VEZEPyUniQVerse.app.main import MIGRATIONS, create_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import SigningKey
from VEZEPyUniQVerse.services.oidc.keys import KeyStore
from VEZEPyUniQVerse.services.oidc.tokens import issue_service_token
from VEZEPyUniQVerse.tests.helpers import Minter, Running
from VEZEPyUniQVerse.tests.oidc_support import (
    ServedPortal,
    fetch_jwks,
    header_of,
    serve_portal,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def portal(portal_settings: PortalSettings) -> AsyncIterator[ServedPortal]:
    async with serve_portal(portal_settings) as served:
        yield served


async def key_rows(settings: PortalSettings) -> list[SigningKey]:
    engine = make_engine(settings.db_url)
    try:
        async with make_sessionmaker(engine)() as db:
            return list(await db.scalars(select(SigningKey).order_by(SigningKey.created_at)))
    finally:
        await engine.dispose()


async def test_the_first_start_creates_a_key_and_later_starts_keep_it(
    portal_settings: PortalSettings, running: Running
) -> None:
    for _ in range(2):
        async with running(create_app(portal_settings)) as client:
            assert (await client.get("/health")).status_code == 200
    rows = await key_rows(portal_settings)
    assert len(rows) == 1
    assert rows[0].retired_at is None and rows[0].algorithm == "RS256"


async def test_workers_starting_together_end_with_one_active_key(
    portal_settings: PortalSettings,
) -> None:
    await upgrade_to_head(MIGRATIONS, portal_settings.db_url)
    engines = [make_engine(portal_settings.db_url) for _ in range(4)]
    window = timedelta(minutes=5)
    try:
        stores = [KeyStore(make_sessionmaker(engine), retire_window=window) for engine in engines]
        await asyncio.gather(*(store.ensure_active() for store in stores))
        # What matters is what they sign with: every worker reads the same active key.
        signing = {(await store.signing_key()).kid for store in stores}
    finally:
        for engine in engines:
            await engine.dispose()
    rows = await key_rows(portal_settings)
    assert len(rows) > 1, "the workers did not race; the test proves nothing"
    active = [row for row in rows if row.retired_at is None]
    assert len(active) == 1
    assert signing == {active[0].kid}
    for row in rows:
        if row.retired_at is not None:  # a loser may have signed already: it stays published
            assert row.unpublish_after is not None
            assert row.unpublish_after > datetime.now(UTC) + window - timedelta(minutes=1)


async def test_rotation_keeps_old_tokens_valid_until_they_are_unpublished(
    portal: ServedPortal,
) -> None:
    state = portal.app.state
    keys: KeyStore = state.oidc_keys
    verifier: TokenVerifier = state.verifier
    old_token = await issue_service_token(state, audience="veze-portal", scopes=["portal.admin"])
    old_kid = header_of(old_token)["kid"]

    new_kid = await keys.rotate()
    assert new_kid != old_kid
    new_token = await issue_service_token(state, audience="veze-portal", scopes=["portal.admin"])
    assert header_of(new_token)["kid"] == new_kid

    published = {key.kid for key in (await fetch_jwks(portal.url)).keys}
    assert published == {old_kid, new_kid}
    for token in (old_token, new_token):
        assert (await verifier.verify(token)).subject == "svc:portal"

    rows = {row.kid: row for row in await key_rows(portal.settings)}
    retired = rows[old_kid]
    assert retired.retired_at is not None and retired.unpublish_after is not None
    ttl = portal.settings.access_token_ttl_seconds + portal.settings.jwt_leeway_seconds
    assert retired.unpublish_after - retired.retired_at == timedelta(seconds=ttl)
    assert rows[new_kid].retired_at is None

    # Once the old key's tokens have all expired, it leaves the JWKS and stops verifying.
    async with portal.sessionmaker.begin() as db:
        await db.execute(
            update(SigningKey)
            .where(SigningKey.kid == old_kid)
            .values(unpublish_after=datetime.now(UTC) - timedelta(seconds=1))
        )
    keys.invalidate()
    assert {key.kid for key in (await fetch_jwks(portal.url)).keys} == {new_kid}
    with pytest.raises(Unauthorized, match="unknown key"):
        await verifier.verify(old_token)
    assert (await verifier.verify(new_token)).subject == "svc:portal"


async def test_a_cached_retired_key_stops_verifying_on_time(portal: ServedPortal) -> None:
    # A key store whose rotated-out keys live two seconds: no cache reload is needed for the
    # old key to go (the cache keeps each key's deadline).
    keys = KeyStore(portal.sessionmaker, retire_window=timedelta(seconds=2), cache_seconds=60)
    verifier = TokenVerifier(
        issuer=portal.url,
        audience="veze-portal",
        secret=None,
        jwks=keys,
        demo=False,
        mail_domain="example.test",
        leeway_seconds=0,
    )
    state = portal.app.state
    old_token = await issue_service_token(state, audience="veze-portal", scopes=[])
    rotated_at = time.monotonic()
    await keys.rotate()
    await verifier.verify(old_token)
    # Refused once the window is over, within a bounded wait (a loaded machine runs late).
    refused: Unauthorized | None = None
    while refused is None:
        assert time.monotonic() - rotated_at < 10, "a retired key kept verifying"
        await asyncio.sleep(0.05)
        try:
            await verifier.verify(old_token)
        except Unauthorized as error:
            refused = error
    assert "unknown key" in refused.detail
    assert time.monotonic() - rotated_at >= 1.9


async def test_an_unknown_kid_rereads_the_database(portal: ServedPortal) -> None:
    # Another process (the rotation command) rotates: the cached key set does not have the
    # new key, and the verifier must not refuse tokens signed with it.
    state = portal.app.state
    await state.verifier.verify(await issue_service_token(state, audience="veze-portal", scopes=[]))
    other = KeyStore(portal.sessionmaker, retire_window=timedelta(minutes=5))
    new_kid = await other.rotate()
    token = await issue_service_token(state, audience="veze-portal", scopes=[])
    assert header_of(token)["kid"] == new_kid
    await asyncio.sleep(0.6)  # past the minimum gap between rereads
    assert (await state.verifier.verify(token)).subject == "svc:portal"


async def test_the_rotation_command_prints_the_new_kid(portal: ServedPortal) -> None:
    before = {row.kid for row in await key_rows(portal.settings)}
    environment = {
        **os.environ,
        "UNI_DB_URL": portal.settings.db_url,
        "VEZE_ENV": "test",
        "VEZE_VAR_DIR": str(portal.settings.var_dir),
    }
    command = [sys.executable, "-m", "VEZEPyUniQVerse.services.oidc.rotate"]
    result = await asyncio.to_thread(
        subprocess.run,
        command,
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    new_kid = result.stdout.strip()
    assert new_kid and new_kid not in before
    rows = await key_rows(portal.settings)
    assert [row.kid for row in rows if row.retired_at is None] == [new_kid]

    # The running portal signs with it right away, and publishes both keys.
    async with httpx.AsyncClient(timeout=30) as http:  # Argon2 secret checks on a busy box
        response = await http.post(
            f"{portal.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("veze-game-service", portal.secret("veze-game-service")),
        )
    assert header_of(response.json()["access_token"])["kid"] == new_kid
    portal.app.state.oidc_keys.invalidate()
    assert {key.kid for key in (await fetch_jwks(portal.url)).keys} == before | {new_kid}

    listing = await asyncio.to_thread(
        subprocess.run,
        [*command, "--list"],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = listing.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(new_kid) and "active" in lines[0]


async def test_service_tokens_are_signed_with_the_active_key(portal: ServedPortal) -> None:
    token = await issue_service_token(
        portal.app.state, audience="veze-email", scopes=["email.admin"]
    )
    decoded = jwt.decode(token, await fetch_jwks(portal.url), algorithms=["RS256"])
    assert decoded.header["typ"] == "at+jwt"
    claims = decoded.claims
    assert claims["sub"] == "svc:portal" and claims["aud"] == ["veze-email"]
    assert claims["scope"] == "email.admin" and claims["iss"] == portal.url
    assert claims["exp"] - claims["iat"] == 60
    async with portal.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(SigningKey)) == 1


async def test_the_portal_still_accepts_development_hs256_tokens(
    portal_settings: PortalSettings, running: Running, mint: Minter
) -> None:
    app = create_app(portal_settings)
    async with running(app):
        principal = await app.state.verifier.verify(
            mint("svc:test", audience="veze-portal", scopes=("portal.provision",))
        )
    assert principal.subject == "svc:test"
    assert time.time() < principal.claims["exp"]
