"""The one door to DNS for the inbound checks: a synchronous resolver callable.

`resolver(name, rdtype) -> list[str]` returns the answers as text (TXT strings joined, MX as
"<preference> <exchange>", A/AAAA/PTR as text), [] for NXDOMAIN or no answer, and raises
`DnsTempError` for anything temporary (timeout, no reachable server). Tests pass a dict-backed
resolver and run offline and deterministically.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import dns.exception
import dns.resolver

Resolver = Callable[[str, str], list[str]]

#: Per lookup; a mail server must not hang a session on someone else's DNS.
DNS_TIMEOUT_SECONDS = 2.0
#: Per UDP try within a lookup: a lost datagram is resent after this instead of costing the
#: whole lookup time (resolvers under load drop queries; measured here: 1 in 10 under 6
#: concurrent lookups).
DNS_ATTEMPT_SECONDS = 0.4
#: Answers kept, NXDOMAIN included, each for its record's TTL: most inbound mail comes from a
#: few sender domains, and their SPF and DMARC records would otherwise be asked for per message.
DNS_CACHE_ENTRIES = 20_000


class DnsTempError(Exception):
    """A DNS failure that may go away: timeout, SERVFAIL, no nameserver reachable."""


def dnspython_resolver(
    timeout: float = DNS_TIMEOUT_SECONDS, *, cache_entries: int = DNS_CACHE_ENTRIES
) -> Resolver:
    """A resolver over the system's nameservers with a short lifetime and an answer cache."""
    try:
        resolver: dns.resolver.Resolver | None = dns.resolver.Resolver()
    except dns.exception.DNSException:
        resolver = None  # no resolv.conf: every lookup is a temporary failure
    if resolver is not None:
        resolver.timeout = min(DNS_ATTEMPT_SECONDS, timeout)
        if cache_entries > 0:
            resolver.cache = dns.resolver.LRUCache(cache_entries)

    def resolve(name: str, rdtype: str) -> list[str]:
        if resolver is None:
            raise DnsTempError("no DNS resolver configured")
        try:
            answer = resolver.resolve(name, rdtype, lifetime=timeout, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise DnsTempError(f"{type(exc).__name__}: {exc}") from None
        values: list[str] = []
        for rdata in answer:
            if rdtype in ("TXT", "SPF"):
                values.append(b"".join(rdata.strings).decode("utf-8", "replace"))
            elif rdtype == "MX":
                values.append(f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True)}")
            elif rdtype == "PTR":
                values.append(rdata.target.to_text(omit_final_dot=True))
            else:
                values.append(rdata.to_text())
        return values

    return resolve


_shared: Resolver | None = None
_shared_lock = threading.Lock()


def shared_resolver() -> Resolver:
    """The process's resolver: one answer cache for every session (dnspython's is thread-safe)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = dnspython_resolver()
        return _shared
