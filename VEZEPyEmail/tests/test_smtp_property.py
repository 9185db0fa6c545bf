"""Property (RFC 5321 section 4.5.2): any byte string sent as DATA is stored byte-exact
after the trace headers, or refused with 5xx; either way the server still answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.tests.smtp_support import DOMAIN, RawSession, smtp_rig, smtp_settings

ALICE = f"alice@{DOMAIN}"

#: Raw bytes, salted with what makes SMTP framing hard: CRLF, lone CR/LF, dots, NUL, 8-bit.
PIECES = st.one_of(
    st.binary(max_size=120),
    st.sampled_from(
        [b"\r\n", b".", b"\r", b"\n", b"\x00", b"\r\n.\r\n", b"..", b"\xff\xfe", b"\r\n."]
    ),
)
PAYLOADS = st.lists(PIECES, max_size=40).map(b"".join)


def wire_form(payload: bytes) -> tuple[bytes, bytes]:
    """(what the store must hold, what goes on the wire): CRLF-terminated and dot-stuffed."""
    body = payload if payload == b"" or payload.endswith(b"\r\n") else payload + b"\r\n"
    lines = body.split(b"\r\n")
    stuffed = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)
    return body, stuffed + b".\r\n"


async def test_any_data_is_stored_byte_exact_or_refused(
    email_settings: EmailSettings,
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
    admin_headers: dict[str, str],
) -> None:
    loop = asyncio.get_running_loop()
    async with smtp_rig(smtp_settings(email_settings), running, admin_headers) as rig:

        def stored_by_queue_id(queue_id: str) -> bytes:
            blobs = asyncio.run_coroutine_threadsafe(rig.stored(ALICE), loop).result(30)
            marker = f"id {queue_id}".encode()
            found = [blob for blob in blobs if marker in blob]
            assert len(found) == 1, (queue_id, blobs)
            [match] = found
            return match

        @settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(payload=PAYLOADS)
        def property(payload: bytes) -> None:
            body, wire = wire_form(payload)
            session = RawSession(rig.mx_port)
            try:
                assert session.command(b"EHLO prop.example.org")[0] == 250
                assert session.command(b"MAIL FROM:<prop@example.org> BODY=8BITMIME")[0] == 250
                assert session.command(f"RCPT TO:<{ALICE}>".encode())[0] == 250
                assert session.command(b"DATA")[0] == 354
                code, text = session.send(wire)
                assert code == 250 or 500 <= code < 600, text
                if code == 250:
                    queue_id = text.rsplit(" ", 1)[1]
                    stored = stored_by_queue_id(queue_id)
                    head = stored[: len(stored) - len(body)]
                    assert stored.endswith(body)
                    assert head.startswith(b"Return-Path: <prop@example.org>\r\n")
                    assert b"\r\nReceived: from prop.example.org" in head
                    assert head.endswith(b"\r\n")
                assert session.command(b"NOOP")[0] == 250
            finally:
                session.close()

        await asyncio.to_thread(property)
