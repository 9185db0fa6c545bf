"""Sending a draft that is not the caller's answers 404 without spending their send budget.

The draft is looked up before the rate limit is counted; a retry with the same
Idempotency-Key is still answered before either (it finds the draft gone, as it was sent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.tests.compose_helpers import ALICE, BOB, CAROL, Running, Setup, compose_setup

LIMIT = 2


@pytest.fixture
async def setup(
    email_settings: EmailSettings,
    running: Running,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
) -> AsyncIterator[Setup]:
    async with compose_setup(
        email_settings, running, admin_headers, mint, send_rate_limit=LIMIT
    ) as made:
        yield made


async def _draft(setup: Setup, owner: str, subject: str) -> int:
    created = await setup.client.post(
        "/api/drafts", json={"to": [CAROL], "subject": subject}, headers=setup.auth(owner)
    )
    assert created.status_code == 201, created.text
    draft_id: int = created.json()["id"]
    return draft_id


async def test_unknown_and_foreign_drafts_do_not_spend_the_send_budget(setup: Setup) -> None:
    client = setup.client
    alices = await _draft(setup, ALICE, "alice's draft")
    bob = setup.auth(BOB)
    # More misses than the whole budget: another user's draft, an id nobody has, and one of
    # Bob's own messages that is not a draft.
    await client.post("/api/send", json={"to": [BOB], "subject": "not a draft"}, headers=bob)
    (not_a_draft,) = await setup.folder(BOB, "Sent")
    for draft_id in (alices, alices, 2**31 - 1, 2**31 - 1, not_a_draft["id"]):
        missed = await client.post(f"/api/drafts/{draft_id}/send", headers=bob)
        assert missed.status_code == 404, missed.text

    # Bob has spent one send of LIMIT: his own draft still goes out, then the limit holds.
    own = await _draft(setup, BOB, "bob's draft")
    sent = await client.post(
        f"/api/drafts/{own}/send", headers={**bob, "Idempotency-Key": "bob-draft-1"}
    )
    assert sent.status_code == 202, sent.text
    # A retry of that send is answered from its record: no 404 for the purged draft, no 429.
    again = await client.post(
        f"/api/drafts/{own}/send", headers={**bob, "Idempotency-Key": "bob-draft-1"}
    )
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == sent.json()
    third = await _draft(setup, BOB, "one too many")
    refused = await client.post(f"/api/drafts/{third}/send", headers=bob)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    # Over the limit, a miss is still its 404 (nothing to send, so nothing to refuse).
    assert (await client.post(f"/api/drafts/{alices}/send", headers=bob)).status_code == 404

    # Alice's own budget was never touched by Bob's tries at her draft.
    assert (
        await client.post(f"/api/drafts/{alices}/send", headers=setup.auth(ALICE))
    ).status_code == 202
    subjects = sorted(item["subject"] for item in await setup.folder(CAROL, "INBOX"))
    assert subjects == ["alice's draft", "bob's draft"]
