"""`GET /email/mail` against an Email that is down, slow, or answering with errors.

The happy path against the real Email app is in `tests/test_integration_game_email.py`; here
Email is a closed port, a real socket that never answers, or a small stand-in app for answers
the real Email cannot be made to give (5xx, a broken body).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from VEZEPyCore.testing import free_port
from VEZEPyGame.tests.conftest import GameAppFactory, Running, bearer

ALICE = "alice@vezeuniqverse.com"
#: Far below the 5 s default timeout, so a pass proves the configured timeout was applied.
NO_HANG_SECONDS = 3.0
WELCOME = {
    "id": 1,
    "subject": "Welcome",
    "from_": "VEZE UniQVerse <welcome@vezeuniqverse.com>",
    "date": "2026-11-27T10:00:00Z",
    "snippet": "Hello",
    "labels": [],
    "flags": [],
    "size": 42,
    "spam_score": 0.0,
    "unread": True,
}


@pytest.fixture
def reader_token(mint: Callable[..., str]) -> str:
    return mint(ALICE, audience="veze-game", scopes=("game.read_mail",))


@pytest.fixture
def unreachable_email_app(make_game_app: GameAppFactory) -> FastAPI:
    """Game pointed at a loopback port nothing listens on."""
    return make_game_app(service_urls={"email": f"http://127.0.0.1:{free_port()}"})


@asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A real HTTP peer that reads the request and never answers; yields its URL and a flag
    set once a request arrived (so a 504 is known to come from waiting, not from connecting)."""
    request_seen = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            request_seen.set()
            await reader.read()  # hold the request open until the client gives up
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", request_seen
    finally:
        server.close()
        await server.wait_closed()


def stand_in_email(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> tuple[FastAPI, list[Request]]:
    """An app answering `GET /api/messages` with `body`; the list collects the requests."""
    app = FastAPI()
    seen: list[Request] = []

    @app.get("/api/messages")
    async def list_messages(request: Request) -> Response:
        """Answer with the canned response."""
        seen.append(request)
        if isinstance(body, bytes):
            return Response(body, status_code=status, headers=headers, media_type="text/plain")
        return JSONResponse(body, status_code=status, headers=headers)

    return app, seen


async def test_email_down_is_a_quick_502(
    unreachable_email_app: FastAPI, running: Running, reader_token: str
) -> None:
    async with running(unreachable_email_app) as client, asyncio.timeout(NO_HANG_SECONDS):
        response = await client.get(
            "/email/mail", params={"user": ALICE}, headers=bearer(reader_token)
        )
    assert response.status_code == 502
    assert response.json() == {
        "error": "upstream_unavailable",
        "detail": "the email service is unreachable (ConnectError); try again later",
    }


async def test_slow_email_is_a_504(
    make_game_app: GameAppFactory, running: Running, reader_token: str
) -> None:
    async with silent_server() as (url, request_seen):
        app = make_game_app(service_urls={"email": url}, http_timeout_seconds=0.5)
        async with running(app) as client, asyncio.timeout(NO_HANG_SECONDS):
            response = await client.get(
                "/email/mail", params={"user": ALICE}, headers=bearer(reader_token)
            )
        assert request_seen.is_set()
    assert response.status_code == 504
    assert response.json() == {
        "error": "upstream_timeout",
        "detail": "the email service did not answer within 0.5s; try again",
    }


async def test_missing_token_is_401_and_email_is_not_called(
    unreachable_email_app: FastAPI, running: Running
) -> None:
    async with running(unreachable_email_app) as client:
        response = await client.get("/email/mail", params={"user": ALICE})
    # Email is down: reaching it would have been a 502.
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_token_without_read_mail_is_403(
    unreachable_email_app: FastAPI, running: Running, mint: Callable[..., str]
) -> None:
    token = mint(ALICE, audience="veze-game", scopes=("game.play", "email.read"))
    async with running(unreachable_email_app) as client:
        response = await client.get("/email/mail", params={"user": ALICE}, headers=bearer(token))
    assert response.status_code == 403
    assert response.json() == {
        "error": "insufficient_scope",
        "detail": "missing scope: game.read_mail",
    }


async def test_token_for_another_audience_is_401(
    unreachable_email_app: FastAPI, running: Running, mint: Callable[..., str]
) -> None:
    token = mint(ALICE, audience="veze-email", scopes=("game.read_mail",))
    async with running(unreachable_email_app) as client:
        response = await client.get("/email/mail", params={"user": ALICE}, headers=bearer(token))
    assert response.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"user": ALICE, "limit": 0},
        {"user": ALICE, "limit": 201},
        {"user": ALICE, "offset": -1},
        {"user": "a" * 310 + "@vezeuniqverse.com"},
        {},
    ],
)
async def test_bad_query_is_422_and_email_is_not_called(
    unreachable_email_app: FastAPI, running: Running, reader_token: str, params: dict[str, Any]
) -> None:
    async with running(unreachable_email_app) as client:
        response = await client.get("/email/mail", params=params, headers=bearer(reader_token))
    assert response.status_code == 422


