from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse

from VEZEPyCore.errors import install_error_handlers
from VEZEPyCore.security.csrf import (
    CsrfCookieMiddleware,
    csrf_cookie_name,
    csrf_input,
    require_csrf,
)


def build_app() -> FastAPI:
    app = FastAPI()
    app.state.csrf_cookie_name = csrf_cookie_name("test")
    install_error_handlers(app)

    @app.get("/form", response_class=HTMLResponse)
    async def form(request: Request) -> str:
        return f'<form method="post">{csrf_input(request)}</form>'

    @app.post("/form", dependencies=[Depends(require_csrf)])
    async def submit(name: Annotated[str, Form()]) -> dict[str, str]:
        return {"name": name}

    @app.post("/api/thing", dependencies=[Depends(require_csrf)])
    async def api_thing() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(CsrfCookieMiddleware, service="test", secure=False)
    return app


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app()), base_url="http://testserver"
    )


async def token_of(http: httpx.AsyncClient) -> str:
    page = await http.get("/form")
    token = page.cookies["veze_test_csrf"]
    assert f'value="{token}"' in page.text
    assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Lax" in page.headers["set-cookie"]
    return token


async def test_form_with_the_token_passes() -> None:
    async with client() as http:
        token = await token_of(http)
        response = await http.post("/form", data={"csrf_token": token, "name": "alice"})
        assert response.json() == {"name": "alice"}
        again = await http.get("/form")
        assert "set-cookie" not in again.headers  # the token is stable for the browser


async def test_form_without_or_with_a_wrong_token_is_refused() -> None:
    async with client() as http:
        token = await token_of(http)
        missing = await http.post("/form", data={"name": "alice"})
        wrong = await http.post("/form", data={"csrf_token": "x" * 43, "name": "alice"})
        assert missing.status_code == wrong.status_code == 403
        assert "reload" in missing.json()["detail"]
        assert token


async def test_a_token_without_its_cookie_is_refused() -> None:
    async with client() as http:
        token = await token_of(http)
        http.cookies.clear()
        response = await http.post("/form", data={"csrf_token": token, "name": "alice"})
        assert response.status_code == 403


async def test_scripts_send_the_header() -> None:
    async with client() as http:
        token = await token_of(http)
        assert (await http.post("/api/thing", headers={"X-CSRF-Token": token})).status_code == 200
        assert (await http.post("/api/thing")).status_code == 403


async def test_cross_origin_posts_are_refused_even_with_a_token() -> None:
    async with client() as http:
        token = await token_of(http)
        evil = await http.post(
            "/form", data={"csrf_token": token, "name": "x"}, headers={"Origin": "http://evil.test"}
        )
        fetch_meta = await http.post(
            "/form",
            data={"csrf_token": token, "name": "x"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        same = await http.post(
            "/form",
            data={"csrf_token": token, "name": "x"},
            headers={"Origin": "http://testserver"},
        )
        assert evil.status_code == fetch_meta.status_code == 403
        assert same.status_code == 200
