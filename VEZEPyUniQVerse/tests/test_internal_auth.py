"""`POST /internal/auth/verify`: the mail service's password check (SMTP AUTH, RFC 4954)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI

from VEZEPyUniQVerse.services.accounts.service import create_app_password
from VEZEPyUniQVerse.services.internal_auth.service import VERIFY_PASSWORD_SCOPE
from VEZEPyUniQVerse.tests.oidc_support import PASSWORD, create_user

VERIFY = "/internal/auth/verify"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def email_service_token(mint: Callable[..., str], **changes: object) -> str:
    values: dict[str, object] = {
        "audience": "veze-portal",
        "scopes": (VERIFY_PASSWORD_SCOPE,),
        "client_id": "veze-email-service",
    }
    values.update(changes)
    return mint("svc:veze-email-service", **values)


async def test_email_service_client_credentials_token_checks_passwords(
    portal_app: FastAPI, portal_client: httpx.AsyncClient
) -> None:
    user = await create_user(portal_app, "alice")
    async with portal_app.state.sessionmaker.begin() as db:
        _, app_password = await create_app_password(db, user=user, name="Phone")
    secret = portal_app.state.settings.client_secret("veze-email-service")
    granted = await portal_client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": VERIFY_PASSWORD_SCOPE},
        auth=("veze-email-service", secret),
    )
    assert granted.status_code == 200, granted.text
    headers = bearer(granted.json()["access_token"])

    for password in (PASSWORD, app_password):
        checked = await portal_client.post(
            VERIFY, json={"handle": "Alice", "password": password}, headers=headers
        )
        assert checked.status_code == 200, checked.text
        assert checked.json() == {"handle": "alice", "email": "alice@vezeuniqverse.com"}
    wrong = await portal_client.post(
        VERIFY, json={"handle": "alice@vezeuniqverse.com", "password": "nope"}, headers=headers
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials"
    unknown = await portal_client.post(
        VERIFY, json={"handle": "nobody", "password": PASSWORD}, headers=headers
    )
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_credentials"


async def test_only_the_email_service_with_the_scope_may_ask(
    portal_app: FastAPI, portal_client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    await create_user(portal_app, "alice")
    body = {"handle": "alice", "password": PASSWORD}
    assert (await portal_client.post(VERIFY, json=body)).status_code == 401
    no_scope = email_service_token(mint, scopes=("game.admin",))
    assert (
        await portal_client.post(VERIFY, json=body, headers=bearer(no_scope))
    ).status_code == 403
    other_client = email_service_token(mint, client_id="veze-game-service")
    refused = await portal_client.post(VERIFY, json=body, headers=bearer(other_client))
    assert refused.status_code == 403
    wrong_audience = email_service_token(mint, audience="veze-email")
    refused = await portal_client.post(VERIFY, json=body, headers=bearer(wrong_audience))
    assert refused.status_code == 401


async def test_failures_per_handle_and_attempts_per_ip_are_limited(
    portal_app: FastAPI, portal_client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    await create_user(portal_app, "alice")
    headers = bearer(email_service_token(mint))
    codes = []
    for _ in range(11):
        response = await portal_client.post(
            VERIFY,
            json={"handle": "alice", "password": "guess", "remote_ip": "203.0.113.7"},
            headers=headers,
        )
        codes.append(response.status_code)
    assert codes == [401] * 10 + [429]
    # The handle is locked for every client now, even with the right password...
    locked = await portal_client.post(
        VERIFY,
        json={"handle": "alice", "password": PASSWORD, "remote_ip": "198.51.100.1"},
        headers=headers,
    )
    assert locked.status_code == 429 and "Retry-After" in locked.headers
    # ...and one client IP has a budget of its own across handles.
    statuses = set()
    for n in range(31):
        response = await portal_client.post(
            VERIFY,
            json={"handle": f"user{n}", "password": "guess", "remote_ip": "192.0.2.9"},
            headers=headers,
        )
        statuses.add(response.status_code)
    assert 429 in statuses
