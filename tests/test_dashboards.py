"""The Grafana dashboards are what build.py writes, and every metric they query is exported."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

from tests.exported_metrics import Running, exported_by_service, metric_names
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.settings import PortalSettings

DASHBOARDS = Path(__file__).resolve().parents[1] / "ops" / "dashboards"
BOARDS = ("overview", "portal", "game", "email")


def board_metrics(name: str) -> set[str]:
    board = json.loads((DASHBOARDS / f"{name}.json").read_text())
    assert board["uid"] == f"veze-{name}" and board["panels"], name
    names: set[str] = set()
    for panel in board["panels"]:
        for target in panel["targets"]:
            names |= metric_names(target["expr"])
    return names


def test_dashboards_are_up_to_date_with_build_py(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = runpy.run_path(str(DASHBOARDS / "build.py"))
    monkeypatch.setitem(namespace["main"].__globals__, "HERE", tmp_path)
    namespace["main"]()
    for name in BOARDS:
        written = (tmp_path / f"{name}.json").read_text()
        assert written == (DASHBOARDS / f"{name}.json").read_text(), (
            f"{name}.json is stale: run python ops/dashboards/build.py"
        )


async def test_every_dashboard_metric_is_exported_by_its_service(
    running: Running,
    portal_settings: PortalSettings,
    game_settings: GameSettings,
    email_settings: EmailSettings,
) -> None:
    exported = await exported_by_service(running, portal_settings, game_settings, email_settings)
    everything = set().union(*exported.values())
    assert "veze_login_attempts_total" in board_metrics("portal")
    assert "veze_outbound_queue_oldest_age_seconds" in board_metrics("email")
    for name in BOARDS:
        available = exported.get(name, everything)
        missing = board_metrics(name) - available
        assert not missing, f"{name}.json queries metrics nobody exports: {missing}"
