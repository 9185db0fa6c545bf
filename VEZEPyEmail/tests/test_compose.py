"""Message building and reply/forward conventions, without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from VEZEPyEmail.services.compose import quoting
from VEZEPyEmail.services.compose.addresses import parse_recipient
from VEZEPyEmail.services.compose.build import (
    MAX_REFERENCES,
    AttachmentData,
    Composition,
    build_message,
    new_message_id,
    render,
)
from VEZEPyEmail.services.compose.errors import ComposeInvalid

WHEN = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)


def person(entry: str) -> object:
    return parse_recipient(entry, "to", test_domains=True)


def built(composition: Composition, **options: object) -> EmailMessage:
    raw = render(build_message(composition, date=WHEN, **options))  # type: ignore[arg-type]
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize(
    "entry",
    [
        "bob",
        "bob@",
        "a@b@c.com",
        "Bob <bob@example.com",
        "bob@example.com, eve@example.com",
        "group: bob@example.com;",
        "bob@[127.0.0.1]",
        '"quoted local"@example.com',
        "jürgen@example.com",  # would need SMTPUTF8
        "bob@example.com\r\nBcc: eve@example.com",
        "x" * 401,
    ],
)
def test_bad_addresses_are_refused_naming_the_field(entry: str) -> None:
    with pytest.raises(ComposeInvalid) as caught:
        parse_recipient(entry, "cc[3]")
    assert caught.value.field == "cc[3]" and caught.value.status_code == 422


def test_good_addresses_are_normalised() -> None:
    bob = parse_recipient('"Smith, Bob" <Bob@Example.COM>', "to")
    assert bob.address == "Bob@example.com" and bob.display_name == "Smith, Bob"
    idn = parse_recipient("Anna <anna@bücher.example>", "to")
    assert idn.address == "anna@xn--bcher-kva.example"
    with pytest.raises(ComposeInvalid):
        parse_recipient("someone@mail.test", "to")  # special-use names outside tests
    assert parse_recipient("someone@mail.test", "to", test_domains=True).address


def test_message_structure_headers_and_threading() -> None:
    sender = parse_recipient("Alice Ä <alice@vezeuniqverse.com>", "from")
    chain = [f"<r{i}@example.org>" for i in range(30)]
    composition = Composition(
        sender=sender,
        to=[parse_recipient("bob@example.org", "to")],
        cc=[parse_recipient("Carol <carol@example.org>", "cc")],
        bcc=[parse_recipient("eve@example.org", "bcc")],
        subject="Grüße\r\nBcc: injected@example.org",
        text="line one\r\nline two\n",
        html="<p onclick=x()>hi</p><script>bad()</script>",
        attachments=[AttachmentData("résumé.pdf", "application/pdf", b"%PDF\x00\xff")],
        in_reply_to="<parent@example.org>",
        references=chain,
    )
    message_id = new_message_id("VEZEUniQVerse.com")
    assert message_id.endswith("@vezeuniqverse.com>")
    sent = built(composition, message_id=message_id)
    assert sent["Bcc"] is None and "eve@example.org" not in sent.as_string()
    assert sent["Subject"] == "Grüße Bcc: injected@example.org"  # one line, no new header
    assert sent["From"].addresses[0].addr_spec == "alice@vezeuniqverse.com"
    assert sent["Message-ID"] == message_id and sent["Date"].datetime == WHEN
    assert sent["In-Reply-To"] == "<parent@example.org>"
    references = sent["References"].split()
    assert len(references) == MAX_REFERENCES
    assert references[0] == chain[0] and references[-1] == "<parent@example.org>"
    assert sent.get_content_type() == "multipart/mixed"
    alternative, attachment = sent.iter_parts()
    plain, html = alternative.iter_parts()
    assert plain.get_content().splitlines() == ["line one", "line two"]
    assert "onclick" not in html.get_content() and "script" not in html.get_content()
    assert attachment.get_filename() == "résumé.pdf"
    assert attachment.get_content() == b"%PDF\x00\xff"
    assert attachment.get_content_disposition() == "attachment"

    draft = built(composition, message_id=None, include_bcc=True)
    assert draft["Message-ID"] is None and "eve@example.org" in str(draft["Bcc"])


def test_plain_text_only_is_a_single_part() -> None:
    sender = parse_recipient("alice@vezeuniqverse.com", "from")
    message = built(Composition(sender=sender, subject="x", text="hello"), message_id=None)
    assert message.get_content_type() == "text/plain" and not message.is_multipart()


def test_html_only_gets_a_plain_part_too() -> None:
    sender = parse_recipient("alice@vezeuniqverse.com", "from")
    message = built(
        Composition(sender=sender, html="<p>Hello <b>there</b> &amp; bye</p>"), message_id=None
    )
    plain, html = message.iter_parts()
    assert plain.get_content().strip() == "Hello there & bye"
    assert "<b>there</b>" in html.get_content()


@pytest.mark.parametrize(
    ("subject", "reply", "forward"),
    [
        ("Lunch", "Re: Lunch", "Fwd: Lunch"),
        ("Re: Lunch", "Re: Lunch", "Fwd: Re: Lunch"),
        ("RE: re:  Lunch", "Re: Lunch", "Fwd: RE: re:  Lunch"),
        ("AW: Lunch", "Re: Lunch", "Fwd: AW: Lunch"),
        ("Fwd: FW: Lunch", "Re: Fwd: FW: Lunch", "Fwd: Lunch"),
        ("", "Re: ", "Fwd: "),
    ],
)
def test_subject_prefixes_never_stack(subject: str, reply: str, forward: str) -> None:
    assert quoting.reply_subject(subject) == reply
    assert quoting.forward_subject(subject) == forward


def test_quoting() -> None:
    text = quoting.reply_text(
        date=WHEN, sender="Bob <bob@example.org>", original_text="Hi\n\n> old\nbye\n\n"
    )
    assert text == (
        "\n\nOn Fri, 27 Nov 2026 05:00:00 +0000, Bob <bob@example.org> wrote:\n"
        "> Hi\n>\n>> old\n> bye\n"
    )


def test_reply_recipients() -> None:
    own = "me@vezeuniqverse.com"
    me = parse_recipient(own, "x")
    bob = parse_recipient("Bob <bob@example.org>", "x")
    carol = parse_recipient("carol@example.org", "x")
    list_addr = parse_recipient("list@example.org", "x")
    to, cc = quoting.reply_recipients(
        own=own, sender=[bob], reply_to=[], to=[me, carol], cc=[bob, me], reply_all=False
    )
    assert to == [bob] and cc == []
    to, cc = quoting.reply_recipients(
        own=own, sender=[bob], reply_to=[], to=[me, carol, carol], cc=[bob, me], reply_all=True
    )
    assert to == [bob, carol] and cc == []  # never oneself, never twice
    to, _ = quoting.reply_recipients(
        own=own, sender=[bob], reply_to=[list_addr], to=[me], cc=[], reply_all=False
    )
    assert to == [list_addr]  # Reply-To wins
    to, cc = quoting.reply_recipients(
        own=own, sender=[me], reply_to=[], to=[bob], cc=[carol], reply_all=True
    )
    assert to == [bob] and cc == [carol]  # answering one's own sent message
