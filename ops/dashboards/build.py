"""Write the Grafana dashboards in this folder (run after changing a panel).

Dashboards are generated so that every service gets the same HTTP panels and the queries stay
in one place; a test checks that each metric they use is exported by the running service.
    .venv/bin/python ops/dashboards/build.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVICES = {"portal": "Portal", "game": "Game", "email": "Email"}


def panel(panel_id: int, title: str, expr: str, unit: str, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": "A", "expr": expr, "legendFormat": "__auto"}],
    }


def dashboard(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["veze"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Data source",
                }
            ]
        },
        "panels": panels,
    }


def http_panels(selector: str, first_id: int) -> list[dict[str, Any]]:
    rate = f"rate(http_request_duration_seconds_count{{{selector}}}[5m])"
    buckets = f"rate(http_request_duration_seconds_bucket{{{selector}}}[5m])"
    return [
        panel(first_id, "Requests per second by route", f"sum by (route) ({rate})", "reqps", 0, 0),
        panel(
            first_id + 1,
            "p95 latency by route",
            f"histogram_quantile(0.95, sum by (route, le) ({buckets}))",
            "s",
            12,
            0,
        ),
        panel(
            first_id + 2,
            "5xx ratio",
            f'sum(rate(http_request_duration_seconds_count{{{selector},status=~"5.."}}[5m]))'
            f" / sum({rate})",
            "percentunit",
            0,
            8,
        ),
        panel(first_id + 3, "Responses by status", f"sum by (status) ({rate})", "reqps", 12, 8),
    ]


def main() -> None:
    for service, title in SERVICES.items():
        board = dashboard(
            f"veze-{service}", f"VEZE {title}", http_panels(f'job="veze-{service}"', 1)
        )
        (HERE / f"{service}.json").write_text(json.dumps(board, indent=2) + "\n")
    overview = dashboard(
        "veze-overview",
        "VEZE overview",
        [
            panel(1, "Services up", 'up{job=~"veze-.*"}', "none", 0, 0),
            panel(
                2,
                "Requests per second by service",
                'sum by (job) (rate(http_request_duration_seconds_count{job=~"veze-.*"}[5m]))',
                "reqps",
                12,
                0,
            ),
        ],
    )
    (HERE / "overview.json").write_text(json.dumps(overview, indent=2) + "\n")


if __name__ == "__main__":
    main()
