"""Helpers for store, telemetry and summary tests: players, tokens and signed webhooks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from VEZEPyGame.services.store.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

Minter = Callable[..., str]
WEBHOOK_SECRET = "whsec-test-" + "s" * 40


def player_token(mint: Minter, handle: str, *scopes: str) -> dict[str, str]:
    token = mint(
        f"{handle}@vezeuniqverse.com",
        audience="veze-game",
        scopes=scopes or ("game.play",),
        preferred_username=handle,
    )
    return {"Authorization": f"Bearer {token}"}


async def create_players(client: httpx.AsyncClient, mint: Minter, *handles: str) -> None:
    admin = {
        "Authorization": "Bearer "
        + mint("svc:portal", audience="veze-game", scopes=("game.admin",))
    }
    for handle in handles:
        response = await client.post("/api/players", json={"handle": handle}, headers=admin)
        assert response.status_code == 201, response.text


def webhook_event(
    event_id: str, kind: str, reference: str, *, amount_cents: int, currency: str = "EUR"
) -> bytes:
    body = {
        "id": event_id,
        "type": kind,
        "created": int(time.time()),
        "data": {"reference": reference, "amount_cents": amount_cents, "currency": currency},
    }
    return json.dumps(body, separators=(",", ":")).encode()


async def post_webhook(
    client: httpx.AsyncClient,
    body: bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
    **extra: Any,
) -> httpx.Response:
    signed_at = int(time.time()) if timestamp is None else timestamp
    headers = {
        TIMESTAMP_HEADER: str(signed_at),
        SIGNATURE_HEADER: signature if signature is not None else sign(secret, signed_at, body),
        "Content-Type": "application/json",
    }
    return await client.post("/webhooks/store", content=body, headers=headers, **extra)


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """The value of one sample on the app's `/metrics` (0 when it is not there)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0
