"""Building blocks for durable, leased database task queues (provisioning, outbound mail)."""

from VEZEPyCore.queue.backoff import Backoff
from VEZEPyCore.queue.wakeup import WakeableLoop

__all__ = ["Backoff", "WakeableLoop"]
