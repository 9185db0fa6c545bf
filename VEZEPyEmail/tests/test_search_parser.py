"""The search query parser and FTS5 escaping, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from VEZEPyCore.errors import BadRequest
from VEZEPyEmail.services.search.builder import Cursor, fts5_phrase
from VEZEPyEmail.services.search.parser import SearchQuery, parse_query


def test_operators_quotes_and_free_text() -> None:
    parsed = parse_query('from:"Ann Smith" subject:"q3 report" hello "big deal" is:UNREAD')
    assert parsed.from_ == ["Ann Smith"]
    assert parsed.subject == ["q3 report"]
    assert parsed.text == ["hello", "big deal"]
    assert parsed.seen is False


def test_unknown_operators_and_quoted_operators_are_text() -> None:
    assert parse_query("foo:bar").text == ["foo:bar"]
    assert parse_query('"subject:foo"').text == ["subject:foo"]
    assert parse_query('subject:"unclosed quote').subject == ["unclosed quote"]


def test_dates_folders_and_flags() -> None:
    parsed = parse_query("after:2025-12-01 before:2026-01-01 in:junk is:flagged has:attachment")
    assert parsed.after == datetime(2025, 12, 1, tzinfo=UTC)
    assert parsed.before == datetime(2026, 1, 1, tzinfo=UTC)
    assert (parsed.folder, parsed.flagged, parsed.has_attachment) == ("Junk", True, True)
    assert parse_query("in:anywhere").folder == "*"
    assert parse_query("in:Projects").folder == "Projects"


@pytest.mark.parametrize(
    "query", ["before:notadate", "after:2026-13-01", "is:purple", "has:x", "to:", "x" * 201]
)
def test_nonsense_raises_bad_request(query: str) -> None:
    with pytest.raises(BadRequest):
        parse_query(query)


def test_control_characters_never_reach_the_database() -> None:
    assert parse_query("a\x00b\nc").text == ["a", "b", "c"]
    assert parse_query("   ").empty and parse_query("").empty


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("hello", '"hello"'),
        ('NEAR(a b) OR "x"*', '"NEAR a b OR x"'),
        ("subject:^foo", '"subject foo"'),
        ("***", None),
        ("héllo wörld", '"héllo wörld"'),
    ],
)
def test_fts5_phrase_keeps_only_words(value: str, phrase: str | None) -> None:
    assert fts5_phrase(value) == phrase


@given(st.text(max_size=200))
def test_parser_raises_nothing_but_bad_request(query: str) -> None:
    try:
        parsed = parse_query(query)
    except BadRequest:
        return
    assert isinstance(parsed, SearchQuery)
    for value in parsed.text + parsed.subject:
        phrase = fts5_phrase(value)
        assert phrase is None or phrase.count('"') == 2


def test_cursor_round_trip_and_garbage() -> None:
    cursor = Cursor(received_at=datetime(2026, 3, 1, 12, tzinfo=UTC), id=42)
    assert Cursor.decode(cursor.encode()) == cursor
    for token in ("", "garbage", "W10", "WyJ4IiwxXQ", "WyIyMDI2LTAzLTAxVDEyOjAwOjAwIiwxXQ"):
        with pytest.raises(BadRequest):
            Cursor.decode(token)
