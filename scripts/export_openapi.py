"""Write each service's OpenAPI document to docs/openapi/<service>.yaml.

Run after changing a route: `python scripts/export_openapi.py`. A test fails while the
committed documents differ from what the code serves.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "openapi"


def service_apps() -> dict[str, FastAPI]:
    from VEZEPyEmail.app.main import create_app as create_email
    from VEZEPyGame.app.main import create_app as create_game
    from VEZEPyUniQVerse.app.main import create_app as create_portal

    return {"portal": create_portal(), "game": create_game(), "email": create_email()}


def render(schema: dict[str, Any]) -> str:
    return yaml.safe_dump(schema, sort_keys=False, allow_unicode=True, width=100)


def main() -> int:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for name, app in service_apps().items():
        path = OUTPUT / f"{name}.yaml"
        path.write_text(render(app.openapi()), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
