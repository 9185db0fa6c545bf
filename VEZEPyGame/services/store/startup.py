"""Store start-up: the catalogue is read and the webhook secret resolved before serving, so a
broken catalogue file or a missing secret stops the service at once instead of at a purchase.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from VEZEPyGame.app.settings import BUNDLED_CATALOGUE, GameSettings
from VEZEPyGame.services.store.catalogue import load_catalogue
from VEZEPyGame.services.store.metrics import StoreMetrics


@asynccontextmanager
async def start_store(app: FastAPI) -> AsyncIterator[None]:
    settings: GameSettings = app.state.settings
    app.state.store_catalogue = load_catalogue(settings.store_catalogue_path or BUNDLED_CATALOGUE)
    app.state.store_webhook_secret = settings.webhook_secret()
    app.state.store_metrics = StoreMetrics(app)
    yield
