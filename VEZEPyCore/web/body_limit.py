"""Every 413 in the services' one JSON error shape (VEZEPyCore.errors).

Starlette's body limit (FastAPI's `max_body_size`, a router's larger ceiling) answers a request
whose declared Content-Length is over the limit with its own plain-text "Content Too Large",
sent from the limiter itself, outside the exception handlers. This wrapper sits outside that
limiter and rewrites such a response into `{"error": "content_too_large", "detail": ...}`;
every other response passes through untouched.
"""

from __future__ import annotations

import json

from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from VEZEPyCore.errors import error_body


def too_large_detail(limit: object) -> str:
    if isinstance(limit, int):
        return f"The request body is larger than the {limit} bytes this route accepts"
    return "The request body is larger than this route accepts"


class JsonContentTooLarge:
    """ASGI wrapper: a plain-text 413 from the body limiter becomes the JSON error shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rewriting = False

        async def send_json_413(message: Message) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 413:
                headers = list(message.get("headers", []))
                content_type = next(
                    (value for name, value in headers if name.lower() == b"content-type"), b""
                )
                if content_type.startswith(b"text/plain"):
                    rewriting = True
                    body = json.dumps(
                        error_body(
                            "content_too_large",
                            too_large_detail(scope.get(MAX_BODY_SIZE_SCOPE_KEY)),
                        )
                    ).encode()
                    kept = [
                        (name, value)
                        for name, value in headers
                        if name.lower() not in (b"content-type", b"content-length")
                    ]
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 413,
                            "headers": [
                                *kept,
                                (b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
            if rewriting:
                return  # the plain-text body the JSON replaced
            await send(message)

        await self.app(scope, receive, send_json_413)
