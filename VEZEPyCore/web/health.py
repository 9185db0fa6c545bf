"""`/health` (the process is alive), `/ready` (its dependencies answer) and `/metrics`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from VEZEPyCore.observability.scrape import collect_before_scrape

ReadyCheck = Callable[[], Awaitable[None]]
READY_CHECK_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness: the process answers")
async def health(request: Request) -> dict[str, str]:
    return {
        "status": "ok",
        "service": request.app.state.service_name,
        "version": request.app.version,
    }


@router.get("/ready", summary="Readiness: the database, Redis and listeners answer")
async def ready(request: Request) -> JSONResponse:
    checks: dict[str, ReadyCheck] = getattr(request.app.state, "ready_checks", {})
    results = await asyncio.gather(*(_run_check(check) for check in checks.values()))
    report = dict(zip(checks, results, strict=True))
    healthy = all(result == "ok" for result in results)
    return JSONResponse(
        {"status": "ready" if healthy else "not_ready", "checks": report},
        status_code=200 if healthy else 503,
    )


async def _run_check(check: ReadyCheck) -> str:
    try:
        await asyncio.wait_for(check(), READY_CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # a readiness probe reports every failure, whatever its type
        return f"error: {type(exc).__name__}"
    return "ok"


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    await collect_before_scrape(request.app)
    return Response(
        generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST
    )
