"""The listeners' life cycle and TLS: a self-signed certificate made once and reused
(RFC 3207 needs one), the "smtp" ready check, and a clean stop."""

from __future__ import annotations

import socket
import ssl
import stat
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import FastAPI

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.smtp.tls import certificate_paths
from VEZEPyEmail.tests.smtp_support import RawSession, in_thread, smtp_settings

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


async def test_self_signed_certificate_is_created_once_and_reused(
    email_settings: EmailSettings, running: Running
) -> None:
    settings = smtp_settings(email_settings, smtp_hostname="mx.test.example")
    async with running(create_app(settings)) as client:
        ready = await client.get("/ready")
        assert ready.json()["checks"]["smtp"] == "ok"
    cert_path, key_path = certificate_paths(settings)
    assert cert_path.parent == settings.resolved_secrets_dir
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    [common_name] = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert common_name.value == "mx.test.example"
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mx.test.example" in names.get_values_for_type(x509.DNSName)
    first = cert_path.read_bytes(), key_path.read_bytes()

    app = create_app(settings)
    async with running(app):
        port = app.state.smtp.port("smtps")

        def handshake() -> bytes:
            context = ssl.create_default_context(cafile=str(cert_path))
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname="mx.test.example") as tls,
            ):
                return tls.recv(512)

        assert (await in_thread(handshake)).startswith(b"220 mx.test.example")
    assert (cert_path.read_bytes(), key_path.read_bytes()) == first


async def test_configured_certificate_is_used_as_given(email_settings: EmailSettings) -> None:
    made = smtp_settings(email_settings)
    cert, key = certificate_paths(made)  # any PEM pair will do as "configured"
    settings = smtp_settings(email_settings, tls_cert_file=cert, tls_key_file=key)
    assert certificate_paths(settings) == (cert, key)


async def test_listeners_stop_with_the_app_and_close_open_sessions(
    email_settings: EmailSettings, running: Running
) -> None:
    app = create_app(smtp_settings(email_settings))
    async with running(app):
        ports = [app.state.smtp.port(name) for name in ("mx", "submission", "smtps")]
        session = await in_thread(RawSession, ports[0])
        assert (await in_thread(session.command, b"NOOP"))[0] == 250
    with pytest.raises(ConnectionError):
        await in_thread(session.command, b"NOOP")
    session.file.close()
    session.sock.close()
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_listeners_stay_off_when_disabled(
    email_settings: EmailSettings, running: Running
) -> None:
    app = create_app(email_settings)  # the shared fixture has smtp_enabled=False
    async with running(app) as client:
        assert "smtp" not in (await client.get("/ready")).json()["checks"]
        assert not hasattr(app.state, "smtp")


async def test_idle_session_times_out_with_421(
    email_settings: EmailSettings, running: Running
) -> None:
    app = create_app(smtp_settings(email_settings, smtp_session_timeout_seconds=0.5))
    async with running(app):
        port = app.state.smtp.port("mx")

        def idle() -> tuple[int, str]:
            session = RawSession(port)
            try:
                return session.read_reply()  # nothing sent: the server speaks first
            finally:
                session.file.close()
                session.sock.close()

        code, text = await in_thread(idle)
        assert code == 421 and "4.4.2" in text
