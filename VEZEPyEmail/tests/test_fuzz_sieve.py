"""Fuzzing the Sieve compiler (sievelib's grammar plus this server's subset) and evaluator.

Properties: any text compiles to a program or fails with SieveError only, whose message is
short and names a line; no input costs unbounded time (deep nesting, long strings, many
commands); a compiled program evaluates against any message within its work budget
(BudgetExceeded is the one documented failure). Over HTTP, PUT /api/rules answers 200 or a
422 `invalid_script` with that message, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from VEZEPyEmail.services.sieve import nodes
from VEZEPyEmail.services.sieve.compiler import (
    MAX_ERROR_LENGTH,
    MAX_SCRIPT_BYTES,
    SieveError,
    compile_script,
)
from VEZEPyEmail.services.sieve.evaluate import MessageView, evaluate
from VEZEPyEmail.services.sieve.matching import BudgetExceeded
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
HANG_SECONDS = 10.0

#: Tokens of the language, valid and nearly valid, so generated text reaches deep into both
#: the grammar and the subset checks instead of failing on the first character.
_TOKENS = [
    "require",
    "if",
    "elsif",
    "else",
    "stop",
    "keep",
    "discard",
    "fileinto",
    "redirect",
    "addflag",
    "vacation",
    "reject",
    "header",
    "address",
    "exists",
    "size",
    "allof",
    "anyof",
    "not",
    "true",
    "false",
    ":is",
    ":contains",
    ":matches",
    ":over",
    ":under",
    ":all",
    ":localpart",
    ":domain",
    ":days",
    ":subject",
    ":addresses",
    ":comparator",
    ":copy",
    '"fileinto"',
    '"imap4flags"',
    '"vacation"',
    '"subject"',
    '"from"',
    '"x@y.example"',
    '"\\\\Seen"',
    '"*a*a*a*b"',
    '"?"',
    '"Archive"',
    '"../x"',
    '"i;octet"',
    '"a\\"b"',
    '"',
    "10K",
    "99999999999999999999G",
    "0",
    "[",
    "]",
    ",",
    "(",
    ")",
    "{",
    "}",
    ";",
    "#c\n",
    "/* c */",
    "/*",
    "text:\nline\n..dot\n.\n",
    "text:",
    "\n",
    " ",
    "é",
    "\x00",
]
scripts = st.one_of(
    st.lists(st.sampled_from(_TOKENS), max_size=60).map(" ".join),
    st.text(max_size=300),
)


def _compiled_or_refused(script: str) -> nodes.Program | None:
    refusal: SieveError | None = None
    try:
        return compile_script(script)
    except SieveError as error:
        refusal = error
    assert refusal.message, script
    assert len(str(refusal)) <= MAX_ERROR_LENGTH + 20, str(refusal)[:200]
    assert refusal.line is None or refusal.line >= 1
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts)
def test_any_text_compiles_or_is_refused_with_a_short_located_error(script: str) -> None:
    _compiled_or_refused(script)


_HEADER_NAMES = ["subject", "from", "to", "x-a"]
_VALUES = ["", "a", "invoice", "x@y.example", "a" * 300 + "b", "=?utf-8?q?a?=", "*?\\"]


@st.composite
def conditions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth < 4 and draw(st.booleans()):
        kind = draw(st.sampled_from(["allof", "anyof", "not"]))
        if kind == "not":
            return "not " + draw(conditions(depth + 1))
        inner = draw(st.lists(conditions(depth + 1), min_size=1, max_size=3))
        return f"{kind}({', '.join(inner)})"
    name = draw(st.sampled_from(_HEADER_NAMES))
    key = draw(st.sampled_from(["*a*a*a*a*b", "*", "?*?", "invoice", "x@*"]))
    match = draw(st.sampled_from([":is", ":contains", ":matches"]))
    return draw(
        st.sampled_from(
            [
                f'header {match} "{name}" "{key}"',
                f'address {match} :domain "from" "{key}"',
                f'exists "{name}"',
                "size :over 1K",
                "true",
            ]
        )
    )


@st.composite
def programs(draw: st.DrawFn) -> str:
    actions = ['fileinto "Archive";', 'addflag "\\\\Flagged";', "keep;", "discard;", "stop;"]
    body = " ".join(draw(st.lists(st.sampled_from(actions), min_size=1, max_size=3)))
    return f'require ["fileinto", "imap4flags"];\nif {draw(conditions())} {{ {body} }}\n'


@st.composite
def header_blocks(draw: st.DrawFn) -> bytes:
    lines = [
        f"{draw(st.sampled_from(['Subject', 'From', 'To', 'X-A']))}: {draw(st.text(max_size=80))}"
        for _ in range(draw(st.integers(0, 6)))
    ]
    return ("\r\n".join(lines) + "\r\n\r\nbody").encode("utf-8", "surrogateescape")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), header_blocks())
def test_compiled_programs_evaluate_any_message_within_the_budget(script: str, raw: bytes) -> None:
    program = compile_script(script)  # the generator writes valid scripts only
    try:
        outcome = evaluate(program, MessageView.from_bytes(raw))
    except BudgetExceeded:
        return
    assert outcome.discarded or outcome.folders  # something happens to every message


def _deep(kind: str, depth: int) -> str:
    if kind == "tests":
        return "if " + "allof(" * depth + "true" + ")" * depth + " { keep; }"
    if kind == "not":
        return "if " + "not " * depth + "true { keep; }"
    return "if true {" * depth + "keep;" + "}" * depth


PATHOLOGICAL = {
    "nested tests": _deep("tests", 5_000),
    "nested nots": _deep("not", 10_000),
    "nested blocks": _deep("blocks", 5_000),
    "unterminated string": 'if header :is "a" "' + "x" * 60_000,
    "unterminated comment": "/*" + "*" * 60_000,
    "many commands": "keep;" * 12_000,
    "long elsif chain": "if false { keep; }" + " elsif false { keep; }" * 2_800,
    "many strings": 'if header :is "a" [' + ",".join(['"x"'] * 12_000) + "] { keep; }",
    "long multi-line string": 'require "vacation"; vacation text:\n' + "..\n" * 20_000 + ".\n;",
    "huge number": "if size :over " + "9" * 20_000 + " { keep; }",
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_scripts_are_decided_in_bounded_time(name: str) -> None:
    script = PATHOLOGICAL[name]
    assert len(script.encode()) <= MAX_SCRIPT_BYTES, name
    started = time.perf_counter()
    _compiled_or_refused(script)
    assert time.perf_counter() - started < HANG_SECONDS, name


def test_matches_on_a_hostile_header_stops_at_the_budget() -> None:
    program = compile_script('if header :matches "subject" "*a*a*a*a*a*a*a*a*b" { discard; }')
    view = MessageView.from_bytes(b"Subject: " + b"a" * 10_000 + b"\r\n\r\n")
    started = time.perf_counter()
    assert not evaluate(program, view).discarded  # linear matcher: no exponential backtracking
    assert time.perf_counter() - started < HANG_SECONDS
    with pytest.raises(BudgetExceeded):
        evaluate(program, view, budget=5_000)


async def test_rules_api_answers_422_with_the_reason_never_500(
    email_app: FastAPI,
    email_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
) -> None:
    await provision(email_client, admin_headers, ALICE)
    alice = {"Authorization": f"Bearer {mint(ALICE)}"}
    loop = asyncio.get_running_loop()
    samples = [
        *sorted(PATHOLOGICAL.items()),
        ("lone surrogate", "keep; # \ud800"),
        ("nul", "keep;\x00"),
        ("reject", 'require "reject"; reject "no";'),
        ("bad folder", 'require "fileinto"; fileinto "a/../../b";'),
        ("bad address", 'redirect "not an address";'),
    ]
    found: list[str] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(scripts)
    def collect(script: str) -> None:
        found.append(script)

    await loop.run_in_executor(None, collect)
    samples += [(f"generated {i}", script) for i, script in enumerate(found)]
    for name, script in samples:
        content = json.dumps({"script": script}).encode()  # ASCII: a lone surrogate escaped
        response = await email_client.put(
            "/api/rules", content=content, headers={**alice, "Content-Type": "application/json"}
        )
        assert response.status_code in (200, 422), (name, response.status_code, response.text)
        body = response.json()
        if response.status_code == 422 and "error" in body:
            assert body["error"] == "invalid_script", (name, body)
            assert 0 < len(body["detail"]) <= MAX_ERROR_LENGTH + 20, (name, body)
