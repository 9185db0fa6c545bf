"""Several workers of one service need Redis; without it a service refuses to start (ADR 0019).

Events (SSE fan-out, live notifications) and the single sign-on refresh single flight cross
worker processes only through Redis. The in-process fallbacks would quietly split a service
into islands (an SSE client on one worker never seeing mail filed by the other; two workers
refreshing one browser's session into the portal's reuse detection), so a configuration that
asks for several workers without Redis is refused at start-up with the reason.

The worker count is uvicorn's own `WEB_CONCURRENCY` (its `--workers` reads it): set the
count there rather than with `--workers` on the command line, which a worker cannot see.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from VEZEPyCore.settings import CoreSettings

WORKERS_ENV = "WEB_CONCURRENCY"


class WorkerSetupError(RuntimeError):
    """The process is one of several workers, but the service cannot work that way."""


def configured_workers(environ: Mapping[str, str] | None = None) -> int:
    """The worker count from `WEB_CONCURRENCY` (1 when unset or not a positive number)."""
    raw = (environ if environ is not None else os.environ).get(WORKERS_ENV, "").strip()
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def check_workers(settings: CoreSettings, environ: Mapping[str, str] | None = None) -> None:
    """Raise `WorkerSetupError` when several workers are asked for and Redis is not set."""
    workers = configured_workers(environ)
    if workers > 1 and not settings.redis_url:
        raise WorkerSetupError(
            f"{WORKERS_ENV}={workers} asks for several workers, but REDIS_URL is not set: "
            "live events and sign-in refreshes cannot cross worker processes without Redis. "
            f"Set REDIS_URL, or run one worker ({WORKERS_ENV}=1)."
        )
