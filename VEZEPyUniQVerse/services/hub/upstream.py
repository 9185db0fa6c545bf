"""One authenticated JSON call to Email or Game on a person's behalf, with a deadline."""

from __future__ import annotations

from typing import Any

from VEZEPyCore.services.calls import call_service, refusal
from VEZEPyCore.services.http import ServiceClients


async def call_json(
    clients: ServiceClients,
    service: str,
    method: str,
    path: str,
    *,
    token: str,
    deadline_seconds: float,
    missing_ok: bool = False,
    **request: Any,
) -> Any:
    """The decoded JSON answer; None for a 404 when `missing_ok` (say, "not ranked yet").

    Raises `UpstreamTimeout`/`UpstreamUnavailable`, or the service's refusal as an `AppError`.
    """
    response = await call_service(
        await clients.client(service),
        method,
        path,
        service=service,
        deadline_seconds=deadline_seconds,
        headers={"Authorization": f"Bearer {token}"},
        **request,
    )
    if response.status_code == 404 and missing_ok:
        return None
    if response.status_code >= 400:
        raise refusal(response, service=service)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()
