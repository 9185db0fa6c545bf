"""Who may do what in the Email service.

Tokens must carry the Email audience. A token reaches only its own subject's mailbox; acting
for another mailbox of the local domain needs the `email.admin` service scope.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from VEZEPyCore.auth import scopes
from VEZEPyCore.auth.deps import scope_dependency, verifier_on_state
from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import BadRequest, Forbidden
from VEZEPyCore.web.openapi import refusal

ReadPrincipal = Annotated[
    Principal, Depends(scope_dependency(verifier_on_state, scopes.EMAIL_READ))
]
#: Composing and sending (drafts, uploads, `POST /api/send`) need `email.send`.
SendPrincipal = Annotated[
    Principal, Depends(scope_dependency(verifier_on_state, scopes.EMAIL_SEND))
]
AdminPrincipal = Annotated[
    Principal, Depends(scope_dependency(verifier_on_state, scopes.EMAIL_ADMIN))
]


#: What every route on a mailbox may answer besides its own outcome (documented per router).
MAILBOX_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: refusal("`user` is not an address of the local domain"),
    403: refusal("The token may not act for that mailbox"),
    404: refusal("No such mailbox, or no such item in it"),
}


def normalise_local_address(user: str, domain: str) -> str:
    """Lower-case `user` and insist it is an address of the local domain (400 otherwise)."""
    address = user.strip().lower()
    local, at, host = address.rpartition("@")
    if not at or not local or host != domain.lower() or len(address) > 320:
        raise BadRequest(f"user must be an address at {domain}")
    return address


def authorize_mailbox(principal: Principal, address: str) -> None:
    """403 unless the token speaks for `address` or carries the service scope."""
    if principal.address == address or principal.has_scopes(scopes.EMAIL_ADMIN):
        return
    raise Forbidden("this token may not read that mailbox")


def can_access(principal: Principal, address: str) -> bool:
    return principal.address == address or principal.has_scopes(scopes.EMAIL_ADMIN)
