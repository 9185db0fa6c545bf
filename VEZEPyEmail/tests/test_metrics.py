"""The mail platform's domain metrics move with real SMTP sessions, streams and queued mail."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from VEZEPyCore.testing import serve_app
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.metrics import EmailMetrics, refusal_reason
from VEZEPyEmail.services.outbound.queue import enqueue_outbound
from VEZEPyEmail.services.smtp.tls import certificate_paths
from VEZEPyEmail.tests.smtp_support import DOMAIN, message, smtp_settings

ALICE = f"alice@{DOMAIN}"


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


async def until(client: httpx.AsyncClient, name: str, value: float, **labels: str) -> str:
    """Scrape until the sample has `value` (gauges follow connections closing)."""
    for _ in range(200):
        text = await scrape(client)
        if sample(text, name, **labels) == value:
            return text
        await asyncio.sleep(0.025)
    raise AssertionError(f"{name}{labels} never became {value}")


def mx_session(port: int) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example.org")
        # One recipient refused (unknown user), the message accepted for the other.
        return client.sendmail(
            "carol@example.org", [f"nobody@{DOMAIN}", ALICE], message(subject="Metered")
        )


def starttls_session(port: int, cafile: Path) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example.org")
        client.starttls(context=ssl.create_default_context(cafile=str(cafile)))
        assert client.ehlo("client.example.org")[0] == 250


async def test_smtp_sse_and_queue_metrics_follow_real_traffic(
    email_settings: EmailSettings, mint: Callable[..., str]
) -> None:
    settings = smtp_settings(email_settings, outbound_worker=False, redis_url=None)
    app = create_app(settings)
    admin = {"Authorization": f"Bearer {mint('svc:portal', scopes=('email.admin',))}"}
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        before = await scrape(client)
        assert sample(before, "veze_smtp_sessions_total", listener="mx") == 0
        assert sample(before, "veze_outbound_queue_depth", status="queued") == 0
        assert sample(before, "veze_outbound_queue_oldest_age_seconds") == 0
        assert (
            await client.post("/api/mailboxes", json={"address": ALICE}, headers=admin)
        ).status_code == 201

        cert, _key = certificate_paths(settings)
        await asyncio.to_thread(starttls_session, app.state.smtp.port("submission"), cert)
        text = await until(client, "veze_smtp_sessions_active", 0, listener="submission")
        # STARTTLS re-enters connection_made on the same session: still one session.
        assert sample(text, "veze_smtp_sessions_total", listener="submission") == 1
        refused = await asyncio.to_thread(mx_session, app.state.smtp.port("mx"))
        assert refused[f"nobody@{DOMAIN}"][0] == 550
        text = await until(client, "veze_smtp_sessions_active", 0, listener="mx")
        assert sample(text, "veze_smtp_sessions_total", listener="mx") == 1
        assert sample(text, "veze_smtp_sessions_total", listener="submission") == 1
        assert sample(text, "veze_smtp_messages_accepted_total", listener="mx") == 1
        assert (
            sample(
                text, "veze_smtp_messages_refused_total", listener="mx", reason="unknown_recipient"
            )
            == 1
        )

        await enqueue_outbound(
            app.state, raw=message(sender=ALICE, to="dan@example.net"),
            envelope_from=ALICE, recipients=["dan@example.net"],
        )  # fmt: skip
        await asyncio.sleep(0.05)  # let the queued row age measurably
        text = await scrape(client)
        assert sample(text, "veze_outbound_queue_depth", status="queued") == 1
        assert sample(text, "veze_outbound_queue_oldest_age_seconds") > 0

        token = mint(ALICE)
        async with client.stream("GET", "/api/events", params={"access_token": token}) as stream:
            lines = stream.aiter_lines()
            while (await asyncio.wait_for(anext(lines), 10)) != "event: ready":
                pass
            assert sample(await scrape(client), "veze_sse_clients_connected") == 1
        await until(client, "veze_sse_clients_connected", 0)


def test_replies_are_counted_by_reason() -> None:
    registry = CollectorRegistry()
    metrics = EmailMetrics(registry)
    for reply in (
        "250 2.0.0 OK queued as ABC",
        "550 5.7.1 Relaying denied",
        "552 5.3.4 Message size exceeds fixed maximum size",
        "535 5.7.8 Authentication credentials invalid",
        "235 2.7.0 Authentication successful",
        "503 5.5.1 Need RCPT command",  # a protocol mistake, not a refusal of mail
        "554 5.7.9 Something new",
    ):
        metrics.reply("submission", reply)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"listener": "submission", **labels})

    assert value("veze_smtp_messages_accepted_total") == 1
    assert value("veze_smtp_messages_refused_total", reason="relay_denied") == 1
    assert value("veze_smtp_messages_refused_total", reason="too_large") == 1
    assert value("veze_smtp_messages_refused_total", reason="other") == 1
    assert value("veze_smtp_messages_refused_total", reason="unknown_recipient") == 0
    assert value("veze_smtp_auth_attempts_total", outcome="failure") == 1
    assert value("veze_smtp_auth_attempts_total", outcome="success") == 1
    assert refusal_reason("503 5.5.1 Need RCPT command") is None
