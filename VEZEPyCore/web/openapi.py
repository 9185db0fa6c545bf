"""Refusals every route can give, written into its OpenAPI operation so the document is true.

Routes document what their own code refuses; what the shared machinery refuses is the same
everywhere and is added here: 401/403 on routes behind a bearer-token dependency, 400 (a
body that cannot be parsed) and 413 (over the body size limit) on routes that read a body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from VEZEPyCore.auth.deps import is_authenticating
from VEZEPyCore.errors import ErrorBody

_AUTH_REFUSALS: dict[int, str] = {
    401: "No token, or one that is expired, revoked or not for this service",
    403: "The token lacks a scope this operation needs",
}
_BODY_REFUSALS: dict[int, str] = {
    400: "The body could not be parsed",
    413: "The body is larger than the service accepts",
}


def refusal(description: str) -> dict[str, Any]:
    """A documented refusal carrying `ErrorBody` as JSON, also on routes that answer HTML.

    (`{"model": ErrorBody}` would be documented under the route's own media type.)
    """
    # A fresh dict each time: shared objects come out of the YAML export as anchors.
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _authenticates(dependant: Dependant) -> bool:
    return any(
        is_authenticating(dependency.call) or _authenticates(dependency)
        for dependency in dependant.dependencies
    )


def _refusals(app: FastAPI) -> dict[tuple[str, str], dict[int, str]]:
    """(method, path) -> the shared refusals that operation can give."""
    found: dict[tuple[str, str], dict[int, str]] = {}
    # Route contexts, not `app.routes`: included routers are resolved lazily, and a context
    # carries the dependencies its include added.
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        refusals: dict[int, str] = {}
        dependant: Dependant = getattr(context, "dependant", route.dependant)
        if _authenticates(dependant):
            refusals |= _AUTH_REFUSALS
        if route.body_field is not None:
            refusals |= _BODY_REFUSALS
        for method in context.methods or route.methods or ():
            found[(method.lower(), context.path_format or route.path_format)] = refusals
    return found


def document_refusals(app: FastAPI) -> None:
    """Make `app.openapi()` add the shared refusals to every operation that can give them.

    Installed when the app is built; the routes are read when the document is first asked
    for, so routers a service includes afterwards are covered too.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        refusals = _refusals(app)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                documented = operation.setdefault("responses", {})
                for status, description in refusals.get((method, path), {}).items():
                    documented.setdefault(str(status), refusal(description))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
