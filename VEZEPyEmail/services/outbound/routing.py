"""Where mail for a domain goes: the static override map, the smarthost, then DNS MX.

RFC 5321 5.1: the MX records of the domain in order of preference; without any MX record the
domain's own address records act as an implicit MX of preference 0. A "null MX" (RFC 7505, a
single MX "." ) means the domain accepts no mail at all: a permanent failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from VEZEPyEmail.app.settings import EmailSettings

SMTP_PORT = 25


@dataclass(frozen=True)
class Route:
    host: str
    port: int = SMTP_PORT

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class RouteError(Exception):
    """No route to the domain. `permanent`: retrying cannot help (RFC 3463 status `status`)."""

    def __init__(self, message: str, *, permanent: bool, status: str) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


def parse_host_port(value: str, default_port: int = SMTP_PORT) -> Route:
    """`host`, `host:port` or `[v6]:port`."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":")
        return Route(host, int(port) if port else default_port)
    host, colon, port = value.rpartition(":")
    if not colon:
        return Route(value, default_port)
    return Route(host, int(port))


def parse_overrides(text: str) -> dict[str, Route]:
    """`"example.com=127.0.0.1:2526,*=relay:25"` -> {domain: route}; `*` matches any domain."""
    routes: dict[str, Route] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        domain, equals, target = item.partition("=")
        if not equals or not domain.strip() or not target.strip():
            raise ValueError(f"EMAIL_MX_OVERRIDES: expected domain=host:port, got {item!r}")
        routes[domain.strip().lower()] = parse_host_port(target)
    return routes


async def resolve_routes(domain: str, settings: EmailSettings) -> list[Route]:
    """The hosts to try for `domain`, best first; raises RouteError when there is none."""
    domain = domain.lower().rstrip(".")
    overrides = parse_overrides(settings.outbound_mx_overrides)
    if domain in overrides:
        return [overrides[domain]]
    if "*" in overrides:
        return [overrides["*"]]
    if settings.outbound_smarthost:
        return [parse_host_port(settings.outbound_smarthost)]
    return await _mx_routes(domain, settings.outbound_dns_timeout_seconds)


async def _mx_routes(domain: str, dns_seconds: float) -> list[Route]:
    try:
        resolver = dns.asyncresolver.Resolver()
    except dns.resolver.NoResolverConfiguration as exc:
        raise RouteError("no DNS resolver configured", permanent=False, status="4.4.3") from exc
    resolver.timeout = dns_seconds
    resolver.lifetime = dns_seconds
    try:
        answer = await resolver.resolve(domain, dns.rdatatype.MX)
    except dns.resolver.NXDOMAIN as exc:
        raise RouteError(f"domain {domain} does not exist", permanent=True, status="5.1.2") from exc
    except dns.resolver.NoAnswer:
        # RFC 5321 5.1: no MX -> the domain itself (its A/AAAA records) is the implicit MX.
        return [Route(domain)]
    except dns.exception.DNSException as exc:  # timeout, SERVFAIL, no nameservers: try later
        raise RouteError(
            f"DNS lookup for {domain} failed: {exc}", permanent=False, status="4.4.3"
        ) from exc
    records = sorted(answer, key=lambda record: record.preference)
    hosts = [record.exchange.to_text(omit_final_dot=True) for record in records]
    if len(hosts) == 1 and hosts[0] in ("", "."):
        raise RouteError(f"{domain} accepts no mail (null MX)", permanent=True, status="5.1.10")
    return [Route(host) for host in hosts if host not in ("", ".")]
