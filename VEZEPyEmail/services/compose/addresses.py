"""Recipient addresses: parsed as RFC 5322 mailboxes, the addr-spec checked by email-validator.

An entry is one mailbox, "bob@example.com" or "Bob <bob@example.com>". Groups, lists in one
entry, quoted local parts, domain literals and internationalised local parts (which would need
SMTPUTF8, RFC 6531, on the way out) are refused; internationalised domains go out as IDNA.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address

from email_validator import EmailNotValidError, validate_email

from VEZEPyEmail.services.compose.errors import ComposeInvalid

MAX_ENTRY = 400
MAX_DISPLAY_NAME = 200


@dataclass(frozen=True)
class Recipient:
    display_name: str
    address: str  # ASCII addr-spec, domain lower-cased

    @property
    def key(self) -> str:
        return self.address.lower()

    def header_address(self) -> Address:
        return Address(display_name=self.display_name, addr_spec=self.address)

    def formatted(self) -> str:
        return str(self.header_address())


def parse_recipient(entry: str, field: str, *, test_domains: bool = False) -> Recipient:
    """One mailbox, or ComposeInvalid naming `field` and the entry. `test_domains` admits the
    special-use `.test` names (RFC 6761) that development and test setups route locally."""
    shown = entry[:80]
    if not entry.strip() or len(entry) > MAX_ENTRY or any(ch in entry for ch in "\r\n\0"):
        raise ComposeInvalid(
            field, f"{field}: {shown!r} is not a valid address", code="bad_address"
        )
    try:
        parsed = policy.default.header_factory("To", entry.strip())
        addresses = list(parsed.addresses)
        # a bare mailbox is a group without a name; "name: a@b;" is a named group
        grouped = any(group.display_name is not None for group in parsed.groups)
        defects = list(parsed.defects)
    except Exception:
        addresses, grouped, defects = [], False, ["unparsable"]
    if defects or grouped or len(addresses) != 1:
        raise ComposeInvalid(
            field, f"{field}: {shown!r} is not one valid address", code="bad_address"
        )
    mailbox = addresses[0]
    try:
        checked = validate_email(
            mailbox.addr_spec,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            test_environment=test_domains,
        )
    except EmailNotValidError as exc:
        raise ComposeInvalid(field, f"{field}: {shown!r}: {exc}", code="bad_address") from exc
    name = " ".join(mailbox.display_name.split())[:MAX_DISPLAY_NAME]
    return Recipient(display_name=name, address=checked.ascii_email or checked.normalized)


def parse_recipients(
    entries: list[str], field: str, *, test_domains: bool = False
) -> list[Recipient]:
    return [
        parse_recipient(entry, f"{field}[{index}]", test_domains=test_domains)
        for index, entry in enumerate(entries)
    ]


def unique(recipients: list[Recipient], *, exclude: Collection[str] = ()) -> list[Recipient]:
    """First occurrence of each address (case-insensitive), without the excluded ones."""
    seen = {address.lower() for address in exclude}
    kept: list[Recipient] = []
    for recipient in recipients:
        if recipient.key not in seen:
            seen.add(recipient.key)
            kept.append(recipient)
    return kept
