"""`POST /provision/{x_user_id}`: give a handle its resources in the other services."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from VEZEPyCore.auth import scopes
from VEZEPyUniQVerse.app.deps import ClientsDep, SessionmakerDep, SettingsDep
from VEZEPyUniQVerse.app.security import ProvisionPrincipal
from VEZEPyUniQVerse.services.provisioning import service
from VEZEPyUniQVerse.services.provisioning.schemas import ProvisioningCreate, ProvisioningRead
from VEZEPyUniQVerse.services.provisioning.tokens import service_token

router = APIRouter(tags=["provisioning"])


@router.post(
    "/provision/{x_user_id}",
    response_model=ProvisioningRead,
    status_code=status.HTTP_201_CREATED,
    summary="Provision a handle's mailbox (idempotent: 200 when it already exists)",
    responses={
        400: {"description": "The handle is invalid or reserved"},
        502: {"description": "The mail service is unreachable or refused"},
        504: {"description": "The mail service did not answer in time"},
    },
)
async def provision_account(
    x_user_id: str,
    _principal: ProvisionPrincipal,
    sessionmaker: SessionmakerDep,
    settings: SettingsDep,
    clients: ClientsDep,
    request: Request,
    response: Response,
    body: ProvisioningCreate | None = None,
) -> ProvisioningRead:
    handle = service.normalise_handle(x_user_id)
    result = await service.provision_mailbox(
        sessionmaker=sessionmaker,
        email=await clients.client("email"),
        token=await service_token(
            request.app.state, audience=settings.email_aud, scopes=[scopes.EMAIL_ADMIN]
        ),
        handle=handle,
        display_name=body.display_name.strip() if body is not None else "",
        mail_domain=settings.mail_domain,
        timeout_seconds=settings.http_timeout_seconds,
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result
