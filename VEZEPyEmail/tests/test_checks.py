"""Inbound checks with an injected, dict-backed DNS: SPF, DKIM, DMARC and the spam score."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import dkim  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from VEZEPyEmail.services.checks import (
    JUNK_THRESHOLD,
    DnsTempError,
    InboundAnalysis,
    analyze_inbound,
    is_junk,
)
from VEZEPyEmail.services.checks.auth import organizational_domain


@dataclass(frozen=True)
class Host:
    smtp_hostname: str = "mail.vezeuniqverse.com"


HOST = Host()
PEER = "192.0.2.10"


class FakeDns:
    """Answers from a dict; names in `broken` fail temporarily; everything else is NXDOMAIN."""

    def __init__(self, records: dict[tuple[str, str], list[str]], broken: bool = False) -> None:
        self.records = records
        self.broken = broken
        self.asked: list[tuple[str, str]] = []

    def __call__(self, name: str, rdtype: str) -> list[str]:
        self.asked.append((name, rdtype))
        if self.broken:
            raise DnsTempError("SERVFAIL")
        return list(self.records.get((name.lower().rstrip("."), rdtype), []))


@pytest.fixture(scope="module")
def key() -> tuple[bytes, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


def message(
    *,
    sender: str = "Ann <ann@example.org>",
    subject: str = "Lunch on Friday?",
    body: str = "Shall we meet at noon?\r\n",
    extra: str = "",
    message_id: bool = True,
    date: bool = True,
) -> bytes:
    headers = [f"From: {sender}", "To: bob@vezeuniqverse.com", f"Subject: {subject}"]
    if date:
        headers.append("Date: Fri, 27 Nov 2026 05:00:00 +0000")
    if message_id:
        headers.append("Message-ID: <lunch-1@example.org>")
    headers.append("MIME-Version: 1.0")
    if extra:
        headers.append(extra)
    else:
        headers.append("Content-Type: text/plain; charset=utf-8")
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def sign(raw: bytes, pem: bytes, domain: str = "example.org") -> bytes:
    signature = dkim.sign(raw, b"s1", domain.encode(), pem, include_headers=[b"from", b"subject"])
    return bytes(signature) + raw


def world(
    dkim_record: str,
    *,
    spf: str = "v=spf1 ip4:192.0.2.0/24 -all",
    dmarc: str = "v=DMARC1; p=reject",
) -> FakeDns:
    return FakeDns(
        {
            ("example.org", "TXT"): [spf],
            ("s1._domainkey.example.org", "TXT"): [dkim_record],
            ("_dmarc.example.org", "TXT"): [dmarc],
        }
    )


async def analyze(
    raw: bytes, dns: FakeDns, *, peer: str = PEER, mail_from: str = "ann@example.org"
) -> InboundAnalysis:
    return await analyze_inbound(
        raw=raw,
        peer_ip=peer,
        helo="mx.example.org",
        envelope_from=mail_from,
        settings=HOST,
        resolver=dns,
    )


async def test_aligned_spf_and_dkim_pass(key: tuple[bytes, str]) -> None:
    pem, record = key
    result = await analyze(sign(message(), pem), world(record))
    assert result.authentication_results == (
        "mail.vezeuniqverse.com; spf=pass smtp.mailfrom=example.org; "
        "dkim=pass header.d=example.org; dmarc=pass header.from=example.org"
    )
    assert result.spam_score == 0.0 and result.spam_reasons == []
    assert not is_junk(result.spam_score)


async def test_spf_fail_and_dmarc_fail_is_junk() -> None:
    result = await analyze(message(), world("", spf="v=spf1 ip4:198.51.100.1 -all"))
    header = result.authentication_results
    assert "spf=fail" in header and "dkim=none" in header and "dmarc=fail" in header
    assert result.spam_reasons == ["spf_fail:2.5", "dmarc_fail:3"]
    assert result.spam_score == 5.5 and is_junk(result.spam_score) and result.junk


async def test_softfail_and_dkim_alone_aligns(key: tuple[bytes, str]) -> None:
    pem, record = key
    result = await analyze(sign(message(), pem), world(record, spf="v=spf1 ~all"))
    assert "spf=softfail" in result.authentication_results
    assert "dmarc=pass" in result.authentication_results  # DKIM d=example.org aligns
    assert result.spam_reasons == ["spf_softfail:1"]


async def test_tampered_body_fails_dkim(key: tuple[bytes, str]) -> None:
    pem, record = key
    raw = sign(message(), pem).replace(b"noon", b"midnight")
    result = await analyze(raw, world(record, spf="v=spf1 -all"))
    assert "dkim=fail header.d=example.org" in result.authentication_results
    assert "dmarc=fail" in result.authentication_results


async def test_relaxed_alignment_uses_the_organizational_domain(key: tuple[bytes, str]) -> None:
    dns = FakeDns(
        {
            ("bounces.example.org", "TXT"): ["v=spf1 ip4:192.0.2.10 -all"],
            ("_dmarc.example.org", "TXT"): ["v=DMARC1; p=quarantine"],
        }
    )
    result = await analyze(
        message(sender="news@mail.example.org"), dns, mail_from="x@bounces.example.org"
    )
    assert "spf=pass smtp.mailfrom=bounces.example.org" in result.authentication_results
    assert "dmarc=pass header.from=mail.example.org" in result.authentication_results
    # SPF passes for an unrelated domain: not aligned with the From.
    other = FakeDns(
        {
            ("other.test", "TXT"): ["v=spf1 +all"],
            ("_dmarc.example.org", "TXT"): ["v=DMARC1; p=none"],
        }
    )
    result = await analyze(message(), other, mail_from="x@other.test")
    assert "spf=pass" in result.authentication_results
    assert "dmarc=fail" in result.authentication_results


async def test_no_records_give_none() -> None:
    result = await analyze(message(), FakeDns({}))
    assert result.authentication_results == (
        "mail.vezeuniqverse.com; spf=none smtp.mailfrom=example.org; dkim=none; "
        "dmarc=none header.from=example.org"
    )


async def test_temporary_dns_failure_gives_temperror(key: tuple[bytes, str]) -> None:
    pem, _ = key
    result = await analyze(sign(message(), pem), FakeDns({}, broken=True))
    header = result.authentication_results
    assert "spf=temperror" in header and "dkim=temperror" in header and "dmarc=temperror" in header
    assert result.spam_score == 0.0


async def test_null_sender_checks_the_helo() -> None:
    dns = FakeDns({("mx.example.org", "TXT"): ["v=spf1 ip4:192.0.2.10 -all"]})
    result = await analyze(message(), dns, mail_from="")
    assert "spf=pass smtp.helo=mx.example.org" in result.authentication_results


async def test_real_resolver_offline_is_quick_and_never_raises() -> None:
    started = time.monotonic()
    result = await analyze_inbound(
        raw=message(sender="a@example.invalid"),
        peer_ip=PEER,
        helo="mx.example.invalid",
        envelope_from="a@example.invalid",
        settings=HOST,
    )
    assert time.monotonic() - started < 12
    verdicts = dict(
        part.split(" ")[0].split("=") for part in result.authentication_results.split("; ")[1:]
    )
    assert verdicts["spf"] in ("none", "temperror")
    assert verdicts["dkim"] == "none"
    assert verdicts["dmarc"] in ("none", "temperror")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (message(message_id=False), "no_message_id:1"),
        (message(date=False), "no_date:1"),
        (
            message(sender='"support@paypal.com" <thief@evil.test>'),
            "display_name_impersonation:2.5",
        ),
        (message(subject="URGENT ACCOUNT NOTICE"), "all_caps_subject:1.5"),
        (message(subject="Hello!!! there"), "many_exclamation_marks:1"),
        (message(body="Click here to claim your prize, act now"), "spam_phrase:2.4"),
        (
            message(extra="Content-Type: text/html; charset=utf-8", body="<p>Hi</p>"),
            "html_only:1",
        ),
        (
            message(
                extra='Content-Type: multipart/mixed; boundary="b"',
                body=(
                    "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                    "--b\r\nContent-Type: application/octet-stream\r\n"
                    'Content-Disposition: attachment; filename="invoice.pdf.exe"\r\n\r\nMZ\r\n'
                    "--b--\r\n"
                ),
            ),
            "suspicious_attachment:4",
        ),
        (
            message(extra="Cc: " + ", ".join(f"u{i}@example.net" for i in range(60))),
            "many_recipients:1.5",
        ),
    ],
)
async def test_each_spam_rule_is_named(raw: bytes, reason: str) -> None:
    dns = FakeDns({("example.org", "TXT"): ["v=spf1 ip4:192.0.2.10 -all"]})
    result = await analyze(raw, dns)
    assert result.spam_reasons == [reason]
    assert result.spam_score == float(reason.split(":")[1])


async def test_score_is_capped_at_ten() -> None:
    raw = message(
        sender='"admin@bank.example" <x@evil.test>',
        subject="YOU HAVE WON THE LOTTERY!!!",
        body="Click here, act now, wire transfer, claim your prize!!!!!!!!!!",
        message_id=False,
        date=False,
    )
    result = await analyze(raw, world("", spf="v=spf1 -all"), mail_from="x@example.org")
    assert result.spam_score == 10.0 and is_junk(result.spam_score)
    assert len(result.spam_reasons) >= 6


def test_threshold_and_organizational_domain() -> None:
    assert JUNK_THRESHOLD == 5.0
    assert is_junk(5.0) and not is_junk(4.99)
    assert organizational_domain("a.b.example.org") == "example.org"
    assert organizational_domain("mail.shop.co.uk") == "shop.co.uk"


@settings(max_examples=50, deadline=None)
@given(raw=st.binary(max_size=2000), mail_from=st.text(max_size=60), peer=st.text(max_size=40))
async def test_any_input_gives_a_verdict(raw: bytes, mail_from: str, peer: str) -> None:
    result = await analyze_inbound(
        raw=raw,
        peer_ip=peer,
        helo="h",
        envelope_from=mail_from,
        settings=HOST,
        resolver=FakeDns({}),
    )
    assert result.authentication_results.startswith("mail.vezeuniqverse.com; spf=")
    assert "\n" not in result.authentication_results and "\r" not in result.authentication_results
    assert 0.0 <= result.spam_score <= 10.0
