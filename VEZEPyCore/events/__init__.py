"""Publish/subscribe of small JSON events, in-process or over Redis, behind one interface."""

from VEZEPyCore.events.bus import EventBus, InProcessBus, Subscription
from VEZEPyCore.events.factory import make_bus
from VEZEPyCore.events.redis_bus import RedisBus

__all__ = ["EventBus", "InProcessBus", "RedisBus", "Subscription", "make_bus"]
