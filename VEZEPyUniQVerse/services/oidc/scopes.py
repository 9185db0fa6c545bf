"""Which scopes a person may hold (by role) and how scope strings are read (RFC 6749 3.3)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from VEZEPyCore.auth import scopes as names
from VEZEPyUniQVerse.services.oidc.errors import invalid_scope

OPENID = "openid"
PROFILE = "profile"
EMAIL = "email"
#: OpenID Connect scopes: they ask for identity claims, not for access to an API.
OIDC_SCOPES = frozenset({OPENID, PROFILE, EMAIL})

#: Every account holds the "user" role; other roles add to it.
USER_SCOPES = frozenset(
    {
        OPENID,
        PROFILE,
        EMAIL,
        names.EMAIL_READ,
        names.EMAIL_SEND,
        names.GAME_PLAY,
        names.GAME_READ_MAIL,
    }
)
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "user": USER_SCOPES,
    "admin": USER_SCOPES | {names.PORTAL_ADMIN, names.GAME_ADMIN},
}

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E ): printable ASCII without space, '"' and '\'.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
MAX_SCOPE_LENGTH = 1000


def scopes_for_roles(roles: Iterable[str]) -> frozenset[str]:
    granted = set(USER_SCOPES)
    for role in roles:
        granted |= ROLE_SCOPES.get(role, frozenset())
    return frozenset(granted)


def parse_scope(raw: str | None) -> list[str]:
    """The scope tokens of a request, in order, without duplicates; invalid_scope if malformed."""
    if not raw:
        return []
    if len(raw) > MAX_SCOPE_LENGTH:
        raise invalid_scope("scope is too long")
    tokens: list[str] = []
    for token in raw.split(" "):
        if not token:
            continue
        if not _SCOPE_TOKEN.fullmatch(token):
            raise invalid_scope("scope contains characters RFC 6749 section 3.3 forbids")
        if token not in tokens:
            tokens.append(token)
    return tokens


def format_scope(scopes: Iterable[str]) -> str:
    return " ".join(sorted(set(scopes)))
