"""Probe every service in the registry's `/health`, concurrently and with a deadline.

A probe never raises: whatever goes wrong becomes a `down` or `slow` entry, because the
directory is where an operator looks precisely when something is broken.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from VEZEPyCore.services.http import ServiceClients
from VEZEPyCore.services.registry import ServiceEntry, ServiceRegistry
from VEZEPyUniQVerse.services.directory.schemas import ServiceState, ServiceStatusRead


async def list_services(
    *,
    registry: ServiceRegistry,
    clients: ServiceClients,
    timeout_seconds: float,
    self_name: str,
    self_version: str,
) -> list[ServiceStatusRead]:
    """Every registered service with its live status, in the registry's order."""
    entries = registry.entries()
    return list(
        await asyncio.gather(
            *(
                _status(
                    entry,
                    clients=clients,
                    timeout_seconds=timeout_seconds,
                    self_name=self_name,
                    self_version=self_version,
                )
                for entry in entries
            )
        )
    )


async def _status(
    entry: ServiceEntry,
    *,
    clients: ServiceClients,
    timeout_seconds: float,
    self_name: str,
    self_version: str,
) -> ServiceStatusRead:
    if entry.name == self_name:
        # This very process is answering, so it is up; probing our own configured URL over the
        # network would only test how the operator routes traffic to us.
        return _entry(entry, "up", version=self_version, latency_ms=0)
    started = time.perf_counter()
    try:
        # httpx enforces its timeout only on network transports; the outer deadline also
        # bounds in-process (ASGI) services and the whole exchange, not each read.
        async with asyncio.timeout(timeout_seconds):
            client = await clients.client(entry.name)
            response = await client.get("/health", timeout=timeout_seconds)
    except (TimeoutError, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout):
        return _entry(entry, "slow", detail=f"no answer within {timeout_seconds:g}s")
    except httpx.ConnectTimeout:
        return _entry(entry, "down", detail="connection timed out")
    except httpx.HTTPError as exc:
        return _entry(entry, "down", detail=f"unreachable ({type(exc).__name__})")
    except Exception as exc:  # any failure to even build the client must not break the page
        return _entry(entry, "down", detail=f"probe failed ({type(exc).__name__})")
    latency_ms = round((time.perf_counter() - started) * 1000)
    if response.status_code != 200:
        return _entry(
            entry, "down", latency_ms=latency_ms, detail=f"/health answered {response.status_code}"
        )
    return _entry(entry, "up", version=_version_of(response), latency_ms=latency_ms)


def _version_of(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    version = body.get("version") if isinstance(body, dict) else None
    return version[:64] if isinstance(version, str) else None


def _entry(
    entry: ServiceEntry,
    status: ServiceState,
    *,
    version: str | None = None,
    latency_ms: int | None = None,
    detail: str | None = None,
) -> ServiceStatusRead:
    return ServiceStatusRead(
        name=entry.name,
        title=entry.title,
        description=entry.description,
        url=entry.public_url,
        status=status,
        version=version,
        latency_ms=latency_ms,
        detail=detail,
    )
