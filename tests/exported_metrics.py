"""What the running services export on `/metrics`, and which metrics a PromQL query names.

Shared by the dashboard and alert tests: every metric an operator's query uses must be a series
the service really exports (at start, before any traffic: labelled series are initialised).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.main import create_app as create_portal_app
from VEZEPyUniQVerse.app.settings import PortalSettings

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]

#: PromQL functions, aggregations and keywords (anything else that looks like a name is a metric).
PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "delta", "by", "without", "on", "ignoring",
    "group_left", "group_right", "histogram_quantile", "avg", "max", "min", "count",
    "avg_over_time", "max_over_time", "min_over_time", "abs", "clamp_min", "clamp_max",
    "time", "and", "or", "unless", "bool", "offset", "vector", "scalar", "absent", "topk",
}  # fmt: skip
#: Series Prometheus itself adds to every scrape.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    stripped = re.sub(r'"[^"]*"', " ", expression)
    # Grouping clauses and label matchers hold label names, not metrics.
    stripped = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped
    )
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", stripped)
    stripped = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?\b", " ", stripped)
    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped)) - PROMQL_WORDS


def sample_names(exposition: str) -> set[str]:
    return {
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def exported_by_service(
    running: Running,
    portal_settings: PortalSettings,
    game_settings: GameSettings,
    email_settings: EmailSettings,
) -> dict[str, set[str]]:
    """Sample names each service exports after start-up and one request."""
    apps = {
        "portal": create_portal_app(portal_settings),
        "game": create_game_app(game_settings),
        "email": create_email_app(email_settings),
    }
    exported: dict[str, set[str]] = {}
    for service, app in apps.items():
        async with running(app) as client:
            assert (await client.get("/health")).status_code == 200
            response = await client.get("/metrics")
            assert response.status_code == 200
            exported[service] = sample_names(response.text) | SCRAPE_SERIES
    return exported
