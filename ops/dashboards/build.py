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


def panel(
    panel_id: int, title: str, expr: str | tuple[str, ...], unit: str, x: int, y: int
) -> dict[str, Any]:
    """A time series panel; several expressions are several queries (A, B, ...) on it."""
    exprs = (expr,) if isinstance(expr, str) else expr
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + index), "expr": query, "legendFormat": "__auto"}
            for index, query in enumerate(exprs)
        ],
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


#: (title, expression or expressions, unit) of one panel.
Spec = tuple[str, str | tuple[str, ...], str]


def stacked(first_id: int, y: int, specs: list[Spec]) -> list[dict[str, Any]]:
    """Panels two to a row from (title, expr, unit), starting at row `y`."""
    return [
        panel(first_id + index, title, expr, unit, 12 * (index % 2), y + 8 * (index // 2))
        for index, (title, expr, unit) in enumerate(specs)
    ]


#: Domain panels per service, below the HTTP panels (which take rows 0 and 8).
DOMAIN_PANELS: dict[str, list[Spec]] = {
    "portal": [
        (
            "Log-in attempts by outcome",
            "sum by (step, outcome) (rate(veze_login_attempts_total[5m]))",
            "ops",
        ),
        (
            "Failed log-ins per minute",
            'sum(rate(veze_login_attempts_total{outcome!="success"}[5m])) * 60',
            "none",
        ),
        (
            "Tokens issued by grant",
            "sum by (grant_type) (rate(veze_tokens_issued_total[5m]))",
            "ops",
        ),
        (
            "Token requests refused by error",
            "sum by (error) (rate(veze_token_requests_refused_total[5m]))",
            "ops",
        ),
        (
            "Provisioning tasks pending and retrying",
            (
                "max by (target) (veze_provisioning_tasks_pending)",
                "max by (target) (veze_provisioning_tasks_retrying)",
            ),
            "none",
        ),
        (
            "Oldest pending provisioning task",
            "max by (target) (veze_provisioning_oldest_pending_age_seconds)",
            "s",
        ),
        (
            "Provisioning calls by outcome",
            "sum by (target, outcome) (rate(veze_provisioning_attempts_total[5m]))",
            "ops",
        ),
        (
            "Copilot WebSocket clients",
            "sum(veze_websocket_clients_connected)",
            "none",
        ),
        (
            "Notification streams open (header bell, SSE)",
            'sum(veze_sse_clients_connected{stream="notifications"})',
            "none",
        ),
    ],
    "email": [
        (
            "SMTP sessions per second by listener",
            "sum by (listener) (rate(veze_smtp_sessions_total[5m]))",
            "ops",
        ),
        (
            "Open SMTP sessions",
            "sum by (listener) (veze_smtp_sessions_active)",
            "none",
        ),
        (
            "Messages accepted by listener",
            "sum by (listener) (rate(veze_smtp_messages_accepted_total[5m]))",
            "ops",
        ),
        (
            "SMTP refusals by reason",
            "sum by (reason) (rate(veze_smtp_messages_refused_total[5m]))",
            "ops",
        ),
        (
            "SMTP AUTH by outcome",
            "sum by (outcome) (rate(veze_smtp_auth_attempts_total[5m]))",
            "ops",
        ),
        (
            "MX intake: accepted, waiting for delivery",
            ("max(veze_smtp_intake_waiting)", "max(veze_smtp_intake_stuck)"),
            "none",
        ),
        (
            "Oldest accepted, undelivered mail",
            "max(veze_smtp_intake_oldest_age_seconds)",
            "s",
        ),
        (
            "Outbound queue depth",
            "max by (status) (veze_outbound_queue_depth)",
            "none",
        ),
        (
            "Oldest undelivered outbound mail",
            "max(veze_outbound_queue_oldest_age_seconds)",
            "s",
        ),
        (
            "Delivery attempts by outcome",
            "sum by (outcome) (rate(veze_outbound_attempts_total[5m]))",
            "ops",
        ),
        (
            "Live mail streams (SSE clients)",
            "sum(veze_sse_clients_connected)",
            "none",
        ),
    ],
    "game": [
        (
            "Matches started by mode",
            "sum by (mode) (rate(veze_matches_started_total[5m]))",
            "ops",
        ),
        (
            "Matches finished by mode and result",
            "sum by (mode, result) (rate(veze_matches_finished_total[5m]))",
            "ops",
        ),
        (
            "Matchmaking queue size",
            "max by (mode) (veze_matchmaking_queue_size)",
            "none",
        ),
        (
            "Longest matchmaking wait now",
            "max by (mode) (veze_matchmaking_oldest_wait_seconds)",
            "s",
        ),
        (
            "p95 wait before a match",
            "histogram_quantile(0.95, sum by (mode, le)"
            " (rate(veze_matchmaking_wait_seconds_bucket[15m])))",
            "s",
        ),
        (
            "Live game streams (SSE clients)",
            "sum by (stream) (veze_sse_clients_connected)",
            "none",
        ),
        (
            "Match summaries waiting to be mailed",
            "max(veze_summary_mail_waiting)",
            "none",
        ),
        (
            "Oldest waiting match summary",
            "max(veze_summary_mail_oldest_age_seconds)",
            "s",
        ),
        (
            "Summary mail deliveries by outcome",
            "sum by (outcome) (rate(veze_summary_mail_deliveries_total[5m]))",
            "ops",
        ),
        (
            "Telemetry events by type",
            "sum by (type) (rate(veze_telemetry_events_total[5m]))",
            "ops",
        ),
        (
            "Telemetry batches refused by reason",
            "sum by (reason) (rate(veze_telemetry_batches_refused_total[5m]))",
            "ops",
        ),
        (
            "Fair-play flags by rule",
            "sum by (rule) (increase(veze_fair_play_flags_total[1h]))",
            "none",
        ),
        (
            "Store webhook events by outcome",
            "sum by (outcome) (rate(veze_store_webhook_events_total[5m]))",
            "ops",
        ),
    ],
}

OVERVIEW_PANELS: list[Spec] = [
    ("Services up", 'up{job=~"veze-.*"}', "none"),
    (
        "Requests per second by service",
        'sum by (job) (rate(http_request_duration_seconds_count{job=~"veze-.*"}[5m]))',
        "reqps",
    ),
    (
        "5xx ratio by service",
        'sum by (job) (rate(http_request_duration_seconds_count{status=~"5.."}[5m]))'
        " / sum by (job) (rate(http_request_duration_seconds_count[5m]))",
        "percentunit",
    ),
    (
        "p95 latency by service",
        "histogram_quantile(0.95, sum by (job, le)"
        " (rate(http_request_duration_seconds_bucket[5m])))",
        "s",
    ),
    (
        "Failed log-ins per minute",
        'sum(rate(veze_login_attempts_total{outcome!="success"}[5m])) * 60',
        "none",
    ),
    (
        "Oldest undelivered outbound mail",
        "max(veze_outbound_queue_oldest_age_seconds)",
        "s",
    ),
    (
        "Mail accepted and refused",
        (
            "sum(rate(veze_smtp_messages_accepted_total[5m]))",
            "sum(rate(veze_smtp_messages_refused_total[5m]))",
        ),
        "ops",
    ),
    (
        "Provisioning backlog",
        "sum(veze_provisioning_tasks_pending)",
        "none",
    ),
]


def main() -> None:
    for service, title in SERVICES.items():
        panels = http_panels(f'job="veze-{service}"', 1)
        panels += stacked(len(panels) + 1, 16, DOMAIN_PANELS[service])
        board = dashboard(f"veze-{service}", f"VEZE {title}", panels)
        (HERE / f"{service}.json").write_text(json.dumps(board, indent=2) + "\n")
    overview = dashboard("veze-overview", "VEZE overview", stacked(1, 0, OVERVIEW_PANELS))
    (HERE / "overview.json").write_text(json.dumps(overview, indent=2) + "\n")


if __name__ == "__main__":
    main()
