from __future__ import annotations

from VEZEPyCore.services.registry import ServiceRegistry
from VEZEPyCore.settings import CoreSettings


def test_registry_defaults_come_from_the_services_file() -> None:
    registry = ServiceRegistry.load(CoreSettings(service_urls={}))
    assert registry.url("portal") == "http://127.0.0.1:8000"
    assert registry.url("game") == "http://127.0.0.1:8002"
    assert registry.url("email") == "http://127.0.0.1:8004"
    assert registry.get("email").asgi == "VEZEPyEmail.app.main:app"


def test_overrides_replace_urls_and_add_services() -> None:
    settings = CoreSettings(
        service_urls={"email": "http://mail.internal:9000", "wiki": "http://wiki:1"}
    )
    registry = ServiceRegistry.load(settings)
    assert registry.url("email") == "http://mail.internal:9000"
    assert registry.get("email").title == "Mail"
    assert registry.url("wiki") == "http://wiki:1"


def test_public_urls_are_for_links_and_default_to_the_service_url() -> None:
    settings = CoreSettings(
        service_urls={"email": "http://email:8004"},
        public_urls={"email": "https://mail.example.com"},
    )
    registry = ServiceRegistry.load(settings)
    assert registry.url("email") == "http://email:8004"
    assert registry.public_url("email") == "https://mail.example.com"
    assert registry.public_url("game") == registry.url("game") == "http://127.0.0.1:8002"
