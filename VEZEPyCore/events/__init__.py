"""Publish/subscribe of small JSON events, in-process or over Redis, behind one interface."""

from VEZEPyCore.events.bus import EVENTS_LOST, EventBus, InProcessBus, Subscription
from VEZEPyCore.events.factory import make_bus
from VEZEPyCore.events.redis_bus import RedisBus

__all__ = ["EVENTS_LOST", "EventBus", "InProcessBus", "RedisBus", "Subscription", "make_bus"]
