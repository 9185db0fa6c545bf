"""`POST /telemetry/bulk`: a game client's batched events.

Refused early and cheaply, in this order: no token (401), body over the byte limit (413,
before it is read), too many batches this minute (429, and a flood flag), too many events
(413), invalid events (422). What passes is stored with its fair-play findings in one
transaction. The answer never says what was flagged.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from VEZEPyCore.errors import TooManyRequests
from VEZEPyGame.app.deps import SessionDep, SettingsDep
from VEZEPyGame.app.security import PlayPrincipal
from VEZEPyGame.services.store.service import require_player
from VEZEPyGame.services.telemetry import rules, service
from VEZEPyGame.services.telemetry.body import PayloadTooLarge, read_bounded_body
from VEZEPyGame.services.telemetry.rules import Thresholds
from VEZEPyGame.services.telemetry.schemas import TelemetryAccepted, TelemetryBatch
from VEZEPyGame.services.telemetry.startup import TelemetryLimiterDep, TelemetryMetricsDep

#: The largest `telemetry_max_bytes` the settings allow; the configured one is enforced below.
TELEMETRY_BODY_CEILING = 4_194_304
router = APIRouter(prefix="/telemetry", tags=["telemetry"], max_body_size=TELEMETRY_BODY_CEILING)
RATE_WINDOW_SECONDS = 60


@router.post(
    "/bulk",
    response_model=TelemetryAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Store a batch of client events",
    responses={
        404: {"description": "No player for this account"},
        413: {"description": "Body or event count over the limit"},
        422: {"description": "An event does not match its type's schema"},
        429: {"description": "Too many batches this minute (see Retry-After)"},
    },
)
async def post_telemetry(
    request: Request,
    principal: PlayPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    limiter: TelemetryLimiterDep,
    metrics: TelemetryMetricsDep,
) -> TelemetryAccepted:
    """`{"events": [...]}`, each with `type` and an aware `ts`; stored durably or not at all."""
    try:
        body = await read_bounded_body(request, max_bytes=settings.telemetry_max_bytes)
    except PayloadTooLarge:
        metrics.refused.labels("too_large").inc()
        raise
    player = await require_player(session, principal, mail_domain=settings.mail_domain)
    decision = await limiter.hit(
        f"telemetry:player:{player.id}",
        limit=settings.telemetry_batches_per_minute,
        window_seconds=RATE_WINDOW_SECONDS,
    )
    if not decision.allowed:
        metrics.refused.labels("rate_limited").inc()
        # Only the first refusal of a window writes; later ones of the flood are cheap.
        if decision.count == settings.telemetry_batches_per_minute + 1:
            now = datetime.now(UTC)
            finding = rules.refused_batch_finding(
                now=now, batches_per_minute=settings.telemetry_batches_per_minute
            )
            new = await service.add_flags(session, player_id=player.id, findings=[finding], now=now)
            await session.commit()
            for rule in new:
                metrics.flags.labels(rule).inc()
        raise TooManyRequests(
            f"too many telemetry batches; try again in {decision.retry_after_seconds} s",
            headers={"Retry-After": str(decision.retry_after_seconds)},
        )
    try:
        batch = TelemetryBatch.model_validate_json(body)
    except ValidationError as exc:
        metrics.refused.labels("invalid").inc()
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    if len(batch.events) > settings.telemetry_max_events:
        metrics.refused.labels("too_many_events").inc()
        raise PayloadTooLarge(f"at most {settings.telemetry_max_events} events per batch")
    batch_id, new_rules = await service.store_batch(
        session,
        player_id=player.id,
        events=batch.events,
        thresholds=Thresholds(
            min_move_ms=settings.telemetry_min_move_ms,
            flood_events_per_minute=settings.telemetry_flood_events_per_minute,
            abandon_threshold=settings.telemetry_abandon_threshold,
        ),
    )
    await session.commit()
    for event in batch.events:
        metrics.events.labels(event.type).inc()
    for rule in new_rules:
        metrics.flags.labels(rule).inc()
    return TelemetryAccepted(batch_id=batch_id, accepted=len(batch.events))
