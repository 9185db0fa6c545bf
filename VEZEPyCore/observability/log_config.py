"""uvicorn's `--log-config` for JSON logs: every logger (uvicorn's included) writes one JSON
object per line to stderr through `JsonFormatter`, with access tokens redacted.

The Procfile and the images start each service with its file from `logging/`
(`--log-config VEZEPyCore/observability/logging/email.json`); the files are this module's
output, kept in step by a test. Write them again with
`python -m VEZEPyCore.observability.log_config`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SERVICES = ("portal", "game", "email")
CONFIG_DIR = Path(__file__).resolve().parent / "logging"


def uvicorn_log_config(service: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` document (what uvicorn's `--log-config` loads)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "VEZEPyCore.observability.logs.RedactingFilter"}},
        "formatters": {
            "json": {"()": "VEZEPyCore.observability.logs.JsonFormatter", "service": service}
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["redact"],
            }
        },
        # uvicorn's loggers hand their records to the root's one handler.
        "loggers": {
            name: {"handlers": [], "level": level, "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
        "root": {"handlers": ["stderr"], "level": level},
    }


def config_path(service: str) -> Path:
    return CONFIG_DIR / f"{service}.json"


def render(service: str) -> str:
    return json.dumps(uvicorn_log_config(service), indent=2) + "\n"


def main() -> None:
    CONFIG_DIR.mkdir(exist_ok=True)
    for service in SERVICES:
        config_path(service).write_text(render(service))


if __name__ == "__main__":
    main()
