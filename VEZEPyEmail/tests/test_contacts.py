"""Address autocompletion from the caller's own mail."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.tests.compose_helpers import ALICE, BOB, Running
from VEZEPyEmail.tests.conftest import provision


def mail(sender: str, to: str, cc: str = "", number: int = 0) -> bytes:
    cc_line = f"Cc: {cc}\r\n" if cc else ""
    return (
        f"From: {sender}\r\nTo: {to}\r\n{cc_line}Subject: n{number}\r\n"
        f"Message-ID: <c{number}@example.org>\r\n\r\nbody\r\n"
    ).encode()


async def test_suggestions_come_from_own_mail_by_prefix(
    email_app: FastAPI,
    running: Running,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
) -> None:
    async with running(email_app) as client:
        for address in (ALICE, BOB):
            await provision(client, admin_headers, address)
        messages = [
            mail("Robert Roe <robert@example.org>", ALICE, "rita@example.org"),
            mail("Robert Roe <robert@example.org>", ALICE),
            mail("Zed <zed@example.org>", f"{ALICE}, Rob Other <rob@other.example>"),
            mail("Only Bob's <secret@example.org>", BOB),
        ]
        for number, raw in enumerate(messages):
            await deliver_local(
                email_app.state,
                raw=raw.replace(b"<c0@", f"<c{number}x@".encode()),
                envelope_from="x@example.org",
                recipients=[BOB if b"secret" in raw else ALICE],
            )
        await deliver_local(
            email_app.state,
            raw=mail("Spammy <rogue@spam.example>", ALICE, number=9),
            envelope_from="x@example.org",
            recipients=[ALICE],
            folder="Junk",
        )
        alice = {"Authorization": f"Bearer {mint(ALICE)}"}

        async def suggest(**params: str | int) -> list[dict[str, object]]:
            response = await client.get("/api/contacts", params=params, headers=alice)
            assert response.status_code == 200, response.text
            contacts: list[dict[str, object]] = response.json()["contacts"]
            return contacts

        found = await suggest(q="ro")
        assert [item["address"] for item in found] == ["robert@example.org", "rob@other.example"]
        assert found[0]["name"] == "Robert Roe" and found[0]["count"] == 2
        by_name = await suggest(q="ROE")  # a word of the name, any case
        assert [item["address"] for item in by_name] == ["robert@example.org"]
        assert await suggest(q="secret") == []  # Bob's mail is not Alice's
        assert await suggest(q="rogue") == []  # nor is Junk a source of contacts
        assert await suggest(q="alice") == []  # never oneself
        assert len(await suggest(limit=1)) == 1
        everyone = {item["address"] for item in await suggest()}
        assert everyone == {
            "robert@example.org",
            "rita@example.org",
            "zed@example.org",
            "rob@other.example",
            "welcome@vezeuniqverse.com",  # the welcome mail's sender
        }
        too_long = await client.get("/api/contacts", params={"q": "x" * 101}, headers=alice)
        assert too_long.status_code == 422
        anonymous = await client.get("/api/contacts", params={"q": "ro"})
        assert anonymous.status_code == 401
