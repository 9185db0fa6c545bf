"""Fuzzing the search language: parser, query builder (both dialects) and the HTTP front door.

Properties: any string parses to a SearchQuery or fails with BadRequest naming what is wrong
(the operator, or the length); every parsed query compiles for SQLite and PostgreSQL and runs
on the test database; over HTTP (API and webmail) a query is answered 200, 400 with that
reason, or 422 for a query over the length limit, never 500; and the user's words never act
as FTS5 or tsquery syntax.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from tests.test_hostile_input import sign_in
from VEZEPyCore.errors import BadRequest
from VEZEPyEmail.db.models import Message
from VEZEPyEmail.services.search.builder import conditions_for, fts5_phrase
from VEZEPyEmail.services.search.parser import MAX_QUERY_LENGTH, SearchQuery, parse_query
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
OPERATORS = ("from", "to", "subject", "has", "is", "before", "after", "in")

_PIECES = [
    *(f"{name}:" for name in OPERATORS),
    "FROM:",
    "x:",
    '"',
    '""',
    '"two words"',
    " ",
    "\t",
    "\x00",
    "\n",
    "2026-01-31",
    "2026-02-30",
    "9999-99-99",
    "unread",
    "flagged",
    "attachment",
    "all",
    "junk",
    "*",
    "NEAR(a b)",
    "OR",
    "AND",
    "NOT",
    "^",
    "-",
    "'",
    "\\",
    "%",
    "_",
    "&",
    "|",
    "!",
    ":*",
    "<->",
    "(",
    ")",
    "é",
    "日本",
    "\u200b",
    "\U0001f600",
    "\ufffd",
    "a",
    "word",
]
queries = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=40).map("".join),
    st.text(max_size=MAX_QUERY_LENGTH + 20),
)


def _parsed_or_refused(query: str) -> SearchQuery | None:
    refusal: BadRequest | None = None
    try:
        return parse_query(query)
    except BadRequest as error:
        refusal = error
    detail = refusal.detail
    # The reason names the operator it is about, or the length limit.
    assert detail.split(":")[0] in OPERATORS or "at most" in detail, (query, detail)
    assert len(detail) <= 200, detail
    return None


@settings(max_examples=400, deadline=None)
@given(queries)
def test_any_query_parses_or_is_refused_with_a_reason_and_compiles_for_both_dialects(
    query: str,
) -> None:
    parsed = _parsed_or_refused(query)
    if parsed is None:
        return
    for value in parsed.text + parsed.subject + parsed.from_ + parsed.to:
        assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in value)
    for dialect in (sqlite.dialect(), postgresql.dialect()):  # type: ignore[no-untyped-call]
        statement = select(Message.id).where(*conditions_for(parsed, dialect=dialect.name))
        statement.compile(dialect=dialect)
    for value in parsed.text + parsed.subject:
        phrase = fts5_phrase(value)
        # One FTS5 string literal of word characters: nothing the user typed is syntax.
        assert phrase is None or (phrase.count('"') == 2 and phrase.startswith('"'))


@pytest.mark.parametrize(
    "query",
    [
        '"' * MAX_QUERY_LENGTH,
        ":" * MAX_QUERY_LENGTH,
        "subject:" * (MAX_QUERY_LENGTH // 8),
        "a" * (MAX_QUERY_LENGTH - 1) + ":",
        'x"' * (MAX_QUERY_LENGTH // 2),
        " " * MAX_QUERY_LENGTH,
    ],
)
def test_pathological_queries_are_decided_at_once(query: str) -> None:
    started = time.perf_counter()
    for _ in range(100):
        _parsed_or_refused(query)
    assert time.perf_counter() - started < 10.0


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=queries)
async def test_search_over_http_is_200_400_or_422_with_the_error_shape(
    email_app: FastAPI,
    email_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
    query: str,
) -> None:
    if not getattr(email_app.state, "fuzz_provisioned", False):
        await provision(email_client, admin_headers, ALICE)
        sign_in(email_client, email_app, "email", mint)  # the webmail's session cookie
        email_app.state.fuzz_provisioned = True
    user = {"Authorization": f"Bearer {mint(ALICE)}"}
    response = await email_client.get(
        "/api/messages", params={"user": ALICE, "q": query}, headers=user
    )
    assert response.status_code in (200, 400, 422), (query, response.status_code, response.text)
    if response.status_code == 400:
        body = response.json()
        assert body["error"] == "bad_request" and body["detail"], (query, body)
    if response.status_code == 422:
        assert len(query.strip()) > MAX_QUERY_LENGTH or len(query) > MAX_QUERY_LENGTH, query
    # The webmail list runs the same parser and builder behind its own page.
    page = await email_client.get("/ui/mail/list", params={"q": query})
    assert page.status_code in (200, 400, 422), (query, page.status_code, page.text[:300])
