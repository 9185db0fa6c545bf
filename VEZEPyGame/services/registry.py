"""Where Game finds the other services (the brief's `services/registry.py` contract).

Resolution order: `VEZE_SERVICE_<NAME>` -> `<NAME>_BASE_URL` -> `config/services.json`. The
order is implemented once, in VEZEPyCore (`CoreSettings.service_urls` folds the environment,
`ServiceRegistry` falls back to the file); the app's registry lives on `app.state`. This module
only names the services Game talks to, so no route spells a service name or a URL.
"""

from __future__ import annotations

from VEZEPyCore.services.registry import ServiceEntry, ServiceRegistry

EMAIL = "email"
PORTAL = "portal"
#: Email's webmail page, for links shown to people (API calls go through `EmailClient`).
WEBMAIL_PATH = "/ui/inbox"

__all__ = [
    "EMAIL",
    "PORTAL",
    "ServiceEntry",
    "ServiceRegistry",
    "email_base_url",
    "portal_url",
    "webmail_url",
]


def email_base_url(registry: ServiceRegistry) -> str:
    return registry.url(EMAIL)


def portal_url(registry: ServiceRegistry) -> str:
    """The portal as people's browsers reach it."""
    return registry.public_url(PORTAL)


def webmail_url(registry: ServiceRegistry) -> str:
    return f"{registry.public_url(EMAIL)}{WEBMAIL_PATH}"
