"""Fuzzing the MIME path: what ingest (mime.summarise), the reader (detail_of, attachment) and
the Sieve tests (MessageView) do with any bytes.

Properties: nothing raises but the documented NotFound for a missing attachment; every field
stays within its bound and is storable (no NUL, valid UTF-8); and hostile structure (huge
or many headers, deep nesting, many parts, pathological quoting, nested HTML) costs bounded
time. Before the bounds in mime.py several of the inputs below took minutes each.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from VEZEPyCore.errors import NotFound
from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.services.messages import detail, mime
from VEZEPyEmail.services.sieve.evaluate import MessageView
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
#: Generous: the machine is shared. The inputs below took 15 s to many minutes unbounded.
HANG_SECONDS = 10.0

ROW = {
    "id": 1,
    "folder": "INBOX",
    "subject": "s",
    "from_addr": "a@example.org",
    "to_addrs": "",
    "cc_addrs": "",
    "date": datetime(2026, 1, 1, tzinfo=UTC),
    "received_at": datetime(2026, 1, 1, tzinfo=UTC),
    "message_id_header": None,
    "in_reply_to": None,
    "references_header": "",
    "thread_id": None,
    "flagged": False,
    "answered": False,
    "seen": False,
    "draft": False,
    "labels": [],
    "size": 1,
    "spam_score": 0.0,
    "body_text": "",
    "deleted": False,
}

# -- generated messages ----------------------------------------------------------------------

_HEADER_NAMES = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Content-Type",
    "Content-Disposition",
    "Content-Transfer-Encoding",
    "MIME-Version",
    "X-Anything",
]
#: Pieces the structured header parsers treat specially, repeated to stress them.
_HEADER_PIECES = [
    "=?utf-8?q?caf=C3=A9?=",
    "=?utf-8?b?w6k=?=",
    "=?x-unknown?q?a?=",
    "=?utf-8?q?=FF?=",
    "=?",
    '"quoted \\" string"',
    "(comment (nested))",
    "(",
    ")",
    "<a@b.example>",
    "<",
    ">",
    "@",
    ",",
    ";",
    ":",
    "a=b",
    "name*0*=utf-8''%E6%97%A5",
    "boundary=x",
    "multipart/mixed",
    "text/html",
    "base64",
    "\\",
    " ",
    "\t",
    "\r\n ",
    "é",
    "\x00",
    "\udcff",
]
header_values = st.lists(st.sampled_from(_HEADER_PIECES), max_size=30).map("".join)
headers = st.lists(st.tuples(st.sampled_from(_HEADER_NAMES), header_values), max_size=12)
_BODY_PIECES = [
    "hello",
    "\r\n",
    "\n",
    "\r",
    ".",
    "--b0",
    "--b0--",
    "--b1",
    "=",
    "=\r\n",
    "=FF",
    "QUJD",
    "!!",
    "<div>",
    "<p>",
    "</p>",
    "<script>x</script>",
    '<img src="//x">',
    "<",
    "&amp;",
    "é",
    "\x00",
]
bodies = st.lists(st.sampled_from(_BODY_PIECES), max_size=60).map("".join)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@st.composite
def messages(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A message: random headers, then a leaf body or a multipart of sub-messages."""
    head = b"".join(_encode(f"{name}: {value}\r\n") for name, value in draw(headers))
    if depth < 3 and draw(st.booleans()):
        boundary = f"b{depth}"
        parts = draw(st.lists(messages(depth + 1), max_size=4))
        closing = draw(st.sampled_from(["--\r\n", "\r\n", ""]))  # sometimes never closed
        body = b"".join(_encode(f"--{boundary}\r\n") + part + b"\r\n" for part in parts)
        return (
            head
            + _encode(f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n")
            + body
            + _encode(f"--{boundary}{closing}")
        )
    separator = draw(st.sampled_from([b"\r\n", b"\n", b""]))
    return head + separator + _encode(draw(bodies))


any_message = st.one_of(messages(), st.binary(max_size=2000))


def _storable(text: str) -> None:
    assert "\x00" not in text
    text.encode("utf-8")  # no lone surrogates: PostgreSQL text and JSON both need UTF-8


def check_summary(raw: bytes) -> None:
    summary = mime.summarise(raw)
    for value in (summary.subject, summary.from_addr, summary.to_addrs, summary.snippet):
        _storable(value)
    _storable(summary.body_text)
    assert len(summary.subject) <= mime.MAX_HEADER_FIELD
    assert len(summary.from_addr) <= mime.MAX_HEADER_FIELD
    assert len(summary.snippet) <= mime.MAX_SNIPPET
    assert len(summary.body_text) <= mime.MAX_BODY_TEXT
    assert len(summary.to_addrs) <= mime.MAX_ADDRESS_LIST


def check_reader(raw: bytes) -> None:
    owned = detail.OwnedMessage(ROW, ALICE)  # type: ignore[arg-type]
    read = detail.detail_of(owned, raw)
    assert "<script" not in read.html.lower()
    assert len(read.headers) <= mime.MAX_HEADERS_LISTED
    for index in range(len(read.attachments) + 1):
        try:
            item = detail.attachment(raw, index)
        except NotFound:
            assert index == len(read.attachments)
            continue
        assert "/" not in item.filename and "\\" not in item.filename
    view = MessageView.from_bytes(raw)
    assert view.size == len(raw)


@settings(
    max_examples=100,
    deadline=None,  # the machine is shared; the hang cases below have their own bound
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(any_message)
def test_any_message_is_summarised_and_read_without_error(raw: bytes) -> None:
    check_summary(raw)
    check_reader(raw)


# -- inputs built to make the parsers blow up --------------------------------------------------


def _nested(depth: int, filler: bytes = b"hi") -> bytes:
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return b"From: a@b.example\r\n" + head + b"Content-Type: text/plain\r\n\r\n" + filler + tail


def _many_parts(count: int, extra: bytes = b"") -> bytes:
    part = b"--B\r\nContent-Type: text/plain; name=f.txt" + extra + b"\r\n\r\nx\r\n"
    return b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + part * count + b"--B--\r\n"


PATHOLOGICAL: dict[str, bytes] = {
    # Structured header parsing is quadratic (and recursive in comments).
    "many encoded words": b"Subject: " + b"=?utf-8?q?a?= " * 40_000 + b"\r\n\r\nb",
    "many addresses": b"To: "
    + b", ".join(b"u%d@x.example" % i for i in range(40_000))
    + b"\r\n\r\n",
    "nested comments": b"From: " + b"(" * 50_000 + b"\r\n\r\nb",
    "quoted backslashes": b"To: " + b'"\\' * 100_000 + b"\r\n\r\nb",
    "folded a million times": b"Subject: " + b"a\r\n " * 150_000 + b"\r\n\r\nb",
    "content-type parameters": b"Content-Type: text/plain; " + b"a=b; " * 40_000 + b"\r\n\r\nb",
    "rfc 2231 continuations": b"Content-Type: text/plain; "
    + b"".join(b"name*%d*=utf-8''a%%41; " % i for i in range(20_000))
    + b"\r\n\r\nb",
    "many headers": b"".join(b"X-H%d: v\r\n" % i for i in range(60_000)) + b"\r\nbody",
    # MIME structure: the parser checks every line against every open boundary.
    "deep nesting": _nested(3_000),
    "deep nesting, many lines": _nested(200, b"\r\n" * 200_000),
    "message/rfc822 in itself": b"Content-Type: message/rfc822\r\n\r\n" * 5_000 + b"x",
    "many parts": _many_parts(20_000),
    "many parts, heavy headers": _many_parts(2_000, b"; a=b" * 150),
    "short lines": b"Subject: x\r\n\r\n" + b"\n" * 3_000_000,
    # html5ever is worse than quadratic in nesting.
    "nested html": b"Content-Type: text/html\r\n\r\n" + b"<ul><li><div>" * 30_000,
    "html tags without end": b"Content-Type: text/html\r\n\r\n" + b"<a" * 300_000,
    "unterminated boundaries": b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
    + b"--B\r\n" * 100_000,
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_input_is_handled_in_bounded_time(name: str) -> None:
    raw = PATHOLOGICAL[name]
    for step in (check_summary, check_reader):
        started = time.perf_counter()
        step(raw)
        elapsed = time.perf_counter() - started
        assert elapsed < HANG_SECONDS, f"{name}: {step.__name__} took {elapsed:.1f} s"


def test_bounded_parse_keeps_ordinary_mail_intact() -> None:
    """The bounds only bite on hostile input: ordinary long headers and parts still read."""
    to = ", ".join(f"Person {i} <p{i}@example.org>" for i in range(60))  # ~2 KB: legacy path
    raw = (
        f"From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\nTo: {to}\r\n"
        "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n--B\r\n"
        'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="a.pdf"\r\n'
        "\r\n%PDF\r\n--B--\r\n"
    ).encode()
    summary = mime.summarise(raw)
    assert summary.subject == "Grüße"
    assert summary.from_addr == "Jörg <j@example.org>"
    assert summary.to_addrs.split(", ")[59] == "p59@example.org"
    assert summary.body_text.strip() == "Hallo" and summary.has_attachments
    assert detail.attachment(raw, 0).filename == "a.pdf"
    assert MessageView.from_bytes(raw).values("subject") == ("Grüße",)


def test_mime_structure_over_the_limits_is_read_as_one_text_body() -> None:
    summary = mime.summarise(b"Subject: deep\r\n" + _nested(mime.MAX_MIME_DEPTH + 5)[20:])
    assert summary.subject == "deep"
    assert "--b0" in summary.body_text  # the structure, shown as text rather than parsed
    assert not mime.split_parts(mime.parse_bytes(_many_parts(mime.MAX_PARTS + 1))).attachments
    assert len(mime.split_parts(mime.parse_bytes(_many_parts(10))).attachments) == 10


def test_html_too_deep_for_the_parser_is_shown_as_text() -> None:
    assert mime.html_is_tractable("<div>" * 50 + "<p>" * 5_000 + "<br>" * 5_000)
    deep = "<div>" * (mime.MAX_HTML_DEPTH + 1) + "secret words"
    assert not mime.html_is_tractable(deep)
    assert detail.sanitise_html(deep) == ("", False)
    assert mime.html_to_text(deep).strip() == "secret words"


# -- through the API: stored hostile messages read back without a 500 ------------------------


@pytest.fixture
async def stored(
    email_app: FastAPI,
    admin_headers: dict[str, str],
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
    mint: Callable[..., str],
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], list[int]]]:
    async with running(email_app) as client:
        await provision(client, admin_headers, ALICE)
        ids = []
        for name in ("many encoded words", "deep nesting", "many parts", "nested html"):
            (delivered,) = await deliver_local(
                email_app.state,
                raw=b"Subject: " + name.encode() + b"\r\n" + PATHOLOGICAL[name],
                envelope_from="m@example.org",
                recipients=[ALICE],
            )
            ids.append(delivered.id)
        yield client, {"Authorization": f"Bearer {mint(ALICE)}"}, ids


async def test_hostile_messages_are_stored_listed_and_read_over_the_api(
    stored: tuple[httpx.AsyncClient, dict[str, str], list[int]],
) -> None:
    client, user, ids = stored
    listed = await client.get("/api/messages", params={"user": ALICE, "limit": 50}, headers=user)
    assert listed.status_code == 200, listed.text
    assert {m["id"] for m in listed.json()["messages"]} >= set(ids)
    for message_id in ids:
        for path in (f"/api/messages/{message_id}", f"/api/messages/{message_id}/raw"):
            response = await client.get(path, headers=user)
            assert response.status_code == 200, (path, response.text[:200])
        missing = await client.get(f"/api/messages/{message_id}/attachments/9999", headers=user)
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
