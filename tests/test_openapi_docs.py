"""docs/openapi/*.yaml must be what the services serve at /openapi.json."""

from __future__ import annotations

import pytest

from scripts.export_openapi import OUTPUT, render, service_apps


@pytest.mark.parametrize("service", ["portal", "game", "email"])
def test_committed_openapi_matches_the_code(service: str) -> None:
    app = service_apps()[service]
    committed = (OUTPUT / f"{service}.yaml").read_text(encoding="utf-8")
    assert committed == render(app.openapi()), (
        f"docs/openapi/{service}.yaml is stale: run python scripts/export_openapi.py"
    )


def test_the_brief_contracts_are_documented() -> None:
    apps = service_apps()
    email_paths = apps["email"].openapi()["paths"]
    assert {"/api/messages", "/api/messages/{message_id}/read", "/api/events"} <= set(email_paths)
    assert "/email/mail" in apps["game"].openapi()["paths"]
    assert "/provision/{x_user_id}" in apps["portal"].openapi()["paths"]
