"""Portal provisioning -> Email, both apps in this process, talking through httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyUniQVerse.app.main import create_app as create_portal_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import Provisioning
from VEZEPyUniQVerse.services.provisioning.service import get_provisioning
from VEZEPyUniQVerse.tests.helpers import bearer, dead_url, serve_stalled, with_changes
from VEZEPyUniQVerse.tests.provisioning_helpers import trusting_portal

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
Minter = Callable[..., str]

ALICE = "alice@vezeuniqverse.com"


@pytest.fixture
def provisioner(mint: Minter) -> dict[str, str]:
    return bearer(mint("svc:signup", audience="veze-portal", scopes=("portal.provision",)))


@asynccontextmanager
async def platform(
    portal_settings: PortalSettings, email_settings: EmailSettings, running: Running
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, httpx.AsyncClient]]:
    """Portal and Email with their lifespans, the portal's Email calls routed in-process."""
    email_app = create_email_app(email_settings)
    portal_app = create_portal_app(portal_settings)
    async with (
        running(email_app) as email,
        running(portal_app) as portal,
        # Service tokens are signed with the portal's key: Email verifies them by its JWKS.
        trusting_portal(email_app, portal_app, audience=email_settings.email_aud),
    ):
        portal_app.state.clients.mount("email", email_app)
        yield portal_app, portal, email


async def record(app: FastAPI, handle: str) -> Provisioning | None:
    async with app.state.sessionmaker() as session:
        return await get_provisioning(session, handle=handle)


async def inbox(email: httpx.AsyncClient, mint: Minter, address: str) -> list[dict[str, object]]:
    response = await email.get(
        "/api/messages", params={"user": address}, headers=bearer(mint(address))
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, object]] = response.json()["messages"]
    return messages


async def test_provisioning_creates_the_mailbox_with_a_welcome_mail_once(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    running: Running,
    mint: Minter,
    provisioner: dict[str, str],
) -> None:
    async with platform(portal_settings, email_settings, running) as (portal_app, portal, email):
        first = await portal.post(
            "/provision/Alice", json={"display_name": "Alice A."}, headers=provisioner
        )
        assert first.status_code == 201, first.text
        assert first.json() == {
            "handle": "alice",
            "address": ALICE,
            "status": "done",
            "created": True,
        }
        messages = await inbox(email, mint, ALICE)
        assert [message["subject"] for message in messages] == ["Welcome to VEZE UniQVerse"]
        assert str(messages[0]["snippet"]).startswith("Hello Alice A.,")  # display name forwarded

        second = await portal.post("/provision/alice", headers=provisioner)
        assert second.status_code == 200, second.text
        assert second.json() == {
            "handle": "alice",
            "address": ALICE,
            "status": "done",
            "created": False,
        }
        assert len(await inbox(email, mint, ALICE)) == 1

        row = await record(portal_app, "alice")
    assert row is not None
    assert (row.address, row.status, row.attempts, row.last_error) == (ALICE, "done", 2, None)


async def test_concurrent_provisioning_of_one_handle_creates_one_mailbox(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    running: Running,
    mint: Minter,
    provisioner: dict[str, str],
) -> None:
    async with platform(portal_settings, email_settings, running) as (portal_app, portal, email):
        responses = await asyncio.gather(
            *(portal.post("/provision/alice", headers=provisioner) for _ in range(4))
        )
        messages = await inbox(email, mint, ALICE)
        row = await record(portal_app, "alice")
    assert sorted(response.status_code for response in responses) == [200, 200, 200, 201]
    assert [response.json()["created"] for response in responses].count(True) == 1
    assert len(messages) == 1
    assert row is not None
    assert (row.status, row.attempts) == ("done", 4)