async def test_caller_token_paging_and_request_id_are_forwarded(
    game_app: FastAPI, running: Running, reader_token: str
) -> None:
    email, seen = stand_in_email(200, {"user": ALICE, "messages": [WELCOME]})
    async with running(game_app) as client:
        game_app.state.clients.mount("email", email)
        response = await client.get(
            "/email/mail",
            params={"user": ALICE, "limit": 5, "offset": 10},
            headers={**bearer(reader_token), "X-Request-ID": "req-from-browser"},
        )
    assert response.status_code == 200
    assert response.json() == {"user": ALICE, "messages": [WELCOME]}
    (request,) = seen
    assert request.headers["authorization"] == f"Bearer {reader_token}"
    assert request.headers["x-request-id"] == "req-from-browser"
    assert dict(request.query_params) == {"user": ALICE, "limit": "5", "offset": "10"}


@pytest.mark.parametrize(
    ("upstream_status", "upstream_body", "status", "body"),
    [
        pytest.param(
            403,
            {"error": "forbidden", "detail": "this token may not read that mailbox"},
            403,
            {"error": "forbidden", "detail": "this token may not read that mailbox"},
            id="4xx-keeps-status-and-reason",
        ),
        pytest.param(
            422,
            {"detail": [{"loc": ["query", "user"], "msg": "too short"}]},
            422,
            {
                "error": "upstream_rejected",
                "detail": '[{"loc":["query","user"],"msg":"too short"}]',
            },
            id="4xx-validation-list-detail",
        ),
        pytest.param(
            404,
            b"not json",
            404,
            {
                "error": "upstream_rejected",
                "detail": "the email service refused (HTTP 404)",
            },
            id="4xx-without-json",
        ),
        pytest.param(
            500,
            {"error": "internal", "detail": "database is locked"},
            502,
            {"error": "upstream_unavailable", "detail": "the email service failed (HTTP 500)"},
            id="5xx-is-502-without-internals",
        ),
        pytest.param(
            200,
            {"user": ALICE, "messages": [{"id": "not-a-message"}]},
            502,
            {
                "error": "upstream_unavailable",
                "detail": "the email service sent an unexpected response",
            },
            id="broken-success-body",
        ),
        pytest.param(
            200,
            b"<html>",
            502,
            {
                "error": "upstream_unavailable",
                "detail": "the email service sent an unexpected response",
            },
            id="non-json-success-body",
        ),
    ],
)
async def test_email_answers_are_mapped(
    game_app: FastAPI,
    running: Running,
    reader_token: str,
    upstream_status: int,
    upstream_body: Any,
    status: int,
    body: dict[str, str],
) -> None:
    email, _ = stand_in_email(upstream_status, upstream_body)
    async with running(game_app) as client:
        game_app.state.clients.mount("email", email)
        response = await client.get(
            "/email/mail", params={"user": ALICE}, headers=bearer(reader_token)
        )
    assert response.status_code == status
    assert response.json() == body


async def test_email_401_keeps_its_bearer_challenge(
    game_app: FastAPI, running: Running, reader_token: str
) -> None:
    challenge = 'Bearer error="invalid_token", error_description="token rejected: aud"'
    email, _ = stand_in_email(
        401,
        {"error": "invalid_token", "detail": "token rejected: aud"},
        {"WWW-Authenticate": challenge},
    )
    async with running(game_app) as client:
        game_app.state.clients.mount("email", email)
        response = await client.get(
            "/email/mail", params={"user": ALICE}, headers=bearer(reader_token)
        )
    assert response.status_code == 401
    assert response.json()["detail"] == "token rejected: aud"
    # RFC 6750 section 3: a 401 carries the challenge, so the caller learns why.
    assert response.headers["www-authenticate"] == challenge
