"""Routes for remote domains: the override map and the smarthost come before DNS."""

from __future__ import annotations

import pytest

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.outbound.routing import (
    Route,
    parse_host_port,
    parse_overrides,
    resolve_routes,
)
from VEZEPyEmail.services.outbound.transport import enhanced_status


def test_override_map_parses_domains_wildcards_and_ports() -> None:
    routes = parse_overrides(" example.com=127.0.0.1:2526, *=relay.test ,[::1]=x")
    assert routes == {
        "example.com": Route("127.0.0.1", 2526),
        "*": Route("relay.test", 25),
        "[::1]": Route("x", 25),
    }
    assert parse_host_port("[::1]:2525") == Route("::1", 2525)
    with pytest.raises(ValueError, match="domain=host:port"):
        parse_overrides("nonsense")


async def test_exact_override_then_wildcard_then_smarthost(email_settings: EmailSettings) -> None:
    settings = email_settings.model_copy(
        update={
            "outbound_mx_overrides": "a.test=127.0.0.1:1001",
            "outbound_smarthost": "smart.test:587",
        }
    )
    assert await resolve_routes("A.test", settings) == [Route("127.0.0.1", 1001)]
    assert await resolve_routes("b.test", settings) == [Route("smart.test", 587)]
    wildcard = settings.model_copy(update={"outbound_mx_overrides": "*=127.0.0.1:1002"})
    assert await resolve_routes("b.test", wildcard) == [Route("127.0.0.1", 1002)]


def test_enhanced_status_comes_from_the_reply_when_it_matches_the_class() -> None:
    assert enhanced_status(550, "5.1.1 no such user") == "5.1.1"
    assert enhanced_status(451, "try later") == "4.0.0"
    assert enhanced_status(550, "4.1.1 mismatched class") == "5.0.0"
