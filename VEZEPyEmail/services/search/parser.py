"""The search query language: free text, quoted phrases and a few `name:value` operators.

A hand-written tokenizer, not a grammar library: the input is bounded (MAX_QUERY_LENGTH) and
parsing never raises except `BadRequest` for an operator value that makes no sense
(`before:notadate`, `is:purple`). Unknown `name:value` words are ordinary free text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from VEZEPyCore.errors import BadRequest

MAX_QUERY_LENGTH = 200

_OPERATORS = frozenset({"from", "to", "subject", "has", "is", "before", "after", "in"})
_OPERATOR_WORD = re.compile(r"([A-Za-z]+):(.*)", re.DOTALL)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: Control characters (NUL included) never reach a database: PostgreSQL refuses NUL in text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class SearchQuery:
    """A parsed query. Lists are ANDed; None means "no condition"."""

    #: Free-text words and quoted phrases, each matched as a phrase in the full-text index.
    text: list[str] = field(default_factory=list)
    subject: list[str] = field(default_factory=list)
    from_: list[str] = field(default_factory=list)
    to: list[str] = field(default_factory=list)
    has_attachment: bool | None = None
    seen: bool | None = None
    flagged: bool | None = None
    #: received_at < before, received_at >= after (UTC midnights).
    before: datetime | None = None
    after: datetime | None = None
    #: A folder name; "*" for every folder (`in:all`/`in:anywhere`); None: the caller's folder.
    folder: str | None = None

    @property
    def empty(self) -> bool:
        return self == SearchQuery()


def _tokens(query: str) -> list[tuple[str | None, str]]:
    """(operator or None, value) pairs; quotes group words (`subject:"two words"`)."""
    tokens: list[tuple[str | None, str]] = []
    position, length = 0, len(query)
    while position < length:
        if query[position].isspace():
            position += 1
            continue
        start = position
        # Read a word up to whitespace; a quote opens a span that runs to the next quote.
        word: list[str] = []
        quoted = False
        while position < length and not query[position].isspace():
            if query[position] == '"':
                quoted = True
                end = query.find('"', position + 1)
                end = length if end == -1 else end
                word.append(query[position + 1 : end])
                position = end + 1
            else:
                word.append(query[position])
                position += 1
        raw = query[start:position]
        value = "".join(word)
        match = _OPERATOR_WORD.fullmatch(raw)
        if match and match.group(1).lower() in _OPERATORS and not raw.startswith('"'):
            operator = match.group(1).lower()
            operand = value[len(match.group(1)) + 1 :]
            tokens.append((operator, operand.strip()))
        elif value.strip() or quoted:
            tokens.append((None, value.strip()))
    return tokens


_SPECIAL_FOLDERS = {
    "inbox": "INBOX",
    "sent": "Sent",
    "drafts": "Drafts",
    "junk": "Junk",
    "spam": "Junk",
    "trash": "Trash",
    "archive": "Archive",
}


def _folder(value: str) -> str:
    return _SPECIAL_FOLDERS.get(value.lower(), value)


def _day(operator: str, value: str) -> datetime:
    if not _DATE.fullmatch(value):
        raise BadRequest(f"{operator}: expects a date as YYYY-MM-DD, not {value[:40]!r}")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{operator}: {value!r} is not a calendar date") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def parse_query(query: str) -> SearchQuery:
    """Parse a search box string. Raises BadRequest only for nonsense operator values."""
    if len(query) > MAX_QUERY_LENGTH:
        raise BadRequest(f"a search query is at most {MAX_QUERY_LENGTH} characters")
    parsed = SearchQuery()
    for operator, value in _tokens(_CONTROL.sub(" ", query)):
        if operator is None:
            if value:
                parsed.text.append(value)
            continue
        if not value:
            raise BadRequest(f"{operator}: needs a value")
        lowered = value.lower()
        if operator == "from":
            parsed.from_.append(value)
        elif operator == "to":
            parsed.to.append(value)
        elif operator == "subject":
            parsed.subject.append(value)
        elif operator == "has":
            if lowered not in ("attachment", "attachments"):
                raise BadRequest("has: supports only has:attachment")
            parsed.has_attachment = True
        elif operator == "is":
            if lowered == "unread":
                parsed.seen = False
            elif lowered == "read":
                parsed.seen = True
            elif lowered in ("flagged", "starred"):
                parsed.flagged = True
            else:
                raise BadRequest("is: supports unread, read and flagged")
        elif operator == "before":
            parsed.before = _day(operator, value)
        elif operator == "after":
            parsed.after = _day(operator, value)
        else:  # in:
            parsed.folder = "*" if lowered in ("all", "anywhere", "*") else _folder(value)
    return parsed
