"""The payment provider's webhook: signature, freshness, replays, idempotency, refunds.

Every test drives the real app (migrations, lifespan, routes) and signs bodies the way a
provider does (HMAC-SHA256 over `f"{timestamp}.{raw_body}"`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select

from VEZEPyGame.app.main import create_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.db.store import InventoryItem, WebhookEvent
from VEZEPyGame.services.store.signature import sign
from VEZEPyGame.tests.conftest import Running
from VEZEPyGame.tests.store_helpers import (
    WEBHOOK_SECRET,
    Minter,
    create_players,
    metric,
    player_token,
    post_webhook,
    webhook_event,
)

PRICE = 199  # piece-crimson in config/store_catalogue.json


@pytest.fixture
def store_app(game_settings: GameSettings) -> FastAPI:
    return create_app(
        game_settings.model_copy(update={"store_webhook_secret": SecretStr(WEBHOOK_SECRET)})
    )


@pytest.fixture
async def client(
    store_app: FastAPI, running: Running, mint: Minter
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(store_app) as client:
        await create_players(client, mint, "alice", "bob")
        yield client


async def start_purchase(
    client: httpx.AsyncClient, mint: Minter, item_id: str, *, price: int = PRICE
) -> str:
    response = await client.post(
        "/api/store/purchases", json={"item_id": item_id}, headers=player_token(mint, "alice")
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["price_cents"] == price and body["currency"] == "EUR"
    reference: str = body["provider_ref"]
    return reference


async def owned(client: httpx.AsyncClient, mint: Minter, handle: str = "alice") -> list[str]:
    response = await client.get("/api/players/me/inventory", headers=player_token(mint, handle))
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


async def inventory_rows(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count(InventoryItem.id))) or 0)


async def test_a_paid_purchase_grants_the_item_once(
    client: httpx.AsyncClient, store_app: FastAPI, mint: Minter
) -> None:
    reference = await start_purchase(client, mint, "piece-crimson")
    assert await owned(client, mint) == []  # pending: nothing granted before payment

    paid = await post_webhook(
        client, webhook_event("evt_1", "payment.succeeded", reference, amount_cents=PRICE)
    )
    assert paid.status_code == 200, paid.text
    assert paid.json() == {"event_id": "evt_1", "outcome": "completed"}
    assert await owned(client, mint) == ["piece-crimson"]
    assert await owned(client, mint, "bob") == []

    # The provider sends the same payment again under a new event id: granted once only.
    again = await post_webhook(
        client, webhook_event("evt_2", "payment.succeeded", reference, amount_cents=PRICE)
    )
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "already_completed"
    assert await inventory_rows(store_app) == 1

    purchases = await client.get("/api/store/purchases", headers=player_token(mint, "alice"))
    (purchase,) = purchases.json()["purchases"]
    assert purchase["status"] == "completed" and purchase["completed_at"] is not None
    # Owned now: buying it again is refused.
    rebuy = await client.post(
        "/api/store/purchases",
        json={"item_id": "piece-crimson"},
        headers=player_token(mint, "alice"),
    )
    assert rebuy.status_code == 409


async def test_bad_or_missing_signature_is_refused_and_grants_nothing(
    client: httpx.AsyncClient, mint: Minter
) -> None:
    reference = await start_purchase(client, mint, "piece-crimson")
    body = webhook_event("evt_bad", "payment.succeeded", reference, amount_cents=PRICE)

    wrong_secret = await post_webhook(client, body, secret="not-the-secret-" + "x" * 30)
    now = int(time.time())
    tampered = await post_webhook(
        client,
        body.replace(b'"amount_cents":199', b'"amount_cents":1'),
        timestamp=now,
        signature=sign(WEBHOOK_SECRET, now, body),
    )
    not_hex = await post_webhook(client, body, signature="zz")
    unsigned = await client.post("/webhooks/store", content=body)

    for response in (wrong_secret, tampered, not_hex, unsigned):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "bad_signature"
    assert await owned(client, mint) == []


async def test_a_stale_or_future_timestamp_is_refused(
    client: httpx.AsyncClient, mint: Minter
) -> None:
    reference = await start_purchase(client, mint, "piece-crimson")
    body = webhook_event("evt_old", "payment.succeeded", reference, amount_cents=PRICE)

    stale = await post_webhook(client, body, timestamp=int(time.time()) - 301)
    future = await post_webhook(client, body, timestamp=int(time.time()) + 301)

    for response in (stale, future):
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "stale_timestamp"
    assert await owned(client, mint) == []
    # The same event, freshly signed, still goes through: a refusal stored nothing.
    fresh = await post_webhook(client, body)
    assert fresh.status_code == 200, fresh.text
    assert await owned(client, mint) == ["piece-crimson"]


async def test_a_replayed_event_is_refused(
    client: httpx.AsyncClient, store_app: FastAPI, mint: Minter
) -> None:
    reference = await start_purchase(client, mint, "piece-crimson")
    paid = webhook_event("evt_once", "payment.succeeded", reference, amount_cents=PRICE)
    assert (await post_webhook(client, paid)).status_code == 200
    refund = webhook_event("evt_refund", "payment.refunded", reference, amount_cents=PRICE)
    assert (await post_webhook(client, refund)).status_code == 200

    # An attacker re-sends the captured payment (re-signed inside the window, even): refused,
    # and the refunded item does not come back.
    replay = await post_webhook(client, paid)
    assert replay.status_code == 409, replay.text
    assert replay.json()["error"] == "replayed_event"
    assert await owned(client, mint) == []
    async with store_app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookEvent)) == 2
    events = "veze_store_webhook_events_total"
    assert await metric(client, events, outcome="completed") == 1
    assert await metric(client, events, outcome="refunded") == 1
    assert await metric(client, events, outcome="replayed_event") == 1


async def test_refund_revokes_and_unequips_the_item(
    client: httpx.AsyncClient, mint: Minter
) -> None:
    alice = player_token(mint, "alice")
    reference = await start_purchase(client, mint, "piece-crimson")
    await post_webhook(
        client, webhook_event("evt_pay", "payment.succeeded", reference, amount_cents=PRICE)
    )
    equipped = await client.put(
        "/api/players/me/cosmetics/piece_colour", json={"item_id": "piece-crimson"}, headers=alice
    )
    assert equipped.status_code == 200, equipped.text
    assert equipped.json()["piece_colour"]["style"] == {"piece": "#c0172f"}

    refunded = await post_webhook(
        client, webhook_event("evt_ref", "payment.refunded", reference, amount_cents=PRICE)
    )
    assert refunded.json() == {"event_id": "evt_ref", "outcome": "refunded"}
    assert await owned(client, mint) == []
    cosmetics = await client.get("/api/players/me/cosmetics", headers=alice)
    assert cosmetics.json() == {"piece_colour": None, "board_theme": None}
    # Equipping what was taken back is refused; a second refund notice changes nothing.
    refused = await client.put(
        "/api/players/me/cosmetics/piece_colour", json={"item_id": "piece-crimson"}, headers=alice
    )
    assert refused.status_code == 403
    twice = await post_webhook(
        client, webhook_event("evt_ref2", "payment.refunded", reference, amount_cents=PRICE)
    )
    assert twice.json()["outcome"] == "already_refunded"
    purchases = (await client.get("/api/store/purchases", headers=alice)).json()["purchases"]
    assert [p["status"] for p in purchases] == ["refunded"]

    # Bought again later: a new purchase grants it back.
    second = await start_purchase(client, mint, "piece-crimson")
    assert second != reference
    await post_webhook(
        client, webhook_event("evt_pay2", "payment.succeeded", second, amount_cents=PRICE)
    )
    assert await owned(client, mint) == ["piece-crimson"]


async def test_wrong_amount_unknown_reference_and_early_refund_are_refused(
    client: httpx.AsyncClient, mint: Minter
) -> None:
    reference = await start_purchase(client, mint, "piece-crimson")
    cheap = await post_webhook(
        client, webhook_event("evt_cheap", "payment.succeeded", reference, amount_cents=1)
    )
    unknown = await post_webhook(
        client, webhook_event("evt_unknown", "payment.succeeded", "pi_nope", amount_cents=PRICE)
    )
    early_refund = await post_webhook(
        client, webhook_event("evt_early", "payment.refunded", reference, amount_cents=PRICE)
    )
    malformed = await post_webhook(client, b'{"id": "evt_x", "type": "payment.stolen"}')
    oversized = await post_webhook(client, b"{" + b" " * 20_000 + b"}")

    assert cheap.status_code == 400 and "costs 199 EUR" in cheap.json()["detail"]
    assert unknown.status_code == 404
    assert early_refund.status_code == 409
    assert malformed.status_code == 422
    assert oversized.status_code == 413
    assert await owned(client, mint) == []
    failed = await post_webhook(
        client, webhook_event("evt_fail", "payment.failed", reference, amount_cents=PRICE)
    )
    assert failed.json()["outcome"] == "failed"


async def test_players_reach_only_their_own_store_data(
    client: httpx.AsyncClient, mint: Minter
) -> None:
    reference = await start_purchase(client, mint, "board-ocean", price=499)
    await post_webhook(
        client, webhook_event("evt_o", "payment.succeeded", reference, amount_cents=499)
    )
    bob = player_token(mint, "bob")

    assert (await client.get("/api/store/purchases", headers=bob)).json() == {"purchases": []}
    wear = await client.put(
        "/api/players/me/cosmetics/board_theme", json={"item_id": "board-ocean"}, headers=bob
    )
    assert wear.status_code == 403
    wrong_slot = await client.put(
        "/api/players/me/cosmetics/piece_colour",
        json={"item_id": "board-ocean"},
        headers=player_token(mint, "alice"),
    )
    assert wrong_slot.status_code == 400
    store = (await client.get("/api/store", headers=bob)).json()
    assert not any(item["owned"] for item in store["items"])
    no_scope = await client.get("/api/store", headers=player_token(mint, "bob", "game.read_mail"))
    assert no_scope.status_code == 403
    stranger = await client.get("/api/store", headers=player_token(mint, "carol"))
    assert stranger.status_code == 404


def test_production_refuses_to_start_without_a_webhook_secret(
    game_settings: GameSettings,
) -> None:
    production = {
        "VEZE_ENV": "production",
        "VEZE_JWT_SECRET": "p" * 40,
        "GAME_DB_URL": "sqlite+aiosqlite:///x.db",
    }
    with pytest.raises(ValueError, match="GAME_STORE_WEBHOOK_SECRET"):
        GameSettings.model_validate(production)
    settings = GameSettings.model_validate({**production, "GAME_STORE_WEBHOOK_SECRET": "w" * 40})
    assert settings.webhook_secret() == "w" * 40


async def test_concurrent_deliveries_of_one_event_grant_once(
    client: httpx.AsyncClient, store_app: FastAPI, mint: Minter
) -> None:
    reference = await start_purchase(client, mint, "piece-crimson")
    body = webhook_event("evt_race", "payment.succeeded", reference, amount_cents=PRICE)
    answers = await asyncio.gather(*(post_webhook(client, body) for _ in range(4)))
    assert sorted(answer.status_code for answer in answers) == [200, 409, 409, 409]
    assert await inventory_rows(store_app) == 1
