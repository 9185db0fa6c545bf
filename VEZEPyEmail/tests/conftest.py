from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings


@pytest.fixture
def email_app(email_settings: EmailSettings) -> FastAPI:
    return create_app(email_settings)


@pytest.fixture
async def email_client(
    email_app: FastAPI,
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(email_app) as client:
        yield client


@pytest.fixture
def admin_headers(mint: Callable[..., str]) -> dict[str, str]:
    token = mint("svc:portal", scopes=("email.admin", "email.read"))
    return {"Authorization": f"Bearer {token}"}


async def provision(client: httpx.AsyncClient, headers: dict[str, str], address: str) -> None:
    response = await client.post("/api/mailboxes", json={"address": address}, headers=headers)
    assert response.status_code in (200, 201), response.text