@pytest.mark.parametrize(
    ("handle", "reason"),
    [
        ("ab", "3-32 characters"),
        ("Admin", "reserved"),
        ("bad handle", "only letters, digits"),
        ("x" * 40, "3-32 characters"),
        ("postmaster", "reserved"),
    ],
)
async def test_invalid_handles_are_refused_before_anything_is_created(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    running: Running,
    mint: Minter,
    provisioner: dict[str, str],
    handle: str,
    reason: str,
) -> None:
    async with platform(portal_settings, email_settings, running) as (portal_app, portal, email):
        response = await portal.post(f"/provision/{handle}", headers=provisioner)
        address = f"{handle.lower()}@vezeuniqverse.com"
        admin = bearer(mint("svc:test", scopes=("email.read", "email.admin")))
        mailbox = await email.get("/api/messages", params={"user": address}, headers=admin)
        async with portal_app.state.sessionmaker() as session:
            rows = await session.scalar(select(func.count()).select_from(Provisioning))
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert reason in response.json()["detail"]
    assert mailbox.status_code in (400, 404)  # never created (400: not even a valid address)
    assert rows == 0


async def test_provisioning_needs_a_portal_token_with_the_provision_scope(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    running: Running,
    mint: Minter,
) -> None:
    async with platform(portal_settings, email_settings, running) as (portal_app, portal, _email):
        anonymous = await portal.post("/provision/alice")
        user = await portal.post(
            "/provision/alice",
            headers=bearer(mint(ALICE, audience="veze-portal", scopes=("email.read",))),
        )
        other_audience = await portal.post(
            "/provision/alice",
            headers=bearer(mint("svc:x", audience="veze-email", scopes=("portal.provision",))),
        )
        row = await record(portal_app, "alice")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert user.status_code == 403
    assert user.json() == {
        "error": "insufficient_scope",
        "detail": "missing scope: portal.provision",
    }
    assert other_audience.status_code == 401
    assert row is None


async def test_email_down_is_a_502_and_the_failure_is_recorded(
    portal_settings: PortalSettings, running: Running, provisioner: dict[str, str]
) -> None:
    settings = with_changes(portal_settings, service_urls={"email": dead_url()})
    portal_app = create_portal_app(settings)
    async with running(portal_app) as portal:
        first = await portal.post("/provision/alice", headers=provisioner)
        second = await portal.post("/provision/alice", headers=provisioner)
        row = await record(portal_app, "alice")
    assert first.status_code == second.status_code == 502
    assert first.json()["error"] == "upstream_unavailable"
    assert "mail service is unreachable" in first.json()["detail"]
    assert row is not None
    assert (row.status, row.attempts) == ("failed", 2)
    assert row.last_error is not None and "unreachable" in row.last_error


async def test_a_failed_provisioning_succeeds_when_retried(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    running: Running,
    mint: Minter,
    provisioner: dict[str, str],
) -> None:
    email_app = create_email_app(email_settings)
    portal_app = create_portal_app(
        with_changes(portal_settings, service_urls={"email": dead_url()})
    )
    async with (
        running(email_app) as email,
        running(portal_app) as portal,
        trusting_portal(email_app, portal_app, audience=email_settings.email_aud),
    ):
        failed = await portal.post("/provision/alice", headers=provisioner)
        portal_app.state.clients.mount("email", email_app)  # Email comes back
        retried = await portal.post("/provision/alice", headers=provisioner)
        row = await record(portal_app, "alice")
        messages = await inbox(email, mint, ALICE)
    assert failed.status_code == 502
    assert (retried.status_code, retried.json()["created"]) == (201, True)
    assert row is not None
    assert (row.status, row.attempts, row.last_error) == ("done", 2, None)
    assert len(messages) == 1


async def test_email_too_slow_is_a_504_and_the_failure_is_recorded(
    portal_settings: PortalSettings, running: Running, provisioner: dict[str, str]
) -> None:
    async with serve_stalled() as stalled_url:
        settings = with_changes(
            portal_settings, service_urls={"email": stalled_url}, http_timeout_seconds=0.3
        )
        portal_app = create_portal_app(settings)
        async with running(portal_app) as portal:
            response = await portal.post("/provision/alice", headers=provisioner)
            row = await record(portal_app, "alice")
    assert response.status_code == 504
    assert response.json()["error"] == "upstream_timeout"
    assert "0.3s" in response.json()["detail"]
    assert row is not None
    assert (row.status, row.attempts) == ("failed", 1)
