"""Server-rendered pages for visitors: the landing page and the service directory ("Helm")."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from VEZEPyCore.services.registry import ServiceEntry
from VEZEPyUniQVerse.app.deps import ClientsDep, RegistryDep, SettingsDep, TemplatesDep
from VEZEPyUniQVerse.services.directory import service

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/", response_class=HTMLResponse, summary="Landing page: what VEZE UniQVerse is")
async def landing_page(
    request: Request, registry: RegistryDep, templates: TemplatesDep, settings: SettingsDep
) -> HTMLResponse:
    services = {entry.name: entry for entry in registry.entries()}
    return templates.TemplateResponse(
        request,
        "landing.html",
        {
            "active": "home",
            "mail_domain": settings.mail_domain,
            "mail_url": _url_of(services, "email", "/ui/inbox"),
            "game_url": _url_of(services, "game", "/"),
        },
    )


@router.get("/services", response_class=HTMLResponse, summary="Helm: every service and its health")
async def services_page(
    request: Request,
    registry: RegistryDep,
    clients: ClientsDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> HTMLResponse:
    statuses = await service.list_services(
        registry=registry,
        clients=clients,
        timeout_seconds=settings.health_timeout_seconds,
        self_name=request.app.state.service_name,
        self_version=request.app.version,
    )
    return templates.TemplateResponse(
        request,
        "services.html",
        {
            "active": "services",
            "services": statuses,
            "up_count": sum(1 for status in statuses if status.status == "up"),
        },
    )


def _url_of(services: dict[str, ServiceEntry], name: str, path: str) -> str | None:
    """Where a service's pages live; None when this installation does not run it."""
    entry = services.get(name)
    return f"{entry.public_url}{path}" if entry is not None else None
