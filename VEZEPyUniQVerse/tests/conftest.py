from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from VEZEPyUniQVerse.app.main import create_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.tests.helpers import Running


@pytest.fixture
def portal_app(portal_settings: PortalSettings) -> FastAPI:
    return create_app(portal_settings)


@pytest.fixture
async def portal_client(portal_app: FastAPI, running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with running(portal_app) as client:
        yield client
