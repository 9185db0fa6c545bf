"""The Sieve subset without a database: compiling (and refusing), evaluating, vacation rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from VEZEPyEmail.services.sieve import nodes
from VEZEPyEmail.services.sieve.cache import ProgramCache
from VEZEPyEmail.services.sieve.compiler import MAX_SCRIPT_BYTES, SieveError, compile_script
from VEZEPyEmail.services.sieve.delivery import without_return_path
from VEZEPyEmail.services.sieve.evaluate import MAX_REDIRECTS, MessageView, Outcome, evaluate
from VEZEPyEmail.services.sieve.matching import Budget, BudgetExceeded, wildcard_match
from VEZEPyEmail.services.sieve.vacation import build_reply, handle_of, refusal

ALICE = "alice@vezeuniqverse.com"
REQUIRE = 'require ["fileinto", "imap4flags", "vacation"];\n'
MESSAGE = (
    b"From: Carol Example <Carol@Example.org>\r\n"
    b"To: Alice <alice@vezeuniqverse.com>, dave@example.net\r\n"
    b"Subject: =?utf-8?q?Your_Invoice_=E2=82=AC12?=\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"X-Empty:\r\n"
    b"\r\n"
    b"Body text.\r\n"
)


def run(script: str, raw: bytes = MESSAGE, folder: str = "INBOX") -> Outcome:
    return evaluate(
        compile_script(REQUIRE + script), MessageView.from_bytes(raw), default_folder=folder
    )


def test_issue_rule_files_into_archive_and_flags() -> None:
    outcome = run(
        'if header :contains "subject" "invoice" { fileinto "Archive"; addflag "\\\\Flagged"; }'
    )
    assert outcome.folders == ["Archive"]
    assert outcome.flags == ["\\Flagged"] and not outcome.discarded


def test_no_match_means_implicit_keep_in_the_default_folder() -> None:
    assert run('if header :is "subject" "invoice" { fileinto "Archive"; }').folders == ["INBOX"]
    assert run("keep;", folder="Junk").folders == ["Junk"]
    assert run('fileinto "INBOX";', folder="Junk").folders == ["INBOX"]


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ('header :is "subject" "your invoice €12"', True),  # RFC 2047 decoded, ASCII-folded
        ('header :comparator "i;octet" :is "subject" "your invoice €12"', False),
        ('header :matches "subject" "Your * €??"', True),
        ('header :matches "subject" "Your*"', True),
        ('header :matches "subject" "*invoice"', False),
        ('header :matches "subject" "Your \\\\* €12"', False),  # an escaped star is literal
        ('header :contains ["x-nothing", "subject"] ["zzz", "INVOICE"]', True),
        ('address :is "from" "carol@example.org"', True),
        ('address :localpart :is "from" "carol"', True),
        ('address :domain :is "to" "example.net"', True),
        ('address :domain :contains "to" "vezeuniq"', True),
        ('address :domain :matches "from" "*.org"', True),
        ('address :all :is "to" "alice"', False),
        ('exists ["from", "x-empty"]', True),
        ('exists ["from", "x-missing"]', False),
        ("size :over 100", True),
        ("size :under 1K", True),
        ("size :over 1M", False),
        ('allof (true, header :contains "subject" "invoice")', True),
        ("allof (true, false)", False),
        ("anyof (false, not false)", True),
        ('not exists "subject"', False),
    ],
)
def test_tests(test: str, expected: bool) -> None:
    outcome = run(f'if {test} {{ fileinto "Hit"; }}')
    assert (outcome.folders == ["Hit"]) is expected, outcome


def test_elsif_else_and_stop() -> None:
    script = (
        'if header :is "subject" "nope" { fileinto "A"; }\n'
        'elsif address :domain :is "from" "example.org" { fileinto "B"; stop; }\n'
        'else { fileinto "C"; }\n'
        'fileinto "D";\n'
    )
    assert run(script).folders == ["B"]


def test_discard_redirect_vacation_and_flags_collect() -> None:
    outcome = run(
        'addflag ["\\\\Seen work", "urgent"]; redirect "Bob@Example.org"; '
        'redirect "bob@example.org"; vacation :days 3 :subject "Away" "Back soon."; discard;'
    )
    assert outcome.folders == [] and outcome.discarded
    assert outcome.redirects == ["bob@example.org"]  # the same address once
    assert outcome.flags == ["\\Seen", "work", "urgent"] and outcome.labels == ["work", "urgent"]
    assert outcome.vacation == nodes.Vacation("Back soon.", 3, "Away", ())


def test_redirects_are_bounded() -> None:
    script = "".join(f'redirect "u{index}@example.org";' for index in range(MAX_REDIRECTS + 3))
    outcome = run(script)
    assert len(outcome.redirects) == MAX_REDIRECTS
    assert len(outcome.notes) == 3 and "skipped" in outcome.notes[0]


def test_multiline_vacation_text() -> None:
    outcome = run("vacation :days 2 text:\nI am away.\n..dotted\n.\n;")
    assert outcome.vacation is not None
    assert outcome.vacation.reason == "I am away.\n.dotted"


@pytest.mark.parametrize(
    ("script", "line", "words"),
    [
        ("keep", 1, 'without ";"'),
        ('require "reject";\nreject "no";', 1, "'reject' extension is not supported"),
        ('require "fileinto";\n\nfileinto :flags "x" "A";', 3, "imap4flags"),
        ('require ["fileinto", "imap4flags"];\nfileinto :flags "x" "A";', 2, ":flags"),
        ('if header :regex "a" "b" { keep; }', 1, "regex"),
        ('require "imap4flags";\nkeep;\naddflag "\\\\Deleted";', 3, "\\Deleted"),
        ('require "imap4flags";\naddflag "a(b";', 2, "keyword"),
        ('\nredirect "not an address";', 2, "redirect"),
        ('if address "subject" "x" { keep; }', 1, "holds no addresses"),
        ('require "vacation";\nvacation :from "a@example.org" "x";', 2, ":from"),
        ('require "vacation";\nvacation :days 90 "x";', 2, ":days"),
        ('if true { keep; }\nrequire "fileinto";', 2, "require must come before"),
        ('require "fileinto";\nfileinto "a//b";', 2, "folder name"),
        ("else { keep; }", 1, "must follow"),
        ('if header "bad name" "x" { keep; }', 1, "not a header field name"),
        ("if foo { keep; }", 1, "unknown command"),
        ("keep; # \ud800", None, "not valid Unicode"),
        ('require "envelope";\nif envelope "from" "x" { keep; }', 1, "'envelope' extension"),
    ],
)
def test_unsupported_or_invalid_scripts_are_refused_with_a_line(
    script: str, line: int | None, words: str
) -> None:
    with pytest.raises(SieveError) as caught:
        compile_script(script)
    assert caught.value.line == line, str(caught.value)
    assert words in str(caught.value)
    if line is not None:
        assert str(caught.value).startswith(f"line {line}: ")


def test_size_and_depth_are_bounded() -> None:
    with pytest.raises(SieveError, match="larger than 64 KB"):
        compile_script("# " + "x" * MAX_SCRIPT_BYTES + "\nkeep;")
    deep = "if true { " * 40 + "keep;" + " }" * 40
    with pytest.raises(SieveError, match="nested deeper"):
        compile_script(deep)


def test_wildcards_stay_linear_on_hostile_input_and_the_budget_stops_work() -> None:
    value = "a" * 5000
    assert not wildcard_match(value, "*a*a*a*a*a*a*b", Budget(10**9))
    assert wildcard_match("abc", "a?c", Budget(10)) and wildcard_match("", "*", Budget(10))
    slow = "*" + "a" * 50 + "b"  # O(len(value) x len(pattern)) steps: charged to the budget
    with pytest.raises(BudgetExceeded):
        wildcard_match(value, slow, Budget(10_000))
    hostile = MESSAGE.replace(b"X-Empty:", b"X-Long: " + b"a" * 9000 + b"\r\nX-Empty:", 1)
    keys = ", ".join([f'"{slow}"'] * 200)
    program = compile_script(f'if header :matches "x-long" [{keys}] {{ discard; }}')
    with pytest.raises(BudgetExceeded):
        evaluate(program, MessageView.from_bytes(hostile), budget=200_000)


def test_hostile_headers_never_raise() -> None:
    view = MessageView.from_bytes(b"\xff\xfe: \x00\r\nSubject: =?bogus?q?x?=\r\n\r\n")
    outcome = evaluate(compile_script('if header :contains "subject" "x" { discard; }'), view)
    assert outcome.discarded or outcome.folders == ["INBOX"]


VACATION = nodes.Vacation("Away.", 7, None, ("alice@other.example",))


@pytest.mark.parametrize(
    ("extra", "sender", "why"),
    [
        (b"", "carol@example.org", None),
        (b"", "", "null sender"),
        (b"", ALICE, "the sender is the user"),
        (b"", "mailer-daemon@example.org", "automatic sender"),
        (b"", "list-request@example.org", "automatic sender"),
        (b"Auto-Submitted: auto-replied\r\n", "carol@example.org", "auto-submitted message"),
        (b"Auto-Submitted: no\r\n", "carol@example.org", None),
        (b"Precedence: bulk\r\n", "carol@example.org", "bulk precedence"),
        (b"List-Id: <news.example.org>\r\n", "carol@example.org", "mailing list"),
    ],
)
def test_vacation_refusals(extra: bytes, sender: str, why: str | None) -> None:
    view = MessageView.from_bytes(extra + MESSAGE)
    assert refusal(view, sender=sender, user=ALICE, action=VACATION, junk=False) == why


def test_vacation_needs_the_user_among_the_recipients_and_no_junk() -> None:
    bcc = MessageView.from_bytes(MESSAGE.replace(b"Alice <alice@vezeuniqverse.com>, ", b""))
    assert refusal(bcc, sender="c@example.org", user=ALICE, action=VACATION, junk=False) == (
        "not addressed to the user"
    )
    alternate = MessageView.from_bytes(
        MESSAGE.replace(b"alice@vezeuniqverse.com", b"alice@other.example")
    )
    assert (
        refusal(alternate, sender="c@example.org", user=ALICE, action=VACATION, junk=False) is None
    )
    view = MessageView.from_bytes(MESSAGE)
    assert (
        refusal(view, sender="c@example.org", user=ALICE, action=VACATION, junk=True) == "junk mail"
    )


def test_vacation_reply_is_marked_and_threaded() -> None:
    reply = build_reply(
        MessageView.from_bytes(MESSAGE),
        action=VACATION,
        user=ALICE,
        sender="carol@example.org",
        hostname="mail.vezeuniqverse.com",
    )
    head = reply.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nAuto-Submitted: auto-replied\r\n" in head
    assert b"\r\nIn-Reply-To: <m1@example.org>\r\n" in head
    assert b"Subject: Auto: Your Invoice" in head and b"To: carol@example.org" in head
    assert reply.rstrip().endswith(b"Away.")
    assert handle_of(VACATION) != handle_of(nodes.Vacation("Other text.", 7, None, ()))


def test_return_path_is_dropped_before_sending_on() -> None:
    stored = b"Return-Path: <a@example.org>\r\nReceived: x\r\n\r\nbody"
    assert without_return_path(stored) == b"Received: x\r\n\r\nbody"
    folded = b"Return-Path:\r\n <a@example.org>\r\nX: y\r\n\r\n"
    assert without_return_path(folded) == b"X: y\r\n\r\n"
    assert without_return_path(b"X: y\r\n\r\n") == b"X: y\r\n\r\n"


async def test_compiled_programs_are_cached_by_content_and_bounded() -> None:
    cache = ProgramCache(max_entries=2)
    first = await cache.compile("keep;")
    assert await cache.compile("keep;") is first  # no second parse
    with pytest.raises(SieveError):
        await cache.compile("nope;")
    with pytest.raises(SieveError):
        await cache.compile("nope;")  # the error is remembered too
    await cache.compile("discard;")
    assert len(cache) == 2
    assert await cache.compile("keep;") is not first  # evicted as least recently used


TOKENS = (
    'require ["fileinto", "imap4flags", "vacation"];',
    "if", "elsif", "else", "{", "}", "(", ")", "[", "]", ",", ";", "header", "address",
    ":is", ":contains", ":matches", ":domain", ":comparator", '"i;octet"', "exists", "size",
    ":over", "10K", "allof", "anyof", "not", "true", "false", "keep", "discard", "stop",
    "fileinto", "redirect", "addflag", "vacation", ":days", "3", '"subject"', '"a@example.org"',
    '"\\\\Seen"', "text:\nhi\n.\n", "#c\n", "reject", ":copy", "envelope", '"x', "\ud800", "é",
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30), st.binary(max_size=300))
def test_any_script_and_message_give_a_program_or_a_clear_error(
    tokens: list[str], head: bytes
) -> None:
    try:
        program = compile_script(" ".join(tokens))
    except SieveError:
        return  # a clear refusal; any other exception type fails the test
    outcome = evaluate(program, MessageView.from_bytes(head + b"\r\n\r\nbody"))
    assert outcome.folders or outcome.discarded or outcome.redirects
