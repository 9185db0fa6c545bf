"""The token the copilot page opens `/ws/copilot` with: the portal audience, no API scopes.

It only proves who is talking; what the copilot then does in Email and Game it does with
tokens of its own for that person (`services.hub.tokens`), scoped to each request.
"""

from __future__ import annotations

from typing import Any

from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.hub.tokens import user_token

COPILOT_TOKEN_TTL_SECONDS = 900


async def copilot_token(app_state: Any, *, user: User) -> str:
    return await user_token(
        app_state,
        user=user,
        audience=app_state.settings.portal_aud,
        scopes=[],
        ttl_seconds=COPILOT_TOKEN_TTL_SECONDS,
    )
