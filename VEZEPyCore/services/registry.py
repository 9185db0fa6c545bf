"""The service directory: `config/services.json`, with `VEZE_SERVICE_<NAME>` overrides.

URL resolution order for a service: `VEZE_SERVICE_<NAME>` -> `<NAME>_BASE_URL` -> the file's
default (the two environment forms are folded into `CoreSettings.service_urls`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from VEZEPyCore.settings import CoreSettings

DEFAULT_SERVICES_FILE = Path(__file__).resolve().parents[2] / "config" / "services.json"


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    title: str
    description: str
    #: Where services call it.
    url: str
    #: Where people's browsers reach it (links in pages).
    public_url: str
    #: "package.module:attribute" of the ASGI app uvicorn serves.
    asgi: str | None = None
    #: "package.module:function" building a fresh app for in-process calls (`<NAME>_ASGI=1`):
    #: a factory, so the app reads the environment when it is needed, not at import.
    asgi_factory: str | None = None


class ServiceRegistry:
    def __init__(self, entries: list[ServiceEntry]) -> None:
        self._entries = {entry.name: entry for entry in entries}

    @classmethod
    def load(cls, settings: CoreSettings, path: Path = DEFAULT_SERVICES_FILE) -> ServiceRegistry:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = []
        for item in raw["services"]:
            name = str(item["name"]).lower()
            url = settings.service_urls.get(name, str(item["url"])).rstrip("/")
            entries.append(
                ServiceEntry(
                    name=name,
                    title=str(item.get("title", name)),
                    description=str(item.get("description", "")),
                    url=url,
                    public_url=settings.public_urls.get(name, url),
                    asgi=item.get("asgi"),
                    asgi_factory=item.get("asgi_factory"),
                )
            )
        known = {entry.name for entry in entries}
        for name, url in settings.service_urls.items():
            if name not in known and name.isidentifier():
                entries.append(
                    ServiceEntry(
                        name=name,
                        title=name,
                        description="",
                        url=url,
                        public_url=settings.public_urls.get(name, url),
                    )
                )
        return cls(entries)

    def entries(self) -> list[ServiceEntry]:
        return list(self._entries.values())

    def get(self, name: str) -> ServiceEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise LookupError(f"unknown service {name!r}") from None

    def url(self, name: str) -> str:
        return self.get(name).url

    def public_url(self, name: str) -> str:
        return self.get(name).public_url
