"""Reply and forward conventions: subject prefixes, quoting, who a reply goes to.

Subjects get one "Re: " or "Fwd: " (RFC 5322 section 3.6.5 calls "Re: " the convention), never
a stack of them. Replies quote the original with an attribution line and "> " prefixes
(RFC 3676 section 4.5); forwards carry the original header summary and its quoted text.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime

from VEZEPyEmail.services.compose.addresses import Recipient, unique

#: Leading reply/forward markers mail clients write, in several languages, with a counter
#: ("Re[2]:") or a tag ("[list] Re:") left alone.
_REPLY = re.compile(r"^\s*(?:re|aw|sv|antw|vs)\s*(?:\[\d+\])?\s*:\s*", re.IGNORECASE)
_FORWARD = re.compile(r"^\s*(?:fwd?|wg|tr|rv|vb)\s*(?:\[\d+\])?\s*:\s*", re.IGNORECASE)
MAX_QUOTED_CHARS = 500_000


def _strip(pattern: re.Pattern[str], subject: str) -> str:
    previous = None
    while previous != subject:
        previous, subject = subject, pattern.sub("", subject, count=1)
    return subject.strip()


def reply_subject(subject: str) -> str:
    """ "Re: " once: "Re: Re: x" and "RE: x" both become "Re: x"."""
    return f"Re: {_strip(_REPLY, subject.strip())}"


def forward_subject(subject: str) -> str:
    return f"Fwd: {_strip(_FORWARD, subject.strip())}"


def quote_lines(text: str) -> str:
    """Every line prefixed with "> " (">" alone on empty lines, ">>" for quoted ones)."""
    lines = text[:MAX_QUOTED_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    quoted = []
    for line in lines:
        if not line:
            quoted.append(">")
        elif line.startswith(">"):
            quoted.append(">" + line)
        else:
            quoted.append("> " + line)
    return "\n".join(quoted)


def attribution(date: datetime, sender: str) -> str:
    return f"On {format_datetime(date)}, {sender} wrote:"


def reply_text(*, date: datetime, sender: str, original_text: str) -> str:
    """An empty line to write in, then the attribution and the quoted original."""
    return f"\n\n{attribution(date, sender)}\n{quote_lines(original_text)}\n"


def forward_text(
    *, date: datetime, sender: str, subject: str, to: str, cc: str, original_text: str
) -> str:
    summary = [
        "---------- Forwarded message ----------",
        f"From: {sender}",
        f"Date: {format_datetime(date)}",
        f"Subject: {subject}",
        f"To: {to}",
    ]
    if cc:
        summary.append(f"Cc: {cc}")
    quoted = quote_lines(original_text)
    return "\n\n" + "\n".join(summary) + "\n\n" + (quoted + "\n" if quoted else "")


def reply_recipients(
    *,
    own: str,
    sender: list[Recipient],
    reply_to: list[Recipient],
    to: list[Recipient],
    cc: list[Recipient],
    reply_all: bool,
) -> tuple[list[Recipient], list[Recipient]]:
    """(To, Cc) of a reply. Reply-To wins over From (RFC 5322 section 3.6.2); a reply to one's
    own message goes to its recipients; reply-all adds the others, never oneself or twice."""
    own_key = own.lower()
    from_self = bool(sender) and all(item.key == own_key for item in sender)
    # A reply to one's own sent message goes to its recipients (as mail clients do).
    primary = to if from_self and not reply_to else reply_to or sender
    reply_to_list = unique(primary, exclude={own_key})
    if not reply_all:
        if not reply_to_list and from_self:
            reply_to_list = unique(sender)  # a note to oneself: answer oneself
        return reply_to_list, []
    others = [] if from_self and not reply_to else to
    taken = {own_key, *(item.key for item in reply_to_list)}
    extra_to = unique(others, exclude=taken)
    reply_to_list = [*reply_to_list, *extra_to]
    taken |= {item.key for item in extra_to}
    return reply_to_list, unique(cc, exclude=taken)
