from __future__ import annotations

from collections.abc import Callable

import httpx

from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_provisioning_is_idempotent_and_leaves_a_welcome_mail(
    email_client: httpx.AsyncClient, admin_headers: dict[str, str], mint: Callable[..., str]
) -> None:
    first = await email_client.post(
        "/api/mailboxes", json={"address": ALICE, "display_name": "Alice"}, headers=admin_headers
    )
    second = await email_client.post(
        "/api/mailboxes", json={"address": "Alice@VEZEuniqverse.com"}, headers=admin_headers
    )
    assert (first.status_code, first.json()["created"]) == (201, True)
    assert (second.status_code, second.json()["created"]) == (200, False)

    listing = await email_client.get(
        "/api/messages", params={"user": ALICE}, headers=bearer(mint(ALICE))
    )
    assert listing.status_code == 200
    body = listing.json()
    assert body["user"] == ALICE
    assert len(body["messages"]) == 1
    welcome = body["messages"][0]
    assert welcome["subject"] == "Welcome to VEZE UniQVerse"
    assert welcome["unread"] is True
    assert welcome["date"].endswith(("Z", "+00:00"))  # an instant, on SQLite as on PostgreSQL
    assert set(welcome) == {
        "id",
        "subject",
        "from_",
        "date",
        "snippet",
        "labels",
        "flags",
        "size",
        "spam_score",
        "unread",
    }


async def test_read_star_and_labels_change_the_message(
    email_client: httpx.AsyncClient, admin_headers: dict[str, str], mint: Callable[..., str]
) -> None:
    await provision(email_client, admin_headers, ALICE)
    headers = bearer(mint(ALICE))
    message_id = (
        await email_client.get("/api/messages", params={"user": ALICE}, headers=headers)
    ).json()["messages"][0]["id"]

    read = await email_client.post(f"/api/messages/{message_id}/read", headers=headers)
    assert read.json()["unread"] is False and "\\Seen" in read.json()["flags"]
    unread = await email_client.post(
        f"/api/messages/{message_id}/read", json={"read": False}, headers=headers
    )
    assert unread.json()["unread"] is True
    star = await email_client.post(f"/api/messages/{message_id}/star", headers=headers)
    assert "\\Flagged" in star.json()["flags"]
    labels = await email_client.post(
        f"/api/messages/{message_id}/labels",
        json={"labels": ["work", " work ", "<b>x</b>"]},
        headers=headers,
    )
    assert labels.json()["labels"] == ["work", "<b>x</b>"]
    bad = await email_client.post(
        f"/api/messages/{message_id}/labels", json={"labels": [""]}, headers=headers
    )
    assert bad.status_code == 422

    row = await email_client.get(f"/api/messages/{message_id}/row", headers=headers)
    assert row.status_code == 200
    assert f'id="message-{message_id}"' in row.text
    assert "&lt;b&gt;x&lt;/b&gt;" in row.text and "<b>x</b>" not in row.text


async def test_a_user_cannot_reach_another_mailbox(
    email_client: httpx.AsyncClient, admin_headers: dict[str, str], mint: Callable[..., str]
) -> None:
    await provision(email_client, admin_headers, ALICE)
    await provision(email_client, admin_headers, BOB)
    bob = bearer(mint(BOB))
    alice_message = (
        await email_client.get("/api/messages", params={"user": ALICE}, headers=admin_headers)
    ).json()["messages"][0]["id"]

    listing = await email_client.get("/api/messages", params={"user": ALICE}, headers=bob)
    assert listing.status_code == 403
    assert listing.json()["error"] == "forbidden"
    for path in (f"/api/messages/{alice_message}/read", f"/api/messages/{alice_message}/star"):
        assert (await email_client.post(path, headers=bob)).status_code == 404
    assert (
        await email_client.get(f"/api/messages/{alice_message}/row", headers=bob)
    ).status_code == 404
    still_unread = (
        await email_client.get("/api/messages", params={"user": ALICE}, headers=admin_headers)
    ).json()["messages"][0]
    assert still_unread["unread"] is True


async def test_user_must_be_in_the_local_domain(
    email_client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    headers = bearer(mint(ALICE))
    for user in ("alice@example.com", "alice", "@vezeuniqverse.com"):
        response = await email_client.get("/api/messages", params={"user": user}, headers=headers)
        assert response.status_code == 400, user
        assert "vezeuniqverse.com" in response.json()["detail"]


async def test_search_limit_and_offset(
    email_client: httpx.AsyncClient, admin_headers: dict[str, str], mint: Callable[..., str]
) -> None:
    await provision(email_client, admin_headers, ALICE)
    headers = bearer(mint(ALICE))
    hit = await email_client.get(
        "/api/messages", params={"user": ALICE, "q": "welcome"}, headers=headers
    )
    miss = await email_client.get(
        "/api/messages", params={"user": ALICE, "q": "100%_nothing"}, headers=headers
    )
    past_end = await email_client.get(
        "/api/messages", params={"user": ALICE, "offset": 1}, headers=headers
    )
    too_many = await email_client.get(
        "/api/messages", params={"user": ALICE, "limit": 1000}, headers=headers
    )
    assert len(hit.json()["messages"]) == 1
    assert miss.json()["messages"] == []
    assert past_end.json()["messages"] == []
    assert too_many.status_code == 422


async def test_provisioning_needs_the_service_scope(
    email_client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    response = await email_client.post(
        "/api/mailboxes", json={"address": ALICE}, headers=bearer(mint(ALICE))
    )
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
