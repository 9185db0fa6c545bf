"""Hostile input through the front doors: markup and SQL in text fields, paths in attachment
names, bodies too large, strings JSON allows and UTF-8 does not.

Text must be stored exactly as sent (the database is parameterised, nothing is "cleaned" on
the way in) and come back escaped wherever a page shows it.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from email.message import EmailMessage

import httpx
from fastapi import FastAPI
from markupsafe import escape

from VEZEPyCore.auth import scopes
from VEZEPyCore.testing import eventually
from VEZEPyCore.web.sso import SsoSession, session_cookie_name
from VEZEPyEmail.app.main import create_app as create_email
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.tests.smtp_support import in_thread, smtp_rig, smtp_settings
from VEZEPyGame.app.main import create_app as create_game
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.main import create_app as create_portal
from VEZEPyUniQVerse.app.settings import PortalSettings

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
Minter = Callable[..., str]

ALICE = "alice@vezeuniqverse.com"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SQL = "Robert'); DROP TABLE messages;-- \" OR 1=1 --"
HOSTILE = f"{XSS} {SQL}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: httpx.AsyncClient, app: FastAPI, service: str, mint: Minter) -> None:
    """A browser's session cookie for alice, as the service's `/auth/callback` sets it."""
    token = mint(
        ALICE,
        audience=f"veze-{service}",
        scopes=("openid", scopes.EMAIL_READ, scopes.EMAIL_SEND, scopes.GAME_PLAY),
        ttl_seconds=900,
        preferred_username="alice",
    )
    session = SsoSession(
        access_token=token,
        refresh_token=None,
        expires_at=int(time.time()) + 900,
        sid=None,
        subject=ALICE,
        handle="alice",
        email=ALICE,
    )
    value = app.state.sso.codec(app.state.settings).dump_session(session)
    client.cookies.set(session_cookie_name(service), str(value))


def assert_escaped(page: str, text: str) -> None:
    """`text` is on the page as Jinja's autoescape writes it, and nowhere as live markup."""
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert str(escape(text)) in page


async def _email(
    settings: EmailSettings, running: Running, mint: Minter
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, dict[str, str]]]:
    app = create_email(settings)
    async with running(app) as client:
        admin = mint("svc:portal", scopes=(scopes.EMAIL_ADMIN, scopes.EMAIL_READ))
        made = await client.post("/api/mailboxes", json={"address": ALICE}, headers=bearer(admin))
        assert made.status_code == 201, made.text
        user = bearer(mint(ALICE, scopes=(scopes.EMAIL_READ, scopes.EMAIL_SEND)))
        yield app, client, user


async def _message_with_subject(
    client: httpx.AsyncClient, user: dict[str, str], subject: str
) -> dict[str, object]:

    async def matching() -> list[dict[str, object]]:
        listed = await client.get("/api/messages", params={"user": ALICE}, headers=user)
        assert listed.status_code == 200, listed.text
        # Exact comparison: a subject altered on the way in (stripped, escaped) is not found.
        return [m for m in listed.json()["messages"] if m["subject"] == subject]

    # Mail over SMTP is delivered right behind its 250 (services/intake).
    found = await eventually(matching, what=f"a message with subject {subject!r}")
    assert len(found) == 1, found
    message: dict[str, object] = found[0]
    return message


async def test_mail_subject_body_folder_and_label_are_stored_intact_and_shown_escaped(
    email_settings: EmailSettings, running: Running, mint: Minter
) -> None:
    async for app, client, user in _email(email_settings, running, mint):
        sent = await client.post(
            "/api/send",
            json={"to": [ALICE], "subject": HOSTILE, "text": f"body {HOSTILE}"},
            headers=user,
        )
        assert sent.status_code == 202, sent.text
        message = await _message_with_subject(client, user, HOSTILE)
        message_id = message["id"]

        folder = await client.post("/api/folders", json={"name": XSS}, headers=user)
        assert folder.status_code == 201, folder.text
        assert folder.json()["name"] == XSS
        labelled = await client.post(
            f"/api/messages/{message_id}/labels", json={"labels": [SQL]}, headers=user
        )
        assert labelled.status_code == 200, labelled.text
        detail = await client.get(f"/api/messages/{message_id}", headers=user)
        assert detail.json()["subject"] == HOSTILE
        assert SQL in detail.json()["labels"]
        assert f"body {HOSTILE}" in detail.json()["text"]

        sign_in(client, app, "email", mint)
        page = await client.get("/ui/mail", params={"m": str(message_id)})
        assert page.status_code == 200, page.text
        assert_escaped(page.text, HOSTILE)
        assert_escaped(page.text, XSS)  # the folder's name in the folder list
        body = await client.get(f"/ui/mail/messages/{message_id}/frame")
        assert body.status_code == 200
        assert "<script>alert" not in body.text


