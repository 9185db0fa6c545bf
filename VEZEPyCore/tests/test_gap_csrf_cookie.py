"""The CSRF cookie is set where a form could need it, not on every answer to a cookieless client.

API calls with a bearer token and health probes send no cookies; they get no Set-Cookie. A page
(any HTML, or a response that handed the token out) still sets it, and the double-submit check
on form posts is unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse

from VEZEPyCore.errors import install_error_handlers
from VEZEPyCore.security.csrf import (
    CsrfCookieMiddleware,
    csrf_cookie_name,
    csrf_input,
    csrf_token,
    require_csrf,
)

COOKIE = csrf_cookie_name("test")
Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


def build_app() -> FastAPI:
    app = FastAPI()
    app.state.csrf_cookie_name = COOKIE
    install_error_handlers(app)

    @app.get("/health", response_class=PlainTextResponse)
    async def health() -> str:
        return "ok"

    @app.get("/api/things")
    async def things() -> list[int]:
        return [1, 2]

    @app.get("/api/csrf")
    async def token_for_a_script(request: Request) -> dict[str, str]:
        # JSON that hands the token to a script: the cookie must come with it.
        return {"csrf": csrf_token(request)}

    @app.get("/form", response_class=HTMLResponse)
    async def form(request: Request) -> str:
        return f'<form method="post">{csrf_input(request)}</form>'

    @app.get("/about", response_class=HTMLResponse)
    async def about() -> str:
        return "<p>No form here, but a page.</p>"

    @app.get("/streamed")
    async def streamed(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[str]:
            yield "<main>"
            # Rendered after the response started: only "it is HTML" can set the cookie.
            yield f'<form method="post">{csrf_input(request)}</form></main>'

        return StreamingResponse(body(), media_type="text/html; charset=utf-8")

    @app.post("/form", dependencies=[Depends(require_csrf)])
    async def submit(name: Annotated[str, Form()]) -> dict[str, str]:
        return {"name": name}

    app.add_middleware(CsrfCookieMiddleware, service="test", secure=False)
    return app


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app()), base_url="http://testserver"
    )


async def test_json_and_health_answers_carry_no_cookie() -> None:
    async with client() as http:
        for path in ("/health", "/api/things", "/api/things", "/health"):
            response = await http.get(path, headers={"Authorization": "Bearer x"})
            assert response.status_code == 200
            assert "set-cookie" not in response.headers, path
        assert COOKIE not in http.cookies
        # Without a cookie, the form post is refused: nothing was handed out to match.
        refused = await http.post("/form", data={"name": "alice"})
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("the form has expired")


async def test_pages_and_handed_out_tokens_set_the_cookie() -> None:
    for path in ("/form", "/about", "/streamed", "/api/csrf"):
        async with client() as http:
            response = await http.get(path)
            assert response.status_code == 200
            assert "HttpOnly" in response.headers["set-cookie"], path
            token = http.cookies[COOKIE]
            if path in ("/form", "/streamed"):
                assert f'value="{token}"' in response.text
            if path == "/api/csrf":
                assert response.json() == {"csrf": token}
            # The cookie and the handed-out token match, so the double submit passes ...
            passed = await http.post("/form", data={"csrf_token": token, "name": "alice"})
            assert passed.status_code == 200, (path, passed.text)
            # ... and a post without it is still refused.
            missing = await http.post("/form", data={"name": "alice"})
            assert missing.status_code == 403
            # Once set, the cookie is not set again, by a page or by an API answer.
            for again in ("/form", "/api/things"):
                assert "set-cookie" not in (await http.get(again)).headers


async def test_the_services_set_it_on_pages_only(
    email_settings: object, portal_settings: object, running: Running, mint: Callable[..., str]
) -> None:
    from VEZEPyEmail.app.main import create_app as create_email
    from VEZEPyUniQVerse.app.main import create_app as create_portal

    email_app = create_email(email_settings)  # type: ignore[arg-type]
    bearer = {"Authorization": f"Bearer {mint('alice@vezeuniqverse.com')}"}
    async with running(email_app) as email:
        for path in ("/health", "/ready", "/api/messages?user=alice@vezeuniqverse.com"):
            response = await email.get(path, headers=bearer)
            assert response.status_code in (200, 404), (path, response.text)
            assert "set-cookie" not in response.headers, path
    portal_app = create_portal(portal_settings)  # type: ignore[arg-type]
    async with running(portal_app) as portal:
        health = await portal.get("/health")
        assert health.status_code == 200 and "set-cookie" not in health.headers
        page = await portal.get("/login")
        assert page.status_code == 200
        token = portal.cookies["veze_portal_csrf"]
        assert f'value="{token}"' in page.text
        refused = await portal.post("/login", data={"handle": "alice", "password": "x" * 12})
        assert refused.status_code == 403
