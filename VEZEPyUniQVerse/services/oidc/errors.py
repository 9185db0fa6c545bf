"""OAuth 2.0 errors as the protocol spells them (RFC 6749 sections 4.1.2.1 and 5.2)."""

from __future__ import annotations


class OAuthError(Exception):
    """A refusal the client gets as `{"error", "error_description"}`.

    `keep_changes` marks refusals whose side effects must stand (a replayed code or a reused
    refresh token revokes the family even though the request itself is refused).
    """

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status_code: int = 400,
        headers: dict[str, str] | None = None,
        keep_changes: bool = False,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status_code = status_code
        self.headers = headers or {}
        self.keep_changes = keep_changes

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(description: str, *, realm: str) -> OAuthError:
    # RFC 6749 section 5.2: 401 with a challenge naming the scheme the client may use.
    return OAuthError(
        "invalid_client",
        description,
        status_code=401,
        headers={"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'},
    )


def invalid_grant(description: str, *, keep_changes: bool = False) -> OAuthError:
    return OAuthError("invalid_grant", description, keep_changes=keep_changes)


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description)


def unauthorized_client(description: str) -> OAuthError:
    return OAuthError("unauthorized_client", description)


def unsupported_grant_type(description: str) -> OAuthError:
    return OAuthError("unsupported_grant_type", description)
