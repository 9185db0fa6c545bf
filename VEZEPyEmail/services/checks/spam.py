"""Transparent spam heuristics: each rule has a name and a weight; the score is their sum.

Scores are capped at 10; `is_junk` puts a message in Junk from JUNK_THRESHOLD up. The reasons
travel with the message so a person can see why it was filed as Junk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from VEZEPyEmail.services.messages.mime import MAX_HEADER_INPUT

MAX_SCORE = 10.0
JUNK_THRESHOLD = 5.0
MANY_RECIPIENTS = 50
#: How much body text the phrase rules read.
MAX_BODY_CHARS = 200_000

WEIGHTS: dict[str, float] = {
    "spf_fail": 2.5,
    "spf_softfail": 1.0,
    "dmarc_fail": 3.0,
    "no_message_id": 1.0,
    "no_date": 1.0,
    "display_name_impersonation": 2.5,
    "all_caps_subject": 1.5,
    "many_exclamation_marks": 1.0,
    "spam_phrase": 0.8,  # per phrase, at most MAX_PHRASES of them
    "html_only": 1.0,
    "suspicious_attachment": 4.0,
    "many_recipients": 1.5,
}
MAX_PHRASES = 4
SPAM_PHRASES = (
    "act now",
    "100% free",
    "you have won",
    "you are a winner",
    "click here",
    "limited time offer",
    "risk-free",
    "risk free",
    "wire transfer",
    "verify your account",
    "your account has been suspended",
    "lottery",
    "viagra",
    "cheap meds",
    "make money fast",
    "double your income",
    "no credit check",
    "urgent response needed",
    "claim your prize",
    "bitcoin investment",
)
SUSPICIOUS_EXTENSIONS = (
    ".exe",
    ".scr",
    ".js",
    ".vbs",
    ".bat",
    ".cmd",
    ".com",
    ".pif",
    ".jar",
    ".msi",
    ".ps1",
    ".hta",
    ".lnk",
    ".wsf",
    ".cpl",
)
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@([\w-]+\.)+[\w-]+")


def is_junk(score: float) -> bool:
    """Whether a message with this score belongs in the Junk folder."""
    return score >= JUNK_THRESHOLD


@dataclass(frozen=True)
class Content:
    """What the rules read from a parsed message."""

    subject: str
    body: str
    has_plain: bool
    has_html: bool
    attachment_names: tuple[str, ...]


def _impersonates(from_header: str) -> bool:
    """A display name that shows an address other than the real one (`"paypal@x" <a@evil>`)."""
    name, address = parseaddr(from_header)
    shown = _EMAIL_IN_TEXT.search(name)
    if not shown or not address:
        return False
    return shown.group(0).lower() != address.lower()


def score_message(
    *, message: EmailMessage, content: Content, spf_result: str, dmarc_result: str
) -> tuple[float, list[str]]:
    """(score 0..10, reasons as "name:weight")."""
    hits: list[tuple[str, float]] = []

    def hit(name: str, times: int = 1) -> None:
        hits.append((name, round(WEIGHTS[name] * times, 2)))

    if spf_result == "fail":
        hit("spf_fail")
    elif spf_result == "softfail":
        hit("spf_softfail")
    if dmarc_result == "fail":
        hit("dmarc_fail")
    if not message.get("Message-ID", "").strip():
        hit("no_message_id")
    if not message.get("Date", "").strip():
        hit("no_date")
    if _impersonates(str(message.get("From", ""))):
        hit("display_name_impersonation")
    letters = [ch for ch in content.subject if ch.isalpha()]
    if len(letters) >= 8 and all(ch.isupper() for ch in letters):
        hit("all_caps_subject")
    if content.subject.count("!") >= 3 or content.body.count("!") >= 10:
        hit("many_exclamation_marks")
    text = f"{content.subject}\n{content.body}".lower()
    phrases = sum(1 for phrase in SPAM_PHRASES if phrase in text)
    if phrases:
        hit("spam_phrase", min(phrases, MAX_PHRASES))
    if content.has_html and not content.has_plain:
        hit("html_only")
    if any(name.lower().endswith(SUSPICIOUS_EXTENSIONS) for name in content.attachment_names):
        hit("suspicious_attachment")
    # The raw values: the message's policy hands the structured parser only the first
    # kilobyte of a field (services/messages/mime.py), which would cut a long list short.
    recipients = getaddresses(
        [
            str(value)[:MAX_HEADER_INPUT]
            for key, value in message.raw_items()
            if key.lower() in ("to", "cc")
        ]
    )
    if len(recipients) > MANY_RECIPIENTS:
        hit("many_recipients")
    score = min(MAX_SCORE, round(sum(weight for _, weight in hits), 2))
    return score, [f"{name}:{weight:g}" for name, weight in hits]