async def test_attachment_names_with_paths_download_under_a_bare_file_name(
    email_settings: EmailSettings, running: Running, mint: Minter
) -> None:
    names = ["../../etc/passwd", "/etc/shadow", "..\\..\\windows\\win.ini"]
    async for _app, client, user in _email(email_settings, running, mint):
        uploads = []
        for name in names:
            uploaded = await client.post(
                "/api/uploads", files={"file": (name, b"secret", "text/plain")}, headers=user
            )
            assert uploaded.status_code == 201, uploaded.text
            uploads.append(uploaded.json()["id"])
        sent = await client.post(
            "/api/send",
            json={"to": [ALICE], "subject": "paths", "text": "see", "attachments": uploads},
            headers=user,
        )
        assert sent.status_code == 202, sent.text
        message = await _message_with_subject(client, user, "paths")
        for index in range(len(names)):
            got = await client.get(
                f"/api/messages/{message['id']}/attachments/{index}", headers=user
            )
            assert got.status_code == 200, got.text
            assert got.content == b"secret"
            disposition = got.headers["content-disposition"]
            assert disposition.startswith("attachment;")
            # Neither the plain nor the RFC 8187 name may carry a directory.
            for forbidden in ("/", "\\", "%2F", "%5C", ".."):
                assert forbidden not in disposition, disposition


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A body without Content-Length: only counting the bytes as they arrive can stop it."""
    sent = 0
    while sent < total:
        yield b" " * size
        sent += size


async def test_oversized_bodies_and_uploads_are_refused_with_413(
    email_settings: EmailSettings, running: Running, mint: Minter
) -> None:
    limit = email_settings.max_body_bytes
    settings = email_settings.model_copy(update={"upload_max_bytes": 64 * 1024})
    async for _app, client, user in _email(settings, running, mint):
        json_headers = {**user, "Content-Type": "application/json"}
        declared = await client.post(
            "/api/folders", content=b" " * (limit + 1), headers=json_headers
        )
        assert declared.status_code == 413
        streamed = await client.post(
            "/api/folders", content=_chunks(limit * 4), headers=json_headers
        )
        assert streamed.status_code == 413
        assert streamed.json()["error"] == "content_too_large"

        upload = await client.post(
            "/api/uploads",
            files={"file": ("big.bin", b"x" * (65 * 1024), "application/octet-stream")},
            headers=user,
        )
        assert upload.status_code == 413
        assert upload.json()["error"] == "upload_too_large"
        # Nothing was refused for being merely near the limit.
        fits = await client.post(
            "/api/uploads",
            files={"file": ("ok.bin", b"x" * (60 * 1024), "application/octet-stream")},
            headers=user,
        )
        assert fits.status_code == 201, fits.text


async def test_a_lone_surrogate_in_a_json_string_is_a_422_not_a_500(
    email_settings: EmailSettings, running: Running, mint: Minter
) -> None:
    async for _app, client, user in _email(email_settings, running, mint):
        # JSON may spell a lone surrogate; UTF-8 cannot. The 422 echoes the bad input.
        invalid = await client.post(
            "/api/send",
            content=b'{"to": ["alice@vezeuniqverse.com"], "subject": ["\\ud800"]}',
            headers={**user, "Content-Type": "application/json"},
        )
        assert invalid.status_code == 422, invalid.text
        echoed = [error.get("input") for error in invalid.json()["detail"]]
        assert ["\\ud800"] in echoed, echoed
        # A valid-looking string that holds one is refused as a bad name, not a crash.
        folder = await client.post(
            "/api/folders",
            content=b'{"name": "a\\ud800b"}',
            headers={**user, "Content-Type": "application/json"},
        )
        assert folder.status_code in (400, 422), folder.text


async def test_game_display_name_is_stored_intact_and_shown_escaped(
    game_settings: GameSettings, running: Running, mint: Minter
) -> None:
    app = create_game(game_settings.model_copy(update={"matchmaker_enabled": False}))
    admin = bearer(mint("svc:portal", audience="veze-game", scopes=(scopes.GAME_ADMIN,)))
    async with running(app) as client:
        hostile_handle = await client.post(
            "/api/players", json={"handle": f"x{XSS}", "display_name": "x"}, headers=admin
        )
        assert hostile_handle.status_code == 422  # handles are letters, digits and ._-
        created = await client.post(
            "/api/players", json={"handle": "alice", "display_name": HOSTILE}, headers=admin
        )
        assert created.status_code == 201, created.text
        player = bearer(mint(ALICE, audience="veze-game", scopes=(scopes.GAME_PLAY,)))
        me = await client.get("/api/players/me", headers=player)
        assert me.status_code == 200, me.text
        assert me.json()["display_name"] == HOSTILE

        sign_in(client, app, "game", mint)
        for path in ("/ui", "/ui/profile"):
            page = await client.get(path)
            assert page.status_code == 200, (path, page.text)
            assert_escaped(page.text, HOSTILE)


async def test_mail_over_smtp_keeps_hostile_subject_and_attachment_name_harmless(
    email_settings: EmailSettings, running: Running, mint: Minter
) -> None:
    admin = bearer(mint("svc:portal", scopes=(scopes.EMAIL_ADMIN, scopes.EMAIL_READ)))
    settings = smtp_settings(email_settings)
    mime = EmailMessage()
    mime["From"] = "mallory@example.org"
    mime["To"] = ALICE
    mime["Subject"] = HOSTILE
    mime["Message-ID"] = "<hostile.1@example.org>"
    mime.set_content(f"body {HOSTILE}")
    mime.add_attachment(b"#!/bin/sh", maintype="text", subtype="plain", filename="../../evil.sh")
    async with smtp_rig(settings, running, admin, mailboxes=("alice",)) as rig:
        await in_thread(_deliver, rig.mx_port, mime.as_bytes())
        user = bearer(mint(ALICE, scopes=(scopes.EMAIL_READ,)))
        message = await _message_with_subject(rig.client, user, HOSTILE)
        got = await rig.client.get(f"/api/messages/{message['id']}/attachments/0", headers=user)
        assert got.status_code == 200, got.text
        for forbidden in ("/", "\\", "%2F", ".."):
            assert forbidden not in got.headers["content-disposition"]
        sign_in(rig.client, rig.app, "email", mint)
        page = await rig.client.get("/ui/mail", params={"m": str(message["id"])})
        assert page.status_code == 200
        assert_escaped(page.text, HOSTILE)


def _deliver(port: int, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("mallory@example.org", [ALICE], data)


async def test_values_postgresql_cannot_hold_are_refused_not_crashed_on(
    email_settings: EmailSettings,
    portal_settings: PortalSettings,
    running: Running,
    mint: Minter,
) -> None:
    # Found by Schemathesis on the PostgreSQL pass: both were 500s there, fine on SQLite.
    async for _app, client, user in _email(email_settings, running, mint):
        # Message ids are 32-bit integer columns.
        for path in ("/api/messages/4294967296", "/api/messages/4294967296/raw"):
            response = await client.get(path, headers=user)
            assert response.status_code == 422, (path, response.text)
        marked = await client.post("/api/messages/14444985426/read", headers=user)
        assert marked.status_code == 422, marked.text
    async with running(create_portal(portal_settings)) as portal:
        # PostgreSQL text cannot hold a NUL byte.
        revoked = await portal.post("/oauth/revoke", data={"client_id": "web\x00", "token": "x"})
        assert revoked.status_code == 401, revoked.text
        assert revoked.json()["error"] == "invalid_client"


async def test_every_413_for_a_declared_length_is_the_json_error_shape(
    email_settings: EmailSettings,
    game_settings: GameSettings,
    portal_settings: PortalSettings,
    running: Running,
    mint: Minter,
) -> None:
    """A Content-Length over the limit is refused before a byte is read, on any path, with or
    without a token, in the one JSON shape (Starlette's limiter answers that in plain text)."""
    limit = email_settings.max_body_bytes
    over = b" " * (limit + 1)
    json_type = {"Content-Type": "application/json"}

    def assert_json_413(response: httpx.Response, where: str) -> None:
        assert response.status_code == 413, (where, response.text)
        assert response.headers["content-type"] == "application/json", where
        body = response.json()
        assert body["error"] == "content_too_large", (where, body)
        assert str(limit) in body["detail"], (where, body)

    async for _app, client, user in _email(email_settings, running, mint):
        for method, path, headers in (
            ("POST", "/api/folders", {**user, **json_type}),
            ("POST", "/api/folders", json_type),  # no token: still 413 first, not 401
            ("PUT", "/api/rules", {**user, **json_type}),
            ("GET", "/api/messages", user),  # a route that takes no body at all
            ("POST", "/no/such/route", json_type),
        ):
            assert_json_413(await client.request(method, path, content=over, headers=headers), path)
        # A route with a larger ceiling of its own names that ceiling, and takes the body
        # the application-wide limit would have refused.
        compose = await client.post(
            "/api/send", content=b" " * (64 * 1024 * 1024 + 1), headers={**user, **json_type}
        )
        assert compose.status_code == 413 and compose.json()["error"] == "content_too_large"
        assert str(64 * 1024 * 1024) in compose.json()["detail"]
        fits = await client.post("/api/send", content=over, headers={**user, **json_type})
        assert fits.status_code == 422, fits.text  # read whole, then refused as bad JSON
    async with running(create_game(game_settings)) as game:
        assert_json_413(await game.post("/api/players", content=over, headers=json_type), "game")
    async with running(create_portal(portal_settings)) as portal:
        assert_json_413(
            await portal.post("/oauth/token", content=over, headers=json_type), "portal"
        )
