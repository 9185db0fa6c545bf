"""`/ws/copilot`: the command assistant over a WebSocket (RFC 6455).

The token comes in the `access_token` query parameter because browsers cannot set headers on
a WebSocket handshake. The connection is accepted before it is refused so that the client
receives close code 1008 (policy violation) with the reason, not a bare HTTP 403.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from VEZEPyCore.auth.deps import authenticate, verifier_on_state
from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import Unauthorized
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.copilot import service
from VEZEPyUniQVerse.services.copilot.people import account_of
from VEZEPyUniQVerse.services.copilot.schemas import CopilotReply
from VEZEPyUniQVerse.services.directory import service as directory
from VEZEPyUniQVerse.services.directory.schemas import ServiceStatusRead
from VEZEPyUniQVerse.services.metrics import portal_metrics

router = APIRouter()


@router.websocket("/ws/copilot", name="copilot")
async def copilot(websocket: WebSocket) -> None:
    """Talk to the copilot: send {"text": ...}, receive {"type", "text", ...} replies."""
    await websocket.accept()
    try:
        principal = await authenticate(websocket, verifier_on_state(websocket))
    except Unauthorized as exc:
        await websocket.close(
            code=status.WS_1008_POLICY_VIOLATION, reason=_close_reason(exc.detail)
        )
        return

    async def load_statuses() -> list[ServiceStatusRead]:
        app = websocket.app
        return await directory.list_services(
            registry=app.state.registry,
            clients=app.state.clients,
            timeout_seconds=app.state.settings.health_timeout_seconds,
            self_name=app.state.service_name,
            self_version=app.version,
        )

    async def load_user() -> User | None:
        app = websocket.app
        return await account_of(
            app.state.sessionmaker, principal, mail_domain=app.state.settings.mail_domain
        )

    conversation = service.CopilotSession(
        load_statuses=load_statuses, load_user=load_user, app_state=websocket.app.state
    )
    connected = portal_metrics(websocket.app).websocket_clients.labels("/ws/copilot")
    connected.inc()
    await _send(websocket, service.greeting(principal.address or principal.subject))
    try:
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                return
            if _expired(principal, leeway_seconds=websocket.app.state.settings.jwt_leeway_seconds):
                await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="token expired")
                return
            raw = frame.get("text")
            if raw is None:
                await _send(websocket, CopilotReply(type="error", text="Send text frames."))
                continue
            parsed = service.parse_message(raw)
            if isinstance(parsed, CopilotReply):
                await _send(websocket, parsed)
                continue
            await _send(websocket, await service.answer(parsed, conversation))
    except WebSocketDisconnect:
        return
    finally:
        connected.dec()


async def _send(websocket: WebSocket, reply: CopilotReply) -> None:
    await websocket.send_text(reply.model_dump_json(exclude_none=True))


def _close_reason(detail: str) -> str:
    # A close frame's reason must fit in 123 bytes of UTF-8 (RFC 6455 section 5.5).
    return detail.encode()[:123].decode(errors="ignore")


def _expired(principal: Principal, *, leeway_seconds: int) -> bool:
    """A connection may outlive its token; stop serving once the token would be refused."""
    expires = principal.claims.get("exp")
    return isinstance(expires, int | float) and time.time() >= expires + leeway_seconds
