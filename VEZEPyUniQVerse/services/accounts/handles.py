"""Handles: the name a person signs up with, also the local part of their mail address.

Stored lower-case, so uniqueness is case-insensitive: `Alice` and `alice` are one account.
"""

from __future__ import annotations

import re

from VEZEPyCore.errors import BadRequest

MIN_HANDLE_LENGTH = 3
MAX_HANDLE_LENGTH = 32
_HANDLE_CHARACTERS = re.compile(r"[a-z0-9._-]+")
#: Addresses that RFC 2142 (postmaster, abuse, hostmaster, webmaster, ...) or common practice
#: give to the operator; handing one to a user would let them read the operator's mail or pose
#: as the operator.
RESERVED_HANDLES = frozenset(
    {
        "postmaster",
        "abuse",
        "admin",
        "administrator",
        "root",
        "noreply",
        "no-reply",
        "hostmaster",
        "webmaster",
        "support",
        "security",
        "mailer-daemon",
        "daemon",
        "nobody",
        "system",
        "staff",
        "help",
        "info",
        "veze",
        "vezeuniqverse",
    }
)


def normalise_handle(raw: str) -> str:
    """The lower-cased handle, or 400 with the rule it breaks."""
    handle = raw.strip().lower()
    if not MIN_HANDLE_LENGTH <= len(handle) <= MAX_HANDLE_LENGTH:
        raise BadRequest(f"handle must be {MIN_HANDLE_LENGTH}-{MAX_HANDLE_LENGTH} characters long")
    if not _HANDLE_CHARACTERS.fullmatch(handle):
        raise BadRequest("handle may contain only letters, digits, dot, hyphen and underscore")
    if not ("a" <= handle[0] <= "z"):
        raise BadRequest("handle must start with a letter")
    # It becomes the local part of an address: a dot-atom (RFC 5322 section 3.4.1) has no
    # trailing or doubled dots.
    if handle.endswith(".") or ".." in handle:
        raise BadRequest("handle must not end with a dot or contain two dots in a row")
    if handle in RESERVED_HANDLES:
        raise BadRequest(f"handle {handle!r} is reserved")
    return handle


def handle_key(raw: str) -> str:
    """A bounded, lower-cased form of whatever was typed, for rate-limit keys and the audit log.

    Unlike `normalise_handle` it never refuses: a log-in with an invalid handle is still counted
    against that name, exactly like one for an existing account (no enumeration by behaviour).
    """
    return raw.strip().lower()[:64]
