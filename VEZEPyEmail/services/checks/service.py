"""`analyze_inbound`: what the SMTP layer asks about each inbound message before storing it.

The result is an RFC 8601 Authentication-Results value (`<authserv-id>; spf=...; dkim=...;
dmarc=...`) for the SMTP layer to prepend, and a spam score with named reasons for delivery
(`is_junk(score)` files the message in Junk). It never raises: DNS that is slow or offline
gives none/temperror within a few seconds.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Protocol

from VEZEPyEmail.services.checks.auth import (
    DkimVerdict,
    SpfVerdict,
    check_dkim,
    check_dmarc,
    check_spf,
    safe,
)
from VEZEPyEmail.services.checks.dns import (
    DnsTempError,
    Resolver,
    dnspython_resolver,
    shared_resolver,
)
from VEZEPyEmail.services.checks.spam import (
    JUNK_THRESHOLD,
    MAX_BODY_CHARS,
    Content,
    is_junk,
    score_message,
)
from VEZEPyEmail.services.messages.mime import Summary, parse_bytes, summarise_message

__all__ = [
    "JUNK_THRESHOLD",
    "DnsTempError",
    "InboundAnalysis",
    "Resolver",
    "analyze_inbound",
    "dnspython_resolver",
    "is_junk",
]

logger = logging.getLogger(__name__)

#: An upper bound on the whole analysis; the SMTP client is waiting for its 250.
ANALYSIS_TIMEOUT_SECONDS = 8.0
MAX_PARTS = 200


class _HasHostname(Protocol):
    @property
    def smtp_hostname(self) -> str: ...


@dataclass(frozen=True)
class InboundAnalysis:
    authentication_results: str
    spam_score: float
    spam_reasons: list[str] = field(default_factory=list)
    #: The message's summary from the same parse, when it was asked for (`with_summary`).
    summary: Summary | None = None

    @property
    def junk(self) -> bool:
        return is_junk(self.spam_score)


def _parse(raw: bytes) -> EmailMessage:
    # The bounded parse the store uses (services/messages/mime.py): hostile structure costs
    # bounded time here too, and the summary can be taken from the same parse.
    try:
        return parse_bytes(raw)
    except Exception:  # malformed beyond the parser's defects: judge an empty message
        return EmailMessage()


def _header(message: EmailMessage, name: str) -> str:
    try:
        return str(message.get(name, "") or "")
    except Exception:  # a header the policy cannot parse
        return ""


def _content(message: EmailMessage) -> Content:
    body: list[str] = []
    has_plain = has_html = False
    names: list[str] = []
    try:
        parts = [part for part in message.walk() if not part.is_multipart()][:MAX_PARTS]
    except Exception:
        parts = []
    for part in parts:
        try:
            filename = part.get_filename()
            content_type = part.get_content_type()
            disposition = part.get_content_disposition()
        except Exception:
            logger.debug("unreadable MIME part skipped", exc_info=True)
            continue
        if filename or disposition == "attachment":
            names.append(str(filename or ""))
            continue
        if content_type in ("text/plain", "text/html"):
            has_plain = has_plain or content_type == "text/plain"
            has_html = has_html or content_type == "text/html"
            try:
                text = part.get_content()
            except Exception:
                payload = part.get_payload(decode=True)
                text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            if isinstance(text, str) and sum(map(len, body)) < MAX_BODY_CHARS:
                body.append(text[:MAX_BODY_CHARS])
    return Content(
        subject=_header(message, "Subject"),
        body="\n".join(body),
        has_plain=has_plain,
        has_html=has_html,
        attachment_names=tuple(names),
    )


def _from_domain(message: EmailMessage) -> str:
    """The RFC5322.From domain (RFC 7489 section 3.1); the first address when several."""
    try:
        addresses = getaddresses([_header(message, "From")])
    except Exception:
        return ""
    for _name, address in addresses:
        if "@" in address:
            return safe(address.rpartition("@")[2].lower())
    return ""


def _authentication_results(
    authserv_id: str, spf: SpfVerdict, dkim: DkimVerdict, dmarc_result: str, from_domain: str
) -> str:
    """RFC 8601 section 2.2: `authserv-id; method=result property=value; ...`."""
    identity = "smtp.mailfrom" if spf.identity == "mailfrom" else "smtp.helo"
    parts = [safe(authserv_id) or "localhost", f"spf={spf.result} {identity}={safe(spf.domain)}"]
    dkim_part = f"dkim={dkim.result}"
    if dkim.first_domain:
        dkim_part += f" header.d={safe(dkim.first_domain)}"
    parts.append(dkim_part)
    dmarc_part = f"dmarc={dmarc_result}"
    if from_domain:
        dmarc_part += f" header.from={from_domain}"
    parts.append(dmarc_part)
    return "; ".join(parts)


def _analyze(
    raw: bytes,
    peer_ip: str,
    helo: str,
    envelope_from: str,
    authserv_id: str,
    resolver: Resolver,
    with_summary: bool = False,
) -> InboundAnalysis:
    message = _parse(raw)
    spf = check_spf(resolver=resolver, peer_ip=peer_ip, helo=helo, envelope_from=envelope_from)
    dkim = check_dkim(resolver=resolver, raw=raw)
    from_domain = _from_domain(message)
    dmarc = check_dmarc(resolver=resolver, from_domain=from_domain, spf=spf, dkim_verdict=dkim)
    score, reasons = score_message(
        message=message, content=_content(message), spf_result=spf.result, dmarc_result=dmarc.result
    )
    header = _authentication_results(authserv_id, spf, dkim, dmarc.result, from_domain)
    return InboundAnalysis(
        authentication_results=header,
        spam_score=score,
        spam_reasons=reasons,
        summary=summarise_message(message, raw) if with_summary else None,
    )


async def analyze_inbound(
    *,
    raw: bytes,
    peer_ip: str,
    helo: str,
    envelope_from: str,
    settings: _HasHostname,
    resolver: Resolver | None = None,
    with_summary: bool = False,
) -> InboundAnalysis:
    """SPF, DKIM, DMARC and a spam score for one inbound message. Never raises.

    `resolver` answers every DNS question (default: the process's caching resolver over the
    system's nameservers, 2 s per lookup);
    the work runs in a thread because pyspf and dkimpy are synchronous. `with_summary` also
    summarises the message from the same parse (off the event loop).
    """
    authserv_id = settings.smtp_hostname
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(
                _analyze,
                raw,
                peer_ip,
                helo,
                envelope_from,
                authserv_id,
                resolver or shared_resolver(),
                with_summary,
            ),
            timeout=ANALYSIS_TIMEOUT_SECONDS,
        )
    except Exception:  # timeout or a bug: deliver with no verdicts rather than lose mail
        logger.warning("inbound analysis failed; delivering without verdicts", exc_info=True)
        verdicts = "spf=temperror; dkim=temperror; dmarc=temperror"
        header = f"{safe(authserv_id) or 'localhost'}; {verdicts}"
        return InboundAnalysis(authentication_results=header, spam_score=0.0, spam_reasons=[])
