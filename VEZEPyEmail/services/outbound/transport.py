"""One delivery attempt to one recipient over SMTP (aiosmtplib).

RFC 5321 4.2.1: 2yz is success, 4yz a transient failure (try again later), 5yz permanent.
Hosts are tried in order; a host that cannot be reached or answers 4yz before the recipient is
known to be refused lets the next one try (RFC 5321 5.1). STARTTLS is opportunistic (RFC 3207,
RFC 7435): used when the server offers it, without verifying the certificate by default.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import aiosmtplib

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.outbound.routing import Route

OutcomeKind = Literal["sent", "temporary", "permanent"]
#: Hosts tried per attempt (RFC 5321 5.1 leaves the number to the client); bounds how long an
#: attempt can hold its lease when every host times out.
MAX_HOSTS_PER_ATTEMPT = 5
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    #: RFC 3463 enhanced status, e.g. "5.1.1" (taken from the reply when the server gave one).
    status: str
    #: What the remote said ("smtp; 550 5.1.1 unknown user") or what went wrong locally.
    diagnostic: str
    remote: str | None = None


def enhanced_status(code: int, message: str) -> str:
    match = _ENHANCED.match(message)
    if match and match.group(1) == str(code)[0]:
        return ".".join(match.groups())
    return f"{str(code)[0]}.0.0"


def outcome_for_reply(code: int, message: str, route: Route) -> Outcome:
    message = " ".join(message.split())
    if 200 <= code < 300:
        kind: OutcomeKind = "sent"
    elif 500 <= code < 600:
        kind = "permanent"
    else:
        kind = "temporary"
    return Outcome(kind, enhanced_status(code, message), f"smtp; {code} {message}", route.host)


async def send_one(
    routes: Sequence[Route],
    *,
    sender: str,
    recipient: str,
    data: bytes,
    settings: EmailSettings,
) -> Outcome:
    """Try `routes` in order until one gives a definite answer for `recipient`."""
    last = Outcome("temporary", "4.4.1", "no route tried")
    for route in routes[:MAX_HOSTS_PER_ATTEMPT]:
        outcome = await _attempt(
            route, sender=sender, recipient=recipient, data=data, settings=settings
        )
        if outcome.kind != "temporary":
            return outcome
        last = outcome
    return last


_TLS_CONTEXTS: dict[bool, ssl.SSLContext] = {}


def _tls_context(*, verify: bool) -> ssl.SSLContext:
    """One client context per verify setting: building one loads the CA store (~85 ms of
    CPU here), and a context serves any number of connections."""
    context = _TLS_CONTEXTS.get(verify)
    if context is None:
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        _TLS_CONTEXTS[verify] = context
    return context


async def _attempt(
    route: Route, *, sender: str, recipient: str, data: bytes, settings: EmailSettings
) -> Outcome:
    context = _tls_context(verify=settings.outbound_verify_tls)
    client = aiosmtplib.SMTP(
        hostname=route.host,
        port=route.port,
        local_hostname=settings.smtp_hostname,
        timeout=settings.outbound_smtp_timeout_seconds,
        start_tls=None,  # upgrade when offered, plain otherwise
        validate_certs=settings.outbound_verify_tls,
        tls_context=context,
    )
    try:
        async with client:
            errors, response = await client.sendmail(sender, [recipient], data)
        if recipient in errors:
            reply = errors[recipient]
            return outcome_for_reply(reply.code, reply.message, route)
        return outcome_for_reply(250, response, route)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0]
        return outcome_for_reply(first.code, first.message, route)
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError) as exc:
        return Outcome(
            "temporary", "4.4.1", f"x-local; cannot connect to {route}: {exc}", route.host
        )
    except aiosmtplib.SMTPServerDisconnected as exc:
        return Outcome("temporary", "4.4.2", f"x-local; {route} disconnected: {exc}", route.host)
    except aiosmtplib.SMTPResponseException as exc:  # sender refused, DATA refused, greeting
        return outcome_for_reply(exc.code, exc.message, route)
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Outcome("temporary", "4.4.0", f"x-local; {route}: {exc}", route.host)
