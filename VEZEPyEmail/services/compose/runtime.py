"""What sending over HTTP keeps on `app.state`: the upload store, its sweeper, the rate limiter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from VEZEPyCore.security.ratelimit import make_rate_limiter
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.uploads.store import UploadStore

log = logging.getLogger(__name__)
#: Pending uploads of one user may hold this many whole messages' worth of bytes.
PENDING_MESSAGES_PER_USER = 4


def upload_store(settings: EmailSettings) -> UploadStore:
    return UploadStore(
        settings.resolved_mail_dir / "uploads",
        ttl_seconds=settings.upload_ttl_seconds,
        max_pending_bytes=PENDING_MESSAGES_PER_USER * settings.max_message_bytes,
    )


async def _sweep_forever(store: UploadStore, every: float) -> None:
    while True:
        try:
            removed = await store.sweep()
            if removed:
                log.info("removed %d expired uploads", removed)
        except Exception:
            log.warning("upload sweep failed", exc_info=True)
        await asyncio.sleep(every)


@asynccontextmanager
async def compose_runtime(app: FastAPI) -> AsyncIterator[None]:
    settings: EmailSettings = app.state.settings
    store = upload_store(settings)
    app.state.uploads = store
    # Shared through Redis when it is set, so every worker counts one user's sends together.
    app.state.send_limiter = make_rate_limiter(settings.redis_url)
    sweeper = asyncio.create_task(
        _sweep_forever(store, min(600.0, max(1.0, settings.upload_ttl_seconds / 4))),
        name="upload-sweeper",
    )
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await app.state.send_limiter.close()
