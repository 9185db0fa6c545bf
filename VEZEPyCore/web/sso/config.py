"""What a service says about its single sign-on client, and the `next` path rule."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

#: Longest `next` path kept after sign-in; longer ones fall back to the service's home page.
MAX_NEXT_LENGTH = 2000


@dataclass(frozen=True)
class SsoConfig:
    """One service's OpenID Connect client at the portal (see `config/oauth_clients.json`)."""

    #: The client registered at the portal, e.g. "veze-webmail".
    client_id: str
    #: Scopes asked for at the authorization endpoint; "openid" makes it OpenID Connect.
    scopes: tuple[str, ...]
    #: Where a browser lands after sign-in when it did not say where it was going.
    home_path: str = "/"
    #: Pages using `OptionalPageUser` ask the portal once, without any prompt (`prompt=none`),
    #: whether the visitor is signed in there, so a signed-in person is recognised on arrival.
    silent_sign_in: bool = False
    #: Refresh the access token when it has at most this many seconds left.
    refresh_margin_seconds: int = 60
    #: Longest life of the service's session cookie without any refresh.
    session_max_age_seconds: int = 14 * 24 * 3600
    #: How long a started sign-in (state, nonce, PKCE verifier) stays valid.
    login_max_age_seconds: int = 600
    #: After a silent check found nobody signed in, how long before pages ask again.
    silent_retry_seconds: int = 60
    #: The registry name of the OpenID provider.
    provider_service: str = "portal"

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


def safe_next(value: str | None, default: str) -> str:
    """`value` if it is a path on this site, else `default` (no open redirects).

    Only absolute paths ("/ui/inbox?x=1") are kept. Refused: scheme or host ("https://x",
    "//x"), backslashes (browsers read "/\\x" as "//x"), whitespace and control characters
    (browsers drop tabs and newlines, so "/\\t/x" would also become "//x"), and the sign-in
    routes themselves (a loop).
    """
    if not value or len(value) > MAX_NEXT_LENGTH:
        return default
    if not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    if parts.path == "/auth" or parts.path.startswith("/auth/"):
        return default
    return value
