"""Mail events on the bus: `email:events` for everyone, `email:events:{address}` per mailbox."""

from __future__ import annotations

from typing import Any

from VEZEPyCore.events.bus import EventBus

ALL_CHANNEL = "email:events"


def user_channel(address: str) -> str:
    return f"{ALL_CHANNEL}:{address}"


async def publish_mail_event(bus: EventBus, address: str, event_type: str, **data: Any) -> None:
    event = {"type": event_type, "user": address, **data}
    await bus.publish(user_channel(address), event)
    await bus.publish(ALL_CHANNEL, event)
