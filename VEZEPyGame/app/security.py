"""Who may do what in the Game service.

Tokens must carry the Game audience. Reading mail through Game needs `game.read_mail`; the
Email service then applies its own rules to the same token (audience, `email.read`, and which
mailbox), so Game never widens what a caller can read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from VEZEPyCore.auth import scopes
from VEZEPyCore.auth.deps import scope_dependency, verifier_on_state
from VEZEPyCore.auth.principal import Principal

ReadMailPrincipal = Annotated[
    Principal, Depends(scope_dependency(verifier_on_state, scopes.GAME_READ_MAIL))
]
PlayPrincipal = Annotated[Principal, Depends(scope_dependency(verifier_on_state, scopes.GAME_PLAY))]
#: Service scope: the portal's provisioning creates players with it.
AdminPrincipal = Annotated[
    Principal, Depends(scope_dependency(verifier_on_state, scopes.GAME_ADMIN))
]
