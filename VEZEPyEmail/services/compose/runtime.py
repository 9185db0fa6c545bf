"""What sending over HTTP keeps on `app.state`: the upload store, the rate limiter, the SRS
secret for forwarded mail, and the sweeper of expired uploads and Idempotency-Key records."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.security.ratelimit import make_rate_limiter
from VEZEPyCore.tasks import cancel_and_wait
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.compose import idempotency
from VEZEPyEmail.services.srs.service import load_srs
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


async def _sweep_forever(
    store: UploadStore, sessionmaker: async_sessionmaker[AsyncSession], every: float
) -> None:
    while True:
        try:
            removed = await store.sweep()
            if removed:
                log.info("removed %d expired uploads", removed)
            keys = await idempotency.sweep(sessionmaker)
            if keys:
                log.info("removed %d expired Idempotency-Key records", keys)
        except Exception:
            log.warning("upload and idempotency sweep failed", exc_info=True)
        await asyncio.sleep(every)


@asynccontextmanager
async def compose_runtime(app: FastAPI) -> AsyncIterator[None]:
    settings: EmailSettings = app.state.settings
    store = upload_store(settings)
    app.state.uploads = store
    # Shared through Redis when it is set, so every worker counts one user's sends together.
    app.state.send_limiter = make_rate_limiter(settings.redis_url)
    # Created on first start (as the DKIM key), before the SMTP listeners need it.
    app.state.srs = await asyncio.to_thread(load_srs, settings)
    sweeper = asyncio.create_task(
        _sweep_forever(
            store,
            app.state.sessionmaker,
            min(600.0, max(1.0, settings.upload_ttl_seconds / 4)),
        ),
        name="upload-sweeper",
    )
    try:
        yield
    finally:
        await cancel_and_wait(sweeper)
        await app.state.send_limiter.close()
