"""Reading a request body with a byte limit, refusing early (HTTP 413, RFC 9110 15.5.14).

A declared `Content-Length` over the limit is refused before a byte is read; a chunked body
is read only up to the limit, so a client cannot make the service buffer more than it allows.
"""

from __future__ import annotations

from fastapi import Request

from VEZEPyCore.errors import AppError


class PayloadTooLarge(AppError):
    status_code, code = 413, "payload_too_large"


async def read_bounded_body(request: Request, *, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise AppError("invalid Content-Length")
        if int(declared) > max_bytes:
            raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > max_bytes:
            raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    return bytes(received)
