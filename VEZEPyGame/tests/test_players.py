"""`POST /api/players` (the portal's provisioning) and `GET /api/players/me`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from VEZEPyGame.db.models import DEFAULT_AVATAR_COLOUR, DEFAULT_REGION, Player
from VEZEPyGame.tests.conftest import bearer

Minter = Callable[..., str]


@pytest.fixture
def admin(mint: Minter) -> dict[str, str]:
    """The portal's provisioning token."""
    return bearer(mint("svc:portal", audience="veze-game", scopes=("game.admin",)))


def player_token(mint: Minter, **claims: object) -> dict[str, str]:
    return bearer(
        mint("user-42", audience="veze-game", scopes=("game.play",), **claims)  # opaque subject
    )


async def count_players(app: FastAPI, handle: str) -> int:
    async with app.state.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Player).where(Player.handle == handle)
        )
    return int(count or 0)


async def test_create_player_is_idempotent_and_keeps_the_first_profile(
    game_app: FastAPI, game_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await game_client.post(
        "/api/players", json={"handle": "Alice", "display_name": " Alice A. "}, headers=admin
    )
    second = await game_client.post(
        "/api/players", json={"handle": "alice", "display_name": "Someone Else"}, headers=admin
    )

    assert first.status_code == 201, first.text
    body = first.json()
    assert body["created"] is True
    assert {key: body[key] for key in ("handle", "display_name", "region", "avatar_colour")} == {
        "handle": "alice",
        "display_name": "Alice A.",
        "region": DEFAULT_REGION,
        "avatar_colour": DEFAULT_AVATAR_COLOUR,
    }
    assert body["mail_opt_in"] is False
    assert second.status_code == 200, second.text
    assert second.json() == {**body, "created": False}  # unchanged: a retry overwrites nothing
    assert await count_players(game_app, "alice") == 1


async def test_concurrent_creates_make_one_player(
    game_app: FastAPI, game_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(game_client.post("/api/players", json={"handle": "bob"}, headers=admin) for _ in range(5))
    )
    assert sorted(response.status_code for response in responses) == [200, 200, 200, 200, 201]
    assert await count_players(game_app, "bob") == 1


@pytest.mark.parametrize(
    ("scopes", "audience", "status"),
    [
        (("game.play",), "veze-game", 403),  # a player may not create players
        (("game.admin",), "veze-email", 401),  # a token for another service
    ],
)
async def test_create_player_needs_the_admin_scope(
    game_app: FastAPI,
    game_client: httpx.AsyncClient,
    mint: Minter,
    scopes: tuple[str, ...],
    audience: str,
    status: int,
) -> None:
    token = mint("alice@vezeuniqverse.com", audience=audience, scopes=scopes)
    response = await game_client.post(
        "/api/players", json={"handle": "alice"}, headers=bearer(token)
    )
    anonymous = await game_client.post("/api/players", json={"handle": "alice"})
    assert response.status_code == status
    assert anonymous.status_code == 401
    assert await count_players(game_app, "alice") == 0


@pytest.mark.parametrize("handle", ["", "has space", "x" * 65, "../etc", "-leading"])
async def test_create_player_refuses_bad_handles(
    game_client: httpx.AsyncClient, admin: dict[str, str], handle: str
) -> None:
    response = await game_client.post("/api/players", json={"handle": handle}, headers=admin)
    assert response.status_code == 422


@pytest.mark.parametrize(
    "claims",
    [
        {"preferred_username": "Alice"},
        {"email": "alice@vezeuniqverse.com"},
        {"preferred_username": "alice", "email": "someone@vezeuniqverse.com"},
    ],
)
async def test_me_finds_the_callers_player(
    game_client: httpx.AsyncClient,
    admin: dict[str, str],
    mint: Minter,
    claims: dict[str, object],
) -> None:
    await game_client.post("/api/players", json={"handle": "alice"}, headers=admin)
    await game_client.post("/api/players", json={"handle": "someone"}, headers=admin)
    response = await game_client.get("/api/players/me", headers=player_token(mint, **claims))
    assert response.status_code == 200, response.text
    assert response.json()["handle"] == "alice"
    assert "created" not in response.json()


async def test_me_is_404_until_provisioned_and_ignores_foreign_addresses(
    game_client: httpx.AsyncClient, admin: dict[str, str], mint: Minter
) -> None:
    before = await game_client.get(
        "/api/players/me", headers=player_token(mint, preferred_username="alice")
    )
    await game_client.post("/api/players", json={"handle": "alice"}, headers=admin)
    # Same local part, another domain: not this service's alice.
    foreign = await game_client.get(
        "/api/players/me", headers=player_token(mint, email="alice@example.org")
    )
    anonymous_subject = await game_client.get("/api/players/me", headers=player_token(mint))
    assert before.status_code == 404
    assert before.json() == {
        "error": "not_found",
        "detail": "no player profile for this account yet",
    }
    assert foreign.status_code == 404
    assert anonymous_subject.status_code == 404


async def test_me_needs_game_play(
    game_client: httpx.AsyncClient, admin: dict[str, str], mint: Minter
) -> None:
    await game_client.post("/api/players", json={"handle": "alice"}, headers=admin)
    token = mint(
        "alice@vezeuniqverse.com",
        audience="veze-game",
        scopes=("game.read_mail",),
        preferred_username="alice",
    )
    response = await game_client.get("/api/players/me", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["detail"] == "missing scope: game.play"
