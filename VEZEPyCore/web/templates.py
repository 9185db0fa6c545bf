"""Jinja2 templates: a service's own folder first, then the shared layout in VEZEPyCore."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from VEZEPyCore.security.csrf import csrf_input

CORE_UI = Path(__file__).resolve().parents[1] / "ui"
CORE_TEMPLATES = CORE_UI / "templates"
CORE_STATIC = CORE_UI / "static"


def service_templates(template_dir: Path) -> Jinja2Templates:
    environment = Environment(
        loader=ChoiceLoader([FileSystemLoader(template_dir), FileSystemLoader(CORE_TEMPLATES)]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["csrf_input"] = csrf_input
    return Jinja2Templates(env=environment)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Render a template from the app's `state.templates` (set in each service's factory)."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context or {}, status_code=status_code)
