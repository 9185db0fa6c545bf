"""Text for the page: search terms highlighted, plain-text bodies with clickable links.

Everything is escaped first and only then wrapped in our own tags, so a subject, snippet or
body can never inject markup.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from markupsafe import Markup, escape

from VEZEPyCore.errors import BadRequest
from VEZEPyEmail.services.search.parser import parse_query

_URL = re.compile(r"\bhttps?://[^\s<>\"']{1,2000}", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
MAX_TERMS = 20


def search_terms(query: str | None) -> list[str]:
    """The words a search matched on (free text, subject, from, to), longest first."""
    if not query:
        return []
    try:
        parsed = parse_query(query)
    except BadRequest:
        return []
    terms: list[str] = []
    for value in parsed.text + parsed.subject + parsed.from_ + parsed.to:
        for word in value.split():
            word = word.strip()
            if word and word.lower() not in (term.lower() for term in terms):
                terms.append(word)
    return sorted(terms, key=len, reverse=True)[:MAX_TERMS]


def highlight(text: str, terms: list[str]) -> Markup:
    """`text` escaped, with every case-insensitive occurrence of a term in <mark>."""
    if not terms or not text:
        return escape(text)
    pattern = re.compile("|".join(re.escape(term) for term in terms), re.IGNORECASE)
    out: list[Markup] = []
    position = 0
    for match in pattern.finditer(text):
        out.append(escape(text[position : match.start()]))
        out.append(Markup("<mark>{}</mark>").format(match.group(0)))
        position = match.end()
    out.append(escape(text[position:]))
    return Markup("").join(out)


def plain_body(text: str) -> Markup:
    """A plain-text body for the reading pane: escaped, links clickable, quoted lines
    ("> ...", RFC 3676 style) marked so they can be shown as a quotation."""
    lines: list[Markup] = []
    for line in text.split("\n"):
        if line.startswith(">"):
            lines.append(Markup('<span class="quoted">{}</span>').format(linkify(line)))
        else:
            lines.append(linkify(line))
    return Markup("\n").join(lines)


def linkify(text: str) -> Markup:
    """Text, escaped, with http(s) URLs as links that open in a new tab."""
    out: list[Markup] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        out.append(escape(text[position : match.start()]))
        out.append(
            Markup('<a href="{}" target="_blank" rel="noopener noreferrer nofollow">{}</a>').format(
                url, url
            )
        )
        position = match.start() + len(url)
    out.append(escape(text[position:]))
    return Markup("").join(out)


def short_date(when: datetime, now: datetime | None = None) -> str:
    """The list's date column: the time today, day and month this year, else the full date."""
    now = now or datetime.now(UTC)
    when = when.astimezone(UTC)
    if when.date() == now.date():
        return when.strftime("%H:%M")
    if when.year == now.year:
        return when.strftime("%d %b").lstrip("0")
    return when.strftime("%Y-%m-%d")


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
