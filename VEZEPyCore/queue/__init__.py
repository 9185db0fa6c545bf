"""Durable, leased queues: the database row is the record of each job; dispatch is a polling
loop or, with Redis, Redis Streams in a consumer group (see worker.py, streams.py)."""

from VEZEPyCore.queue.backoff import Backoff
from VEZEPyCore.queue.definition import QueueDefinition, stream_dispatch
from VEZEPyCore.queue.streams import StreamDispatch
from VEZEPyCore.queue.table import Job, QueueTable
from VEZEPyCore.queue.wakeup import WakeableLoop
from VEZEPyCore.queue.worker import Failure, GiveUp, QueueWorker, Retry

__all__ = [
    "Backoff",
    "Failure",
    "GiveUp",
    "Job",
    "QueueDefinition",
    "QueueTable",
    "QueueWorker",
    "Retry",
    "StreamDispatch",
    "WakeableLoop",
    "stream_dispatch",
]
