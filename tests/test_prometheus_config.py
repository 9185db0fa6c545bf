"""ops/prometheus is valid for promtool, and every metric it uses is exported by the services."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import yaml
from fastapi import FastAPI

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "ops" / "prometheus"
PROMQL_FUNCTIONS_AND_KEYWORDS = {
    "sum",
    "rate",
    "by",
    "histogram_quantile",
    "up",
    "le",
    "without",
    "avg",
    "max",
    "min",
    "increase",
    "count",
    "on",
    "ignoring",
    "irate",
    "delta",
    "abs",
    "clamp_min",
    "time",
}


def promtool() -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: apt-get install prometheus"
    return binary


def test_promtool_accepts_the_config_and_rules() -> None:
    config = subprocess.run(
        [promtool(), "check", "config", str(PROMETHEUS / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert config.returncode == 0, config.stdout + config.stderr
    rules = subprocess.run(
        [promtool(), "check", "rules", str(PROMETHEUS / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr


def metric_names_in_rules() -> set[str]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    names: set[str] = set()
    for group in groups:
        for rule in group["rules"]:
            expression = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', " ", rule["expr"])
            names |= set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expression))
    return names - PROMQL_FUNCTIONS_AND_KEYWORDS - {"service", "status", "route"}


async def test_every_metric_used_by_an_alert_is_exported(
    email_settings: EmailSettings,
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    async with running(create_app(email_settings)) as client:
        await client.get("/health")
        exported = (await client.get("/metrics")).text
    for name in metric_names_in_rules():
        assert re.search(rf"^{name}(\{{|\s)", exported, re.MULTILINE), f"{name} is not exported"
