"""The DNS records a domain publishes so that the world accepts its mail (see docs/dns.md)."""

from __future__ import annotations

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.dkim.schemas import DnsRecordRead, DnsRecordsRead
from VEZEPyEmail.services.dkim.service import DkimKey

#: TXT strings are at most 255 octets each (RFC 1035 3.3.14); longer values are split.
TXT_CHUNK = 255


def txt_chunks(value: str) -> list[str]:
    return [value[i : i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)] or [""]


def zone_txt(value: str) -> str:
    """The value as a zone-file string list: "part1" "part2"."""
    return " ".join(f'"{chunk}"' for chunk in txt_chunks(value))


def dns_records(settings: EmailSettings, key: DkimKey) -> DnsRecordsRead:
    domain = settings.mail_domain.lower()
    mx_host = settings.smtp_hostname.lower()
    return DnsRecordsRead(
        domain=domain,
        selector=key.selector,
        records=[
            DnsRecordRead(
                type="MX",
                name=f"{domain}.",
                value=f"10 {mx_host}.",
                purpose="Where other servers deliver mail for the domain (RFC 5321 5.1).",
            ),
            DnsRecordRead(
                type="TXT",
                name=f"{domain}.",
                value="v=spf1 mx -all",
                purpose="SPF (RFC 7208): only the domain's MX hosts send its mail.",
            ),
            DnsRecordRead(
                type="TXT",
                name=f"{key.record_name}.",
                value=key.txt_record,
                purpose="DKIM public key (RFC 6376 3.6.1) for the signing selector.",
            ),
            DnsRecordRead(
                type="TXT",
                name=f"_dmarc.{domain}.",
                value=f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}; adkim=s; aspf=s",
                purpose="DMARC (RFC 7489): what receivers do with mail that fails SPF and DKIM.",
            ),
        ],
    )
