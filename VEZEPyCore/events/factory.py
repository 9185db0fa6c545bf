"""Pick the bus from settings: Redis when `REDIS_URL` is set, in-process otherwise."""

from __future__ import annotations

from VEZEPyCore.events.bus import EventBus, InProcessBus
from VEZEPyCore.events.redis_bus import RedisBus
from VEZEPyCore.settings import CoreSettings


def make_bus(settings: CoreSettings) -> EventBus:
    if settings.redis_url:
        return RedisBus.from_url(settings.redis_url)
    return InProcessBus()
