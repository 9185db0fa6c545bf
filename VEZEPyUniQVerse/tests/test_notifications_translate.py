"""Which service events become header notifications, and how they read."""

from __future__ import annotations

import httpx

from VEZEPyUniQVerse.services.notifications import translate
from VEZEPyUniQVerse.services.notifications.sse import SseEvent, read_events

INBOX = "http://mail.test/ui/inbox"
MATCHES = "http://game.test/ui/matches/"


def test_only_new_inbox_mail_is_news() -> None:
    new = {"type": "message.created", "folder": "INBOX", "subject": "Hi", "from": "a@b.c"}
    note = translate.mail_notification(new, inbox_url=INBOX)
    assert note is not None
    assert (note.kind, note.title, note.text, note.link) == (
        "mail.new",
        "New mail from a@b.c",
        "Hi",
        INBOX,
    )
    for skipped in (
        {**new, "folder": "Sent"},
        {**new, "folder": "Drafts"},
        {**new, "folder": "Junk"},
        {**new, "type": "message.updated"},
    ):
        assert translate.mail_notification(skipped, inbox_url=INBOX) is None
    long = translate.mail_notification({**new, "subject": "x" * 5000}, inbox_url=INBOX)
    assert long is not None and len(long.text) == translate.SUBJECT_CHARS


def test_match_found_and_results_read_as_the_person_sees_them() -> None:
    found = translate.match_found(
        {"type": "match.found", "match_id": "m1", "mode": "ranked"}, match_url=MATCHES
    )
    assert found is not None
    assert (found.title, found.text, found.link) == (
        "Match found",
        "Your ranked match is ready.",
        MATCHES + "m1",
    )
    assert translate.match_found({"type": "match.found"}, match_url=MATCHES) is None
    won = translate.match_result("m1", "win", "bob", match_url=MATCHES)
    assert (won.kind, won.text) == ("match.result", "You won against bob.")
    assert translate.match_result("m2", None, None, match_url=None).text == "The match is over."


async def test_sse_reader_dispatches_on_blank_lines_and_skips_comments() -> None:
    body = (
        b": heartbeat\r\n\r\nevent: ready\r\ndata: {}\r\n\r\n"
        b"data: one\r\ndata: two\r\n\r\nevent: partial\r\n"
    )
    response = httpx.Response(200, content=body)
    events = [event async for event in read_events(response)]
    assert events == [SseEvent("ready", "{}"), SseEvent("message", "one\ntwo")]
