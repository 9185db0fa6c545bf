"""Schemathesis against each service's live OpenAPI document, in process, with and without a token.

Every operation gets a few seeded examples that fit its schema and a few that do not. Whatever
the request, the service must not answer 5xx, must answer only status codes its document
names, and its bodies must match the documented schemas. The document is the one the app
serves (`app.openapi()`), so a route that forgets to document a refusal fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from VEZEPyCore.auth import scopes
from VEZEPyEmail.app.main import create_app as create_email
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.main import create_app as create_game
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.main import create_app as create_portal
from VEZEPyUniQVerse.app.settings import PortalSettings

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
Minter = Callable[..., str]

#: Examples per operation and generation mode: enough to reach every documented refusal
#: (bad bodies, bad paths, missing token) while three services stay well inside a minute.
EXAMPLES = 4
BASE_URL = "http://testserver"
USER = "alice@vezeuniqverse.com"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Service:
    audience: str
    scopes: tuple[str, ...]
    # Operations left out, each for a reason given where the service is declared.
    excluded: frozenset[tuple[str, str]] = field(default_factory=frozenset)


SERVICES = {
    "portal": Service(
        audience="veze-portal",
        scopes=(scopes.PORTAL_PROVISION,),
        # Provisioning calls the Email and Game services over the network.
        excluded=frozenset({("POST", "/provision/{x_user_id}")}),
    ),
    "game": Service(
        audience="veze-game",
        scopes=(scopes.GAME_PLAY, scopes.GAME_READ_MAIL),
        excluded=frozenset(
            {
                # Server-sent event streams never end on their own.
                ("GET", "/api/matches/{match_id}/events"),
                ("GET", "/api/queue/events"),
                # Reads the player's mail from the Email service over the network.
                ("GET", "/email/mail"),
            }
        ),
    ),
    "email": Service(
        audience="veze-email",
        scopes=(scopes.EMAIL_READ, scopes.EMAIL_SEND),
        excluded=frozenset(
            {
                # A server-sent event stream never ends on its own.
                ("GET", "/api/events"),
                # Looks the domain's records up in the public DNS.
                ("GET", "/api/admin/dns"),
            }
        ),
    ),
}


def _cases(operation: APIOperation[Any, Any, Any, Any]) -> list[Case[Any]]:
    """A fixed, seeded set of valid and invalid requests for one operation."""
    collected: list[Case[Any]] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @hypothesis_settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def collect(case: Case[Any]) -> None:
            collected.append(case)

        try:
            collect()
        except Unsatisfiable:
            # An operation with nothing to get wrong (no parameters, no body) has no
            # invalid requests; its valid ones were sent.
            if mode is GenerationMode.POSITIVE:
                raise
    return collected


def _request_kwargs(case: Case[Any], headers: dict[str, str]) -> dict[str, Any]:
    """Schemathesis prepares `requests` arguments; httpx's differ only in the body's name."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    prepared: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": kwargs.get("headers") or {},
        "params": kwargs.get("params") or None,
        "cookies": kwargs.get("cookies") or None,
    }
    if "json" in kwargs:
        prepared["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, (bytes, str)):
        prepared["content"] = data
    elif data is not None:
        prepared["data"] = data
    if kwargs.get("files"):
        prepared["files"] = [(name, _file(value)) for name, value in kwargs["files"]]
    return prepared


def _file(value: Any) -> Any:
    """Negative cases put numbers or None where a file goes; `requests` sends them as text."""
    if isinstance(value, tuple):
        filename, content, *rest = value
        return (filename, _file(content), *rest)
    return value if isinstance(value, (bytes, str)) else str(value)


async def _fuzz(
    app: FastAPI,
    client: httpx.AsyncClient,
    service: Service,
    headers: dict[str, str],
) -> tuple[int, list[str]]:
    schema = schemathesis.openapi.from_dict(app.openapi())
    sent = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        if (operation.method.upper(), operation.path) in service.excluded:
            continue
        for case in _cases(operation):
            if headers and case.query:
                # The mailbox and player routes default to the token's own account; a random
                # other address only reaches the same 403 every time.
                case.query.pop("user", None)
            outgoing = client.build_request(**_request_kwargs(case, headers))
            # Read now: the checks look at the request body a multipart stream would hide.
            await outgoing.aread()
            response = await client.send(outgoing)
            sent += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as group:
                failures.append(f"{operation.method.upper()} {operation.path}: {group}")
    return sent, failures


async def _provision_email(client: httpx.AsyncClient, mint: Minter) -> None:
    admin = mint("svc:portal", scopes=(scopes.EMAIL_ADMIN, scopes.EMAIL_READ))
    response = await client.post(
        "/api/mailboxes", json={"address": USER}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert response.status_code == 201, response.text


async def _register_player(client: httpx.AsyncClient, mint: Minter) -> None:
    # Players are created by the portal's provisioning, a service token with game.admin.
    admin = mint("svc:portal", audience="veze-game", scopes=(scopes.GAME_ADMIN,))
    response = await client.post(
        "/api/players",
        json={"handle": "alice", "display_name": "Alice"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert response.status_code in (200, 201), response.text


WITH_AND_WITHOUT_TOKEN = pytest.mark.parametrize(
    "with_token", [True, False], ids=["token", "anonymous"]
)


async def _run(name: str, app: FastAPI, with_token: bool, running: Running, mint: Minter) -> None:
    service = SERVICES[name]
    token = mint(USER, audience=service.audience, scopes=service.scopes)
    headers = {"Authorization": f"Bearer {token}"} if with_token else {}
    async with running(app) as client:
        if with_token and name == "email":
            await _provision_email(client, mint)
        if with_token and name == "game":
            await _register_player(client, mint)
        sent, failures = await _fuzz(app, client, service, headers)
    assert sent > 0
    assert not failures, "\n\n".join(failures)


@WITH_AND_WITHOUT_TOKEN
async def test_portal_conforms_to_its_openapi(
    with_token: bool, portal_settings: PortalSettings, running: Running, mint: Minter
) -> None:
    await _run("portal", create_portal(portal_settings), with_token, running, mint)


@WITH_AND_WITHOUT_TOKEN
async def test_game_conforms_to_its_openapi(
    with_token: bool, game_settings: GameSettings, running: Running, mint: Minter
) -> None:
    await _run("game", create_game(game_settings), with_token, running, mint)


@WITH_AND_WITHOUT_TOKEN
async def test_email_conforms_to_its_openapi(
    with_token: bool, email_settings: EmailSettings, running: Running, mint: Minter
) -> None:
    await _run("email", create_email(email_settings), with_token, running, mint)
