"""Inbound checks: SPF, DKIM, DMARC into an Authentication-Results header, and a spam score."""

from VEZEPyEmail.services.checks.service import (
    JUNK_THRESHOLD,
    DnsTempError,
    InboundAnalysis,
    Resolver,
    analyze_inbound,
    dnspython_resolver,
    is_junk,
)

__all__ = [
    "JUNK_THRESHOLD",
    "DnsTempError",
    "InboundAnalysis",
    "Resolver",
    "analyze_inbound",
    "dnspython_resolver",
    "is_junk",
]
