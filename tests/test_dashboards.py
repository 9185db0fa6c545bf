"""Every metric a dashboard queries is exported by the running services."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
from fastapi import FastAPI

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings

DASHBOARDS = Path(__file__).resolve().parents[1] / "ops" / "dashboards"
NOT_METRICS = {"sum", "rate", "by", "histogram_quantile", "le", "route", "status", "job", "up"}


def dashboard_metrics() -> set[str]:
    names: set[str] = set()
    for path in DASHBOARDS.glob("*.json"):
        board = json.loads(path.read_text())
        assert board["uid"] and board["panels"], path.name
        for panel in board["panels"]:
            for target in panel["targets"]:
                expression = re.sub(
                    r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]|\d+(\.\d+)?', " ", target["expr"]
                )
                names |= set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expression))
    return names - NOT_METRICS


async def test_dashboard_metrics_are_exported(
    email_settings: EmailSettings,
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    async with running(create_app(email_settings)) as client:
        await client.get("/health")
        exported = (await client.get("/metrics")).text
    metrics = dashboard_metrics()
    assert "http_request_duration_seconds_bucket" in metrics
    for name in metrics:
        assert re.search(rf"^{name}(\{{|\s)", exported, re.MULTILINE), f"{name} is not exported"
