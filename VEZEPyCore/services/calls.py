"""Calling another service: a deadline on every call and one mapping of failures to errors.

Transport failures become 502 (unreachable) or 504 (no answer in time); a 4xx answer keeps its
status, code and reason, so a client sees why the other service refused; a 5xx becomes 502.
The deadline is enforced here as well as by httpx because in-process (ASGI) transports ignore
httpx's timeouts.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from VEZEPyCore.errors import AppError, UpstreamTimeout, UpstreamUnavailable

#: Headers of a refusal that belong to the answer the client gets (RFC 6750, RFC 6585).
PASSED_HEADERS = ("www-authenticate", "retry-after")
MAX_DETAIL_LENGTH = 500


async def call_service(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    service: str,
    deadline_seconds: float,
    **request: Any,
) -> httpx.Response:
    """Send one request; raise `UpstreamTimeout`/`UpstreamUnavailable` if it cannot complete."""
    try:
        async with asyncio.timeout(deadline_seconds):
            return await client.request(method, path, **request)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise UpstreamTimeout(
            f"the {service} service did not answer within {deadline_seconds:g}s; try again"
        ) from exc
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(
            f"the {service} service is unreachable ({type(exc).__name__}); try again later"
        ) from exc


def refusal(response: httpx.Response, *, service: str) -> AppError:
    """The error to raise for an unsuccessful answer from `service`."""
    if response.status_code >= 500 or response.status_code < 400:
        return UpstreamUnavailable(f"the {service} service failed (HTTP {response.status_code})")
    code, detail = (
        "upstream_rejected",
        f"the {service} service refused (HTTP {response.status_code})",
    )
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("error"), str):
            code = body["error"]
        raw = body.get("detail")
        if isinstance(raw, str):
            detail = raw[:MAX_DETAIL_LENGTH]
        elif raw is not None:  # FastAPI's 422 list of field errors
            detail = json.dumps(raw, separators=(",", ":"))[:MAX_DETAIL_LENGTH]
    headers = {name: response.headers[name] for name in PASSED_HEADERS if name in response.headers}
    return AppError(detail, headers=headers, status_code=response.status_code, code=code)
