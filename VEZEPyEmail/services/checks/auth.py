"""SPF (RFC 7208, pyspf), DKIM (RFC 6376, dkimpy) and DMARC (RFC 7489) verdicts.

Every DNS question goes through the injected `Resolver`; every failure becomes a verdict
(`temperror`, `permerror`, `none`, `fail`), never an exception.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import dkim  # type: ignore[import-untyped]
import spf  # type: ignore[import-untyped]
from dkim.util import parse_tag_value  # type: ignore[import-untyped]

from VEZEPyEmail.services.checks.dns import DnsTempError, Resolver

logger = logging.getLogger(__name__)

#: pyspf's budget for all lookups of one check (RFC 7208 section 4.6.4 allows 20 s).
SPF_TOTAL_SECONDS = 4
_SAFE = re.compile(r"[^A-Za-z0-9.@_+=\-]")


def safe(value: str, limit: int = 255) -> str:
    """A value fit for an Authentication-Results property: no spaces, semicolons or CR/LF."""
    return _SAFE.sub("", value)[:limit]


@dataclass(frozen=True)
class SpfVerdict:
    result: str  # pass fail softfail neutral none temperror permerror
    domain: str  # the domain that was checked (MAIL FROM, or HELO for null senders)
    identity: str  # smtp.mailfrom or smtp.helo


@dataclass(frozen=True)
class DkimVerdict:
    result: str  # pass fail none temperror permerror
    domains: tuple[str, ...]  # d= of the passing signatures
    first_domain: str  # d= of the first signature, for the header when none passed


@dataclass(frozen=True)
class DmarcVerdict:
    result: str  # pass fail none temperror permerror
    policy: str  # p= of the record, "" when there is none
    from_domain: str


class _SpfQuery(spf.query):  # type: ignore[misc]
    """pyspf with its DNS replaced by the injected resolver (same answer shapes as pyspf's)."""

    def __init__(self, resolver: Resolver, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._resolver = resolver
        self._answers: dict[tuple[str, str], list[Any]] = {}

    def dns(
        self, name: Any, qtype: str, cnames: Any = None, ignore_void: bool = False
    ) -> list[Any]:
        name = str(name).rstrip(".").lower()
        if not name or not all(0 < len(label) < 64 for label in name.split(".")):
            return []
        key = (name, qtype)
        if key not in self._answers:
            try:
                values = self._resolver(name, qtype)
            except DnsTempError as exc:
                raise spf.TempError(f"DNS {exc}") from None
            converted: list[Any] = []
            for value in values:
                if qtype in ("TXT", "SPF"):
                    converted.append([value.encode("utf-8")])
                elif qtype == "MX":
                    preference, _, exchange = value.partition(" ")
                    converted.append((int(preference or 0), exchange.strip()))
                else:
                    converted.append(value)
            self._answers[key] = converted
        result = self._answers[key]
        if not result and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return result


def check_spf(*, resolver: Resolver, peer_ip: str, helo: str, envelope_from: str) -> SpfVerdict:
    """RFC 7208: MAIL FROM, or the HELO identity for the null sender (bounces)."""
    sender = envelope_from.strip("<>")
    if sender and "@" in sender:
        identity, domain = "mailfrom", sender.rpartition("@")[2].lower()
    else:
        identity, domain = "helo", helo.lower()
        sender = f"postmaster@{helo}"
    try:
        query = _SpfQuery(
            resolver, i=peer_ip, s=sender, h=helo, querytime=SPF_TOTAL_SECONDS, timeout=2
        )
        result = str(query.check()[0]).lower()
    except Exception:  # malformed IP or name, or a pyspf bug: no verdict, no crash
        logger.warning("SPF check failed for %s", safe(sender), exc_info=True)
        result = "none"
    if result in ("error",):
        result = "temperror"
    if result == "ambiguous":
        result = "neutral"
    return SpfVerdict(result=result, domain=domain, identity=identity)


def _signature_domains(raw: bytes) -> list[str]:
    """d= of each DKIM-Signature header, in order (best effort, for reporting)."""
    domains: list[str] = []
    headers = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", headers)
    for line in unfolded.splitlines():
        name, _, value = line.partition(b":")
        if name.strip().lower() != b"dkim-signature":
            continue
        try:
            tags = parse_tag_value(value.strip())
            domains.append(tags.get(b"d", b"").decode("ascii", "replace").lower())
        except Exception:  # an unparsable signature still counts as one that fails
            domains.append("")
    return domains


def check_dkim(*, resolver: Resolver, raw: bytes) -> DkimVerdict:
    """Verify every DKIM-Signature (RFC 6376); pass if any verifies."""
    domains = _signature_domains(raw)
    if not domains:
        return DkimVerdict(result="none", domains=(), first_domain="")
    temporary = False

    def txt(name: bytes | str, timeout: float = 5) -> bytes | None:
        nonlocal temporary
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            records = resolver(text.rstrip("."), "TXT")
        except DnsTempError:
            temporary = True
            return None
        return records[0].encode("utf-8") if records else None

    passed: list[str] = []
    for index, domain in enumerate(domains):
        try:
            verifier = dkim.DKIM(raw, logger=logger, timeout=2)
            if verifier.verify(idx=index, dnsfunc=txt):
                passed.append(domain)
        except Exception:  # DKIMException for malformed signatures or keys: a failure
            logger.debug("DKIM signature %d did not verify", index, exc_info=True)
    if passed:
        return DkimVerdict(result="pass", domains=tuple(passed), first_domain=passed[0])
    return DkimVerdict(
        result="temperror" if temporary else "fail", domains=(), first_domain=domains[0]
    )


def organizational_domain(domain: str) -> str:
    """The last two labels (three under a two-letter ccTLD second level like co.uk).

    An approximation of the Public Suffix List that RFC 7489 section 3.2 asks for.
    """
    labels = [label for label in domain.lower().strip(".").split(".") if label]
    if (
        len(labels) >= 3
        and len(labels[-1]) == 2
        and labels[-2] in ("co", "com", "ac", "org", "net", "gov")
    ):
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _dmarc_record(resolver: Resolver, domain: str) -> dict[str, str] | None:
    for record in resolver(f"_dmarc.{domain}", "TXT"):
        if record.strip().lower().startswith("v=dmarc1"):
            tags: dict[str, str] = {}
            for part in record.split(";"):
                key, _, value = part.partition("=")
                if key.strip():
                    tags[key.strip().lower()] = value.strip()
            return tags
    return None


def check_dmarc(
    *, resolver: Resolver, from_domain: str, spf: SpfVerdict, dkim_verdict: DkimVerdict
) -> DmarcVerdict:
    """RFC 7489 with relaxed alignment: SPF or DKIM pass for the From's organizational domain."""
    if not from_domain:
        return DmarcVerdict(result="none", policy="", from_domain="")
    organization = organizational_domain(from_domain)
    try:
        record = _dmarc_record(resolver, from_domain)
        if record is None and organization != from_domain:
            record = _dmarc_record(resolver, organization)
    except DnsTempError:
        return DmarcVerdict(result="temperror", policy="", from_domain=from_domain)
    if record is None:
        return DmarcVerdict(result="none", policy="", from_domain=from_domain)
    policy = record.get("p", "none").lower()
    if record.get("p") is None and organization != from_domain:
        policy = record.get("sp", "none").lower()
    spf_aligned = spf.result == "pass" and organizational_domain(spf.domain) == organization
    dkim_aligned = any(organizational_domain(d) == organization for d in dkim_verdict.domains)
    result = "pass" if spf_aligned or dkim_aligned else "fail"
    return DmarcVerdict(result=result, policy=policy, from_domain=from_domain)
