"""/api/rules over HTTP: read, replace with validation, remove, dry-run; only your own."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from VEZEPyEmail.db.models import Base, Message
from VEZEPyEmail.db.sieve import SieveScript, VacationReply
from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.services.sieve.compiler import MAX_SCRIPT_BYTES
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"
SCRIPT = (
    'require ["fileinto", "imap4flags"];\n'
    'if header :contains "subject" "invoice" { fileinto "Archive"; addflag "\\\\Flagged"; }\n'
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_rules_round_trip_and_validation(
    email_client: httpx.AsyncClient, admin_headers: dict[str, str], mint: Callable[..., str]
) -> None:
    await provision(email_client, admin_headers, ALICE)
    alice = bearer(mint(ALICE))
    empty = await email_client.get("/api/rules", headers=alice)
    assert empty.status_code == 200
    assert empty.json()["active"] is False and empty.json()["script"] == ""

    saved = await email_client.put("/api/rules", json={"script": SCRIPT}, headers=alice)
    assert saved.status_code == 200, saved.text
    read = (await email_client.get("/api/rules", headers=alice)).json()
    assert read["active"] is True and read["script"] == SCRIPT and read["user"] == ALICE

    bad = await email_client.put(
        "/api/rules",
        json={"script": 'require "fileinto";\nkeep;\nreject "go away";\n'},
        headers=alice,
    )
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_script"
    assert bad.json()["detail"].startswith("line 3: ")
    too_big = await email_client.put(
        "/api/rules", json={"script": "#" * (MAX_SCRIPT_BYTES + 1)}, headers=alice
    )
    assert too_big.status_code == 422
    # A refused script leaves the active one in place.
    assert (await email_client.get("/api/rules", headers=alice)).json()["script"] == SCRIPT

    assert (await email_client.delete("/api/rules", headers=alice)).status_code == 204
    assert (await email_client.delete("/api/rules", headers=alice)).status_code == 404
    assert (await email_client.get("/api/rules", headers=alice)).json()["active"] is False


async def test_rules_belong_to_their_mailbox(
    email_app: FastAPI,
    email_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
) -> None:
    await provision(email_client, admin_headers, ALICE)
    await provision(email_client, admin_headers, BOB)
    alice, bob = bearer(mint(ALICE)), bearer(mint(BOB))
    await email_client.put("/api/rules", json={"script": SCRIPT}, headers=alice)
    for method in ("GET", "PUT", "DELETE"):
        response = await email_client.request(
            method, "/api/rules", params={"user": ALICE}, json={"script": "keep;"}, headers=bob
        )
        assert response.status_code == 403, method
    assert (await email_client.get("/api/rules", headers=bob)).json()["active"] is False
    assert (await email_client.get("/api/rules", headers=alice)).json()["script"] == SCRIPT
    assert (await email_client.get("/api/rules")).status_code == 401

    # The dry run reads only your own messages and changes nothing.
    async with email_app.state.engine.begin() as connection:
        await connection.execute(delete(Message))
    [delivered] = await deliver_local(
        email_app.state,
        raw=b"From: c@example.org\r\nTo: alice@vezeuniqverse.com\r\nSubject: Old stuff\r\n\r\nx",
        envelope_from="c@example.org",
        recipients=[ALICE],
    )
    trial = await email_client.post(
        "/api/rules/test",
        json={
            "message_id": delivered.id,
            "script": 'require ["imap4flags"]; if header :contains "subject" "old" '
            '{ addflag "\\\\Seen done"; discard; }',
        },
        headers=alice,
    )
    assert trial.status_code == 200, trial.text
    assert trial.json() == {
        "folders": [],
        "flags": ["\\Seen"],
        "labels": ["done"],
        "discarded": True,
        "redirects": [],
        "vacation": False,
        "notes": [],
    }
    away = 'require "vacation"; vacation "Away.";'
    answered = await email_client.post(
        "/api/rules/test", json={"message_id": delivered.id, "script": away}, headers=alice
    )
    assert answered.json()["vacation"] is True and answered.json()["notes"] == []
    [listed] = await deliver_local(
        email_app.state,
        raw=b"From: c@example.org\r\nTo: alice@vezeuniqverse.com\r\nList-Id: <l.example.org>\r\n"
        b"Subject: Digest\r\n\r\nx",
        envelope_from="c@example.org",
        recipients=[ALICE],
    )
    quiet = await email_client.post(
        "/api/rules/test", json={"message_id": listed.id, "script": away}, headers=alice
    )
    assert quiet.json()["notes"] == ["vacation: no reply (mailing list)"]
    active = await email_client.post(
        "/api/rules/test", json={"message_id": delivered.id}, headers=alice
    )
    assert active.json()["folders"] == ["INBOX"]
    invalid = await email_client.post(
        "/api/rules/test", json={"message_id": delivered.id, "script": "nope;"}, headers=alice
    )
    assert invalid.status_code == 422
    other = await email_client.post(
        "/api/rules/test", json={"message_id": delivered.id, "script": "keep;"}, headers=bob
    )
    assert other.status_code == 404
    async with email_app.state.engine.connect() as connection:
        folder, seen = (
            await connection.execute(
                select(Message.folder, Message.seen).where(Message.id == delivered.id)
            )
        ).one()
    assert (folder, seen) == ("INBOX", False)


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_migration_matches_the_sieve_models(
    email_app: FastAPI, email_client: httpx.AsyncClient
) -> None:
    async with email_app.state.engine.connect() as connection:
        differences = await connection.run_sync(_diff)
    # Only this migration's tables: other features' tables are checked by their own tests.
    mine = (SieveScript.__tablename__, VacationReply.__tablename__)
    ours = [item for item in differences if any(name in repr(item) for name in mine)]
    assert ours == []
