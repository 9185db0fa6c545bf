"""A mailbox's mail rules: one active Sieve script, validated on write; a dry run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from VEZEPyCore.auth.principal import Principal
from VEZEPyEmail.app.deps import BlobsDep, ConnectionDep, SessionDep, SettingsDep
from VEZEPyEmail.app.security import (
    MAILBOX_REFUSALS,
    ReadPrincipal,
    authorize_mailbox,
    normalise_local_address,
)
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.messages import detail
from VEZEPyEmail.services.messages.service import mailbox_id_for
from VEZEPyEmail.services.sieve import service
from VEZEPyEmail.services.sieve.schemas import RuleRead, RuleTest, RuleTestRead, RuleUpdate

router = APIRouter(prefix="/api/rules", tags=["rules"], responses=MAILBOX_REFUSALS)

UserQuery = Annotated[
    str | None,
    Query(max_length=320, description="Mailbox address (default: the token's own)"),
]
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "The script is invalid or uses an unsupported command"}
}


def _address(principal: Principal, settings: EmailSettings, user: str | None) -> str:
    address = normalise_local_address(user or principal.address or "", settings.mail_domain)
    authorize_mailbox(principal, address)
    return address


@router.get("", response_model=RuleRead, summary="Read the mailbox's active Sieve script")
async def get_rules(
    principal: ReadPrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    user: UserQuery = None,
) -> RuleRead:
    address = _address(principal, settings, user)
    mailbox_id = await mailbox_id_for(connection, address=address)
    return await service.read_rules(connection, mailbox_id=mailbox_id, address=address)


@router.put(
    "",
    response_model=RuleRead,
    responses=INVALID,
    summary="Replace the active Sieve script (validated; 422 says what is wrong and where)",
)
async def put_rules(
    body: RuleUpdate,
    principal: ReadPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    user: UserQuery = None,
) -> RuleRead:
    address = _address(principal, settings, user)
    mailbox_id = await mailbox_id_for(await session.connection(), address=address)
    rules = await service.replace_rules(
        session, mailbox_id=mailbox_id, address=address, script=body.script
    )
    await session.commit()
    return rules


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove the rules: mail is kept in the INBOX again",
)
async def delete_rules(
    principal: ReadPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    user: UserQuery = None,
) -> None:
    address = _address(principal, settings, user)
    mailbox_id = await mailbox_id_for(await session.connection(), address=address)
    await service.remove_rules(session, mailbox_id=mailbox_id)
    await session.commit()


@router.post(
    "/test",
    response_model=RuleTestRead,
    responses=INVALID,
    summary="Dry-run a script (or the active one) against one of your messages",
)
async def test_rules(
    body: RuleTest, principal: ReadPrincipal, connection: ConnectionDep, blobs: BlobsDep
) -> RuleTestRead:
    """Nothing is moved, flagged, redirected or answered."""
    owned = await detail.load_owned(connection, message_id=body.message_id, principal=principal)
    script = body.script
    if script is None:
        script = await service.active_script(connection, mailbox_id=owned.row["mailbox_id"])
    raw = await detail.raw_bytes(blobs, owned.row)
    folder = "Junk" if owned.row["folder"] == "Junk" else "INBOX"
    return await service.dry_run(
        script,
        raw,
        folder=folder,
        user=owned.address,
        envelope_from=str(owned.row["envelope_from"]),
    )
