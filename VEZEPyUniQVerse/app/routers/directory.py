"""`GET /api/services`: the service directory as JSON."""

from __future__ import annotations

from fastapi import APIRouter, Request

from VEZEPyUniQVerse.app.deps import ClientsDep, RegistryDep, SettingsDep
from VEZEPyUniQVerse.services.directory import service
from VEZEPyUniQVerse.services.directory.schemas import ServiceDirectoryRead

router = APIRouter(prefix="/api", tags=["directory"])


@router.get(
    "/services",
    response_model=ServiceDirectoryRead,
    summary="List every VEZE service with its live health",
)
async def list_services(
    request: Request, registry: RegistryDep, clients: ClientsDep, settings: SettingsDep
) -> ServiceDirectoryRead:
    statuses = await service.list_services(
        registry=registry,
        clients=clients,
        timeout_seconds=settings.health_timeout_seconds,
        self_name=request.app.state.service_name,
        self_version=request.app.version,
    )
    return ServiceDirectoryRead(services=statuses)
