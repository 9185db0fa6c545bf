"""The portal's domain metrics move with real log-ins, token requests and sign-ups."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.tests.accounts_helpers import portal
from VEZEPyUniQVerse.tests.helpers import with_changes


def sample(exposition: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    raise AssertionError(f"{name}{labels} is not exported")


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def test_logins_tokens_and_provisioning_backlog_are_counted(
    portal_settings: PortalSettings,
) -> None:
    # No worker: the sign-up's provisioning tasks stay pending, as when a target is down.
    async with portal(with_changes(portal_settings, provisioning_worker=False)) as site:
        browser, handle = await site.signed_up("meter")
        await browser.logout()
        client = browser.client
        before = await scrape(client)
        assert sample(before, "veze_login_attempts_total", step="password", outcome="success") == 0

        assert (await browser.login(handle, "not the password")).status_code == 400
        assert (await browser.login("nobody-here", "whatever-it-is")).status_code == 400
        assert (await browser.login(handle)).status_code == 303
        secret = site.app.state.settings.client_secret("veze-email-service")
        granted = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "portal.verify_password"},
            auth=("veze-email-service", secret),
        )
        assert granted.status_code == 200, granted.text
        refused = await client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": handle},
            auth=("veze-email-service", secret),
        )
        assert refused.status_code == 400
        await asyncio.sleep(0.05)  # the pending tasks age measurably

        text = await scrape(client)

    def logins(step: str, outcome: str) -> float:
        return sample(text, "veze_login_attempts_total", step=step, outcome=outcome)

    assert logins("password", "bad_password") == 1
    assert logins("password", "unknown_handle") == 1
    assert logins("password", "success") == 1
    assert sample(text, "veze_tokens_issued_total", grant_type="client_credentials") == 1
    # An unknown grant type is counted as `other`, never as a label copied from the request.
    assert (
        sample(
            text,
            "veze_token_requests_refused_total",
            grant_type="other",
            error="unsupported_grant_type",
        )
        == 1
    )
    for target in ("email", "game"):
        assert sample(text, "veze_provisioning_tasks_pending", target=target) == 1
        assert sample(text, "veze_provisioning_tasks_retrying", target=target) == 0
        assert sample(text, "veze_provisioning_oldest_pending_age_seconds", target=target) > 0
